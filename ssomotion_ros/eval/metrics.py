"""Reference motion metrics (SSOMotion / DESIGN.md definitions), numpy on any input.

Inputs may be numpy arrays or torch tensors (converted with ``.detach().cpu()``); all
positions are metres in the map frame (REP-103: z up), trajectories are sampled at
``fps`` frames per second (30 by default).

Skeleton: the 22-joint SMPL/SMPL-X body skeleton. Joints used here:

* pelvis = joint 0;
* feet = :data:`FOOT_JOINTS` = (7, 8, 10, 11): left ankle, right ankle, left foot
  (toe base), right foot.

Definitions (one value per trajectory; aggregate over samples with
:func:`aggregate_samples` / :func:`aggregate_suite`):

* contact score: mean over frames t = 1..T-1 of
  ``exp(-max(v_t - 0.075, 0)) * exp(-max(|h_t| - 0.05, 0))`` where
  ``v_t = min over feet of |p_t - p_{t-1}| * fps`` (3-D foot speed, m/s) and
  ``h_t = min over feet of (z_t - floor_t)`` (height of the lowest foot, metres).
* non-penetration ratio: fraction of frames whose body points are all outside occupied
  space (SDF >= -tolerance, or an occupancy query False) — :func:`non_penetration_body`;
  or whose feet are all on walkable floor — :func:`non_penetration_feet`.
* success: min over frames of the xy pelvis distance to the goal < 0.2 m; with the
  last and the min distance — :func:`goal_metrics`.
* interaction penetration: per frame the sum over body points of ``|min(sdf, 0)|``
  (metres); its mean and max over frames — :func:`interaction_penetration`.
* goal distance (sit/lie): min over frames of the pelvis distance to the goal
  (3-D when the goal has z, else xy) — :func:`goal_distance`.
* foot skating: mean horizontal foot speed (m/s) over (frame, foot) pairs where the
  foot is in contact (height < 0.05 m in both frames of the step) —
  :func:`foot_skating`.
* time to goal: seconds until the xy pelvis distance first drops below the success
  radius (NaN if never) — :func:`time_to_goal`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

#: Frames per second of the motion (the reference's rate).
FPS = 30.0
#: Pelvis joint index of the 22-joint skeleton.
PELVIS = 0
#: Left ankle, right ankle, left foot, right foot (22-joint SMPL skeleton).
FOOT_JOINTS: tuple[int, ...] = (7, 8, 10, 11)
#: Reference thresholds.
CONTACT_SPEED_THRESHOLD = 0.075
CONTACT_HEIGHT_THRESHOLD = 0.05
SUCCESS_RADIUS = 0.2

#: Better direction of every metric produced by :func:`trajectory_metrics`
#: ("max": higher is better, "min": lower is better).
METRIC_DIRECTIONS: dict[str, str] = {
    "success": "max",
    "contact": "max",
    "non_penetration": "max",
    "non_penetration_feet": "max",
    "min_distance": "min",
    "last_distance": "min",
    "time_to_goal": "min",
    "goal_distance": "min",
    "penetration_mean": "min",
    "penetration_max": "min",
    "foot_skating": "min",
}


def _np(x, name: str) -> np.ndarray:
    """Convert a numpy array / torch tensor / sequence to float64 numpy."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}") from exc
    return arr


def _joints(joints, name: str = "joints", min_frames: int = 1) -> np.ndarray:
    j = _np(joints, name)
    if j.ndim != 3 or j.shape[2] != 3 or j.shape[1] <= max(FOOT_JOINTS):
        raise ValueError(
            f"{name} must be (T, 22, 3) joint positions in metres (map frame, z up), "
            f"got shape {j.shape}"
        )
    if j.shape[0] < min_frames:
        raise ValueError(f"{name} needs at least {min_frames} frames, got {j.shape[0]}")
    if not np.all(np.isfinite(j)):
        raise ValueError(f"{name} contains NaN or inf")
    return j


def _floor(floor_height, T: int) -> np.ndarray:
    """Scalar or (T,) floor height -> (T,) metres."""
    f = _np(floor_height, "floor_height")
    if f.ndim == 0:
        return np.full(T, float(f))
    if f.shape != (T,):
        raise ValueError(f"floor_height must be a scalar or ({T},) metres, got shape {f.shape}")
    return f


def _fps(fps: float) -> float:
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return fps


