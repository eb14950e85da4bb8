"""DeepMimic clips from the pybullet wheel (optional dependency)."""

import json

import numpy as np
import pytest

from ssomotion_ros.body.skeleton import R_NATIVE_TO_MAP, forward_kinematics_np
from ssomotion_ros.motion.datasets import deepmimic as dm

pybullet_data = pytest.importorskip("pybullet_data", reason="optional: pip install pybullet")


def test_walk_forward_bone_directions_match_source():
    motion = dm.read_deepmimic(dm.deepmimic_motion_dir() / "walker/0walk_forward.txt")
    params, meta = dm.deepmimic_to_smpl(motion)
    assert params.shape == (38, 69) and params.dtype == np.float32
    j = forward_kinematics_np(params)
    _, pos = dm._fk(motion["local"], motion["root_pos"])
    pos = pos @ dm._M.T @ R_NATIVE_TO_MAP.T  # DeepMimic -> map axes (frame times coincide)
    pairs = [
        (4, 7, "left_knee", "left_ankle"),
        (19, 21, "right_elbow", "right_wrist"),
        (16, 18, "left_shoulder", "left_elbow"),
        (2, 5, "right_hip", "right_knee"),
    ]
    for a, b, da, db in pairs:
        u, v = j[:, b] - j[:, a], pos[:, dm._idx(db)] - pos[:, dm._idx(da)]
        cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.1
    # walks forward along +x, upright, pelvis at standing height
    assert j[-1, 0, 0] - j[0, 0, 0] > 1.0
    assert np.all((j[:, 0, 2] > 0.85) & (j[:, 0, 2] < 1.02))


def test_dataset_labels_and_tiling():
    clips = {c.name: c for c in dm.load_deepmimic_dataset(loop_cycles=3)}
    walk = clips["deepmimic_0walk_forward"]
    assert len(walk) == 3 * 38 and set(walk.actions) == {"walk"}
    j = forward_kinematics_np(walk.params)
    steps = np.linalg.norm(np.diff(j, axis=0), axis=-1).max(1)
    assert steps.max() < 1.5 * np.median(steps) + 0.03  # no jumps at the cycle seams
    up = clips["deepmimic_humanoid3d_getup_faceup"]
    assert up.actions[0] == "lie" and "stand_up" in set(up.actions)
    down = clips["deepmimic_humanoid3d_getup_faceup_reversed"]
    assert (down.actions == "lie").sum() > 60 and "stand_up" not in set(down.actions)


def test_bad_file(tmp_path):
    f = tmp_path / "m.txt"
    f.write_text(json.dumps({"Loop": "none", "Frames": [[0.1, 0, 0]]}))
    with pytest.raises(ValueError, match="44"):
        dm.read_deepmimic(f)
    f.write_text("{nope")
    with pytest.raises(ValueError, match="DeepMimic"):
        dm.read_deepmimic(f)
