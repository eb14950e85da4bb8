"""Approach poses for sitting and lying, from an affordance or a scene instance.

Conventions (map frame, REP-103, yaw in radians counter-clockwise from +x):

* Sit affordance: ``position`` = seat centre at seat height, ``facing`` = the seat's
  front direction (the way a seated person looks), ``extent = (along, across)`` half
  sizes with *along* measured along ``facing`` (half seat depth).
  The standing point lies in front of the seat along ``facing`` at
  ``extent[0] + sit_approach_distance`` from the centre; the body stands there with
  yaw = ``facing`` (its back towards the seat), ready to sit down backwards.
* Lie affordance (as ``ssomotion_ros.scenes.objects`` declares it): ``position`` =
  centre of the lying surface at its height, ``facing`` = direction from the head end
  to the foot end, ``extent = (along, across)`` half sizes with *along* measured along
  ``facing``. The long axis is the larger extent. The standing point lies beside a long
  side at ``half width + lie_approach_distance`` from the long axis; the body stands
  with its back to the bed (sits on the edge, then lies down). When the target is a
  :class:`SceneInstance` whose sit affordances face one long side only (a sofa: its
  front), that side is preferred (the other is used only when it is the only usable
  one); a bed's edge seats face both sides.

When the nominal standing point is not free (e.g. within the body clearance of the
seat itself) candidates are pushed further out (``approach_search_extra``) and, for
seats, rotated around the seat's front (``sit_angle_offsets_deg``); for beds both long
sides and several positions along them are tried. The first candidate (in the given
order) that is free and connected to the start wins; for beds the reachable candidate
with the shortest geodesic distance from the start wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...sso.types import Affordance, SceneInstance
from .grid import WalkableGrid, _as_xy
from .planner import Planner, PlannerConfig, PlanResult
from .search import geodesic_cost


@dataclass
class ApproachPose:
    """Where to walk to and how to end up sitting/lying (map frame, metres, radians).

    kind: "sit" or "lie".
    reachable: True when a free standing point connected to the start was found.
    stand_pose: (3,) float64 (x, y, yaw) of the standing point; NaN when none.
    contact_pose: (4,) float64 (x, y, z, yaw): the affordance's contact point and the
        body's yaw there (sitting: the seat's front; lying: head end -> foot end).
    reason: human-readable failure reason ("" when reachable).
    candidates: (C, 2) float64 standing points that were tried, in order.
    plan: the walk to ``stand_pose`` (filled by :func:`plan_approach`).
    """

    kind: str
    reachable: bool
    stand_pose: np.ndarray
    contact_pose: np.ndarray
    reason: str = ""
    candidates: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    plan: PlanResult | None = None


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def affordance_from_instance(instance: SceneInstance, kind: str) -> Affordance:
    """Pick (or derive) a ``kind`` affordance of a scene instance.

    Uses the instance's first affordance of that kind; otherwise derives one from the
    bounding box and yaw: sit -> seat centre above the centroid at
    ``bbox_min.z + min(0.45, 0.6 * height)``, depth = bbox size along the yaw;
    lie -> top of the bounding box, long axis = the longer horizontal side.
    """
    if kind not in ("sit", "lie"):
        raise ValueError(f"kind must be 'sit' or 'lie', got {kind!r}")
    for aff in instance.affordances:
        if aff.kind == kind:
            return aff
    lo = np.asarray(instance.bbox_min, dtype=np.float64)
    hi = np.asarray(instance.bbox_max, dtype=np.float64)
    if lo.shape != (3,) or hi.shape != (3,):
        raise ValueError(f"instance {instance.name!r} needs (3,) bbox_min and bbox_max")
    half = 0.5 * (hi - lo)
    centre = 0.5 * (hi + lo)
    yaw = float(instance.yaw)
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    if kind == "sit":
        z = lo[2] + min(0.45, 0.6 * (hi[2] - lo[2]))
        along = c * half[0] + s * half[1]
        across = s * half[0] + c * half[1]
        return Affordance(
            kind="sit",
            position=np.array([centre[0], centre[1], z]),
            facing=yaw,
            extent=np.array([along, across]),
        )
    long_yaw = 0.0 if half[0] >= half[1] else math.pi / 2
    if abs(_wrap(yaw - long_yaw)) > math.pi / 2:
        long_yaw = _wrap(long_yaw + math.pi)
    return Affordance(
        kind="lie",
        position=np.array([centre[0], centre[1], hi[2]]),
        facing=long_yaw,
        extent=np.array([max(half[0], half[1]), min(half[0], half[1])]),
    )


def _target_affordances(target, kind: str | None) -> list[Affordance]:
    """The sit/lie affordances to consider for ``target`` (at least one)."""
    if isinstance(target, Affordance):
        if kind is not None and kind != target.kind:
            raise ValueError(f"asked for a {kind!r} approach but the affordance is {target.kind}")
        if target.kind not in ("sit", "lie"):
            raise ValueError(f"approach poses exist for 'sit' and 'lie', not {target.kind!r}")
        return [target]
    if isinstance(target, SceneInstance):
        if kind is None:
            kinds = [a.kind for a in target.affordances if a.kind in ("sit", "lie")]
            if not kinds:
                raise ValueError(
                    f"instance {target.name!r} has no sit/lie affordance; pass kind='sit' "
                    "or kind='lie' to derive one from its bounding box"
                )
            kind = kinds[0]
        affs = [a for a in target.affordances if a.kind == kind]
        return affs or [affordance_from_instance(target, kind)]
    raise ValueError(f"target must be an Affordance or a SceneInstance, got {type(target)}")


def _candidates(aff: Affordance, cfg: PlannerConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate standing points (C, 2), their yaws (C,) and side ids (C,) (lying: 0/1
    for the two long sides; sitting: 0), in preference order."""
    pos = np.asarray(aff.position, dtype=np.float64).reshape(-1)
    centre = pos[:2]
    ext = np.asarray(aff.extent, dtype=np.float64).reshape(-1)
    if ext.shape[0] < 2:
        ext = np.zeros(2)
    step = max(cfg.approach_search_step, 1e-3)
    extras = np.arange(0.0, cfg.approach_search_extra + 1e-9, step)
    pts, yaws, sides = [], [], []
    if aff.kind == "sit":
        half_depth = ext[0] if ext[0] > 0 else cfg.default_seat_half_depth
        half_width = ext[1] if ext[1] > 0 else cfg.default_seat_half_depth
        for off in cfg.sit_angle_offsets_deg:
            rad = math.radians(off)
            ang = aff.facing + rad
            d = np.array([math.cos(ang), math.sin(ang)])
            # Distance from the seat centre to the seat rectangle's edge along d.
            c, sn = abs(math.cos(rad)), abs(math.sin(rad))
            edge = min(
                half_depth / c if c > 1e-9 else math.inf, half_width / sn if sn > 1e-9 else math.inf
            )
            base = edge + cfg.sit_approach_distance
            for e in extras:
                pts.append(centre + (base + e) * d)
                yaws.append(_wrap(aff.facing))
                sides.append(0)
    else:
        facing = float(aff.facing)
        if ext[0] >= ext[1]:
            long_yaw, half_len, half_wid = facing, ext[0], ext[1]
        else:
            long_yaw, half_len, half_wid = facing + math.pi / 2, ext[1], ext[0]
        axis = np.array([math.cos(long_yaw), math.sin(long_yaw)])
        for side_id, side in enumerate((1.0, -1.0)):
            normal = side * np.array([-axis[1], axis[0]])
            for frac in cfg.lie_along_fractions:
                for e in extras:
                    pts.append(
                        centre
                        + frac * half_len * axis
                        + (half_wid + cfg.lie_approach_distance + e) * normal
                    )
                    yaws.append(_wrap(math.atan2(normal[1], normal[0])))
                    sides.append(side_id)
    return np.asarray(pts), np.asarray(yaws), np.asarray(sides)


