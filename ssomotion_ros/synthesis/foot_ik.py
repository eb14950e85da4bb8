"""Foot planting: stance detection and analytic two-bone leg IK on SMPL-X 69-d parameters.

A generated walk often slides its stance foot. :func:`plant_feet` detects, frame by frame,
the foot that is on the floor (low and slow, with hysteresis so contacts do not flicker),
pins its ankle (xy where it landed, z on the floor) and its orientation for the stance,
and bends the leg with :func:`two_bone_ik` so that the pelvis keeps its own path while the
planted foot stays still. Pins blend in and out over a few frames; a pin is released when
the leg would have to stretch beyond ``max_stretch`` of its length, and that foot then
steps ahead of the hip (a generated walk that glides with both feet on the floor becomes
a sequence of steps). The result is written back into the parameters (hip and knee
rotations of ``body_pose``, the ankle rotation corrected so the foot keeps its world
orientation), so that ``forward_kinematics(params)`` reproduces the planted joints.

Frames and units are those of :mod:`ssomotion_ros.body.skeleton`: map frame (x forward,
y left, z up), metres, radians; ``params (T, 69) = [global_orient 3 | body_pose 63 |
transl 3]``; joint order / parents of ``JOINT_NAMES`` / ``PARENTS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ssomotion_ros.body.skeleton import (
    PARAM_DIM,
    R_NATIVE_TO_MAP,
    Skeleton,
    check_params,
    default_skeleton,
    forward_kinematics,
)

__all__ = [
    "LEGS",
    "PlantState",
    "two_bone_ik",
    "knee_flexion",
    "plant_feet",
]

#: (hip, knee, ankle, foot) joint indices of the left and the right leg.
LEGS: tuple[tuple[int, int, int, int], ...] = ((1, 4, 7, 10), (2, 5, 8, 11))
_C = R_NATIVE_TO_MAP


def _fk64(params: np.ndarray, skeleton: Skeleton | None):
    """params (T, 69) -> (joints (T, 22, 3), global rotations (T, 22, 3, 3)), float64."""
    j, g = forward_kinematics(
        torch.from_numpy(np.ascontiguousarray(params, np.float64)), skeleton, True
    )
    return j.numpy(), g.numpy()


def _unit(v: np.ndarray, eps: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps), n[..., 0]


def _min_rotation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotations taking directions u to v. u, v: (N, 3) (any length > 0).
    Returns (N, 3, 3) float64 (for opposite vectors: 180 deg about an axis normal to u)."""
    u, _ = _unit(np.asarray(u, np.float64))
    v, _ = _unit(np.asarray(v, np.float64))
    axis = np.cross(u, v)
    s = np.linalg.norm(axis, axis=-1)
    c = np.clip((u * v).sum(-1), -1.0, 1.0)
    ang = np.arctan2(s, c)
    ax = axis / np.maximum(s, 1e-300)[:, None]
    flip = (s < 1e-9) & (c < 0)
    if flip.any():
        # any axis normal to u
        alt = np.cross(u[flip], np.array([1.0, 0.0, 0.0]))
        bad = np.linalg.norm(alt, axis=-1) < 1e-6
        alt[bad] = np.cross(u[flip][bad], np.array([0.0, 1.0, 0.0]))
        ax[flip] = _unit(alt)[0]
    ax[(s < 1e-9) & ~flip] = 0.0
    return Rotation.from_rotvec(ax * ang[:, None]).as_matrix()


def _lengths(skeleton: Skeleton | None, side: int) -> tuple[float, float]:
    skel = skeleton if skeleton is not None else default_skeleton()
    _, k, a, _ = LEGS[side]
    return float(np.linalg.norm(skel.offsets[k])), float(np.linalg.norm(skel.offsets[a]))


def knee_flexion(params: np.ndarray, side: int, skeleton: Skeleton | None = None) -> np.ndarray:
    """Signed knee flexion of one leg, radians (> 0: the shin bends backwards, as a knee
    does; < 0: hyperextended).

    params: (T, 69) float, SMPL-X parameters (map frame, radians / metres). side: 0 left,
    1 right. The angle is between the thigh and the shin, measured about the thigh's
    lateral (hinge) axis ``G_hip @ (0, 1, 0)``. Returns (T,) float64 radians.
    """
    p = np.asarray(params, np.float64).reshape(-1, PARAM_DIM)
    h, k, a, _ = LEGS[side]
    j, g = _fk64(p, skeleton)
    t, _ = _unit(j[:, k] - j[:, h])
    s, _ = _unit(j[:, a] - j[:, k])
    lat = g[:, h, :, 1]
    return np.arctan2((lat * np.cross(t, s)).sum(-1), (t * s).sum(-1))


