"""Retargeting metrics, computed the same way for every method (ours, copy).

- ``keypair_error``: mean absolute difference between the source's and the robot's
  key-pair distance matrices (:data:`~.core.SEMANTIC_PAIRS`), each divided by its own leg
  length (hip->knee->ankle); dimensionless, lower is better.
- ``contact_preservation``: fraction of source contact events kept (higher is better).
  Events: (frame, foot) where the source foot is in contact (measured on the foot joints
  the robot has: ankle, and toe when mapped; :meth:`~.core.Retargeter.source_contact`),
  and seat frames. A robot foot keeps it when, on the same points, its height above rest
  is below ``contact_height * s`` and its slowest point is slower than
  ``contact_speed * s`` (``s`` = leg-length ratio); a seat
  frame when the pelvis is within ``0.05 * s`` of its scaled seat height and slower than
  ``seat_speed * s``.
- ``self_penetration_frames``: fraction of frames where any checked capsule pair overlaps
  deeper than ``penetration_tolerance * s`` (lower is better).
- ``joint_limit_violations``: fraction of (frame, DoF) entries outside the URDF limits by
  more than 1e-6 (lower is better); ``joint_limit_violation_count`` is the count.
"""

from __future__ import annotations

import numpy as np
import torch

from ssomotion_ros.retarget.core import Retargeter, RetargetResult, SourceMotion

__all__ = ["evaluate", "keypair_distances"]


def keypair_distances(points: np.ndarray, pairs: np.ndarray, leg: float) -> np.ndarray:
    """Normalised key-pair distances.

    points: (T, K, 3) positions (any unit); pairs: (P, 2) int indices into K; leg: leg
    length in the same unit. Returns (T, P) float64 distances / leg."""
    p = np.asarray(points, np.float64)
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"points: expected (T, K, 3), got {p.shape}")
    if leg <= 0:
        raise ValueError(f"leg length must be positive, got {leg}")
    return np.linalg.norm(p[:, pairs[:, 0]] - p[:, pairs[:, 1]], axis=-1) / leg


def evaluate(rt: Retargeter, src: SourceMotion, res: RetargetResult) -> dict:
    """All metrics of one retargeted motion (module doc); JSON-serialisable floats."""
    cfg = rt.cfg
    s = rt.scale
    fps = cfg.fps
    # key pairs
    hk = src.joints[:, rt.key_human]
    d_h = keypair_distances(hk, rt.sem_pairs, src.leg_length)
    d_r = keypair_distances(res.keypoints, rt.sem_pairs, rt.leg_length)
    kp_err = float(np.abs(d_h - d_r).mean()) if rt.sem_pairs.size else 0.0
    # contacts
    rot, pos = rt.link_poses_np(res)
    with torch.no_grad():
        kp = torch.as_tensor(res.keypoints, device=rt.device, dtype=rt.dtype)
        sole = rt._sole_heights(kp).cpu().double().numpy()  # (T, 2)
        depth = rt._penetration(rot, pos).cpu().double().numpy()  # (T, P)
    k = rt.key_index
    feet = res.keypoints[:, rt.t_foot_keys.cpu().numpy(), :2]  # (T, 2, F, 2)
    v = (np.linalg.norm(np.gradient(feet, axis=0), axis=-1) * fps).min(-1)
    foot_ok = (sole < cfg.contact_height * s) & (v < cfg.contact_speed * s)
    src_contact, _, _ = rt.source_contact(src)
    events = int(src_contact.sum())
    kept = int((foot_ok & src_contact).sum())
    seat_events = int(src.seat.sum())
    if seat_events:
        tg = rt._human_targets(src)
        pel_t = tg["pos"][:, k["pelvis"], 2].cpu().double().numpy()
        pel = res.keypoints[:, k["pelvis"]]
        pv = np.linalg.norm(np.gradient(pel[:, :2], axis=0), axis=-1) * fps
        seat_ok = (np.abs(pel[:, 2] - pel_t) < 0.05 * s) & (pv < cfg.seat_speed * s)
        kept += int((seat_ok & src.seat).sum())
        events += seat_events
    contact = kept / events if events else 1.0
    # penetration
    tol = cfg.penetration_tolerance * s
    pen_frames = float((depth > tol).any(-1).mean()) if depth.shape[-1] else 0.0
    # limits
    lo, hi = rt.robot.lower, rt.robot.upper
    viol = (res.q < lo - 1e-6) | (res.q > hi + 1e-6)
    return {
        "keypair_error": round(kp_err, 5),
        "contact_preservation": round(contact, 4),
        "contact_events": events,
        "self_penetration_frames": round(pen_frames, 4),
        "max_penetration_depth": round(float(depth.max(initial=0.0)) / s, 4),
        "joint_limit_violations": round(float(viol.mean()), 5),
        "joint_limit_violation_count": int(viol.sum()),
        "seconds": round(res.seconds, 3),
    }
