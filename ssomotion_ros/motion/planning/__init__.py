"""Path planning on walkable free space: grids, any-angle search, approach poses and
re-planning (see ``docs/planning.md``)."""

from .approach import ApproachPose, approach_pose, plan_approach
from .grid import WalkableGrid
from .planner import (
    Planner,
    PlannerConfig,
    PlanResult,
    path_poses,
    point_along,
    polyline_length,
    resample_polyline,
)
from .replan import FollowStatus, PathFollower

__all__ = [
    "ApproachPose",
    "FollowStatus",
    "PathFollower",
    "PlanResult",
    "Planner",
    "PlannerConfig",
    "WalkableGrid",
    "approach_pose",
    "path_poses",
    "plan_approach",
    "point_along",
    "polyline_length",
    "resample_polyline",
]
