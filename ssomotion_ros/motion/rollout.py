"""Autoregressive motion generation with a trained denoiser.

Windows of ``window`` (30) frames are sampled one after another; the last ``history``
(5) frames of each window become the known (inpainted) first frames of the next. Every
window is sampled in its own window frame (``representation.py``: the first history
frame's pelvis and heading), so a motion can start anywhere in the map. The synthesis
layer (planner, scene crops, guidance) drives :meth:`MotionSampler.sample_window`
directly; :meth:`MotionSampler.rollout` is the plain loop used by ``ssomotion generate``
and the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ssomotion_ros.motion import representation as rep
from ssomotion_ros.motion.config import ACTIONS, PARAM_DIM
from ssomotion_ros.motion.diffusion import GaussianDiffusion, make_guidance
from ssomotion_ros.motion.model import SceneInput

FPS = 30.0


@dataclass
class SampleOptions:
    """Sampler settings of one window."""

    #: DDIM steps (None = the checkpoint's ``sample_steps``).
    steps: int | None = None
    #: Classifier-free guidance scale on the action (None = the checkpoint's; 1 = off).
    guidance_scale: float | None = None
    #: Weight of the ControlNet branch (direction + scene hints); 0 = prior only.
    control_scale: float = 1.0
    #: DDIM eta (None = the checkpoint's).
    eta: float | None = None
    #: Frames after the history over which the gap between the history's continuation and
    #: the first generated frame is blended away (``representation.blend_seam``); 0 = raw
    #: network output. The shipped model jumps ~10 cm at seams without it (MODEL_CARD.md).
    seam_blend: int = 8


def action_indices(actions, batch: int | None = None, device=None) -> torch.Tensor:
    """Action names or indices -> (B,) int64. A single name is repeated ``batch`` times."""
    if isinstance(actions, str):
        actions = [actions] * (batch or 1)
    if isinstance(actions, torch.Tensor):
        return actions.to(device=device, dtype=torch.long)
    out = []
    for a in actions:
        if isinstance(a, str):
            if a not in ACTIONS:
                raise ValueError(f"unknown action {a!r}; known: {', '.join(ACTIONS)}")
            out.append(ACTIONS.index(a))
        else:
            out.append(int(a))
    return torch.as_tensor(out, dtype=torch.long, device=device)


class MotionSampler:
    """Samples motion windows from a loaded checkpoint (``checkpoints.load_checkpoint``)."""

    def __init__(self, loaded):
        self.model = loaded.model
        self.config = loaded.config
        self.extras = loaded.extras
        self.diffusion = GaussianDiffusion(loaded.config.diffusion)
        self.window = loaded.config.model.window
        self.history = loaded.config.model.history

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device=None) -> MotionSampler:
        """Load a checkpoint directory (default: the shipped one)."""
        from ssomotion_ros.motion.checkpoints import load_checkpoint

        return cls(load_checkpoint(path, device=device))

    @property
    def device(self) -> torch.device:
        return self.model.feat_mean.device

    def semantic_reduction(self):
        """The ``sso.vocabulary.LinearReduction`` (text embedding -> 16-d) the scene branch
        was trained with, or None. Give it to ``SceneModel.set_reduction`` so tri-plane
        semantics match training whatever the scene's vocabulary."""
        w = self.extras.get("semantic_reduction.weight")
        b = self.extras.get("semantic_reduction.bias")
        if w is None or b is None:
            return None
        from ssomotion_ros.sso.vocabulary import LinearReduction

        return LinearReduction(w.cpu().numpy(), b.cpu().numpy())

    def seed_history(self, action: str, batch: int = 1) -> torch.Tensor:
        """Real start frames stored with the checkpoint for ``action``.

        Returns (batch, history, 69) body parameters, map frame: pelvis above the origin,
        facing +x. Falls back to another action's seed when this one has none.
        """
        key = f"seed/{action}"
        if key not in self.extras:
            keys = [k for k in self.extras if k.startswith("seed/")]
            if not keys:
                raise ValueError("this checkpoint stores no seed poses; pass start_params")
            key = keys[0]
        f = self.extras[key].to(self.device)[None].expand(batch, -1, -1)
        return rep.features_to_params(f.contiguous())

    def sample_window(
        self,
        history: torch.Tensor,
        action,
        direction: torch.Tensor | None = None,
        scene: SceneInput | None = None,
        costs: list | None = None,
        guidance_step: float = 0.1,
        options: SampleOptions | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One window.

        history: (B, H, 69) known body parameters, map frame (H = checkpoint history; the
            first one defines the window frame). action: names or (B,) indices.
        direction: (B, 22, 3) direction hint in the *map frame* (rotated into the window
            frame here; lengths capped at 1) or None.
        scene: tri-planes of the local crop in the body frame of the first history frame.
        costs: guidance costs (see ``diffusion``) evaluated on map-frame motion, or None;
            ``guidance_step``: gradient step in feature units (metres for the pelvis).
        Returns (B, window, 69) map frame; its first H frames are ``history`` exactly.
        """
        opt = options or SampleOptions()
        B, H = history.shape[:2]
        if history.ndim != 3 or history.shape[-1] != PARAM_DIM or H != self.history:
            raise ValueError(
                f"history must be (B, {self.history}, {PARAM_DIM}) body parameters, "
                f"got {tuple(history.shape)}"
            )
        dev = self.device
        history = history.to(dev, torch.float32)
        act = action_indices(action, B, dev)
        origin, yaw = rep.window_frame(history)
        known = torch.zeros(B, self.window, self.config.model.feature_dim, device=dev)
        known[:, :H] = self.model.normalize(rep.params_to_features(history, origin, yaw))
        km = torch.zeros(B, self.window, dtype=torch.bool, device=dev)
        km[:, :H] = True
        d_local = None
        if direction is not None:
            R = rep.yaw_matrix(-yaw)[:, None]
            d_local = rep.cap_length((R @ direction.to(dev)[..., None])[..., 0])
        tokens = self.model.encode_scene(scene.to(dev)) if scene is not None else None
        guidance = None
        if costs:
            guidance = make_guidance(self.model, costs, origin, yaw, step_size=guidance_step)
        x0 = self.diffusion.sample(
            self.model,
            act,
            known,
            km,
            direction=d_local,
            scene_tokens=tokens,
            steps=opt.steps,
            guidance_scale=opt.guidance_scale,
            eta=opt.eta,
            guidance=guidance,
            control_scale=opt.control_scale,
            generator=generator,
        )
        feats = self.model.denormalize(x0)
        if opt.seam_blend > 0:
            feats = rep.blend_seam(feats, H, opt.seam_blend)
        new = rep.features_to_params(feats[:, H:].contiguous(), origin, yaw)
        return torch.cat([history, new], dim=1)

    def rollout(
        self,
        action,
        seconds: float,
        start: torch.Tensor | None = None,
        batch: int = 1,
        direction_fn: Callable[[torch.Tensor], torch.Tensor | None] | None = None,
        options: SampleOptions | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Generate ``seconds`` of motion per agent.

        action: one name for all agents, or (B,) names/indices. start: (B, H, 69) start
        frames, map frame (default: the checkpoint's seed for the first action).
        direction_fn: called with the current (B, H, 69) history, returns the (B, 22, 3)
        map-frame direction hint or None. Returns (B, N, 69), N = round(seconds * 30)
        (at least the history), map frame, 30 fps; the first H frames are ``start``.
        """
        from tqdm import tqdm

        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        if start is None:
            first = action if isinstance(action, str) else ACTIONS[int(action_indices(action)[0])]
            start = self.seed_history(first, batch)
        B = start.shape[0]
        act = action_indices(action, B, self.device)
        n_total = max(int(round(seconds * FPS)), self.history)
        step = self.window - self.history
        n_win = max(0, math.ceil((n_total - self.history) / step))
        out = [start.to(self.device, torch.float32)]
        hist = out[0]
        for _ in tqdm(range(n_win), desc="windows", disable=not progress):
            d = direction_fn(hist) if direction_fn is not None else None
            w = self.sample_window(hist, act, d, options=options, generator=generator)
            out.append(w[:, self.history :])
            hist = w[:, -self.history :]
        return torch.cat(out, dim=1)[:, :n_total]


def constant_walk_direction(heading_speed: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``direction_fn`` that asks a walk to go straight ahead (pelvis hint along the
    current heading, ``heading_speed`` metres per window, capped at 1)."""

    def fn(hist: torch.Tensor) -> torch.Tensor:
        yaw = rep.heading(hist[:, 0])
        d = torch.zeros(hist.shape[0], 22, 3, device=hist.device)
        d[:, 0, 0] = torch.cos(yaw) * heading_speed
        d[:, 0, 1] = torch.sin(yaw) * heading_speed
        return d

    return fn
