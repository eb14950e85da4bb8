"""Per-frame action labels from clip metadata plus pelvis-height / posture segmentation.

Actions: ``walk``, ``sit``, ``stand_up``, ``lie``, ``idle`` (``ACTIONS``; the generator is
conditioned on the first four, ``idle`` marks standing still and is kept for history).

Signals (from forward kinematics on the default or given skeleton, map frame, z up):
pelvis height ``h``, horizontal pelvis speed ``v``, torso uprightness ``u`` (z component of
the unit pelvis->neck vector) and thigh slope ``k`` (mean z component of the unit
hip->knee vectors: -1 standing, ~0 seated with horizontal thighs).

Posture per frame (hysteresis, then runs shorter than ``min_run_s`` are absorbed):
- lying: ``u < lie_torso_max`` and ``h < lie_pelvis_max``;
- seated: ``k > seated_thigh_min`` and ``h < h_stand - seated_drop`` (enter), left when
  ``k < standing_thigh_max`` or ``h > h_stand - standing_drop``;
- standing otherwise; ``h_stand`` is the clip's 90th percentile pelvis height.

Actions: standing frames are ``walk`` when ``v > walk_speed`` and the body moves within
``walk_max_angle`` of its heading, else ``idle``; a descent into
a seated posture (from the last standing-level frame) and the seated frames are ``sit``;
the rise from seated/lying to standing level is ``stand_up``; lying frames are ``lie``.
The category restricts labels: ``walk*`` clips only get walk/idle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssomotion_ros.body.skeleton import Skeleton, check_params, forward_kinematics_np

__all__ = ["ACTIONS", "ACTION_TO_ID", "LabelConfig", "posture_signals", "label_actions"]

#: Action vocabulary; ids are the indices (model conditioning uses the first four).
ACTIONS: tuple[str, ...] = ("walk", "sit", "stand_up", "lie", "idle")
ACTION_TO_ID: dict[str, int] = {a: i for i, a in enumerate(ACTIONS)}


@dataclass
class LabelConfig:
    """Thresholds of :func:`label_actions` (metres, m/s, seconds, unitless slopes)."""

    #: Pelvis horizontal speed above which a standing frame is walking, m/s.
    walk_speed: float = 0.25
    #: Largest angle between the body heading and the pelvis velocity for ``walk``, degrees
    #: (stepping backwards or sideways, e.g. backing up to a chair, is ``idle``).
    walk_max_angle: float = 75.0
    #: Smoothing window for the signals, seconds.
    smooth_s: float = 0.2
    #: Thigh slope above which a frame may be seated (enter threshold).
    seated_thigh_min: float = -0.72
    #: Pelvis must be this far below the standing height to enter seated, metres.
    seated_drop: float = 0.06
    #: Thigh slope below which a seated frame returns to standing.
    standing_thigh_max: float = -0.85
    #: Pelvis within this distance of the standing height returns to standing, metres.
    standing_drop: float = 0.03
    #: Torso uprightness below which (with a low pelvis) the body is lying.
    lie_torso_max: float = 0.6
    #: Pelvis height below which a frame may be lying, metres.
    lie_pelvis_max: float = 0.45
    #: Posture runs shorter than this are merged into their neighbours, seconds.
    min_run_s: float = 0.3
    #: How far back a sit-down descent / forward a stand-up rise may extend, seconds.
    transition_s: float = 2.0
    #: Height tolerance marking the start/end of a transition, metres.
    transition_tol: float = 0.02


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(x) < 2:
        return x
    pad = n // 2
    xp = np.pad(x, (pad, n - 1 - pad), mode="edge")
    return np.convolve(xp, np.ones(n) / n, mode="valid")


def posture_signals(
    params: np.ndarray, fps: float = 30.0, skeleton: Skeleton | None = None
) -> dict[str, np.ndarray]:
    """Signals used for labelling.

    params: (T, 69) float32 body parameters (map frame). Returns dict of (T,) float64:
    ``height`` pelvis z (m), ``speed`` horizontal pelvis speed (m/s), ``torso`` uprightness,
    ``thigh`` mean thigh slope, and ``joints`` (T, 22, 3) float32 metres.
    """
    check_params(params)
    if params.ndim != 2:
        raise ValueError(f"params: expected (T, 69), got {params.shape}")
    j = forward_kinematics_np(params, skeleton)
    h = j[:, 0, 2].astype(np.float64)
    d = np.diff(j[:, 0, :2], axis=0)
    v = np.linalg.norm(d, axis=1) * fps
    v = np.concatenate([v[:1], v]) if len(v) else np.zeros(1)
    torso = j[:, 12] - j[:, 0]
    u = torso[:, 2] / np.maximum(np.linalg.norm(torso, axis=1), 1e-9)
    th = np.stack([j[:, 4] - j[:, 1], j[:, 5] - j[:, 2]], axis=1)
    k = np.mean(th[..., 2] / np.maximum(np.linalg.norm(th, axis=-1), 1e-9), axis=1)
    return {
        "height": h,
        "speed": v,
        "torso": u.astype(np.float64),
        "thigh": k.astype(np.float64),
        "joints": j,
    }


def _default_pelvis_height() -> float:
    from ssomotion_ros.body.skeleton import default_skeleton

    return default_skeleton().pelvis_height


def _absorb_short_runs(state: np.ndarray, min_len: int) -> np.ndarray:
    state = state.copy()
    changed = True
    while changed and len(state) > 0:
        changed = False
        starts = np.flatnonzero(np.r_[True, state[1:] != state[:-1]])
        ends = np.r_[starts[1:], len(state)]
        if len(starts) == 1:
            break
        lengths = ends - starts
        inner = lengths.astype(np.float64)
        inner[0] = inner[-1] = np.inf  # runs at the clip ends are kept (may be cut short)
        if not np.isfinite(inner).any():
            break
        i = int(np.argmin(inner))
        if lengths[i] >= min_len:
            break
        s, e = starts[i], ends[i]
        neighbour = state[s - 1] if s > 0 else state[e]
        if s > 0 and e < len(state) and lengths[i - 1] < lengths[i + 1]:
            neighbour = state[e]
        state[s:e] = neighbour
        changed = True
    return state


def label_actions(
    params: np.ndarray,
    category: str = "",
    fps: float = 30.0,
    skeleton: Skeleton | None = None,
    config: LabelConfig | None = None,
    return_posture: bool = False,
):
    """Per-frame action labels for one clip.

    params: (T, 69) float32 body parameters, map frame, at ``fps``.
    category: dataset category (``walk``, ``walk_styled``, ``sit_stand``, ``ground_getup``,
        ``ground_sit``, or anything else); ``walk*`` limits labels to walk/idle.
    Returns (T,) array of str from :data:`ACTIONS`; with ``return_posture`` also the (T,)
    posture per frame (``standing``, ``seated``, ``lying``), e.g. to tell a sit-down from
    sitting still (both ``sit``).
    """
    cfg = config or LabelConfig()
    sig = posture_signals(params, fps, skeleton)
    n = max(1, int(round(cfg.smooth_s * fps)))
    h = _smooth(sig["height"], n)
    v = _smooth(sig["speed"], max(n, int(round(0.5 * fps))))
    u = _smooth(sig["torso"], n)
    k = _smooth(sig["thigh"], n)
    T = len(h)
    rest_h = skeleton.pelvis_height if skeleton is not None else _default_pelvis_height()
    # standing pelvis height: the clip's own when it stands, else the skeleton's
    h_stand = float(np.percentile(h, 90))
    if h_stand < 0.85 * rest_h:
        h_stand = 0.98 * rest_h

    STAND, SEAT, LIE = 0, 1, 2
    state = np.zeros(T, dtype=np.int64)
    if not category.startswith("walk"):
        cur = STAND
        for t in range(T):
            lying = u[t] < cfg.lie_torso_max and h[t] < cfg.lie_pelvis_max
            if lying:
                cur = LIE
            elif cur == LIE:
                cur = SEAT if h[t] < h_stand - cfg.seated_drop else STAND
            if cur == STAND and k[t] > cfg.seated_thigh_min and h[t] < h_stand - cfg.seated_drop:
                cur = SEAT
            elif cur == SEAT and (
                k[t] < cfg.standing_thigh_max or h[t] > h_stand - cfg.standing_drop
            ):
                cur = STAND
            state[t] = cur
        state = _absorb_short_runs(state, max(1, int(round(cfg.min_run_s * fps))))

    # walking = moving fast enough roughly along the body heading
    from ssomotion_ros.motion.datasets.augment import heading

    nv = max(n, int(round(0.5 * fps)))
    vel = (
        np.gradient(sig["joints"][:, 0, :2].astype(np.float64), axis=0)
        if T > 1
        else (np.zeros((T, 2)))
    )
    vel = np.stack([_smooth(vel[:, 0], nv), _smooth(vel[:, 1], nv)], axis=1)
    hd = heading(np.asarray(params))
    fwd = np.stack([np.cos(hd), np.sin(hd)], axis=1)
    cos = np.sum(vel * fwd, axis=1) / np.maximum(np.linalg.norm(vel, axis=1), 1e-9)
    walking = (v > cfg.walk_speed) & (cos > np.cos(np.radians(cfg.walk_max_angle)))
    labels = np.where(walking, "walk", "idle").astype("<U8")
    labels[state == SEAT] = "sit"
    labels[state == LIE] = "lie"
    span = int(round(cfg.transition_s * fps))
    starts = np.flatnonzero(np.r_[True, state[1:] != state[:-1]])
    ends = np.r_[starts[1:], T]
    runs = [(int(a), int(e), int(state[a])) for a, e in zip(starts, ends)]
    for i, (a, e, st) in enumerate(runs):
        prev_st = runs[i - 1][2] if i > 0 else None
        next_st = runs[i + 1][2] if i + 1 < len(runs) else None
        if st == SEAT and prev_st == LIE and next_st == STAND:
            labels[a:e] = "stand_up"  # sitting up on the way from the floor to standing
        if st == SEAT and prev_st == STAND:
            # the descent: from the last standing-level frame before the seated run
            lo = max(0, a - span)
            high = np.flatnonzero(h[lo:a] >= h_stand - cfg.transition_tol)
            if len(high):  # only a descent from standing level is a sit-down
                labels[lo + int(high[-1]) + 1 : a] = "sit"
        if st == STAND and prev_st in (SEAT, LIE):
            # the rise: from the last frame near the low level, until standing level
            pa = runs[i - 1][0]
            lo = max(pa, a - span)
            low = h[lo:a].min()
            near = np.flatnonzero(h[lo:a] <= low + cfg.transition_tol)
            s0 = lo + int(near[-1]) if len(near) else lo
            # include the forward lean that precedes the rise (torso tilting forward)
            lean = 0
            while s0 > pa and lean < span // 2 and u[s0 - 1] > u[s0] + 1e-4:
                s0 -= 1
                lean += 1
            e0 = a
            while e0 < T and e0 - a < span and h[e0] < h_stand - cfg.transition_tol:
                e0 += 1
            labels[s0:e0] = "stand_up"
    # lying: the way down from standing level is 'lie', the way up to standing 'stand_up'
    for i, (a, e, st) in enumerate(runs):
        if st != LIE:
            continue
        if i > 0:
            lo = max(0, a - 2 * span)
            high = np.flatnonzero(h[lo:a] >= h_stand - cfg.transition_tol)
            if len(high):
                labels[lo + int(high[-1]) + 1 : a] = "lie"
        if i + 1 < len(runs):
            up = np.flatnonzero(h[e:] >= h_stand - cfg.transition_tol)
            if len(up) and up[0] <= 2 * span:
                labels[e : e + int(up[0])] = "stand_up"
    if return_posture:
        posture = np.array(["standing", "seated", "lying"])[state]
        return labels, posture
    return labels
