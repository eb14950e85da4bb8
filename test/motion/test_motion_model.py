"""Shapes of every block of the denoiser; zero-initialised ControlNet leaves the prior as is."""

from __future__ import annotations

import pytest
import torch
from motion_helpers import random_scene, tiny_model_config

from ssomotion_ros.motion.config import (
    FEATURE_DIM,
    ModelConfig,
    default_config,
    reference_config,
)
from ssomotion_ros.motion.model import SceneEncoder, SSOMotionDenoiser, timestep_embedding


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SSOMotionDenoiser(tiny_model_config()).eval()


def _inputs(B=3, T=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, FEATURE_DIM, generator=g)
    t = torch.randint(0, 100, (B,), generator=g)
    a = torch.tensor([0, 1, 4])[:B]
    known = torch.randn(B, T, FEATURE_DIM, generator=g)
    km = torch.zeros(B, T, dtype=torch.bool)
    km[:, :5] = True
    d = torch.rand(B, 22, 3, generator=g)
    return x, t, a, known, km, d


def test_sizes_of_named_configs():
    ref = reference_config().model
    assert (ref.num_layers, ref.latent_dim, ref.num_heads, ref.ff_dim) == (8, 512, 4, 1024)
    d = default_config().model
    assert d.num_layers * d.latent_dim < ref.num_layers * ref.latent_dim


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(latent_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="history"):
        ModelConfig(history=30, window=30)
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"latent": 3})


def test_timestep_embedding_shape_and_values():
    e = timestep_embedding(torch.tensor([0, 5]), 8)
    assert e.shape == (2, 8)
    # t = 0: cos(0) = 1 for the first half, sin(0) = 0 for the second
    assert torch.allclose(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))


def test_scene_encoder_tokens_split_half_quarter_quarter():
    cfg = tiny_model_config()
    enc = SceneEncoder(cfg)
    tok = enc(random_scene(2, 33))
    assert tok.shape == (2, cfg.num_scene_tokens, cfg.latent_dim)
    d = cfg.latent_dim
    assert enc.sem_proj.out_features == cfg.num_scene_tokens * d // 2
    assert enc.depth_proj.out_features == cfg.num_scene_tokens * d // 4
    assert enc.rgb_proj.out_features == cfg.num_scene_tokens * d // 4
    # a change in the colour maps only moves the colour quarter of every token
    s1 = random_scene(2, 33, seed=1)
    s2 = random_scene(2, 33, seed=2)
    s2.depth, s2.semantic, s2.mask = s1.depth, s1.semantic, s1.mask
    diff = (enc(s1) - enc(s2)).abs().sum((0, 1))
    assert diff[: 3 * d // 4].max() == 0 and diff[3 * d // 4 :].max() > 0


def test_scene_encoder_rejects_bad_shapes():
    enc = SceneEncoder(tiny_model_config())
    s = random_scene(2, 33, feat=8)
    with pytest.raises(ValueError, match="semantic"):
        enc(s)


def test_forward_shapes_with_and_without_hints(model):
    x, t, a, known, km, d = _inputs()
    tokens = model.encode_scene(random_scene(3, 33))
    assert tokens.shape == (3, 8, 32)
    for kw in (
        {},
        {"direction": d},
        {"scene_tokens": tokens},
        {"direction": d, "scene_tokens": tokens},
    ):
        out = model(x, t, a, known, km, **kw)
        assert out.shape == x.shape
    out = model(x[:, :12], t, a)  # shorter window, no history
    assert out.shape == (3, 12, FEATURE_DIM)


def test_forward_rejects_bad_shapes(model):
    x, t, a, known, km, d = _inputs()
    with pytest.raises(ValueError, match="direction"):
        model(x, t, a, known, km, direction=d[:, :10])
    with pytest.raises(ValueError, match="x_t"):
        model(torch.zeros(3, 31, FEATURE_DIM), t, a)


def test_zero_init_controlnet_leaves_prior_output_unchanged(model):
    x, t, a, known, km, d = _inputs()
    tokens = model.encode_scene(random_scene(3, 33))
    with torch.no_grad():
        prior = model(x, t, a, known, km)
        both = model(x, t, a, known, km, direction=d, scene_tokens=tokens)
        model.init_control_from_prior()
        copied = model(x, t, a, known, km, direction=d, scene_tokens=tokens)
    assert torch.equal(prior, both)
    assert torch.equal(prior, copied)
    # once a link is non-zero the control branch does change the output
    with torch.no_grad():
        model.zero_links[0].weight.normal_()
        changed = model(x, t, a, known, km, direction=d, scene_tokens=tokens)
    assert not torch.allclose(prior, changed)


def test_parameter_groups_partition_the_model(model):
    prior = {id(p) for p in model.prior_parameters()}
    ctrl = {id(p) for p in model.control_parameters()}
    assert prior.isdisjoint(ctrl)
    assert prior | ctrl == {id(p) for p in model.parameters()}
    assert any(p is model.zero_links[0].weight for p in model.control_parameters())


def test_model_without_control_branch():
    m = SSOMotionDenoiser(tiny_model_config(use_control=False)).eval()
    x, t, a, known, km, d = _inputs()
    assert m.encode_scene(random_scene(3, 33)) is None
    assert m(x, t, a, known, km, direction=d).shape == x.shape
    with pytest.raises(ValueError, match="control"):
        m.init_control_from_prior()
