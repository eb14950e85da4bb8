"""``ssomotion generate`` and ``ssomotion bench motion`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from motion_helpers import tiny_config

from ssomotion_ros.cli.main import main
from ssomotion_ros.motion import representation as rep
from ssomotion_ros.motion.checkpoints import save_checkpoint
from ssomotion_ros.motion.model import SSOMotionDenoiser
from ssomotion_ros.motion.rollout import MotionSampler


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config()
    m = SSOMotionDenoiser(cfg.model).eval()
    m.feat_std.fill_(0.05)  # keep samples near the mean pose
    m.feat_mean.copy_(
        rep.params_to_features(torch.zeros(1, 1, 69), torch.zeros(1, 3), torch.zeros(1))[0, 0]
    )
    seed = m.feat_mean[None].repeat(5, 1)
    return save_checkpoint(tmp_path / "ck", m, cfg, {"seed/walk": seed, "seed/sit": seed})


def test_generate_writes_npz_and_filmstrip(tiny_checkpoint, tmp_path):
    out = tmp_path / "m" / "walk.npz"
    rc = main(
        [
            "generate",
            "--action",
            "walk",
            "--seconds",
            "1.5",
            "--out",
            str(out),
            "--checkpoint",
            str(tiny_checkpoint),
            "--steps",
            "2",
            "--direction",
            "1,0",
        ]
    )
    assert rc == 0
    with np.load(out, allow_pickle=False) as z:
        assert z["params"].shape == (45, 69) and z["joints"].shape == (45, 22, 3)
        assert float(z["fps"]) == 30.0 and str(z["action"]) == "walk"
        assert np.isfinite(z["joints"]).all()
    assert out.with_suffix(".png").stat().st_size > 5000


def test_generate_rejects_bad_arguments(tiny_checkpoint, tmp_path, capsys):
    base = ["generate", "--out", str(tmp_path / "x.npz"), "--checkpoint", str(tiny_checkpoint)]
    assert main(base + ["--action", "sit", "--direction", "1,0"]) == 2
    assert main(base + ["--action", "walk", "--direction", "east"]) == 2
    assert main(base + ["--action", "walk", "--seconds", "-1"]) == 2
    assert (
        main(
            [
                "generate",
                "--action",
                "walk",
                "--out",
                str(tmp_path / "y.npz"),
                "--checkpoint",
                str(tmp_path / "missing"),
            ]
        )
        == 1
    )
    assert "config.json is missing" in capsys.readouterr().err


def test_rollout_keeps_start_frames_and_length(tiny_checkpoint):
    s = MotionSampler.from_checkpoint(tiny_checkpoint, device="cpu")
    start = s.seed_history("walk", 2)
    start[:, :, 66] += 5.0  # start 5 m away along x
    out = s.rollout(["walk", "sit"], 2.0, start=start, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 60, 69)
    assert torch.equal(out[:, :5], start)
    with pytest.raises(ValueError, match="unknown action"):
        s.rollout("dance", 1.0)
    with pytest.raises(ValueError, match="history"):
        s.sample_window(torch.zeros(1, 3, 69), "walk")


@pytest.mark.slow
def test_bench_motion_quick(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "motion", "--quick", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["sizes"]["reference"]["latent_dim"] == 512
    assert r["realtime_factor_per_agent"] > 0