def _allowed_sides(instance: SceneInstance, yaws: np.ndarray) -> np.ndarray:
    """(C,) bool: lying candidates on a long side that some seat of ``instance`` faces
    (within 60 degrees); all True when no seat faces either side."""
    facings = [a.facing for a in instance.affordances if a.kind == "sit"]
    if not facings:
        return np.ones(len(yaws), dtype=bool)
    ok = np.zeros(len(yaws), dtype=bool)
    for f in facings:
        ok |= np.abs((yaws - f + np.pi) % (2 * np.pi) - np.pi) <= math.radians(60.0)
    return ok if ok.any() else np.ones(len(yaws), dtype=bool)


def approach_pose(
    target,
    grid,
    start_xy=None,
    kind: str | None = None,
    config: PlannerConfig | None = None,
) -> ApproachPose:
    """Standing pose to walk to before sitting on / lying on ``target``.

    target: :class:`Affordance` (kind "sit"/"lie") or :class:`SceneInstance` (all its
        affordances of the kind are considered: e.g. both edge seats of a bed, every
        seat of a sofa; one is derived from the bounding box when it has none).
    grid: walkable grid (anything :meth:`WalkableGrid.coerce` accepts).
    start_xy: (2,) metres, map frame, the body's position; when given the candidate must
        be connected to it, and among several affordances / bed sides the one with the
        shortest walking distance wins.
    kind: "sit" / "lie" (needed for instances without affordances).
    Returns an :class:`ApproachPose` (``reachable`` False with a reason when none fits).
    """
    cfg = config or PlannerConfig()
    grid = WalkableGrid.coerce(grid)
    affs = _target_affordances(target, kind)
    instance = target if isinstance(target, SceneInstance) else None
    start_ij = None
    dist = None
    if start_xy is not None:
        start_ij, why, _ = Planner(cfg).snap(grid, _as_xy(start_xy, "start_xy"), "start")
        if start_ij is None:
            pose = _single(affs[0], grid, None, None, cfg, instance)
            pose.reachable, pose.reason = False, why
            pose.stand_pose = np.full(3, np.nan)
            return pose
        if len(affs) > 1 or affs[0].kind == "lie":
            lab = grid.labels[start_ij[0], start_ij[1]]
            dist = geodesic_cost(grid.labels == lab, start_ij)
    best, best_d, first = None, math.inf, None
    for aff in affs:
        pose = _single(aff, grid, start_ij, dist, cfg, instance)
        first = first or pose
        if not pose.reachable:
            continue
        d = 0.0
        if dist is not None:
            ij = grid.world_to_cell(pose.stand_pose[:2])
            d = float(dist[ij[0], ij[1]])
        if best is None or d < best_d:
            best, best_d = pose, d
    if best is not None:
        return best
    if len(affs) > 1:
        first.reason = f"none of the {len(affs)} {affs[0].kind} places fits: {first.reason}"
    return first


