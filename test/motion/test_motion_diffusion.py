"""Schedule, loss, DDIM sampling with inpainting and CFG, cost guidance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from motion_helpers import tiny_config, tiny_model_config

from ssomotion_ros.motion import representation as rep
from ssomotion_ros.motion.config import DiffusionConfig
from ssomotion_ros.motion.diffusion import (
    Batch,
    GaussianDiffusion,
    MotionView,
    cosine_alphas_cumprod,
    foot_contact_cost,
    goal_cost,
    make_guidance,
    make_view_fn,
    penetration_cost,
)
from ssomotion_ros.motion.model import SSOMotionDenoiser


def test_cosine_schedule_matches_reference_formula():
    N, s = 50, 0.008
    ab = cosine_alphas_cumprod(N, s).numpy()

    def f(t):
        return math.cos((t / N + s) / (1 + s) * math.pi / 2) ** 2

    ref = np.array([f(t + 1) / f(0) for t in range(N)])
    # identical except where beta is clipped at 0.999 (the last step)
    assert np.allclose(ab[:-1], ref[:-1], rtol=1e-10)
    assert np.all(np.diff(ab) < 0) and 0 < ab[-1] < ab[0] < 1
    with pytest.raises(ValueError):
        cosine_alphas_cumprod(1)


def test_q_sample_by_hand():
    d = GaussianDiffusion(DiffusionConfig(num_steps=10))
    x0 = torch.ones(1, 2, 3)
    noise = torch.full((1, 2, 3), 2.0)
    ab = float(d.alphas_cumprod[4])
    out = d.q_sample(x0, torch.tensor([4]), noise)
    assert torch.allclose(out, torch.full_like(out, math.sqrt(ab) + 2 * math.sqrt(1 - ab)))


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return SSOMotionDenoiser(tiny_model_config(**kw)).eval()


def test_ddim_keeps_inpainted_history_exactly_and_cfg_runs():
    m = _model()
    d = GaussianDiffusion(tiny_config().diffusion)
    g = torch.Generator().manual_seed(0)
    known = torch.randn(2, 30, 135, generator=g)
    km = torch.zeros(2, 30, dtype=torch.bool)
    km[:, :5] = True
    for scale, eta in ((1.0, 0.0), (2.5, 0.5)):
        out = d.sample(
            m,
            torch.tensor([0, 3]),
            known,
            km,
            steps=4,
            guidance_scale=scale,
            eta=eta,
            generator=torch.Generator().manual_seed(1),
        )
        assert out.shape == (2, 30, 135)
        assert torch.equal(out[:, :5], known[:, :5])
        assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="known"):
        d.sample(m, torch.tensor([0, 3]), known[:, :10], km)


def test_ddim_is_deterministic_with_eta_zero():
    m = _model()
    d = GaussianDiffusion(tiny_config().diffusion)
    a = d.sample(m, torch.tensor([1]), steps=3, generator=torch.Generator().manual_seed(5))
    b = d.sample(m, torch.tensor([1]), steps=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_training_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    m = SSOMotionDenoiser(tiny_model_config())
    d = GaussianDiffusion(tiny_config().diffusion)
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 2 * math.pi, 30)
    x0 = torch.sin(t[None, :, None] + torch.arange(135)[None, None, :] * 0.1).repeat(8, 1, 1)
    km = torch.zeros(8, 30, dtype=torch.bool)
    km[:, :5] = True
    batch = Batch(x0=x0, action=torch.zeros(8, dtype=torch.long), known_mask=km)
    opt = torch.optim.Adam(m.prior_parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        terms = d.training_loss(m, batch, generator=g.manual_seed(123))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["loss"].detach()))
    assert set(terms) >= {"loss", "recon", "velocity"}
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_training_loss_with_fk_terms():
    m = _model()
    m.feat_std.fill_(0.3)
    d = GaussianDiffusion(tiny_config().diffusion)
    from motion_helpers import random_params

    p = random_params(3, 30, scale=0.2)
    o, y = rep.window_frame(p)
    x0 = m.normalize(rep.params_to_features(p, o, y))
    km = torch.zeros(3, 30, dtype=torch.bool)
    terms = d.training_loss(
        m, Batch(x0, torch.zeros(3, dtype=torch.long), km), rep.features_to_joints
    )
    assert {"joints", "foot"} <= set(terms) and torch.isfinite(terms["loss"])


# -- costs, by hand ------------------------------------------------------------------


def _view(joints):
    return MotionView(params=torch.zeros(joints.shape[:2] + (69,)), joints=joints)


def test_penetration_cost_by_hand():
    j = torch.zeros(1, 2, 22, 3)
    j[0, 0, 0, 2] = -0.3  # 0.3 m below the plane z = 0
    j[0, 1, 3, 2] = -0.1
    cost = penetration_cost(lambda pts: pts[..., 2])(_view(j))
    assert torch.allclose(cost, torch.tensor([0.4]))
    cost = penetration_cost(lambda pts: pts[..., 2], margin=0.05)(_view(j))
    assert torch.allclose(cost, torch.tensor([0.4 + 0.05 * 44]))  # 2 deep + 42 at sdf 0


def test_goal_cost_by_hand():
    j = torch.zeros(1, 3, 22, 3)
    j[0, -1, 0] = torch.tensor([1.0, 1.0, 0.9])
    c = goal_cost(torch.tensor([[4.0, 5.0, 0.0]]))(_view(j))
    assert torch.allclose(c, torch.tensor([5.0]))
    c3 = goal_cost(torch.tensor([[4.0, 5.0, 0.0]]), xy_only=False)(_view(j))
    assert torch.allclose(c3, torch.tensor([math.sqrt(25 + 0.81)]))
    with pytest.raises(ValueError):
        goal_cost(torch.zeros(3))


def test_foot_contact_cost_by_hand():
    j = torch.zeros(1, 3, 22, 3)
    j[..., 2] = 0.3  # every joint 0.3 m up: lowest foot 0.3 above floor
    c = foot_contact_cost(height_tol=0.05)(_view(j))
    assert torch.allclose(c, torch.tensor([0.25]))  # no grounded foot, no speed term
    j[..., 2] = 0.0  # on the floor, sliding 0.1 m per frame (3 m/s)
    j[:, :, :, 0] = torch.tensor([0.0, 0.1, 0.2])[None, :, None]
    c = foot_contact_cost(height_tol=0.05, speed_tol=0.075)(_view(j))
    assert torch.allclose(c, torch.tensor([0.1 * (3.0 - 2.25)]), atol=1e-5)


def test_guidance_hook_lowers_the_cost():
    m = _model()
    m.feat_std.fill_(0.2)
    m.feat_mean[2] = 0.95
    d = GaussianDiffusion(tiny_config().diffusion)
    goal = torch.tensor([[1.5, -1.0, 0.0]])
    cost = goal_cost(goal)
    view = make_view_fn(m)
    plain = d.sample(m, torch.tensor([0]), steps=4, generator=torch.Generator().manual_seed(0))
    gd = make_guidance(m, [cost], step_size=0.3, iterations=3, final_iterations=6)
    guided = d.sample(
        m, torch.tensor([0]), steps=4, guidance=gd, generator=torch.Generator().manual_seed(0)
    )
    c0 = float(cost(view(plain)))
    c1 = float(cost(view(guided)))
    assert c1 < 0.5 * c0
    assert len(gd.history) == 3 * 3 + 6


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device(request.param)


def test_sampling_with_hints_on_device(device):
    from motion_helpers import random_scene

    m = _model().to(device)
    d = GaussianDiffusion(tiny_config().diffusion)
    known = torch.randn(2, 30, 135, device=device)
    km = torch.zeros(2, 30, dtype=torch.bool, device=device)
    km[:, :5] = True
    tokens = m.encode_scene(random_scene(2).to(device))
    out = d.sample(
        m, torch.tensor([0, 1], device=device), known, km,
        direction=torch.rand(2, 22, 3, device=device), scene_tokens=tokens, steps=3,
        guidance_scale=1.5,
    )  # fmt: skip
    assert out.device.type == device.type and torch.equal(out[:, :5], known[:, :5])


def test_velocity_term_sees_the_seam_to_the_history():
    """The velocity term is computed on the prediction with the known frames put back."""
    m = _model()
    cfg = tiny_config().diffusion
    cfg.cond_drop_prob = 0.0
    d = GaussianDiffusion(cfg)
    x0 = torch.randn(2, 30, 135, generator=torch.Generator().manual_seed(3))
    km = torch.zeros(2, 30, dtype=torch.bool)
    km[:, :5] = True
    batch = Batch(x0=x0, action=torch.tensor([0, 1]), known_mask=km)
    terms = d.training_loss(m, batch, generator=torch.Generator().manual_seed(7))
    # reference: the same draws, by hand
    g = torch.Generator().manual_seed(7)
    t = torch.randint(0, cfg.num_steps, (2,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        pred = m(d.q_sample(x0, t, noise), t, batch.action, x0, km)
    out = torch.where(km[..., None], x0, pred)
    vel = ((out[:, 1:] - out[:, :-1]) - (x0[:, 1:] - x0[:, :-1])).pow(2).mean()
    assert torch.allclose(terms["velocity"], vel, atol=1e-6)
    rec = ((pred - x0) ** 2)[:, 5:].mean()
    assert torch.allclose(terms["recon"], rec, atol=1e-6)
