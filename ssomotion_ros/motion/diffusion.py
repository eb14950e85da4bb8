"""Gaussian diffusion over motion features, apart from the network (as in MDM).

* cosine noise schedule (Nichol & Dhariwal 2021);
* training loss on the predicted clean sample ``x0``: reconstruction on the unknown
  frames + velocity (+ optional joint-position and foot-contact terms through a
  forward-kinematics callable), the last three on the prediction with the known frames
  put back, as the sampler returns it (so the seam to the history is trained);
* DDIM sampling with few steps, inpainting of known (history) frames, classifier-free
  guidance on the action label;
* a guidance hook: differentiable cost callables (scene penetration through a signed
  distance function, foot-floor contact, goal reaching) that push each step's ``x0``
  prediction downhill.

All tensors here are *normalised* features ``(B, T, 135)`` unless stated otherwise; the
model's ``normalize``/``denormalize`` convert to the features of ``representation.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ssomotion_ros.motion.config import DiffusionConfig

#: Indices of the foot joints in the 22-joint skeleton: left/right ankle, left/right foot.
FOOT_JOINTS = (7, 8, 10, 11)


def cosine_alphas_cumprod(num_steps: int, s: float = 0.008) -> torch.Tensor:
    """Cumulative signal fraction ``alpha_bar_t`` for t = 0..num_steps-1 (float64, (N,))."""
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2, got {num_steps}")
    steps = torch.arange(num_steps + 1, dtype=torch.float64)
    f = torch.cos((steps / num_steps + s) / (1 + s) * math.pi / 2) ** 2
    ab = f / f[0]
    betas = (1 - ab[1:] / ab[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, 0)


@dataclass
class Batch:
    """One training batch.

    x0: (B, T, 135) clean normalised features. action: (B,) int64.
    known_mask: (B, T) bool, True on frames given to the model (history).
    direction: (B, 22, 3) direction hint or None. scene: ``model.SceneInput`` or None.
    """

    x0: torch.Tensor
    action: torch.Tensor
    known_mask: torch.Tensor
    direction: torch.Tensor | None = None
    scene: object | None = None


@dataclass
class MotionView:
    """What a guidance cost sees of the current ``x0`` prediction (differentiable).

    params: (B, T, 69) body parameters, map frame (window frame when no origin/yaw given).
    joints: (B, T, 22, 3) metres, same frame.
    """

    params: torch.Tensor
    joints: torch.Tensor


#: A guidance cost: MotionView -> (B,) non-negative cost per sample (differentiable).
Cost = Callable[[MotionView], torch.Tensor]


@dataclass
class Guidance:
    """Cost guidance applied to the ``x0`` prediction at each DDIM step.

    costs: cost callables (see :data:`Cost`), summed.
    to_view: normalised features (B, T, 135) -> :class:`MotionView` (differentiable);
        :func:`make_view_fn` builds one for a window frame.
    step_size: gradient step per iteration. With ``metric`` (the per-feature std of the
        normalisation) the step is taken in feature units (metres for the pelvis), i.e.
        ``x0 -= step_size * grad / metric**2``; without, on the normalised ``x0``.
    iterations: gradient steps per sampler step.
    final_iterations: gradient steps on the last sampler step's x0 (the returned motion).
    start: fraction of the sampler steps after which guidance starts (0 = from the first).
    max_grad: per-element clip of the gradient (stability).
    """

    costs: Sequence[Cost]
    to_view: Callable[[torch.Tensor], MotionView]
    step_size: float = 0.05
    iterations: int = 2
    final_iterations: int | None = None
    start: float = 0.0
    max_grad: float = 10.0
    metric: torch.Tensor | None = None
    history: list[float] = field(default_factory=list)

    def total_cost(self, x0: torch.Tensor) -> torch.Tensor:
        """(B,) summed cost of normalised features ``x0``."""
        view = self.to_view(x0)
        return sum(c(view) for c in self.costs)

    def apply(self, x0: torch.Tensor, free_mask: torch.Tensor, final: bool = False) -> torch.Tensor:
        """Gradient steps on ``x0`` (B, T, 135); only frames where ``free_mask`` (B, T) move."""
        m = free_mask.to(x0.dtype)[..., None]
        scale = 1.0 if self.metric is None else 1.0 / self.metric.to(x0) ** 2
        n = self.final_iterations if final and self.final_iterations is not None else None
        with torch.enable_grad():
            x = x0.detach()
            for _ in range(n if n is not None else self.iterations):
                x = x.detach().requires_grad_(True)
                cost = self.total_cost(x)
                (grad,) = torch.autograd.grad(cost.sum(), x)
                self.history.append(float(cost.detach().mean()))
                g = grad.clamp(-self.max_grad, self.max_grad) * scale
                x = x - self.step_size * g * m
        return x.detach()


def make_view_fn(
    model,
    origin: torch.Tensor | None = None,
    yaw: torch.Tensor | None = None,
    fk: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[torch.Tensor], MotionView]:
    """Build the ``to_view`` of a :class:`Guidance`.

    model: the denoiser (for ``denormalize``). origin: (B, 3) metres, yaw: (B,) radians:
    the window frame in the map frame (None: costs see the window frame).
    fk: (..., 69) -> (..., 22, 3) forward kinematics (default: the body module's).
    """
    from ssomotion_ros.motion import representation as rep

    fk = fk or rep.forward_kinematics

    def view(x: torch.Tensor) -> MotionView:
        params = rep.features_to_params(model.denormalize(x), origin, yaw)
        return MotionView(params=params, joints=fk(params))

    return view


def make_guidance(
    model,
    costs: Sequence[Cost],
    origin: torch.Tensor | None = None,
    yaw: torch.Tensor | None = None,
    step_size: float = 0.1,
    iterations: int = 2,
    final_iterations: int | None = None,
    start: float = 0.0,
) -> Guidance:
    """A :class:`Guidance` whose steps are in feature units (metres for the pelvis).

    costs see the motion in the map frame when ``origin`` (B, 3) and ``yaw`` (B,) give the
    window frame (see :func:`make_view_fn`), else in the window frame.
    """
    return Guidance(
        costs=list(costs),
        to_view=make_view_fn(model, origin, yaw),
        step_size=step_size,
        iterations=iterations,
        final_iterations=final_iterations,
        start=start,
        metric=model.feat_std.detach(),
    )


# ---------------------------------------------------------------------------------------
# built-in costs (factories returning Cost callables)
# ---------------------------------------------------------------------------------------


def penetration_cost(
    sdf: Callable[[torch.Tensor], torch.Tensor],
    points: Callable[[MotionView], torch.Tensor] | None = None,
    margin: float = 0.0,
) -> Cost:
    """Scene penetration: summed ``relu(margin - sdf)`` over body points and frames.

    sdf: points (B, N, 3) metres, same frame as the view -> (B, N) signed distance,
        metres, negative inside obstacles (differentiable, e.g. grid_sample of an SDF).
    points: view -> (B, N, 3) body points (default: all joints of all frames).
    margin: metres of clearance wanted.
    """

    def cost(view: MotionView) -> torch.Tensor:
        pts = points(view) if points else view.joints.reshape(view.joints.shape[0], -1, 3)
        d = sdf(pts)
        return torch.relu(margin - d).sum(-1)

    return cost


def foot_contact_cost(
    floor_z: float = 0.0,
    height_tol: float = 0.05,
    speed_tol: float = 0.075,
    fps: float = 30.0,
) -> Cost:
    """Foot-floor contact (the DESIGN contact score's two terms, as a cost).

    Per frame: the lowest foot joint's height above ``floor_z`` (metres) beyond
    ``height_tol`` in either direction, plus the slowest foot's horizontal speed (m/s)
    beyond ``speed_tol`` * fps (m per frame * fps) while that foot is within ``height_tol``
    of the floor. Mean over frames; (B,).
    """

    def cost(view: MotionView) -> torch.Tensor:
        feet = view.joints[:, :, list(FOOT_JOINTS)]  # (B, T, 4, 3)
        h = feet[..., 2] - floor_z
        low = h.min(-1).values
        c_h = torch.relu(low.abs() - height_tol).mean(-1)
        v = (feet[:, 1:, :, :2] - feet[:, :-1, :, :2]).norm(dim=-1) * fps  # (B, T-1, 4)
        near = (h[:, 1:] < height_tol).to(v.dtype)
        slow = (v + (1 - near) * 1e3).min(-1).values  # slowest grounded foot
        grounded = (near.sum(-1) > 0).to(v.dtype)
        c_v = (torch.relu(slow - speed_tol * fps) * grounded).mean(-1)
        return c_h + 0.1 * c_v

    return cost


def goal_cost(goal: torch.Tensor, joint: int = 0, xy_only: bool = True, frame: int = -1) -> Cost:
    """Goal reaching: distance (metres) of ``joint`` at ``frame`` to ``goal``.

    goal: (B, 3) metres, same frame as the view. Returns a (B,) cost.
    """
    if goal.ndim != 2 or goal.shape[-1] != 3:
        raise ValueError(f"goal must be (B, 3) metres, got {tuple(goal.shape)}")

    def cost(view: MotionView) -> torch.Tensor:
        p = view.joints[:, frame, joint]
        d = p - goal.to(p)
        if xy_only:
            d = d[..., :2]
        return d.norm(dim=-1)

    return cost


# ---------------------------------------------------------------------------------------
# the diffusion process
# ---------------------------------------------------------------------------------------


class GaussianDiffusion:
    """Cosine-schedule diffusion with an x0-predicting denoiser (see module docstring)."""

    def __init__(self, cfg: DiffusionConfig | None = None):
        self.cfg = cfg or DiffusionConfig()
        self.alphas_cumprod = cosine_alphas_cumprod(self.cfg.num_steps, self.cfg.cosine_s)

    @property
    def num_steps(self) -> int:
        return self.cfg.num_steps

    def _ab(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.alphas_cumprod.to(like.device)[t].to(like.dtype)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noise ``x0`` (B, T, D) to steps ``t`` (B,) with standard-normal ``noise``."""
        ab = self._ab(t, x0)[:, None, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    # -- training --------------------------------------------------------------------

    def training_loss(
        self,
        model,
        batch: Batch,
        fk_features: Callable[[torch.Tensor], torch.Tensor] | None = None,
        control_only: bool = False,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss of one batch; returns a dict with ``loss`` and its terms (scalars).

        fk_features: denormalised features (B, T, 135) -> joints (B, T, 22, 3) metres; used
            for the joint and foot terms when given and their weights are > 0.
        control_only: stage 2 (the action label is never dropped).
        """
        cfg = self.cfg
        x0 = batch.x0
        B = x0.shape[0]
        dev = x0.device
        t = torch.randint(0, self.num_steps, (B,), device=dev, generator=generator)
        noise = torch.randn(x0.shape, device=dev, generator=generator, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        action = batch.action
        if cfg.cond_drop_prob > 0 and not control_only:
            drop = torch.rand(B, device=dev, generator=generator) < cfg.cond_drop_prob
            action = torch.where(drop, torch.full_like(action, model.cfg.num_actions), action)
        scene_tokens = model.encode_scene(batch.scene) if batch.scene is not None else None
        pred = model(
            x_t,
            t,
            action,
            known=x0,
            known_mask=batch.known_mask,
            direction=batch.direction,
            scene_tokens=scene_tokens,
        )
        free = (~batch.known_mask).to(x0.dtype)[..., None]
        recon = (((pred - x0) ** 2) * free).sum() / (free.sum() * x0.shape[-1]).clamp_min(1)
        # the motion the sampler returns: known frames exact, so the velocity, joint and
        # foot terms see the seam between the history and the first new frame
        pred = torch.where(batch.known_mask[..., None], x0, pred)
        vel = ((pred[:, 1:] - pred[:, :-1]) - (x0[:, 1:] - x0[:, :-1])).pow(2).mean()
        terms = {"recon": recon, "velocity": vel}
        loss = cfg.w_recon * recon + cfg.w_velocity * vel
        if fk_features is not None and (cfg.w_joints > 0 or cfg.w_foot > 0):
            k = cfg.fk_subset if 0 < cfg.fk_subset < B else B
            pred_k, x0_k, free = pred[:k], x0[:k], free[:k]
            j_pred = fk_features(model.denormalize(pred_k))
            with torch.no_grad():
                j_true = fk_features(model.denormalize(x0_k))
            jl = ((j_pred - j_true) ** 2).sum(-1)  # (B, T, 22)
            joints = (jl * free).mean() * free.numel() / free.sum().clamp_min(1)
            feet_p = j_pred[:, :, list(FOOT_JOINTS)]
            feet_t = j_true[:, :, list(FOOT_JOINTS)]
            v_true = (feet_t[:, 1:] - feet_t[:, :-1]).norm(dim=-1)
            contact = (
                (v_true < 0.01)
                & (feet_t[:, 1:, :, 2] < feet_t[..., 2].amin((1, 2))[:, None, None] + 0.05)
            ).to(x0.dtype)
            v_pred = (feet_p[:, 1:] - feet_p[:, :-1]).pow(2).sum(-1)
            foot = (v_pred * contact).sum() / contact.sum().clamp_min(1)
            terms["joints"] = joints
            terms["foot"] = foot
            loss = loss + cfg.w_joints * joints + cfg.w_foot * foot
        terms["loss"] = loss
        return terms

    # -- sampling ----------------------------------------------------------------------

    def _predict(
        self, model, x, t, action, known, known_mask, direction, scene_tokens, scale, ctrl
    ) -> torch.Tensor:
        if scale == 1.0:
            return model(x, t, action, known, known_mask, direction, scene_tokens, ctrl)
        null = torch.full_like(action, model.cfg.num_actions)

        def rep2(v):
            return None if v is None else torch.cat([v, v], 0)

        out = model(
            rep2(x),
            rep2(t),
            torch.cat([action, null], 0),
            rep2(known),
            rep2(known_mask),
            rep2(direction),
            rep2(scene_tokens),
            ctrl,
        )
        cond, uncond = out.chunk(2, 0)
        return uncond + scale * (cond - uncond)

    @torch.no_grad()
    def sample(
        self,
        model,
        action: torch.Tensor,
        known: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
        direction: torch.Tensor | None = None,
        scene_tokens: torch.Tensor | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        eta: float | None = None,
        guidance: Guidance | None = None,
        control_scale: float = 1.0,
        generator: torch.Generator | None = None,
        num_frames: int | None = None,
    ) -> torch.Tensor:
        """DDIM sampling. Returns clean normalised features (B, T, 135).

        action: (B,) int64. known: (B, T, 135) normalised features whose ``known_mask``
        (B, T) frames are kept exactly (inpainting; the returned tensor equals ``known``
        there bit for bit). direction: (B, 22, 3) or None. scene_tokens: (B, K, d) or None.
        steps: DDIM steps (default ``cfg.sample_steps``). guidance_scale: classifier-free
        guidance on the action (1 = off). guidance: cost guidance or None.
        """
        cfg = self.cfg
        steps = steps or cfg.sample_steps
        scale = cfg.guidance_scale if guidance_scale is None else guidance_scale
        eta = cfg.eta if eta is None else eta
        B = action.shape[0]
        T = num_frames or model.cfg.window
        D = model.cfg.feature_dim
        dev = next(model.parameters()).device
        if known is None:
            known = torch.zeros(B, T, D, device=dev)
            known_mask = torch.zeros(B, T, dtype=torch.bool, device=dev)
        if known.shape != (B, T, D) or known_mask is None or known_mask.shape != (B, T):
            raise ValueError(
                f"known must be ({B}, {T}, {D}) with known_mask ({B}, {T}); got "
                f"{tuple(known.shape)} and "
                f"{None if known_mask is None else tuple(known_mask.shape)}"
            )
        if not 1 <= steps <= self.num_steps:
            raise ValueError(f"steps must be in [1, {self.num_steps}], got {steps}")
        km = known_mask[..., None]
        ts = torch.linspace(self.num_steps - 1, 0, steps).round().long().tolist()
        ab_all = self.alphas_cumprod.to(dev)
        x = torch.randn(B, T, D, device=dev, generator=generator)
        x0 = x
        for i, t in enumerate(ts):
            tt = torch.full((B,), t, dtype=torch.long, device=dev)
            x0 = self._predict(
                model,
                x,
                tt,
                action,
                known,
                known_mask,
                direction,
                scene_tokens,
                scale,
                control_scale,
            )
            x0 = torch.where(km, known, x0)
            if guidance is not None and i >= guidance.start * steps:
                x0 = guidance.apply(x0, ~known_mask, final=i == len(ts) - 1)
            if i == len(ts) - 1:
                break
            t_prev = ts[i + 1]
            ab_t = ab_all[t].float()
            ab_p = ab_all[t_prev].float()
            eps = (x - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()
            sigma = eta * ((1 - ab_p) / (1 - ab_t) * (1 - ab_t / ab_p)).sqrt()
            x = ab_p.sqrt() * x0 + (1 - ab_p - sigma**2).clamp_min(0).sqrt() * eps
            if eta > 0:
                x = x + sigma * torch.randn(x.shape, device=dev, generator=generator)
        return torch.where(km, known, x0)
