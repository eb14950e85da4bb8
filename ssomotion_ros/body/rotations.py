"""Rotation conversions used by the body model, the data pipeline and the motion model.

All functions take and return ``torch.Tensor`` (any float dtype, any leading batch shape,
any device) and are differentiable; ``*_np`` variants take numpy arrays.

Conventions
-----------
- Axis-angle: ``(..., 3)`` radians, vector = unit axis * angle. Angles returned by
  :func:`matrix_to_axis_angle` lie in ``[0, pi]``.
- Rotation matrices: ``(..., 3, 3)``, act on column vectors (``v' = R @ v``).
- Quaternions: ``(..., 4)`` in ``(w, x, y, z)`` order, unit norm; returned with ``w >= 0``.
- 6D rotation (Zhou et al. 2019, pytorch3d layout): the first two *rows* of the matrix,
  flattened to ``(..., 6)``; :func:`rotation_6d_to_matrix` orthonormalises by Gram-Schmidt.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "quaternion_to_matrix",
    "quaternion_to_axis_angle",
    "axis_angle_to_quaternion",
    "matrix_to_rotation_6d",
    "rotation_6d_to_matrix",
    "axis_angle_to_rotation_6d",
    "rotation_6d_to_axis_angle",
    "axis_angle_to_matrix_np",
    "matrix_to_axis_angle_np",
    "unwrap_axis_angle_np",
    "slerp_np",
]

_SMALL = 1e-4


def _check_last(x: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape[-len(shape) :]) != shape or x.dim() < len(shape):
        raise ValueError(
            f"{name}: expected shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}"
        )


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula.

    axis_angle: (..., 3) radians (axis * angle). Returns (..., 3, 3) rotation matrices of the
    same dtype/device. Differentiable everywhere including at the zero rotation.
    """
    _check_last(axis_angle, (3,), "axis_angle")
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta2 < _SMALL**2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta * theta))
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(
        *axis_angle.shape[:-1], 3, 3
    )
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (..., 3, 3) -> unit quaternion (..., 4) ``(w, x, y, z)``, ``w >= 0``.

    Uses the best-conditioned of the four Shepperd candidates, so it is stable for all
    rotations (including 180 degrees).
    """
    _check_last(matrix, (3, 3), "matrix")
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4*q_i^2 for each component
    q_abs = torch.stack(
        [
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ],
        dim=-1,
    )
    q_abs = torch.sqrt(torch.clamp(q_abs, min=1e-12))
    m21, m12 = m[..., 2, 1], m[..., 1, 2]
    m02, m20 = m[..., 0, 2], m[..., 2, 0]
    m10, m01 = m[..., 1, 0], m[..., 0, 1]
    cands = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], -1),
        ],
        dim=-2,
    )  # (..., 4 candidates, 4)
    cands = cands / (2.0 * q_abs[..., :, None])
    best = q_abs.argmax(dim=-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Quaternion (..., 4) ``(w, x, y, z)`` (normalised here) -> rotation matrix (..., 3, 3)."""
    _check_last(quaternion, (4,), "quaternion")
    q = quaternion / torch.linalg.norm(quaternion, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - z * w),
            2 * (x * z + y * w),
            2 * (x * y + z * w),
            1 - 2 * (x * x + z * z),
            2 * (y * z - x * w),
            2 * (x * z - y * w),
            2 * (y * z + x * w),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """Quaternion (..., 4) ``(w, x, y, z)`` -> axis-angle (..., 3), angle in ``[0, pi]``."""
    _check_last(quaternion, (4,), "quaternion")
    q = quaternion / torch.linalg.norm(quaternion, dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s2 = (v * v).sum(-1, keepdim=True)
    small = s2 < _SMALL**2
    s = torch.sqrt(torch.where(small, torch.ones_like(s2), s2))
    angle = 2.0 * torch.atan2(s, q[..., :1])
    # angle / sin(angle/2); for small s: 2 / w * (1 + s^2 / (3 w^2))
    w = q[..., :1]
    factor = torch.where(small, 2.0 / w * (1.0 + s2 / (3.0 * w * w)), angle / s)
    return v * factor


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3) radians -> quaternion (..., 4) ``(w, x, y, z)``."""
    _check_last(axis_angle, (3,), "axis_angle")
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta2 < _SMALL**2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    half = torch.where(small, 0.5 - theta2 / 48.0, torch.sin(theta / 2) / theta)
    w = torch.where(small, 1.0 - theta2 / 8.0, torch.cos(theta / 2))
    q = torch.cat([w, axis_angle * half], dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (..., 3, 3) -> axis-angle (..., 3) radians, angle in ``[0, pi]``."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (..., 3, 3) -> 6D (..., 6): the first two rows, flattened."""
    _check_last(matrix, (3, 3), "matrix")
    return matrix[..., :2, :].reshape(*matrix.shape[:-2], 6)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """6D (..., 6) -> rotation matrix (..., 3, 3) by Gram-Schmidt (any 6-vector is accepted,
    the two 3-vectors must not be parallel)."""
    _check_last(d6, (6,), "d6")
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = torch.nn.functional.normalize(b2, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def axis_angle_to_rotation_6d(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3) -> 6D (..., 6)."""
    return matrix_to_rotation_6d(axis_angle_to_matrix(axis_angle))


def rotation_6d_to_axis_angle(d6: torch.Tensor) -> torch.Tensor:
    """6D (..., 6) -> axis-angle (..., 3)."""
    return matrix_to_axis_angle(rotation_6d_to_matrix(d6))


# ---------------------------------------------------------------- numpy convenience


def axis_angle_to_matrix_np(axis_angle: np.ndarray) -> np.ndarray:
    """axis_angle: (..., 3) radians -> (..., 3, 3) float64 rotation matrices."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    return axis_angle_to_matrix(torch.from_numpy(aa)).numpy()


def matrix_to_axis_angle_np(matrix: np.ndarray) -> np.ndarray:
    """matrix: (..., 3, 3) -> (..., 3) float64 axis-angle radians, angle in [0, pi]."""
    m = np.asarray(matrix, dtype=np.float64)
    return matrix_to_axis_angle(torch.from_numpy(m)).numpy()


def unwrap_axis_angle_np(axis_angle: np.ndarray) -> np.ndarray:
    """Make an axis-angle time series continuous along axis 0.

    axis_angle: (T, ..., 3) radians. Each rotation has two axis-angle vectors with angle
    within ``2*pi`` of each other (``a`` and ``a - 2*pi*a/|a|``); this picks, frame by frame,
    the one nearest to the previous frame, so a body turning past 180 degrees does not jump.
    The rotations are unchanged. Returns float64 of the same shape.
    """
    aa = np.array(axis_angle, dtype=np.float64)
    if aa.ndim < 2 or aa.shape[-1] != 3:
        raise ValueError(f"axis_angle: expected (T, ..., 3), got {aa.shape}")
    for t in range(1, aa.shape[0]):
        cur = aa[t]
        ang = np.linalg.norm(cur, axis=-1, keepdims=True)
        axis = np.where(ang > 1e-8, cur / np.maximum(ang, 1e-12), 0.0)
        best = cur.copy()
        best_d = np.linalg.norm(cur - aa[t - 1], axis=-1)
        for k in (-2, -1, 1, 2):
            alt = axis * (ang + 2 * np.pi * k)
            d = np.linalg.norm(alt - aa[t - 1], axis=-1)
            better = d < best_d
            best = np.where(better[..., None], alt, best)
            best_d = np.minimum(best_d, d)
        aa[t] = best
    return aa


def slerp_np(times_src: np.ndarray, rotvecs: np.ndarray, times_dst: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation of rotation tracks.

    times_src: (T,) seconds, strictly increasing. rotvecs: (T, J, 3) axis-angle radians (or
    (T, 3)). times_dst: (T2,) seconds within ``[times_src[0], times_src[-1]]``.
    Returns (T2, J, 3) (or (T2, 3)) float64 axis-angle, angle in [0, pi].
    """
    from scipy.spatial.transform import Rotation, Slerp

    rv = np.asarray(rotvecs, dtype=np.float64)
    squeeze = rv.ndim == 2
    if squeeze:
        rv = rv[:, None]
    if rv.ndim != 3 or rv.shape[-1] != 3:
        raise ValueError(f"rotvecs: expected (T, J, 3) or (T, 3), got {np.shape(rotvecs)}")
    ts = np.asarray(times_src, dtype=np.float64)
    td = np.clip(np.asarray(times_dst, dtype=np.float64), ts[0], ts[-1])
    out = np.empty((len(td), rv.shape[1], 3))
    for j in range(rv.shape[1]):
        out[:, j] = Slerp(ts, Rotation.from_rotvec(rv[:, j]))(td).as_rotvec()
    return out[:, 0] if squeeze else out