def _pelvis(traj, name: str = "trajectory") -> np.ndarray:
    """(T, 22, 3) joints, (T, 3) or (T, 2) pelvis -> (T, 2 or 3) pelvis positions."""
    t = _np(traj, name)
    if t.ndim == 3:
        t = _joints(t, name)[:, PELVIS, :]
    if t.ndim != 2 or t.shape[1] not in (2, 3) or t.shape[0] < 1:
        raise ValueError(
            f"{name} must be (T, 22, 3) joints or a (T, 2|3) pelvis trajectory in metres, "
            f"got shape {t.shape}"
        )
    return t


def _goal(goal, name: str = "goal") -> np.ndarray:
    g = _np(goal, name).reshape(-1)
    if g.shape[0] not in (2, 3) or not np.all(np.isfinite(g)):
        raise ValueError(f"{name} must be a finite (2,) or (3,) point in metres, got {goal!r}")
    return g


# ---------------------------------------------------------------------------- feet
def foot_heights(joints, floor_height=0.0) -> np.ndarray:
    """Height above the floor of the four foot joints.

    joints: (T, 22, 3) metres, map frame.
    floor_height: scalar or (T,) metres, or a callable ``(N, 2) xy metres -> (N,)
        metres`` (e.g. ``SceneModel.floor_height``) evaluated under every foot joint.
    Returns (T, 4) metres, columns in :data:`FOOT_JOINTS` order.
    """
    j = _joints(joints)
    feet = j[:, FOOT_JOINTS, :]
    if callable(floor_height):
        T = j.shape[0]
        floor = _query(floor_height, feet[..., :2].reshape(-1, 2), "floor_height", False)
        return feet[..., 2] - floor.reshape(T, len(FOOT_JOINTS))
    return feet[..., 2] - _floor(floor_height, j.shape[0])[:, None]


def foot_speeds(joints, fps: float = FPS, horizontal: bool = False) -> np.ndarray:
    """Speed of the four foot joints between consecutive frames.

    joints: (T, 22, 3) metres (T >= 2). horizontal: only the xy components.
    Returns (T-1, 4) m/s; row t is the step from frame t to t+1.
    """
    j = _joints(joints, min_frames=2)[:, FOOT_JOINTS, :]
    d = np.diff(j, axis=0)
    if horizontal:
        d = d[..., :2]
    return np.linalg.norm(d, axis=-1) * _fps(fps)


def contact_score(
    joints,
    floor_height=0.0,
    fps: float = FPS,
    speed_threshold: float = CONTACT_SPEED_THRESHOLD,
    height_threshold: float = CONTACT_HEIGHT_THRESHOLD,
    per_frame: bool = False,
):
    """Reference contact score (1 = a foot planted on the floor in every frame).

    joints: (T, 22, 3) float, metres, map frame, z up, T >= 2 at ``fps``.
    floor_height: scalar, (T,) metres or a callable (see :func:`foot_heights`).
    Per step t (frames t-1 -> t, t = 1..T-1):
    ``exp(-max(min_foot_speed - speed_threshold, 0)) *
    exp(-max(|min_foot_height_t| - height_threshold, 0))``.
    Returns the mean over steps (float in (0, 1]) or, with ``per_frame``, the (T-1,)
    per-step scores.
    """
    speed = foot_speeds(joints, fps).min(axis=1)
    height = foot_heights(joints, floor_height)[1:].min(axis=1)
    s = np.exp(-np.maximum(speed - speed_threshold, 0.0)) * np.exp(
        -np.maximum(np.abs(height) - height_threshold, 0.0)
    )
    return s if per_frame else float(s.mean())


def foot_skating(
    joints,
    floor_height=0.0,
    fps: float = FPS,
    contact_height: float = CONTACT_HEIGHT_THRESHOLD,
) -> float:
    """Mean horizontal speed (m/s) of feet while in contact with the floor.

    joints: (T, 22, 3) metres, T >= 2. floor_height: scalar, (T,) metres or a callable
    (see :func:`foot_heights`). A foot joint is in contact during the step t -> t+1
    when its height is below ``contact_height`` in both frames. Returns NaN when no foot
    is ever in contact.
    """
    h = foot_heights(joints, floor_height)
    v = foot_speeds(joints, fps, horizontal=True)
    contact = (h[:-1] < contact_height) & (h[1:] < contact_height)
    if not contact.any():
        return math.nan
    return float(v[contact].mean())


# ---------------------------------------------------------------------------- goals
def _goal_distances(traj, goal, xy_only: bool = True) -> np.ndarray:
    p = _pelvis(traj)
    g = _goal(goal)
    if xy_only or g.shape[0] == 2 or p.shape[1] == 2:
        return np.linalg.norm(p[:, :2] - g[:2], axis=1)
    return np.linalg.norm(p - g, axis=1)


