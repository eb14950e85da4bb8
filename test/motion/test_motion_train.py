"""Training: data preparation, a tiny two-stage run, outputs and resume."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from motion_helpers import tiny_config, walking_params

from ssomotion_ros.body.skeleton import (
    MIRROR_PERMUTATION,
    default_skeleton,
    forward_kinematics_np,
)
from ssomotion_ros.motion.checkpoints import load_checkpoint
from ssomotion_ros.motion.train import (
    ClipData,
    RunConfig,
    TrainConfig,
    load_clips,
    load_run_config,
    make_window_set,
    mirror_params,
    resample_params,
    train,
    window_label,
)


def test_mirror_reflects_the_joints():
    p = walking_params(20, yaw=0.4)
    p[:, 3:66] += np.random.default_rng(0).normal(0, 0.2, (20, 63)).astype(np.float32)
    sym = default_skeleton(symmetric=True)
    j = forward_kinematics_np(p, sym)
    jm = forward_kinematics_np(mirror_params(p), sym)
    want = j[:, MIRROR_PERMUTATION] * np.array([1, -1, 1])
    assert np.abs(jm - want).max() < 1e-5
    assert np.allclose(mirror_params(mirror_params(p)), p, atol=1e-6)


def test_resample_params():
    p = walking_params(31)
    assert np.allclose(resample_params(p, 1.0), p, atol=1e-5)
    fast = resample_params(p, 2.0)
    assert fast.shape == (16, 69)
    assert np.allclose(fast[:, 66:], p[::2, 66:], atol=1e-6)


def test_window_label():
    a = np.array(["idle"] * 5 + ["walk"] * 10 + ["sit"] * 15)
    assert window_label(a, 5, 0.3) == 1  # sit
    assert window_label(np.array(["idle"] * 30), 5, 0.3) == -1
    assert window_label(np.array(["idle"] * 25 + ["lie"] * 5), 5, 0.3) == -1


def _clips():
    return [
        ClipData(f"w{i}", walking_params(70, yaw=i, seed=i), np.array(["walk"] * 70))
        for i in range(3)
    ] + [ClipData("s0", walking_params(50, speed=0.1), np.array(["sit"] * 50))]


def test_window_set_shapes():
    tc = TrainConfig(stride=5, speeds=(1.0, 1.25))
    ws = make_window_set(_clips(), 30, 5, tc, progress=False)
    n = len(ws.feats)
    assert ws.feats.shape == (n, 30, 135) and ws.direction.shape == (n, 22, 3)
    assert set(ws.actions.tolist()) == {0, 1}
    assert torch.allclose(ws.feats[:, 0, :2], torch.zeros(n, 2), atol=1e-5)
    assert (ws.direction.norm(dim=-1) <= 1 + 1e-5).all()


def test_load_clips_npz_and_errors(tmp_path):
    np.savez(tmp_path / "a.npz", params=walking_params(40), actions=np.array(["walk"] * 40))
    clips = load_clips(tmp_path, progress=False)
    assert clips[0].name == "a" and clips[0].params.shape == (40, 69)
    np.savez(tmp_path / "b.npz", params=np.zeros((40, 60)), actions=np.array(["walk"] * 40))
    with pytest.raises(ValueError, match="69"):
        load_clips(tmp_path, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="neither"):
        load_clips(empty)


def test_run_config_yaml(tmp_path, repo_root):
    run = load_run_config(repo_root / "config" / "train_default.yaml")
    assert run.train.holdout and run.motion.model.num_layers >= 1
    ref = load_run_config(repo_root / "config" / "train_reference.yaml")
    assert ref.motion.model.latent_dim == 512
    bad = tmp_path / "bad.yaml"
    bad.write_text("size: huge\n")
    with pytest.raises(ValueError, match="size"):
        load_run_config(bad)
    bad.write_text("train: {lr: 1, nonsense: 2}\n")
    with pytest.raises(ValueError, match="nonsense"):
        load_run_config(bad)


def test_tiny_two_stage_run_and_resume(tmp_path):
    cfg = tiny_config(triplane_size=101)
    tc = TrainConfig(
        prior_steps=12,
        control_steps=3,
        batch_size=8,
        control_batch_size=2,
        stride=6,
        speeds=(1.0,),
        warmup=2,
        log_every=3,
        checkpoint_every=6,
        threads=0,
        scene_source="boxes",
    )
    run = RunConfig(motion=cfg, train=tc)
    out = tmp_path / "run"
    summary = train(run, _clips(), out, progress=False)
    assert summary["complete"]
    assert (out / "loss_curve.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "losses.csv")))
    assert [r["stage"] for r in rows].count("control") == 1
    assert rows[-1]["global_step"] == "15"
    loaded = load_checkpoint(out / "model", device="cpu")
    assert loaded.metadata["complete"] and "seed/walk" in loaded.extras
    assert not torch.equal(
        loaded.model.zero_links[0].weight, torch.zeros_like(loaded.model.zero_links[0].weight)
    )
    # resume: more stage-2 steps continue from the saved step
    run.train.control_steps = 5
    summary = train(run, _clips(), out, progress=False)
    assert summary["stages"]["control"]["steps"] == 5
    rows = list(csv.DictReader(open(out / "losses.csv")))
    assert rows[-1]["stage"] == "control" and rows[-1]["step"] == "5"
    # a different network config refuses to resume into the same folder
    run2 = RunConfig(motion=tiny_config(latent_dim=64, triplane_size=101), train=tc)
    with pytest.raises(ValueError, match="different"):
        train(run2, _clips(), out, progress=False)


def test_stage2_on_generated_rooms(tmp_path):
    cfg = tiny_config(triplane_size=101)
    tc = TrainConfig(
        prior_steps=2, control_steps=2, batch_size=4, control_batch_size=2, stride=10,
        speeds=(1.0,), mirror=False, warmup=1, log_every=1, threads=0, scene_source="rooms",
        scene_pool_size=3, rooms_per_prompt=1, scene_prompts=("a bedroom with a bed",),
    )  # fmt: skip
    out = tmp_path / "rooms"
    summary = train(RunConfig(motion=cfg, train=tc), _clips(), out, progress=False)
    assert summary["stages"]["control"]["steps"] == 2
    assert (out / "stage2_pool.safetensors").is_file()
    loaded = load_checkpoint(out / "model", device="cpu")
    assert loaded.extras["semantic_reduction.weight"].shape[0] == 16