def _single(
    aff: Affordance,
    grid: WalkableGrid,
    start_ij,
    dist: np.ndarray | None,
    cfg: PlannerConfig,
    instance: SceneInstance | None,
) -> ApproachPose:
    """Approach pose for one affordance (see :func:`approach_pose`)."""
    pos = np.asarray(aff.position, dtype=np.float64).reshape(-1)
    if pos.shape[0] != 3 or not np.all(np.isfinite(pos)):
        raise ValueError(f"affordance position must be a finite (3,) point, got {aff.position}")
    if aff.kind == "sit":
        contact_yaw = _wrap(float(aff.facing))
    else:
        ext = np.asarray(aff.extent, dtype=np.float64).reshape(-1)
        contact_yaw = _wrap(
            float(aff.facing) + (0.0 if ext.size < 2 or ext[0] >= ext[1] else math.pi / 2)
        )
    contact = np.array([pos[0], pos[1], pos[2], contact_yaw])
    pts, yaws, sides = _candidates(aff, cfg)
    nan_pose = np.full(3, np.nan)
    free = grid.is_free(pts)
    what = "in front of the seat" if aff.kind == "sit" else "beside the bed"
    if not free.any():
        return ApproachPose(
            kind=aff.kind,
            reachable=False,
            stand_pose=nan_pose,
            contact_pose=contact,
            reason=f"no free standing point {what} within "
            f"{cfg.approach_search_extra:.2f} m of the nominal one (blocked)",
            candidates=pts,
        )
    ij = grid.world_to_cell(pts)
    ok = free.copy()
    if start_ij is not None:
        lab = grid.labels[start_ij[0], start_ij[1]]
        comp = np.zeros(len(pts), dtype=bool)
        comp[free] = grid.labels[ij[free, 0], ij[free, 1]] == lab
        ok &= comp
        if not ok.any():
            return ApproachPose(
                aff.kind,
                False,
                nan_pose,
                contact,
                reason=f"goal unreachable: the free space {what} is not connected to the start",
                candidates=pts,
            )
    if aff.kind == "lie" and instance is not None:
        # Prefer the long side(s) the instance's seats face (a sofa's front); fall back
        # to any side when none of those is usable.
        pref = ok & _allowed_sides(instance, yaws)
        if pref.any():
            ok = pref
    idx = np.flatnonzero(ok)
    k = int(idx[0])
    if aff.kind == "lie" and dist is not None and len(set(sides[idx].tolist())) > 1:
        # The long side closest to the start by walking distance; on that side the
        # first candidate in preference order (middle of the side first).
        d = dist[ij[idx, 0], ij[idx, 1]]
        best_side = sides[idx[int(np.argmin(d))]]
        k = int(idx[sides[idx] == best_side][0])
    stand = np.array([pts[k, 0], pts[k, 1], yaws[k]])
    return ApproachPose(aff.kind, True, stand, contact, candidates=pts)


def plan_approach(
    planner: Planner,
    grid,
    start_xy,
    target,
    kind: str | None = None,
) -> ApproachPose:
    """Choose the approach pose for ``target`` and plan the walk there from ``start_xy``.

    Returns the :class:`ApproachPose` with ``plan`` set (``reachable`` False with the
    plan's reason when the walk cannot be planned).
    """
    grid = WalkableGrid.coerce(grid)
    pose = approach_pose(target, grid, start_xy, kind, planner.config)
    if not pose.reachable:
        return pose
    pose.plan = planner.plan(grid, start_xy, pose.stand_pose[:2])
    if not pose.plan.success:
        pose.reachable = False
        pose.reason = pose.plan.reason
    return pose