def time_to_goal(traj, goal, radius: float = SUCCESS_RADIUS, fps: float = FPS) -> float:
    """Seconds until the xy pelvis distance to the goal first drops below ``radius``.

    traj: (T, 22, 3) joints or (T, 2|3) pelvis positions, metres, map frame.
    goal: (2,) or (3,) metres (z ignored). Returns ``frame_index / fps`` of the first
    frame within the radius (0.0 when the first frame already is), NaN if never.
    """
    d = _goal_distances(traj, goal)
    hit = np.flatnonzero(d < radius)
    return float(hit[0] / _fps(fps)) if hit.size else math.nan


def goal_metrics(traj, goal, radius: float = SUCCESS_RADIUS, fps: float = FPS) -> dict[str, float]:
    """Locomotion goal metrics on the xy pelvis distance to the goal.

    traj: (T, 22, 3) joints or (T, 2|3) pelvis positions, metres, map frame.
    goal: (2,) or (3,) metres (z ignored). radius: success radius, metres.
    Returns ``{"success": 1.0|0.0 (min distance < radius), "min_distance": m,
    "last_distance": m, "time_to_goal": s (NaN if never)}``.
    """
    d = _goal_distances(traj, goal)
    return {
        "success": float(d.min() < radius),
        "min_distance": float(d.min()),
        "last_distance": float(d[-1]),
        "time_to_goal": time_to_goal(traj, goal, radius, fps),
    }


def goal_distance(traj, goal) -> float:
    """Sit/lie goal distance: min over frames of the pelvis distance to the goal.

    traj: (T, 22, 3) joints or (T, 3) pelvis positions, metres. goal: (3,) metres
    (the seat/bed contact point; 3-D distance) or (2,) (xy distance).
    """
    return float(_goal_distances(traj, goal, xy_only=False).min())


# ---------------------------------------------------------------------------- scene
def _points(body_points, name: str = "body_points") -> np.ndarray:
    p = _np(body_points, name)
    if p.ndim == 2 and p.shape[1] == 3:
        p = p[:, None, :]
    if p.ndim != 3 or p.shape[2] != 3 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(
            f"{name} must be (T, P, 3) points in metres (map frame) per frame, got {p.shape}"
        )
    return p


def _query(fn: Callable, pts: np.ndarray, name: str, expect_bool: bool) -> np.ndarray:
    out = fn(pts)
    out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
    out = out.reshape(-1)
    if out.shape[0] != pts.shape[0]:
        raise ValueError(
            f"{name} must return one value per query point ({pts.shape[0]}), got {out.shape}"
        )
    return out.astype(bool) if expect_bool else out.astype(np.float64)


def sdf_values(body_points, sdf: Callable) -> np.ndarray:
    """Evaluate a signed distance function on per-frame body points.

    body_points: (T, P, 3) metres, map frame (e.g. the 22 joints or mesh vertices).
    sdf: callable ``(N, 3) float metres -> (N,) float metres``, negative inside
        occupied space.
    Returns (T, P) signed distances in metres.
    """
    p = _points(body_points)
    T, P, _ = p.shape
    return _query(sdf, p.reshape(-1, 3), "sdf", expect_bool=False).reshape(T, P)


def penetrating_frames(
    body_points,
    sdf: Callable | None = None,
    occupied: Callable | None = None,
    tolerance: float = 0.0,
) -> np.ndarray:
    """Which frames have a body point inside occupied space (e.g. to mark them in plots).

    body_points: (T, P, 3) metres, map frame.
    Exactly one of: ``sdf`` (callable (N, 3) -> (N,) metres, negative inside; a point
    penetrates when sdf < -tolerance) or ``occupied`` (callable (N, 3) -> (N,) bool).
    Returns (T,) bool, True where the frame penetrates.
    """
    if (sdf is None) == (occupied is None):
        raise ValueError("pass exactly one of sdf= or occupied=")
    p = _points(body_points)
    T, P, _ = p.shape
    if sdf is not None:
        inside = sdf_values(p, sdf) < -float(tolerance)
    else:
        inside = _query(occupied, p.reshape(-1, 3), "occupied", expect_bool=True).reshape(T, P)
    return inside.any(axis=1)


def non_penetration_body(
    body_points,
    sdf: Callable | None = None,
    occupied: Callable | None = None,
    tolerance: float = 0.0,
) -> float:
    """Fraction of frames whose body points are all outside occupied space.

    Arguments as :func:`penetrating_frames`. Returns a fraction in [0, 1].
    """
    return float((~penetrating_frames(body_points, sdf, occupied, tolerance)).mean())