def two_bone_ik(
    params: np.ndarray,
    side: int,
    ankle_target: np.ndarray,
    ankle_rotation: np.ndarray | None = None,
    skeleton: Skeleton | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic hip-knee-ankle IK of one leg, written back into the parameters.

    params: (T, 69) float SMPL-X parameters ``[global_orient | body_pose | transl]``
        (radians / metres, map frame); the pelvis pose is kept, so the hip stays where it is.
    side: 0 = left leg (joints 1, 4, 7), 1 = right leg (2, 5, 8).
    ankle_target: (T, 3) float, metres, map frame: where the ankle joint should be.
    ankle_rotation: optional (T, 3, 3) float64 rest-relative world rotation the ankle (and
        so the foot) should have (default: the one ``params`` gives, i.e. the foot keeps
        its world orientation while the leg moves).
    skeleton: rest skeleton (default :func:`default_skeleton`).

    The knee bends in the leg's plane, about the thigh's lateral (hinge) axis, always
    forwards (flexion in [0, pi)); the hip then swings the leg with the smallest rotation
    that points hip -> ankle at the target, so the knee stays on the side it was (pole =
    the current knee). A target farther than the leg's length gives a straight leg pointing
    at it; closer than ``|thigh - shin|`` a fully folded one. Returns (new params (T, 69)
    float64, reach (T,) float64 = |target - hip| / (thigh + shin)).
    """
    p = np.array(params, np.float64).reshape(-1, PARAM_DIM)
    check_params(p, "params")
    if side not in (0, 1):
        raise ValueError(f"side must be 0 (left leg) or 1 (right leg), got {side}")
    tgt = np.asarray(ankle_target, np.float64)
    if tgt.shape != (len(p), 3) or not np.isfinite(tgt).all():
        raise ValueError(
            f"ankle_target must be finite ({len(p)}, 3) metres in the map frame, got "
            f"shape {tgt.shape}"
        )
    if len(p) == 0:
        return p, np.zeros(0)
    h, k, a, _ = LEGS[side]
    la, lb = _lengths(skeleton, side)
    j, g = _fk64(p, skeleton)
    H, K, A = j[:, h], j[:, k], j[:, a]
    Gp, Gh, Gk = g[:, 0], g[:, h], g[:, k]
    Ga = g[:, a] if ankle_rotation is None else np.asarray(ankle_rotation, np.float64)
    if Ga.shape != (len(p), 3, 3):
        raise ValueError(f"ankle_rotation must be ({len(p)}, 3, 3), got {Ga.shape}")
    t, _ = _unit(K - H)
    s = (A - K) / lb
    # hinge axis: the thigh's lateral axis, made normal to the thigh
    lat = Gh[:, :, 1]
    n, _ = _unit(lat - (lat * t).sum(-1, keepdims=True) * t)
    to_t = tgt - H
    d_raw = np.linalg.norm(to_t, axis=-1)
    d = np.clip(d_raw, abs(la - lb) + 1e-9, (la + lb) * (1.0 - 1e-12))
    cos_knee = np.clip((la * la + lb * lb - d * d) / (2 * la * lb), -1.0, 1.0)
    flex = math.pi - np.arccos(cos_knee)  # 0 = straight
    # new shin direction: flexion about n, towards the back (n x t)
    s_new = np.cos(flex)[:, None] * t + np.sin(flex)[:, None] * np.cross(n, t)
    Rd = _min_rotation(s, s_new)
    A1 = K + lb * s_new
    swing = d_raw > 1e-9
    Rh = np.repeat(np.eye(3)[None], len(p), 0)
    if swing.any():
        Rh[swing] = _min_rotation(A1[swing] - H[swing], to_t[swing])
    Gh_new = Rh @ Gh
    Gk_new = Rh @ Rd @ Gk
    L_hip = np.swapaxes(Gp, 1, 2) @ Gh_new
    L_knee = np.swapaxes(Gh_new, 1, 2) @ Gk_new
    L_ankle = np.swapaxes(Gk_new, 1, 2) @ Ga
    for jj, L in ((h, L_hip), (k, L_knee), (a, L_ankle)):
        native = _C.T @ L @ _C
        p[:, 3 * jj : 3 * jj + 3] = Rotation.from_matrix(native).as_rotvec()
    return p, d_raw / (la + lb)


# ------------------------------------------------------------------ planting
@dataclass
class PlantState:
    """Planting state of one body, carried from window to window.

    pinned: (2,) bool, left / right foot in stance (pin active or blending in).
    stepping: (2,) bool, the foot was released because its leg got too long and is
        stepping ahead (it lands at its step target, not where the generated foot is).
    weight: (2,) float64 in [0, 1], pin weight (1 = the ankle is exactly at its anchor).
    anchor: (2, 3) float64, metres, map frame: pinned ankle positions.
    anchor_rot: (2, 3, 3) float64: pinned ankle (foot) world rotations, rest-relative.
    last_ankle: (2, 3) float64 metres, map frame: ankles of the last frame produced
        (output, after planting); NaN before the first frame.
    """

    pinned: np.ndarray = field(default_factory=lambda: np.zeros(2, bool))
    stepping: np.ndarray = field(default_factory=lambda: np.zeros(2, bool))
    weight: np.ndarray = field(default_factory=lambda: np.zeros(2))
    anchor: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))
    anchor_rot: np.ndarray = field(default_factory=lambda: np.repeat(np.eye(3)[None], 2, 0))
    last_ankle: np.ndarray = field(default_factory=lambda: np.full((2, 3), np.nan))

    def copy(self) -> PlantState:
        return PlantState(
            self.pinned.copy(),
            self.stepping.copy(),
            self.weight.copy(),
            self.anchor.copy(),
            self.anchor_rot.copy(),
            self.last_ankle.copy(),
        )


def _floor_per_foot(floor_z, T: int) -> np.ndarray:
    f = np.asarray(floor_z, np.float64)
    if f.ndim == 0:
        return np.full((T, 2), float(f))
    if f.shape == (T,):
        return np.repeat(f[:, None], 2, 1)
    if f.shape == (T, 2):
        return f
    raise ValueError(f"floor_z must be a scalar, (T,) or (T, 2) metres with T={T}, got {f.shape}")


def _pelvis_velocity(pelvis: np.ndarray, fps: float, half: int = 5) -> np.ndarray:
    """pelvis: (T, 3) metres -> (T, 2) xy velocity, m/s, over +-``half`` frames."""
    T = len(pelvis)
    if T < 2:
        return np.zeros((T, 2))
    i = np.arange(T)
    lo, hi = np.maximum(i - half, 0), np.minimum(i + half, T - 1)
    return (pelvis[hi, :2] - pelvis[lo, :2]) * fps / (hi - lo)[:, None]


def plant_feet(
    params: np.ndarray,
    floor_z,
    state: PlantState | None = None,
    *,
    enter_height: float = 0.04,
    exit_height: float = 0.08,
    enter_speed: float = 1.0,
    exit_speed: float = 2.0,
    blend_frames: int = 4,
    max_stretch: float = 0.98,
    step_lead_s: float = 0.4,
    step_reach: float = 0.95,
    swing_height: float = 0.1,
    release_at_end: bool = False,
    fps: float = 30.0,
    skeleton: Skeleton | None = None,
) -> tuple[np.ndarray, PlantState, dict]:
    """Plant the stance feet of consecutive frames of one body.

    params: (T, 69) float SMPL-X parameters of consecutive frames at ``fps`` (radians /
        metres, map frame); the pelvis pose of every frame is kept.
    floor_z: floor height under the feet, metres: a scalar, (T,) per frame or (T, 2) per
        frame and foot (left, right).
    state: the state after the previous frames of the same body (None = a fresh start);
        not modified (a new one is returned).
    enter_height / exit_height: a foot starts a stance when its lowest part (ankle or toe,
        each relative to its flat-foot rest height) is below ``enter_height`` metres above
        the floor, and ends it above ``exit_height`` (the generated foot lifts: the output
        follows it).
    enter_speed / exit_speed: ... and when its generated ankle moves (xy, median of 3
        frames) slower than ``enter_speed`` m/s; ends it faster than ``exit_speed``.
    blend_frames: frames over which a pin fades in at contact start and out at its end (>= 1).
    max_stretch: a pin is released when hip -> anchor exceeds this fraction of the leg's
        length (thigh + shin; or the generated leg's own reach + 0.005 where that is
        longer, so a straight-legged stance is not released at once) while the other foot
        has been pinned since the previous frame; otherwise only at the full length. The
        foot then steps: over ``blend_frames`` it moves (lifted by up to ``swing_height``
        metres at mid-swing) to a step target ahead of the hip along the pelvis velocity
        (``step_lead_s`` seconds of it, at most where hip -> ankle is ``step_reach`` of the
        leg), keeping the generated foot's sideways offset, and is pinned there.
    release_at_end: fade every pin out over the last ``blend_frames`` frames, so that the
        last frame is the generated pose (before a transition that starts from it).
    A new stance of a lifted foot starts once its pin has faded out; its anchor is the
    ankle's xy there, with z moved so the foot's lowest part is on the floor.

    Returns (params (T, 69) float64 with the legs re-solved, new :class:`PlantState`,
    info: ``planted`` (T, 2) pin weights, ``releases`` dict of release counts by reason
    (``stretch``, ``lifted``), ``reach_max`` largest hip -> ankle target reach).
    """
    p = np.array(params, np.float64).reshape(-1, PARAM_DIM)
    check_params(p, "params")
    if blend_frames < 1:
        raise ValueError(f"blend_frames must be >= 1, got {blend_frames}")
    if not 0.0 < max_stretch <= 1.0 or not 0.0 < step_reach <= 1.0:
        raise ValueError(
            f"max_stretch and step_reach must be in (0, 1], got {max_stretch}, {step_reach}"
        )
    if not fps > 0 or step_lead_s < 0 or swing_height < 0:
        raise ValueError(
            f"fps must be > 0, step_lead_s and swing_height >= 0; got {fps}, {step_lead_s}, "
            f"{swing_height}"
        )
    T = len(p)
    st = PlantState() if state is None else state.copy()
    info = {"planted": np.zeros((T, 2)), "releases": {"stretch": 0, "lifted": 0},
            "reach_max": 0.0}  # fmt: skip
    if T == 0:
        return p, st, info
    floor = _floor_per_foot(floor_z, T)
    skel = skeleton if skeleton is not None else default_skeleton()
    rest = skel.rest_joints().astype(np.float64)
    j, g = _fk64(p, skel)
    ai = [LEGS[0][2], LEGS[1][2]]
    fi = [LEGS[0][3], LEGS[1][3]]
    legs = np.array([sum(_lengths(skel, side)) for side in (0, 1)])
    ank = j[:, ai]  # (T, 2, 3) generated ankles
    hip = j[:, [LEGS[0][0], LEGS[1][0]]]
    # height of each foot's lowest part above its flat-foot height, metres (T, 2)
    low = np.minimum(ank[..., 2] - rest[ai, 2], j[:, fi, 2] - rest[fi, 2]) - floor
    prev = np.concatenate([st.last_ankle[None], ank[:-1]])
    speed = np.linalg.norm(ank[..., :2] - prev[..., :2], axis=-1) * fps
    speed = np.where(np.isfinite(speed), speed, 0.0)
    # median over 3 frames: a one-frame jump (e.g. at a window seam) is not a step
    pad = np.concatenate([speed[1:2], speed, speed[-2:-1]]) if T > 1 else np.repeat(speed, 3, 0)
    slow = np.median(np.stack([pad[:-2], pad[1:-1], pad[2:]]), axis=0)
    # step targets: ahead of the hip along the pelvis velocity, generated sideways offset,
    # ankle at its flat-foot height on the floor
    vel = _pelvis_velocity(j[:, 0], fps)
    sp = np.linalg.norm(vel, axis=-1)
    fwd = np.where(sp[:, None] > 1e-6, vel / np.maximum(sp, 1e-6)[:, None], 0.0)
    side_ax = np.stack([-fwd[:, 1], fwd[:, 0]], 1)
    step_t = np.empty((T, 2, 3))
    # the generated leg's own reach: a body standing with straight legs is not "too long"
    gen_reach = np.linalg.norm(ank - hip, axis=-1) / legs  # (T, 2)
    for side in (0, 1):
        z = floor[:, side] + rest[ai[side], 2]
        dz = hip[:, side, 2] - z
        cap = np.maximum(step_reach, np.minimum(gen_reach[:, side], 1.0) - 0.01)
        room = np.sqrt(np.maximum((cap * legs[side]) ** 2 - dz * dz, 0.0))
        lead = np.minimum(sp * step_lead_s, room)
        off = ank[:, side, :2] - hip[:, side, :2]
        lat = (off * side_ax).sum(-1)
        lat = np.clip(lat, -room, room)
        fw = np.minimum(lead, np.sqrt(np.maximum(room**2 - lat**2, 0.0)))
        step_t[:, side, :2] = hip[:, side, :2] + fw[:, None] * fwd + lat[:, None] * side_ax
        step_t[:, side, 2] = z
    targets = np.zeros((T, 2, 3))
    rots = np.zeros((T, 2, 3, 3))
    weights = np.zeros((T, 2))
    step = 1.0 / blend_frames
    for t_ in range(T):
        reach = np.linalg.norm(st.anchor - hip[t_], axis=-1) / legs
        # a foot stands firmly when it was fully pinned already before this frame
        firm = st.pinned & (st.weight >= 1.0)
        ending = release_at_end and t_ >= T - blend_frames
        for side in (0, 1):
            other = 1 - side
            if ending:
                st.pinned[side] = st.stepping[side] = False
            elif st.pinned[side]:
                lifted = low[t_, side] > exit_height or slow[t_, side] > exit_speed
                # the soft stretch limit releases a pin only while the other foot stands
                # firmly; the leg's full length always does
                limit = max(max_stretch, min(gen_reach[t_, side] + 0.005, 1.0))
                limit = limit if firm[other] and st.pinned[other] else 1.0
                if lifted:
                    st.pinned[side] = False
                    info["releases"]["lifted"] += 1
                elif reach[side] > limit:
                    st.pinned[side] = False
                    st.stepping[side] = True
                    info["releases"]["stretch"] += 1
            elif (
                not st.stepping[side]
                and st.weight[side] <= 0.0
                and low[t_, side] < enter_height
                and slow[t_, side] < enter_speed
            ):
                st.pinned[side] = True
                st.anchor[side] = ank[t_, side]
                st.anchor[side, 2] -= low[t_, side]
                st.anchor_rot[side] = g[t_, ai[side]]
            w = st.weight[side] + (step if st.pinned[side] else -step)
            w = min(1.0, max(0.0, w))
            if st.stepping[side]:
                goal = step_t[t_, side].copy()
                goal[2] += swing_height * math.sin(math.pi * w)
                if w <= 0.0:  # landed: pinned at the step target
                    st.stepping[side] = False
                    st.pinned[side] = True
                    st.anchor[side] = step_t[t_, side]
                    st.anchor_rot[side] = g[t_, ai[side]]
                    w = 1.0
            else:
                goal = ank[t_, side]
            st.weight[side] = w
            weights[t_, side] = w
            targets[t_, side] = w * st.anchor[side] + (1 - w) * goal
            rots[t_, side] = st.anchor_rot[side]
    out = p
    for side in (0, 1):
        m = weights[:, side] > 0
        if m.any():
            # the foot keeps its pinned world orientation, blended like the position
            gen = Rotation.from_matrix(g[m, ai[side]])
            rel = (gen.inv() * Rotation.from_matrix(rots[m, side])).as_rotvec()
            rot = (gen * Rotation.from_rotvec(rel * weights[m, side][:, None])).as_matrix()
            new, reach = two_bone_ik(out[m], side, targets[m, side], rot, skel)
            out[m] = new
            info["reach_max"] = max(info["reach_max"], float(reach.max()))
    jo, _ = _fk64(out[-1:], skel)
    st.last_ankle = jo[0, ai].copy()
    info["planted"] = weights
    return out, st, info
