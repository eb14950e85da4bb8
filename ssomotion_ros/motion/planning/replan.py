"""Following a planned path while the map changes under a running motion."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from .grid import WalkableGrid, _as_xy
from .planner import Planner, PlanResult, point_along, polyline_length

log = logging.getLogger(__name__)


@dataclass
class FollowStatus:
    """What :meth:`PathFollower.update` found (map frame, metres).

    plan: the current plan (a new one when ``replanned``; its ``success`` False with a
        reason when re-planning failed).
    replanned: True when this update planned again.
    why: why it re-planned ("" when it did not): the blocked segment or the deviation.
    reached: True when the position is within ``goal_tolerance`` of the goal.
    progress: metres travelled along the current plan's path (projection).
    remaining: (R, 2) float64, the rest of the path from the projected position.
    """

    plan: PlanResult
    replanned: bool
    why: str
    reached: bool
    progress: float
    remaining: np.ndarray


def _project(path: np.ndarray, xy: np.ndarray, start_seg: int) -> tuple[int, float, np.ndarray]:
    """Project ``xy`` onto segments ``start_seg..`` of a (M, 2) path.

    Returns (segment index, distance to the path, projected point).
    """
    a = path[start_seg:-1]
    b = path[start_seg + 1 :]
    ab = b - a
    denom = np.maximum((ab * ab).sum(1), 1e-18)
    t = np.clip(((xy - a) * ab).sum(1) / denom, 0.0, 1.0)
    proj = a + t[:, None] * ab
    d = np.linalg.norm(proj - xy, axis=1)
    k = int(np.argmin(d))
    return start_seg + k, float(d[k]), proj[k]


class PathFollower:
    """Keeps a plan valid: checks the remaining path on every new map and re-plans.

    Usage::

        follower = PathFollower(planner, goal_xy)
        plan = follower.start(grid, start_xy)
        ...  # every window / map update
        status = follower.update(current_xy, new_grid)   # new_grid may be None
        path_to_follow = status.remaining
    """

    def __init__(self, planner: Planner, goal_xy):
        self.planner = planner
        self.goal_xy = _as_xy(goal_xy, "goal_xy")
        self.plan: PlanResult | None = None
        self.grid: WalkableGrid | None = None
        self._seg = 0
        self.replans = 0

    def start(self, grid, start_xy) -> PlanResult:
        """Plan the initial path. grid: walkable grid; start_xy: (2,) metres."""
        self.grid = WalkableGrid.coerce(grid)
        self.plan = self.planner.plan(self.grid, start_xy, self.goal_xy)
        self._seg = 0
        return self.plan

    def _replan(self, position: np.ndarray, why: str) -> PlanResult:
        log.info("re-planning from (%.2f, %.2f): %s", position[0], position[1], why)
        self.plan = self.planner.plan(self.grid, position, self.goal_xy)
        self._seg = 0
        self.replans += 1
        return self.plan

    def lookahead(self, position_xy, distance: float) -> np.ndarray:
        """Carrot point: (2,) metres on the current path ``distance`` metres ahead of the
        body's projection onto it (the goal when closer). Does not re-plan; call
        :meth:`update` for that. Raises ValueError when there is no valid plan."""
        if self.plan is None or not self.plan.success or len(self.plan.path) == 0:
            raise ValueError("no valid plan to follow (call start() / check plan.reason)")
        path = self.plan.path
        pos = _as_xy(position_xy, "position_xy")
        if len(path) < 2:
            return path[0].copy()
        seg, _, proj = _project(path, pos, min(self._seg, len(path) - 2))
        done = polyline_length(np.concatenate([path[: seg + 1], proj[None]]))
        return point_along(path, done + float(distance))

    def update(self, position_xy, grid=None) -> FollowStatus:
        """Advance along the plan; re-plan when the map made the rest of it invalid.

        position_xy: (2,) or (3,) float, metres, map frame: the body's current position.
        grid: a new walkable grid (None keeps the last one and only tracks progress).
        The remaining path (from the body's projection onto the path to the goal) is
        checked segment by segment up to ``replan_horizon`` metres (the body itself may
        stand in the clearance margin without triggering a re-plan); the follower also
        re-plans when the body strayed more than ``replan_max_deviation`` from the path
        or when the previous plan had failed.
        """
        if self.plan is None:
            raise ValueError("call start(grid, start_xy) before update()")
        cfg = self.planner.config
        pos = _as_xy(position_xy, "position_xy")
        if grid is not None:
            self.grid = WalkableGrid.coerce(grid)
        reached = float(np.linalg.norm(pos - self.goal_xy)) <= cfg.goal_tolerance
        replanned, why = False, ""
        if not self.plan.success:
            if grid is not None:
                why = f"previous plan failed ({self.plan.reason})"
        else:
            path = self.plan.path
            if len(path) >= 2:
                seg, dev, proj = _project(path, pos, min(self._seg, len(path) - 2))
            else:
                seg, dev, proj = 0, float(np.linalg.norm(pos - path[0])), path[0]
            self._seg = seg
            if dev > cfg.replan_max_deviation:
                why = f"body is {dev:.2f} m away from its path"
            elif grid is not None and not reached:
                rest = np.concatenate([proj[None], path[seg + 1 :]])
                if np.isfinite(cfg.replan_horizon):
                    cum = np.concatenate(
                        [[0.0], np.cumsum(np.linalg.norm(np.diff(rest, axis=0), axis=1))]
                    )
                    rest = rest[: max(int(np.searchsorted(cum, cfg.replan_horizon)) + 1, 2)]
                ok = self.grid.polyline_free(rest)
                if not ok.all():
                    k = int(np.argmin(ok))
                    a, b = rest[k], rest[k + 1]
                    why = (
                        "the map changed: the path is blocked between "
                        f"({a[0]:.2f}, {a[1]:.2f}) and ({b[0]:.2f}, {b[1]:.2f})"
                    )
        if why and not reached:
            self._replan(pos, why)
            replanned = True
        plan = self.plan
        if plan.success and len(plan.path) >= 2:
            seg, _, proj = _project(plan.path, pos, min(self._seg, len(plan.path) - 2))
            remaining = np.concatenate([proj[None], plan.path[seg + 1 :]])
            progress = polyline_length(np.concatenate([plan.path[: seg + 1], proj[None]]))
        else:
            remaining = plan.path.copy()
            progress = 0.0 if plan.success else math.nan
        return FollowStatus(
            plan=plan,
            replanned=replanned,
            why=why if replanned else "",
            reached=reached,
            progress=progress,
            remaining=remaining,
        )