def non_penetration_feet(
    joints,
    walkable: Callable,
    floor_height=0.0,
    contact_height: float | None = None,
) -> float:
    """Fraction of frames whose feet stand on walkable floor.

    joints: (T, 22, 3) metres, map frame. walkable: callable ``(N, 2) xy metres ->
    (N,) bool`` (True on free floor; e.g. :func:`walkable_query`).
    contact_height: when given, only foot joints lower than this (metres above
    ``floor_height``: scalar, (T,) or callable) are checked and frames without such a foot count
    as fine; None checks all four foot joints in every frame.
    Returns a fraction in [0, 1].
    """
    j = _joints(joints)
    T = j.shape[0]
    feet = j[:, FOOT_JOINTS, :]
    ok = _query(walkable, feet[..., :2].reshape(-1, 2), "walkable", expect_bool=True)
    ok = ok.reshape(T, len(FOOT_JOINTS))
    if contact_height is not None:
        h = foot_heights(j, floor_height)
        ok = ok | (h >= contact_height)
    return float(ok.all(axis=1).mean())


def interaction_penetration(body_points, sdf: Callable) -> dict[str, float]:
    """Interaction penetration: per frame the summed ``|min(sdf, 0)|`` of body points.

    body_points: (T, P, 3) metres, map frame. sdf: callable (N, 3) -> (N,) metres,
    negative inside. Returns ``{"penetration_mean": m, "penetration_max": m}`` (mean
    and max over frames of the per-frame sum, metres).
    """
    pen = np.abs(np.minimum(sdf_values(body_points, sdf), 0.0)).sum(axis=1)
    return {"penetration_mean": float(pen.mean()), "penetration_max": float(pen.max())}


