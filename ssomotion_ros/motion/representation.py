"""The diffusion's internal motion features and exact conversions to/from 69-d parameters.

Body parameters (the project-wide format) per frame, 69 numbers, map frame (REP-103,
z up, metres): ``[global_orient (3, axis-angle) | body_pose (63 = 21 x 3 axis-angle) |
transl (3)]``.

Motion features (what the denoiser sees) per frame, 135 numbers, *window frame*::

    [pelvis position (3, metres) | root rotation (6, 6-D) | 21 joint rotations (126, 6-D)]

The window frame is the map frame translated so that the pelvis of the window's first
frame lies above the origin (its height is kept: z stays metres above the map's z = 0)
and rotated about z so that this pelvis's heading (the body's forward direction
projected on the floor) is +x. The 6-D rotation is the body module's layout
(``ssomotion_ros.body.rotations``: the first two rows of the matrix, Zhou et al. 2019).

The pelvis position is ``transl + pelvis_offset`` where ``pelvis_offset`` is the pelvis
joint of the rest pose (forward kinematics of all-zero parameters); for an SMPL-style
body the pelvis does not move when the root rotates, so this is exact. Converting
features back gives the original 69-d parameters up to float precision (axis-angles are
returned with angle in [0, pi]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ssomotion_ros.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from ssomotion_ros.motion.config import ACTIONS, FEATURE_DIM, NUM_JOINTS, PARAM_DIM


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
        frame (+x: ``ssomotion_ros.body.skeleton``'s rest pose faces +x).
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
        # the skeleton's documented convention: zero global_orient faces +x
        fwd = torch.tensor([1.0, 0.0, 0.0])
        _BODY_INFO = BodyFrameInfo(pelvis_offset=j[0].float(), forward_rest=fwd)
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
        [pos, matrix_to_rotation_6d(root), matrix_to_rotation_6d(body).reshape(B, T, 126)], dim=-1
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
    root = rotation_6d_to_matrix(feats[..., 3:9])
    body = rotation_6d_to_matrix(feats[..., 9:].reshape(B, T, 21, 6))
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


def features_to_joints(
    feats: torch.Tensor,
    origin: torch.Tensor | None = None,
    yaw: torch.Tensor | None = None,
) -> torch.Tensor:
    """Forward kinematics straight from 135-d features (no axis-angle round trip).

    feats: (B, T, 135) window frame. origin: (B, 3) metres or None; yaw: (B,) radians or
    None: the window frame in the map frame. Returns joints (B, T, 22, 3) metres, map frame
    (window frame when origin and yaw are None). Equals
    ``forward_kinematics(features_to_params(feats, origin, yaw))``; differentiable.
    """
    from ssomotion_ros.body import skeleton as sk

    if feats.ndim != 3 or feats.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must be (B, T, {FEATURE_DIM}), got {tuple(feats.shape)}")
    B, T, _ = feats.shape
    skel = sk.default_skeleton()
    offsets = skel.offsets_tensor(feats.device, feats.dtype)
    c = torch.as_tensor(sk.R_NATIVE_TO_MAP, dtype=feats.dtype, device=feats.device)
    pos0 = feats[..., :3]
    root = rotation_6d_to_matrix(feats[..., 3:9])
    if yaw is not None:
        R = yaw_matrix(yaw)[:, None]
        pos0 = (R @ pos0[..., None])[..., 0]
        root = R @ root
    if origin is not None:
        pos0 = pos0 + origin[:, None]
    local = c @ rotation_6d_to_matrix(feats[..., 9:].reshape(B, T, 21, 6)) @ c.T
    rots = [root]
    pos = [pos0]
    for j in range(1, NUM_JOINTS):
        p = int(skel.parents[j])
        rots.append(rots[p] @ local[..., j - 1, :, :])
        pos.append(pos[p] + (rots[p] @ offsets[j, :, None])[..., 0])
    return torch.stack(pos, dim=-2)


def seam_weights(frames: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(frames,) raised-cosine weights falling from ~1 to ~0: ``0.5 (1 + cos(pi i / (K+1)))``
    for i = 1..K."""
    i = torch.arange(1, frames + 1, device=device, dtype=dtype)
    return 0.5 * (1.0 + torch.cos(torch.pi * i / (frames + 1)))


def blend_seam(feats: torch.Tensor, history: int, frames: int) -> torch.Tensor:
    """Smooth the seam between the known history and the first generated frames.

    feats: (B, T, 135) window-frame features whose first ``history`` (>= 2) frames are
    the known history. The gap between the first new frame and the constant-velocity
    continuation of the history, ``delta = 2 f[H-1] - f[H-2] - f[H]``, is added to the
    first ``frames`` new frames with :func:`seam_weights` (rotations stay valid: 6-D
    features are re-orthonormalised when decoded). History frames and frames after the
    blend are unchanged. Returns a new tensor.
    """
    if feats.ndim != 3 or feats.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must be (B, T, {FEATURE_DIM}), got {tuple(feats.shape)}")
    H = history
    K = min(frames, feats.shape[1] - H)
    if K <= 0 or H < 2:
        return feats.clone()
    delta = 2 * feats[:, H - 1] - feats[:, H - 2] - feats[:, H]
    w = seam_weights(K, feats.device, feats.dtype)
    out = feats.clone()
    out[:, H : H + K] = feats[:, H : H + K] + w[None, :, None] * delta[:, None]
    return out


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
