"""The diffusion's internal motion features and exact conversions to/from 69-d parameters.

Body parameters (the project-wide format) per frame, 69 numbers, map frame (REP-103,
z up, metres): ``[global_orient (3, axis-angle) | body_pose (63 = 21 x 3 axis-angle) |
transl (3)]``.

Motion features (what the denoiser sees) per frame, 135 numbers, *window frame*::

    [pelvis position (3, metres) | root rotation (6, 6-D) | 21 joint rotations (126, 6-D)]

The window frame is the map frame translated so that the pelvis of the window's first
frame lies above the origin (its height is kept: z stays metres above the map's z = 0)
and rotated about z so that this pelvis's heading (the body's forward direction
projected on the floor) is +x. The 6-D rotation is the first two columns of the rotation
matrix (Zhou et al. 2019), flattened row-major as ``[R00, R01, R10, R11, R20, R21]``.

The pelvis position is ``transl + pelvis_offset`` where ``pelvis_offset`` is the pelvis
joint of the rest pose (forward kinematics of all-zero parameters); for an SMPL-style
body the pelvis does not move when the root rotates, so this is exact. Converting
features back gives the original 69-d parameters up to float precision (axis-angles are
returned with angle in [0, pi]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ssomotion_ros.motion.config import ACTIONS, FEATURE_DIM, NUM_JOINTS, PARAM_DIM

# ---------------------------------------------------------------------------------------
# rotations (torch, batched, differentiable)
# ---------------------------------------------------------------------------------------


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula.

    aa: (..., 3) float, axis * angle, radians.
    Returns (..., 3, 3) rotation matrices. Stable (Taylor terms) near zero angle.
    """
    if aa.shape[-1] != 3:
        raise ValueError(f"axis-angle must have last dim 3, got shape {tuple(aa.shape)}")
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(1e-12))
    small = theta2 < 1e-8
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(aa.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand(k.shape)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0."""
    m00, m01, m02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    m10, m11, m12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    m20, m21, m22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    # four candidate solutions; pick the best-conditioned one per element (Shepperd)
    q_abs = torch.sqrt(
        torch.stack(
            [
                1.0 + m00 + m11 + m22,
                1.0 + m00 - m11 - m22,
                1.0 - m00 + m11 - m22,
                1.0 - m00 - m11 + m22,
            ],
            -1,
        ).clamp_min(1e-12)
    )
    cands = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], -1),
        ],
        -2,
    ) / (2.0 * q_abs[..., None].clamp_min(0.1))
    idx = q_abs.argmax(-1)
    q = torch.gather(cands, -2, idx[..., None, None].expand(idx.shape + (1, 4))).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle (angle in [0, pi])."""
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must end in (3, 3), got {tuple(R.shape)}")
    q = matrix_to_quaternion(R)
    sin_half = q[..., 1:].norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    small = sin_half < 1e-6
    scale = torch.where(small, 2.0 + angle**2 / 12.0, angle / sin_half.clamp_min(1e-12))
    return q[..., 1:] * scale


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, row-major ``[R00,R01,R10,R11,R20,R21]``."""
    return R[..., :, :2].reshape(R.shape[:-2] + (6,))


def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) 6-D rotations -> (..., 3, 3) by Gram-Schmidt (exact for valid input)."""
    if d6.shape[-1] != 6:
        raise ValueError(f"6-D rotations must have last dim 6, got shape {tuple(d6.shape)}")
    cols = d6.reshape(d6.shape[:-1] + (3, 2))
    a1, a2 = cols[..., 0], cols[..., 1]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], -1)


def yaw_matrix(yaw: torch.Tensor) -> torch.Tensor:
    """(...) yaw angles, radians, about +z -> (..., 3, 3) rotation matrices."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    o, z = torch.ones_like(yaw), torch.zeros_like(yaw)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(yaw.shape + (3, 3))


# ---------------------------------------------------------------------------------------
# body facts the representation needs (from the body module's forward kinematics)
# ---------------------------------------------------------------------------------------


@dataclass
class BodyFrameInfo:
    """Rest-pose facts used to canonicalise windows.

    pelvis_offset: (3,) float, metres: pelvis joint of the all-zero parameters (so the
        pelvis position is ``transl + pelvis_offset``).
    forward_rest: (3,) float, unit: the body's forward direction in the root joint's
        frame (from the rest pose: left hip - right hip crossed with pelvis -> neck).
    """

    pelvis_offset: torch.Tensor
    forward_rest: torch.Tensor


_BODY_INFO: BodyFrameInfo | None = None


def forward_kinematics(params: torch.Tensor) -> torch.Tensor:
    """(..., 69) body parameters, map frame -> (..., 22, 3) joints, metres, map frame.

    Thin wrapper over ``ssomotion_ros.body.skeleton.forward_kinematics`` (differentiable).
    """
    from ssomotion_ros.body.skeleton import forward_kinematics as fk

    return fk(params)


def body_info() -> BodyFrameInfo:
    """Rest-pose facts of the default skeleton (computed once by forward kinematics)."""
    global _BODY_INFO
    if _BODY_INFO is None:
        with torch.no_grad():
            j = forward_kinematics(torch.zeros(1, PARAM_DIM))[0].double()
        left = j[1] - j[2]  # left hip - right hip
        up = j[12] - j[0]  # neck - pelvis
        up = up / up.norm()
        left = left - (left @ up) * up
        left = left / left.norm()
        fwd = torch.linalg.cross(left, up)
        _BODY_INFO = BodyFrameInfo(pelvis_offset=j[0].float(), forward_rest=fwd.float())
    return _BODY_INFO


def heading(params: torch.Tensor, info: BodyFrameInfo | None = None) -> torch.Tensor:
    """Yaw of the body's forward direction projected on the floor.

    params: (..., 69) map frame. Returns (...) radians about +z (0 = facing +x).
    """
    info = info or body_info()
    R = axis_angle_to_matrix(params[..., :3])
    f = R @ info.forward_rest.to(params)
    return torch.atan2(f[..., 1], f[..., 0])


def window_frame(
    params: torch.Tensor, index: int = 0, info: BodyFrameInfo | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The window frame of a batch of windows.

    params: (B, T, 69) map frame. index: frame that defines the window frame.
    Returns ``origin`` (B, 3) metres (pelvis x, y of that frame; z = 0) and ``yaw`` (B,)
    radians (its heading).
    """
    _check_params(params, ndim=3)
    info = info or body_info()
    p = params[:, index]
    pelvis = p[:, 66:69] + info.pelvis_offset.to(params)
    origin = torch.cat([pelvis[:, :2], torch.zeros_like(pelvis[:, :1])], -1)
    return origin, heading(p, info)


