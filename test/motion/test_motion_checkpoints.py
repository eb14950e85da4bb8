"""Checkpoint round trip; tampered and garbage files fail safely."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from motion_helpers import tiny_config

from ssomotion_ros.motion.checkpoints import (
    DEFAULT_CHECKPOINT,
    CheckpointError,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
)
from ssomotion_ros.motion.model import SSOMotionDenoiser


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config()
    m = SSOMotionDenoiser(cfg.model).eval()
    m.feat_mean.normal_()
    extras = {"seed/walk": torch.randn(5, 135)}
    opt = torch.optim.AdamW(m.parameters())
    m(
        torch.zeros(1, 30, 135), torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
    ).sum().backward()
    opt.step()
    path = save_checkpoint(
        tmp_path / "ck", m, cfg, extras, {"steps": 3}, {"step": 3, "optimizer": opt.state_dict()}
    )
    return path, m, cfg, extras


def test_round_trip(saved):
    path, m, cfg, extras = saved
    loaded = load_checkpoint(path, device="cpu")
    assert loaded.config.to_dict() == cfg.to_dict()
    assert loaded.metadata == {"steps": 3}
    assert torch.equal(loaded.extras["seed/walk"], extras["seed/walk"])
    for k, v in m.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
    x = torch.randn(2, 30, 135)
    t = torch.tensor([3, 50])
    a = torch.tensor([0, 2])
    assert torch.equal(loaded.model(x, t, a), m(x, t, a))
    st = load_train_state(path)
    assert st["step"] == 3 and "state" in st["optimizer"]


def test_modified_weights_are_refused(saved):
    path = saved[0]
    f = path / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_garbage_with_forged_checksum_is_refused(saved):
    import hashlib

    path = saved[0]
    f = path / "model.safetensors"
    f.write_bytes(b"\x00garbage" * 100)
    doc = json.loads((path / "config.json").read_text())
    doc["sha256"]["model.safetensors"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_train_state_is_never_unpickled(saved, capsys):
    import hashlib

    path = saved[0]
    f = path / "train_state.pt"
    torch.save({"step": 1, "x": _Evil()}, f)  # a pickle that would run code
    doc = json.loads((path / "config.json").read_text())
    doc["sha256"]["train_state.pt"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="safely"):
        load_train_state(path)
    assert "pwned" not in capsys.readouterr().out
    assert pickle  # noqa: B018 - the module the attack relies on


def test_config_problems_are_clear(saved, tmp_path):
    path = saved[0]
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_checkpoint(tmp_path / "nowhere")
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config(saved):
    path = saved[0]
    doc = json.loads((path / "config.json").read_text())
    doc["config"]["model"]["latent_dim"] = 64
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)


def test_shipped_checkpoint_loads_and_is_small():
    if not (DEFAULT_CHECKPOINT / "config.json").is_file():
        pytest.skip("no shipped checkpoint in this tree")
    size = sum(f.stat().st_size for f in DEFAULT_CHECKPOINT.iterdir())
    assert size <= 40 * 2**20
    loaded = load_checkpoint(device="cpu")
    assert {"seed/walk", "seed/sit"} <= set(loaded.extras)
    assert not (DEFAULT_CHECKPOINT / "train_state.pt").exists()
