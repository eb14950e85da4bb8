"""Geometric and temporal augmentation of 69-d motion (map frame, z up).

All functions take ``params`` (..., 69) or (T, 69) float arrays ([global_orient 3 |
body_pose 63 | transl 3], radians / metres, see :mod:`ssomotion_ros.body.skeleton`) and
return new float32 arrays; inputs are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssomotion_ros.body.rotations import (
    axis_angle_to_matrix_np,
    matrix_to_axis_angle_np,
    slerp_np,
    unwrap_axis_angle_np,
)
from ssomotion_ros.body.skeleton import (
    MIRROR_PERMUTATION,
    Skeleton,
    check_params,
    default_skeleton,
)

__all__ = [
    "mirror",
    "rotate_z",
    "heading",
    "canonicalize",
    "resample",
    "change_speed",
    "AugmentConfig",
    "random_augment",
    "level_floor",
]


def _pelvis_rest(skeleton: Skeleton | None) -> np.ndarray:
    return (skeleton if skeleton is not None else default_skeleton()).offsets[0].astype(np.float64)


def mirror(params: np.ndarray, skeleton: Skeleton | None = None) -> np.ndarray:
    """Reflect the motion left <-> right (map y -> -y).

    Swaps left/right joints; body_pose axis-angles (SMPL-X native frame, x = body left) map
    ``(x, y, z) -> (x, -y, -z)``; global_orient (map frame) ``(x, y, z) -> (-x, y, -z)``; the
    pelvis position ``y -> -y``. ``mirror(mirror(p)) == p`` exactly. On a left/right
    symmetric skeleton the joints are the reflected, swapped joints of the original.
    params: (..., 69). Returns (..., 69) float32.
    """
    check_params(params)
    p = np.asarray(params, dtype=np.float64)
    out = p.copy()
    go = p[..., 0:3]
    out[..., 0:3] = np.stack([-go[..., 0], go[..., 1], -go[..., 2]], -1)
    aa = p[..., 0:66].reshape(*p.shape[:-1], 22, 3)
    aa_m = aa[..., MIRROR_PERMUTATION, :] * np.array([1.0, -1.0, -1.0])
    out[..., 3:66] = aa_m[..., 1:, :].reshape(*p.shape[:-1], 63)
    rest = _pelvis_rest(skeleton)
    pelvis = p[..., 66:69] + rest
    pelvis_m = pelvis * np.array([1.0, -1.0, 1.0])
    out[..., 66:69] = pelvis_m - rest
    return out.astype(np.float32)


def rotate_z(
    params: np.ndarray,
    angle: float | np.ndarray,
    origin: tuple[float, float] = (0.0, 0.0),
    skeleton: Skeleton | None = None,
) -> np.ndarray:
    """Rotate the whole motion by ``angle`` radians about the vertical line through ``origin``.

    params: (..., 69); angle: scalar or array broadcastable to params.shape[:-1] (one angle
    per sequence: pass shape (N, 1) for (N, T, 69)); origin: (x, y) metres, map frame.
    Returns (..., 69) float32.
    """
    check_params(params)
    p = np.asarray(params, dtype=np.float64)
    ang = np.broadcast_to(np.asarray(angle, dtype=np.float64), p.shape[:-1])
    c, s = np.cos(ang), np.sin(ang)
    rz = np.zeros((*ang.shape, 3, 3))
    rz[..., 0, 0], rz[..., 0, 1], rz[..., 1, 0], rz[..., 1, 1] = c, -s, s, c
    rz[..., 2, 2] = 1.0
    out = p.copy()
    go = rz @ axis_angle_to_matrix_np(p[..., 0:3])
    out[..., 0:3] = matrix_to_axis_angle_np(go)
    if p.ndim >= 2:  # keep time series continuous (time = second-to-last axis)
        go_t = np.moveaxis(out[..., 0:3], -2, 0)  # (T, ..., 3)
        out[..., 0:3] = np.moveaxis(unwrap_axis_angle_np(go_t), 0, -2)
    rest = _pelvis_rest(skeleton)
    o = np.array([origin[0], origin[1], 0.0])
    pelvis = p[..., 66:69] + rest - o
    out[..., 66:69] = (rz @ pelvis[..., None])[..., 0] + o - rest
    return out.astype(np.float32)


def heading(params: np.ndarray) -> np.ndarray:
    """Body heading (yaw, radians, about +z from +x) per frame.

    params: (..., 69). Returns (...,) float64: the angle of the pelvis forward axis (the
    rest-pose +x direction rotated by global_orient) projected on the floor."""
    check_params(params)
    r = axis_angle_to_matrix_np(np.asarray(params, dtype=np.float64)[..., 0:3])
    fwd = r[..., :, 0]
    return np.arctan2(fwd[..., 1], fwd[..., 0])


def canonicalize(
    params: np.ndarray, frame: int = 0, skeleton: Skeleton | None = None
) -> tuple[np.ndarray, dict]:
    """Move a sequence into the body frame of one of its frames.

    params: (T, 69) or (N, T, 69). After the call, at ``frame`` the pelvis is above the
    origin (x = y = 0; height unchanged) and the body faces +x. Returns (params float32,
    info dict with ``yaw`` (...,) radians removed and ``xy`` (..., 2) metres subtracted) so
    the caller can undo it with ``rotate_z(p, yaw)`` after adding ``xy`` back.
    """
    check_params(params)
    p = np.asarray(params, dtype=np.float64)
    if p.ndim not in (2, 3):
        raise ValueError(f"params: expected (T, 69) or (N, T, 69), got {p.shape}")
    if not -p.shape[-2] <= frame < p.shape[-2]:
        raise ValueError(f"frame {frame} out of range for {p.shape[-2]} frames")
    ref = p[..., frame, :]
    yaw = heading(ref)
    rest = _pelvis_rest(skeleton)
    xy = ref[..., 66:68] + rest[:2]
    out = p.copy()
    out[..., 66:68] -= xy[..., None, :]
    out = rotate_z(out, -yaw[..., None], skeleton=skeleton)
    return out, {"yaw": yaw, "xy": xy}


def resample(params: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample a (T, 69) sequence from ``src_fps`` to ``dst_fps`` (slerp / linear).

    Returns (T', 69) float32 covering the same duration (T' = floor((T-1) * dst/src) + 1)."""
    check_params(params)
    p = np.asarray(params, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        raise ValueError(f"params: expected (T >= 2, 69), got {p.shape}")
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"fps must be > 0, got {src_fps}, {dst_fps}")
    T = p.shape[0]
    ts = np.arange(T) / src_fps
    n = int(np.floor((T - 1) * dst_fps / src_fps + 1e-6)) + 1
    td = np.arange(n) / dst_fps
    aa = slerp_np(ts, p[:, :66].reshape(T, 22, 3), td)
    aa[:, 0] = unwrap_axis_angle_np(aa[:, 0])
    tr = np.stack([np.interp(td, ts, p[:, 66 + k]) for k in range(3)], -1)
    return np.concatenate([aa.reshape(n, 66), tr], 1).astype(np.float32)


