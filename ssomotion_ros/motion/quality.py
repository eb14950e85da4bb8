"""Quality metrics of generated motion, and the held-out evaluation of the motion prior.

Metrics (numpy, one clip of joints (T, 22, 3) metres, map frame z up, at ``fps``):

* :func:`foot_skating` — mean horizontal speed (m/s) of foot joints while they touch
  the floor, and the share of those contact frames that slide faster than 0.2 m/s.
  A foot joint touches the floor when its height above ``floor_z`` is below its rest
  height (in the default skeleton) + ``contact_tol``.
* :func:`jerk` — mean magnitude of the third time derivative of joint positions, m/s^3
  (finite differences; exact for cubic trajectories).
* :func:`bone_length_consistency` — mean over bones of the standard deviation over time
  of the bone length, metres (0 = rigid bones).
* :func:`seam_steps` — joint displacement per frame across the autoregressive window
  seams vs elsewhere (a jump at the seams shows the history is not continued).

:func:`evaluate_prior` generates motion from held-out CMU clips' first frames with the
clips' own action schedule and reports the metrics for generated and real clips side by
side (the real clips are the reference line).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Foot joints of the 22-joint skeleton: left/right ankle, left/right foot (toes).
FOOT_JOINTS = (7, 8, 10, 11)
#: Slide speed above which a contact frame counts as skating, m/s.
SKATE_SPEED = 0.2


def _check_joints(joints: np.ndarray, min_frames: int) -> np.ndarray:
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (22, 3):
        raise ValueError(f"joints must be (T, 22, 3) metres, got {j.shape}")
    if j.shape[0] < min_frames:
        raise ValueError(f"need at least {min_frames} frames, got {j.shape[0]}")
    return j


def rest_foot_heights() -> np.ndarray:
    """(4,) heights (m) of the foot joints above the floor in the default skeleton's rest pose."""
    from ssomotion_ros.body.skeleton import default_skeleton

    return np.asarray(default_skeleton().rest_joints()[list(FOOT_JOINTS), 2], dtype=np.float64)


def foot_skating(
    joints: np.ndarray,
    fps: float = 30.0,
    floor_z: float = 0.0,
    contact_tol: float = 0.03,
    rest_heights: np.ndarray | None = None,
) -> dict:
    """Foot skating of one clip.

    joints: (T, 22, 3) metres, z up. floor_z: floor height, metres. contact_tol: metres
    above the joint's rest height that still counts as contact. rest_heights: (4,) rest
    heights of the foot joints (default: :func:`rest_foot_heights`).
    Returns ``{"skate_speed": m/s (mean horizontal speed over contact frames, 0 if none),
    "skate_ratio": share of contact frames faster than 0.2 m/s, "contact_frames": int}``.
    """
    j = _check_joints(joints, 2)
    rest = rest_foot_heights() if rest_heights is None else np.asarray(rest_heights, float)
    feet = j[:, list(FOOT_JOINTS)]  # (T, 4, 3)
    h = feet[..., 2] - floor_z
    v = np.linalg.norm(feet[1:, :, :2] - feet[:-1, :, :2], axis=-1) * fps  # (T-1, 4)
    contact = (h[1:] < rest + contact_tol) & (h[:-1] < rest + contact_tol)
    n = int(contact.sum())
    if n == 0:
        return {"skate_speed": 0.0, "skate_ratio": 0.0, "contact_frames": 0}
    sv = v[contact]
    return {
        "skate_speed": float(sv.mean()),
        "skate_ratio": float((sv > SKATE_SPEED).mean()),
        "contact_frames": n,
    }


def jerk(joints: np.ndarray, fps: float = 30.0) -> float:
    """Mean |d^3 x / dt^3| over joints and frames, m/s^3. joints: (T >= 4, 22, 3)."""
    j = _check_joints(joints, 4)
    d3 = np.diff(j, n=3, axis=0) * fps**3
    return float(np.linalg.norm(d3, axis=-1).mean())


def bone_length_consistency(joints: np.ndarray, parents: np.ndarray | None = None) -> float:
    """Mean over bones of the std over time of the bone length, metres. joints: (T, 22, 3)."""
    j = _check_joints(joints, 1)
    if parents is None:
        from ssomotion_ros.body.skeleton import PARENTS as parents
    parents = np.asarray(parents)
    child = np.nonzero(parents >= 0)[0]
    lengths = np.linalg.norm(j[:, child] - j[:, parents[child]], axis=-1)  # (T, nb)
    return float(lengths.std(axis=0).mean())


def seam_steps(joints: np.ndarray, history: int = 5, window: int = 30) -> dict:
    """Mean joint displacement per frame (metres) across autoregressive window seams —
    from frame ``history - 1 + k * (window - history)`` to the next — and elsewhere.

    joints: (T, 22, 3). A generator that continues its history smoothly has the two close;
    on real clips (no seams) the same frame indices give the reference.
    """
    j = _check_joints(joints, 2)
    step = np.linalg.norm(np.diff(j, axis=0), axis=-1).mean(-1)  # (T-1,)
    idx = np.arange(history - 1, len(step), window - history)
    other = np.setdiff1d(np.arange(len(step)), idx)
    return {
        "seam_step": float(step[idx].mean()) if len(idx) else 0.0,
        "step_elsewhere": float(step[other].mean()) if len(other) else 0.0,
    }


