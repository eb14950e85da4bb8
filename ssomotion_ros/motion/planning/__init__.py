"""Path planning on walkable free space: grids, any-angle search, approach poses and
re-planning (see ``docs/planning.md``)."""

from .approach import ApproachPose, approach_pose, plan_approach
from .grid import WalkableGrid
from .planner import Planner, PlannerConfig, PlanResult, polyline_length, resample_polyline
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
    "plan_approach",
    "polyline_length",
    "resample_polyline",
]