def change_speed(params: np.ndarray, factor: float) -> np.ndarray:
    """Play a (T, 69) sequence ``factor`` times faster (factor > 1 -> fewer frames).

    Same frame rate, so speeds scale by ``factor``. Returns (T', 69) float32."""
    if not factor > 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    return resample(params, 1.0, 1.0 / factor)


def level_floor(
    params: np.ndarray, skeleton: Skeleton | None = None, max_shift: float = 0.15
) -> tuple[np.ndarray, float]:
    """Shift a (T, 69) motion vertically so its feet rest on z = 0.

    The contact height per frame is the lowest of the ankle/foot joints above their rest
    height; its 5th percentile over the clip is moved to 0. Shifts larger than ``max_shift``
    metres are not applied (returned shift 0.0). Returns (params float32, shift metres)."""
    from ssomotion_ros.body.skeleton import forward_kinematics_np

    check_params(params)
    skel = skeleton if skeleton is not None else default_skeleton()
    p = np.array(params, dtype=np.float32)
    j = forward_kinematics_np(p, skel)
    rest = skel.rest_joints()
    feet = [7, 8, 10, 11]
    est = float(np.percentile(np.min(j[..., feet, 2] - rest[feet, 2], axis=-1), 5))
    if abs(est) > max_shift:
        return p, 0.0
    p[..., 68] -= est
    return p, -est


@dataclass
class AugmentConfig:
    """Random clip augmentation used before windowing."""

    #: Probability of mirroring left/right.
    mirror_prob: float = 0.5
    #: Rotate by a uniform random yaw in [-pi, pi) about the first pelvis position.
    random_yaw: bool = True
    #: Speed factors are drawn uniformly from this range (1.0 = unchanged).
    speed_range: tuple[float, float] = (0.9, 1.1)


def random_augment(
    params: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig | None = None,
    actions: np.ndarray | None = None,
    skeleton: Skeleton | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply a random mirror / yaw / speed change to one (T, 69) clip.

    actions: optional (T,) per-frame labels, resampled by nearest frame with the speed change.
    Returns (params (T', 69) float32, actions (T',) or None)."""
    cfg = config or AugmentConfig()
    p = np.asarray(params, dtype=np.float32)
    if rng.random() < cfg.mirror_prob:
        p = mirror(p, skeleton)
    if cfg.random_yaw:
        pelvis0 = p[0, 66:68] + _pelvis_rest(skeleton)[:2]
        p = rotate_z(p, rng.uniform(-np.pi, np.pi), origin=tuple(pelvis0), skeleton=skeleton)
    lo, hi = cfg.speed_range
    f = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    if abs(f - 1.0) > 1e-6 and len(p) >= 2:
        T = len(p)
        p = change_speed(p, f)
        if actions is not None:
            idx = np.clip(np.round(np.arange(len(p)) * f).astype(int), 0, T - 1)
            actions = np.asarray(actions)[idx]
    return p, actions