def params_to_features(
    params: torch.Tensor,
    origin: torch.Tensor,
    yaw: torch.Tensor,
    info: BodyFrameInfo | None = None,
) -> torch.Tensor:
    """69-d parameters (map frame) -> 135-d features (window frame).

    params: (B, T, 69). origin: (B, 3) metres. yaw: (B,) radians (see :func:`window_frame`).
    Returns (B, T, 135).
    """
    _check_params(params, ndim=3)
    info = info or body_info()
    B, T, _ = params.shape
    Rinv = yaw_matrix(-yaw)[:, None]  # (B, 1, 3, 3)
    pelvis = params[..., 66:69] + info.pelvis_offset.to(params)
    pos = (Rinv @ (pelvis - origin[:, None])[..., None])[..., 0]
    root = Rinv @ axis_angle_to_matrix(params[..., :3])
    body = axis_angle_to_matrix(params[..., 3:66].reshape(B, T, 21, 3))
    return torch.cat(
        [pos, matrix_to_rot6d(root), matrix_to_rot6d(body).reshape(B, T, 126)], dim=-1
    )


def features_to_params(
    feats: torch.Tensor,
    origin: torch.Tensor | None = None,
    yaw: torch.Tensor | None = None,
    info: BodyFrameInfo | None = None,
) -> torch.Tensor:
    """135-d features (window frame) -> 69-d parameters (map frame; window frame if no origin).

    feats: (B, T, 135). origin: (B, 3) metres or None (= 0). yaw: (B,) radians or None (= 0).
    Returns (B, T, 69). Differentiable.
    """
    if feats.ndim != 3 or feats.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must be (B, T, {FEATURE_DIM}), got {tuple(feats.shape)}")
    info = info or body_info()
    B, T, _ = feats.shape
    pos = feats[..., :3]
    root = rot6d_to_matrix(feats[..., 3:9])
    body = rot6d_to_matrix(feats[..., 9:].reshape(B, T, 21, 6))
    if yaw is not None:
        R = yaw_matrix(yaw)[:, None]
        pos = (R @ pos[..., None])[..., 0]
        root = R @ root
    if origin is not None:
        pos = pos + origin[:, None]
    transl = pos - info.pelvis_offset.to(feats)
    return torch.cat(
        [
            matrix_to_axis_angle(root),
            matrix_to_axis_angle(body).reshape(B, T, 63),
            transl,
        ],
        dim=-1,
    )


def direction_hint(joints: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """The direction hint of a window (DESIGN.md), in the frame of ``joints``.

    joints: (B, T, 22, 3) metres, window frame. action: (B,) int64 indices into ``ACTIONS``.
    Returns (B, 22, 3): for walk, row 0 is pelvis(last frame) - pelvis(first frame) and the
    other rows are 0; for sit/stand_up/lie every row is that joint's end - start. Each row
    is capped at length 1 (shorter vectors are kept as they are).
    """
    if joints.ndim != 4 or joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must be (B, T, {NUM_JOINTS}, 3), got {tuple(joints.shape)}")
    d = joints[:, -1] - joints[:, 0]
    walk = (action == ACTIONS.index("walk"))[:, None, None]
    only_pelvis = torch.zeros_like(d)
    only_pelvis[:, 0] = d[:, 0]
    d = torch.where(walk, only_pelvis, d)
    return cap_length(d)


def cap_length(v: torch.Tensor, max_len: float = 1.0) -> torch.Tensor:
    """(..., 3) vectors scaled down to length ``max_len`` where longer; others unchanged."""
    n = v.norm(dim=-1, keepdim=True)
    return v * torch.clamp(max_len / n.clamp_min(1e-9), max=1.0)


def _check_params(params: torch.Tensor, ndim: int) -> None:
    if not isinstance(params, torch.Tensor):
        raise ValueError(f"params must be a torch.Tensor, got {type(params).__name__}")
    if params.ndim != ndim or params.shape[-1] != PARAM_DIM:
        want = "(B, T, 69)" if ndim == 3 else f"{ndim}-D (..., 69)"
        raise ValueError(f"params must be {want} body parameters, got {tuple(params.shape)}")
