"""Capsule proxy of the body for collision and penetration checks.

Each of the 21 bones (parent joint -> joint), plus a head capsule extending the neck->head
direction, is a capsule: a segment with a radius. :func:`body_points` samples points
along every capsule axis; a point with radius ``r`` penetrates the scene where the scene's
signed distance at the point is below ``r`` (``penetration_depth``).
Works on numpy arrays and torch tensors (differentiable), any leading batch shape.
"""

from __future__ import annotations

import numpy as np
import torch

from ssomotion_ros.body.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS

__all__ = ["CAPSULES", "capsule_table", "body_points", "penetration_depth"]

_I = {n: i for i, n in enumerate(JOINT_NAMES)}

#: (start joint, end joint, radius metres). The end of the head capsule is a virtual point
#: 0.12 m beyond the head joint along neck->head (``"head_top"``).
CAPSULES: tuple[tuple[str, str, float], ...] = (
    ("pelvis", "left_hip", 0.09), ("pelvis", "right_hip", 0.09), ("pelvis", "spine1", 0.11),
    ("left_hip", "left_knee", 0.075), ("right_hip", "right_knee", 0.075),
    ("spine1", "spine2", 0.12), ("left_knee", "left_ankle", 0.05),
    ("right_knee", "right_ankle", 0.05), ("spine2", "spine3", 0.13),
    ("left_ankle", "left_foot", 0.04), ("right_ankle", "right_foot", 0.04),
    ("spine3", "neck", 0.08), ("spine3", "left_collar", 0.08),
    ("spine3", "right_collar", 0.08), ("neck", "head", 0.055),
    ("left_collar", "left_shoulder", 0.06), ("right_collar", "right_shoulder", 0.06),
    ("left_shoulder", "left_elbow", 0.045), ("right_shoulder", "right_elbow", 0.045),
    ("left_elbow", "left_wrist", 0.038), ("right_elbow", "right_wrist", 0.038),
    ("head", "head_top", 0.095),
)  # fmt: skip
assert len(CAPSULES) == NUM_JOINTS and all(
    PARENTS[_I[e]] == _I[s] for s, e, _ in CAPSULES if e != "head_top"
)
_HEAD_TOP = 0.12


def capsule_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start (C,) int, end (C,) int (-1 = head top), radius (C,) float32 metres)."""
    s = np.array([_I[a] for a, _, _ in CAPSULES])
    e = np.array([_I[b] if b != "head_top" else -1 for _, b, _ in CAPSULES])
    r = np.array([c for _, _, c in CAPSULES], dtype=np.float32)
    return s, e, r


def body_points(joints, n_per_bone: int = 4):
    """Points on the capsule axes, with their radii.

    joints: (..., 22, 3) metres, map frame (numpy array or torch tensor).
    n_per_bone: points per capsule (>= 2 includes both ends; 1 = the midpoint).
    Returns ``(points (..., P, 3), radii (P,))`` with P = 22 * n_per_bone, same array type,
    dtype and device as ``joints``; radii in metres. A point penetrates where the scene SDF
    at the point is < its radius.
    """
    if n_per_bone < 1:
        raise ValueError(f"n_per_bone must be >= 1, got {n_per_bone}")
    if tuple(joints.shape[-2:]) != (NUM_JOINTS, 3):
        raise ValueError(f"joints: expected (..., 22, 3), got {tuple(joints.shape)}")
    s, e, r = capsule_table()
    if n_per_bone == 1:
        t = np.array([0.5])
    else:
        t = np.linspace(0.0, 1.0, n_per_bone)
    is_torch = isinstance(joints, torch.Tensor)
    xp_stack = torch.stack if is_torch else np.stack
    head, neck = joints[..., _I["head"], :], joints[..., _I["neck"], :]
    d = head - neck
    norm = d.norm(dim=-1, keepdim=True) if is_torch else np.linalg.norm(d, axis=-1, keepdims=True)
    top = head + d / (norm + 1e-9) * _HEAD_TOP
    a = joints[..., s, :]
    end_idx = np.where(e >= 0, e, 0)
    b = joints[..., end_idx, :]
    b = xp_stack([top if e[c] < 0 else b[..., c, :] for c in range(len(e))], -2)
    if is_torch:
        tt = torch.as_tensor(t, dtype=joints.dtype, device=joints.device)
        pts = a[..., :, None, :] + (b - a)[..., :, None, :] * tt[:, None]
        radii = torch.as_tensor(np.repeat(r, len(t)), dtype=joints.dtype, device=joints.device)
    else:
        pts = a[..., :, None, :] + (b - a)[..., :, None, :] * t[:, None]
        radii = np.repeat(r, len(t)).astype(
            joints.dtype if joints.dtype.kind == "f" else np.float32
        )
    pts = pts.reshape(*pts.shape[:-3], len(s) * len(t), 3)
    return pts, radii


def penetration_depth(sdf, radii):
    """Depth of each body point inside the scene: ``max(radius - sdf, 0)``.

    sdf: (..., P) signed distance (metres, positive outside obstacles) at the points of
    :func:`body_points`; radii: (P,). Returns (..., P), same type as ``sdf``."""
    if isinstance(sdf, torch.Tensor):
        return torch.relu(radii - sdf)
    return np.maximum(np.asarray(radii) - sdf, 0.0)
