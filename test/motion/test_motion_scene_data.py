"""Stage-2 windows placed in generated rooms, tri-planes from the real SSO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from motion_helpers import walking_params

from ssomotion_ros.motion import representation as rep
from ssomotion_ros.motion.scene_data import Stage2Pool, _world, build_stage2_pool


@pytest.fixture(scope="module")
def pool_and_windows():
    p = torch.as_tensor(np.stack([walking_params(30, seed=i) for i in range(4)]))
    o, y = rep.window_frame(p)
    feats = rep.params_to_features(p, o, y)
    actions = torch.zeros(4, dtype=torch.long)
    pool = build_stage2_pool(
        feats, actions, 4, prompts=("a living room with a sofa and a table",),
        rooms_per_prompt=1, progress=False,
    )  # fmt: skip
    return pool, feats


def test_pool_shapes_and_batch(pool_and_windows, tmp_path):
    pool, _ = pool_and_windows
    assert len(pool) == 4
    sc = pool.batch(torch.tensor([0, 3]))
    assert sc.depth.shape == (2, 5, 101, 101) and sc.rgb.shape == (2, 5, 3, 101, 101)
    assert sc.semantic.shape == (2, 5, 16, 101, 101) and sc.mask.dtype == torch.bool
    assert sc.mask[:, 4].float().mean() > 0.5  # the floor under the body
    assert (sc.semantic.abs().sum(2)[~sc.mask] == 0).all()
    pool.save(tmp_path / "p.safetensors")
    back = Stage2Pool.load(tmp_path / "p.safetensors")
    assert torch.equal(back.label, pool.label) and torch.equal(back.pose, pool.pose)


def test_placements_are_collision_free(pool_and_windows):
    from ssomotion_ros.synthesis.scene_source import scene_model_from_prompt

    pool, feats = pool_and_windows
    model, _ = scene_model_from_prompt("a living room with a sofa and a table", seed=0)
    for w, pose in zip(pool.window.tolist(), pool.pose.numpy()):
        j = rep.features_to_joints(feats[w : w + 1].double())[0].numpy()
        body = [i for i in range(22) if i not in (7, 8, 10, 11)]
        pts = _world(j[:, body].reshape(-1, 3), pose)
        assert float(model.signed_distance(torch.as_tensor(pts, dtype=torch.float32)).min()) > 0.08