def motion_metrics(joints: np.ndarray, fps: float = 30.0, floor_z: float = 0.0) -> dict:
    """All metrics of one clip (see the module docstring)."""
    out = foot_skating(joints, fps, floor_z)
    out["jerk"] = jerk(joints, fps)
    out["bone_length_std"] = bone_length_consistency(joints)
    out.update(seam_steps(joints))
    return out


def _mean_metrics(rows: list[dict]) -> dict:
    keys = ("skate_speed", "skate_ratio", "jerk", "bone_length_std", "seam_step", "step_elsewhere")
    w = np.array([max(r["frames"], 1) for r in rows], float)
    return {k: float(np.average([r[k] for r in rows], weights=w)) for k in keys}


def evaluate_prior(
    checkpoint: str | Path | None = None,
    data_dir: str | Path | None = None,
    clips: list[str] | None = None,
    samples: int = 2,
    seed: int = 0,
    device=None,
    steps: int | None = None,
    max_seconds: float = 10.0,
    seam_blend: int | None = None,
) -> dict:
    """Metrics of the prior on held-out clips vs the real clips.

    checkpoint: motion checkpoint (default: shipped). data_dir: CMU folder (default
    ``../shared/data/mocap/cmu``). clips: clip names (default: the checkpoint's holdout).
    samples: generated motions per clip. seam_blend: ``SampleOptions.seam_blend`` (None =
    the sampler default). For each clip, generation starts from its first
    ``history`` frames and follows its per-window action labels (majority label of each
    window's new frames) for ``min(clip length, max_seconds)``.
    Returns ``{"real": {...}, "generated": {...}, "per_clip": [...], ...}``.
    """
    import torch

    from ssomotion_ros.body.skeleton import forward_kinematics
    from ssomotion_ros.motion.checkpoints import load_checkpoint
    from ssomotion_ros.motion.config import ACTIONS
    from ssomotion_ros.motion.rollout import MotionSampler, SampleOptions
    from ssomotion_ros.motion.train import load_clips, window_label

    opts = SampleOptions(steps=steps)
    if seam_blend is not None:
        opts.seam_blend = seam_blend

    loaded = load_checkpoint(checkpoint, device=device)
    sampler = MotionSampler(loaded)
    if data_dir is None:
        from ssomotion_ros.motion.datasets.cmu import default_cmu_root

        data_dir = default_cmu_root()
    names = clips if clips is not None else list(loaded.metadata.get("holdout", []))
    if not names:
        raise ValueError("no held-out clips named (pass clips=...; the checkpoint lists none)")
    all_clips = {c.name: c for c in load_clips(data_dir, progress=False)}
    missing = [n for n in names if n not in all_clips]
    if missing:
        raise ValueError(f"clips {missing} not found in {data_dir}")
    H, W = sampler.history, sampler.window
    step = W - H
    gen = torch.Generator(device=sampler.device).manual_seed(seed)
    rows_real, rows_gen, per_clip = [], [], []
    for name in names:
        c = all_clips[name]
        n = min(len(c.params), int(max_seconds * 30))
        real = c.params[:n]
        jr = forward_kinematics(torch.as_tensor(real, dtype=torch.float64)).numpy()
        m_real = {**motion_metrics(jr), "frames": n}
        rows_real.append(m_real)
        start = torch.as_tensor(real[:H], dtype=torch.float32)[None].expand(samples, -1, -1)
        hist = start.to(sampler.device)
        out = [hist]
        total = H
        while total < n:
            a0 = total - H
            lab = window_label(c.actions[a0 : a0 + W], H, 0.0)
            act = lab if lab >= 0 else ACTIONS.index("walk")
            acts = torch.full((samples,), act, dtype=torch.long)
            w = sampler.sample_window(hist, acts, options=opts, generator=gen)
            out.append(w[:, H:])
            hist = w[:, -H:]
            total += step
        g = torch.cat(out, 1)[:, :n].double().cpu()
        jg = forward_kinematics(g).numpy()
        ms = [{**motion_metrics(jg[i]), "frames": n} for i in range(samples)]
        m_gen = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
        rows_gen.append(m_gen)
        per_clip.append({"clip": name, "frames": n, "real": m_real, "generated": m_gen})
        log.info("evaluated %s (%d frames)", name, n)
    return {
        "checkpoint": str(loaded.path),
        "clips": names,
        "samples_per_clip": samples,
        "ddim_steps": steps or loaded.config.diffusion.sample_steps,
        "seam_blend": opts.seam_blend,
        "real": _mean_metrics(rows_real),
        "generated": _mean_metrics(rows_gen),
        "per_clip": per_clip,
    }


def _suite(args) -> dict:
    """The motion prior alone vs held-out real clips: skating, jerk, bone lengths, seams."""
    kw = dict(
        checkpoint=getattr(args, "checkpoint", None),
        samples=getattr(args, "samples", None) or 2,
        seed=getattr(args, "seed", 0),
        device=getattr(args, "device", None),
    )
    out = evaluate_prior(**kw)
    raw = evaluate_prior(**kw, seam_blend=0)
    out["generated_without_seam_blend"] = raw["generated"]
    return out


#: ``ssomotion eval --suite motion_prior``.
SUITES = {"motion_prior": _suite}