# ---------------------------------------------------------------------------- queries
def walkable_query(free, origin_xy, resolution: float) -> Callable[[np.ndarray], np.ndarray]:
    """Callable for :func:`non_penetration_feet` from a walkable grid.

    free: (H, W) bool, rows = y, cols = x; origin_xy: (2,) metres, outer corner of
    cell (0, 0); resolution: metres per cell. Points off the grid are not walkable.
    """
    free = np.asarray(free).astype(bool)
    if free.ndim != 2:
        raise ValueError(f"free must be an (H, W) grid, got shape {free.shape}")
    origin = _np(origin_xy, "origin_xy").reshape(2)
    res = float(resolution)
    if res <= 0:
        raise ValueError(f"resolution must be > 0 metres, got {res}")
    H, W = free.shape

    def query(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        ij = np.floor((xy - origin) / res).astype(np.int64)
        j, i = ij[:, 0], ij[:, 1]
        ok = (i >= 0) & (i < H) & (j >= 0) & (j < W)
        out = np.zeros(len(xy), dtype=bool)
        out[ok] = free[i[ok], j[ok]]
        return out

    return query


def voxel_sdf_query(
    sdf_grid, origin_xyz, resolution: float, outside: float = 1.0
) -> Callable[[np.ndarray], np.ndarray]:
    """Trilinear SDF lookup in a voxel grid, for the penetration metrics.

    sdf_grid: (X, Y, Z) float metres indexed [ix, iy, iz]; voxel (ix, iy, iz) centre =
    ``origin_xyz + (idx + 0.5) * resolution``. Points off the grid get ``outside``.
    """
    from scipy.ndimage import map_coordinates

    g = _np(sdf_grid, "sdf_grid")
    if g.ndim != 3:
        raise ValueError(f"sdf_grid must be (X, Y, Z) metres, got shape {g.shape}")
    origin = _np(origin_xyz, "origin_xyz").reshape(3)
    res = float(resolution)
    if res <= 0:
        raise ValueError(f"resolution must be > 0 metres, got {res}")
    hi = np.array(g.shape) - 1.0

    def query(pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        c = (pts - origin) / res - 0.5
        inside = np.all((c >= -0.5) & (c <= hi + 0.5), axis=1)
        vals = map_coordinates(g, np.clip(c, 0.0, hi).T, order=1, mode="nearest")
        return np.where(inside, vals, outside)

    return query


# ---------------------------------------------------------------------------- all
def trajectory_metrics(
    joints,
    goal=None,
    *,
    floor_height=0.0,
    fps: float = FPS,
    sdf: Callable | None = None,
    occupied: Callable | None = None,
    walkable: Callable | None = None,
    body_points=None,
    interaction: bool = False,
    success_radius: float = SUCCESS_RADIUS,
) -> dict[str, float]:
    """All metrics of one sample that the given inputs allow.

    joints: (T, 22, 3) metres, map frame, at ``fps``. goal: (2,)/(3,) metres or None.
    body_points: (T, P, 3) metres for the scene metrics (default: the joints).
    sdf / occupied / walkable: scene queries (see the functions above).
    interaction: True for sit/lie samples: adds ``goal_distance`` and the penetration
    metrics instead of the locomotion goal metrics.
    Returns a flat dict with the keys of :data:`METRIC_DIRECTIONS` that apply.
    """
    j = _joints(joints, min_frames=2)
    out: dict[str, float] = {
        "contact": contact_score(j, floor_height, fps),
        "foot_skating": foot_skating(j, floor_height, fps),
    }
    pts = j if body_points is None else _points(body_points)
    if sdf is not None or occupied is not None:
        out["non_penetration"] = non_penetration_body(
            pts, sdf=sdf, occupied=None if sdf is not None else occupied
        )
    if walkable is not None:
        out["non_penetration_feet"] = non_penetration_feet(j, walkable, floor_height)
    if goal is not None:
        if interaction:
            out["goal_distance"] = goal_distance(j, goal)
        else:
            out.update(goal_metrics(j, goal, success_radius, fps))
    if interaction and sdf is not None:
        out.update(interaction_penetration(pts, sdf))
    return out


# ---------------------------------------------------------------------------- aggregation
def best_of_n(values: Sequence[float], higher_is_better: bool) -> float:
    """Best value over N samples, ignoring NaN (NaN when all are NaN).

    values: (N,) floats. higher_is_better: True takes the max, False the min.
    """
    v = _np(values, "values").reshape(-1)
    if v.size == 0:
        raise ValueError("best_of_n needs at least one value")
    if np.all(np.isnan(v)):
        return math.nan
    return float(np.nanmax(v) if higher_is_better else np.nanmin(v))


def mean_over_samples(values: Sequence[float]) -> float:
    """Mean over samples ignoring NaN (NaN when all are NaN). values: (N,) floats."""
    v = _np(values, "values").reshape(-1)
    if v.size == 0:
        raise ValueError("mean_over_samples needs at least one value")
    if np.all(np.isnan(v)):
        return math.nan
    return float(np.nanmean(v))


def aggregate_samples(
    samples: Sequence[Mapping[str, float]],
    directions: Mapping[str, str] = METRIC_DIRECTIONS,
) -> dict[str, dict[str, float]]:
    """Best-of-N (per metric, independently, as the reference reports) and mean.

    samples: N dicts of metric name -> value for the same query (N >= 1).
    directions: metric name -> "max" or "min" (metrics not listed are averaged only).
    Returns ``{"best": {name: value}, "mean": {name: value}}``.
    """
    if not samples:
        raise ValueError("aggregate_samples needs at least one sample")
    names: list[str] = []
    for s in samples:
        for k in s:
            if k not in names:
                names.append(k)
    best: dict[str, float] = {}
    mean: dict[str, float] = {}
    for k in names:
        vals = [float(s.get(k, math.nan)) for s in samples]
        mean[k] = mean_over_samples(vals)
        if k in directions:
            if directions[k] not in ("max", "min"):
                raise ValueError(f"direction of {k!r} must be 'max' or 'min'")
            best[k] = best_of_n(vals, directions[k] == "max")
    return {"best": best, "mean": mean}


def aggregate_suite(
    per_query: Sequence[Sequence[Mapping[str, float]]],
    directions: Mapping[str, str] = METRIC_DIRECTIONS,
) -> dict[str, dict[str, float]]:
    """Aggregate a suite: best-of-N / mean per query, then the mean over queries.

    per_query: Q lists of N sample dicts. Returns ``{"best": {...}, "mean": {...}}``
    where ``best[k]`` is the mean over queries of each query's best-of-N and
    ``mean[k]`` the mean over queries of each query's sample mean.
    """
    if not per_query:
        raise ValueError("aggregate_suite needs at least one query")
    aggs = [aggregate_samples(q, directions) for q in per_query]
    out: dict[str, dict[str, float]] = {}
    for part in ("best", "mean"):
        names: list[str] = []
        for a in aggs:
            for k in a[part]:
                if k not in names:
                    names.append(k)
        out[part] = {k: mean_over_samples([a[part].get(k, math.nan) for a in aggs]) for k in names}
    return out
