"""Any-angle path planning on walkable free space with clearance, plus smoothing.

Pipeline of :meth:`Planner.plan`:

1. validate and snap start/goal to the nearest free cell within ``snap_tolerance``;
2. geodesic cost-to-goal field (scipy Dijkstra on the 8-connected, no-corner-cutting
   grid) -> exact reachability (a clear reason when the goal is cut off) and the search
   heuristic;
3. Lazy Theta* (any-angle, one line-of-sight check per expansion);
4. greedy shortcutting with exact line-of-sight on continuous endpoints -> ``waypoints``;
5. optional corner rounding (quadratic Bezier, only where collision-free) and
   resampling at a fixed spacing -> ``path``.

Every returned segment crosses only free cells, so the clearance baked into the grid
(see :meth:`WalkableGrid.from_occupancy`) holds along the whole path.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .grid import _FOUR_CONNECTED, WalkableGrid, _as_xy, _los_uv
from .search import geodesic_cost, lazy_theta_star

log = logging.getLogger(__name__)


@dataclass
class PlannerConfig:
    """Parameters of the planner, the approach poses and the re-planner."""

    clearance_radius: float = 0.25
    """Metres kept between the body centre and obstacles; applied when the planner
    builds the walkable grid itself (from occupancy or ``scene.walkable_grid``)."""
    snap_tolerance: float = 0.5
    """Metres: a start/goal inside an obstacle or its clearance is moved to the nearest
    free cell when one lies within this distance; otherwise planning fails."""
    heuristic: str = "geodesic"
    """``"geodesic"`` (8-grid Dijkstra field: few expansions, near-optimal) or
    ``"euclidean"`` (admissible straight-line distance, slower on cluttered maps)."""
    max_expansions: int = 0
    """Upper bound on Lazy Theta* expansions (0 = none)."""
    search_window_margin: float = 3.0
    """Metres: on big maps the search runs in the bounding box of start and goal grown
    by this margin when they are connected inside it (else on the whole map); any path
    found is collision-free, at worst slightly longer than a detour outside the window.
    ``inf`` always searches the whole map."""
    shortcut: bool = True
    """Remove waypoints whose neighbours see each other (greedy string pulling)."""
    corner_radius: float = 0.3
    """Metres: corners of the shortcut polyline are rounded with this radius (capped at
    half of each adjacent segment) where the rounded curve stays free; 0 disables."""
    smoothing_spacing: float = 0.1
    """Metres between consecutive points of the resampled ``path``."""
    sit_approach_distance: float = 0.25
    """Metres from the seat's front edge to the standing point in front of it."""
    lie_approach_distance: float = 0.25
    """Metres from the bed's long side to the standing point beside it."""
    default_seat_half_depth: float = 0.25
    """Metres: half depth of a seat whose affordance extent is unknown (zero)."""
    approach_search_extra: float = 0.6
    """Metres the standing point may be pushed further out when the nominal one is not
    free (e.g. within the clearance of the seat itself)."""
    approach_search_step: float = 0.05
    """Metres between standing-point candidates along each approach direction."""
    sit_angle_offsets_deg: tuple[float, ...] = (
        0.0,
        15.0,
        -15.0,
        30.0,
        -30.0,
        45.0,
        -45.0,
        60.0,
        -60.0,
        90.0,
        -90.0,
    )
    """Degrees: approach directions tried around the seat's front, in order (+-90 =
    beside the seat, e.g. a chair pushed under a table)."""
    lie_along_fractions: tuple[float, ...] = (0.0, 0.4, -0.4, 0.8, -0.8)
    """Positions along the bed's long side tried, as fractions of its half length."""
    goal_tolerance: float = 0.2
    """Metres: the path follower reports the goal reached within this distance."""
    replan_max_deviation: float = 0.75
    """Metres: the follower re-plans when the body is further than this from its path."""
    replan_horizon: float = math.inf
    """Metres of remaining path checked against a new map (inf = all of it)."""


@dataclass
class PlanResult:
    """Outcome of one planning query (map frame, metres).

    success: True when a collision-free path was found.
    waypoints: (K, 2) float64 corners of the shortcut any-angle path, start first
        (K >= 2 on success; (0, 2) on failure). A straight line gives K = 2.
    path: (M, 2) float64 the smoothed path resampled every ``smoothing_spacing``
        metres (first/last point = start/goal); (0, 2) on failure.
    length: metres along ``path`` (inf on failure).
    reason: human-readable failure reason ("" on success).
    notes: messages about what was adjusted (snapped start/goal).
    start_xy, goal_xy: (2,) the endpoints actually used (after snapping); None when
        invalid.
    expansions: search expansions. planning_time_s: wall-clock seconds.
    """

    success: bool
    waypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    length: float = math.inf
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    start_xy: np.ndarray | None = None
    goal_xy: np.ndarray | None = None
    expansions: int = 0
    planning_time_s: float = 0.0

    def poses(self) -> np.ndarray:
        """(M, 3) float64 (x, y, yaw) along ``path``: yaw (radians) of the direction of
        travel at each point (the last point keeps the last segment's yaw); (0, 3) on
        failure. For nav_msgs/Path-like outputs."""
        return path_poses(self.path)


def path_poses(path: np.ndarray) -> np.ndarray:
    """(M, 2) metres polyline -> (M, 3) (x, y, yaw) with the direction of travel."""
    pts = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros((0, 3))
    if len(pts) == 1:
        return np.concatenate([pts, np.zeros((1, 1))], axis=1)
    d = np.diff(pts, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    yaw = np.concatenate([yaw, yaw[-1:]])
    return np.concatenate([pts, yaw[:, None]], axis=1)


def point_along(path: np.ndarray, distance: float) -> np.ndarray:
    """The point ``distance`` metres along a (M, 2) polyline (clamped to its ends)."""
    pts = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("point_along needs a non-empty path")
    if len(pts) == 1:
        return pts[0].copy()
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    d = min(max(float(distance), 0.0), s[-1])
    return np.array([np.interp(d, s, pts[:, 0]), np.interp(d, s, pts[:, 1])])


def _fmt(xy: np.ndarray) -> str:
    return f"({xy[0]:.2f}, {xy[1]:.2f})"


def polyline_length(points: np.ndarray) -> float:
    """Length in metres of a (K, 2) polyline."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())


def resample_polyline(points: np.ndarray, spacing: float) -> np.ndarray:
    """Resample a (K, 2) polyline at a fixed arc-length spacing (metres).

    Returns (M, 2) float64 with the first and last input points kept exactly; the
    last interval may be shorter than ``spacing``.
    """
    pts = np.asarray(points, dtype=np.float64)
    if spacing <= 0:
        raise ValueError(f"spacing must be > 0 metres, got {spacing}")
    if len(pts) < 2:
        return pts.copy()
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-12])
    pts = pts[keep]
    if len(pts) < 2:
        return pts.copy()
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    total = s[-1]
    n = max(int(math.ceil(total / spacing - 1e-9)), 1)
    q = np.minimum(np.arange(n + 1) * spacing, total)
    q[-1] = total
    return np.stack([np.interp(q, s, pts[:, 0]), np.interp(q, s, pts[:, 1])], axis=1)


class Planner:
    """Plans collision-free any-angle paths on a :class:`WalkableGrid`."""

    def __init__(self, config: PlannerConfig | None = None):
        self.config = config or PlannerConfig()
        if self.config.heuristic not in ("geodesic", "euclidean"):
            raise ValueError(
                f"heuristic must be 'geodesic' or 'euclidean', got {self.config.heuristic!r}"
            )
        if self.config.smoothing_spacing <= 0:
            raise ValueError("smoothing_spacing must be > 0 metres")

    # ------------------------------------------------------------------ grids
    def grid_from_occupancy(self, occupied: np.ndarray, origin_xy, resolution) -> WalkableGrid:
        """Walkable grid from raw occupancy (H, W) bool with ``config.clearance_radius``."""
        return WalkableGrid.from_occupancy(
            occupied, origin_xy, resolution, self.config.clearance_radius
        )

    def grid_from_scene(self, scene) -> WalkableGrid:
        """Walkable grid from a SceneModel (``scene.walkable_grid(clearance_radius)``)."""
        return WalkableGrid.coerce(scene.walkable_grid(self.config.clearance_radius))

    # ------------------------------------------------------------------ endpoints
    def snap(self, grid: WalkableGrid, xy, what: str) -> tuple[np.ndarray | None, str, str]:
        """Validate an endpoint and snap it onto free space.

        xy: (2,) metres, map frame. what: "start" or "goal" (for messages).
        Returns ``(cell_ij or None, failure_reason, note)``.
        """
        xy = _as_xy(xy, what)
        if not bool(grid.contains(xy)):
            (x0, y0), (x1, y1) = grid.extent_xy
            return (
                None,
                f"{what} {_fmt(xy)} is off the map (x in [{x0:.2f}, {x1:.2f}], "
                f"y in [{y0:.2f}, {y1:.2f}])",
                "",
            )
        if bool(grid.is_free(xy)):
            return grid.world_to_cell(xy), "", ""
        inside = bool(grid.is_occupied(xy))
        where = "inside an obstacle" if inside else "too close to an obstacle"
        if grid.occupied is None:
            where = "inside an obstacle or within the body clearance of one"
        ij, dist = grid.nearest_free_cell(xy, self.config.snap_tolerance)
        if ij is None:
            _, far = grid.nearest_free_cell(xy, None)
            if math.isinf(far):
                return None, "the map has no walkable cell (is the clearance too large?)", ""
            return (
                None,
                f"{what} is {where} (nearest free cell {far:.2f} m away, snap tolerance "
                f"{self.config.snap_tolerance:.2f} m)",
                "",
            )
        note = (
            f"{what} {_fmt(xy)} was {where}; snapped {dist:.2f} m to {_fmt(grid.cell_center(ij))}"
        )
        return ij, "", note

    # ------------------------------------------------------------------ planning
    def plan(self, grid, start_xy, goal_xy) -> PlanResult:
        """Plan from ``start_xy`` to ``goal_xy``.

        grid: :class:`WalkableGrid` (or anything :meth:`WalkableGrid.coerce` accepts).
        start_xy, goal_xy: (2,) or (3,) float, metres, map frame (z ignored).
        Returns a :class:`PlanResult`; failures carry a reason instead of raising
        (malformed arguments still raise ValueError).
        """
        t0 = time.perf_counter()
        grid = WalkableGrid.coerce(grid)
        start = _as_xy(start_xy, "start_xy")
        goal = _as_xy(goal_xy, "goal_xy")

        def fail(reason: str, notes=(), expansions: int = 0) -> PlanResult:
            log.info("planning failed: %s", reason)
            return PlanResult(
                success=False,
                reason=reason,
                notes=list(notes),
                expansions=expansions,
                planning_time_s=time.perf_counter() - t0,
            )

        if not grid.free.any():
            return fail("the map has no walkable cell (is the clearance too large?)")
        s_ij, why, s_note = self.snap(grid, start, "start")
        if s_ij is None:
            return fail(why)
        g_ij, why, g_note = self.snap(grid, goal, "goal")
        notes = [n for n in (s_note, g_note) if n]
        if g_ij is None:
            return fail(why, notes)
        start_used = start if not s_note else grid.cell_center(s_ij)
        goal_used = goal if not g_note else grid.cell_center(g_ij)

        labels = grid.labels
        ls, lg = labels[s_ij[0], s_ij[1]], labels[g_ij[0], g_ij[1]]
        if ls != lg:
            return fail(
                "goal unreachable: the free space around the goal "
                f"({grid.component_area(g_ij):.1f} m^2) is not connected to the start's "
                f"({grid.component_area(s_ij):.1f} m^2)",
                notes,
            )

        # Search a window around start and goal when they are connected inside it
        # (big maps); otherwise the whole start/goal component.
        free, off = self._search_window(grid, s_ij, g_ij)
        if free is None:
            free, off = labels == lg, np.zeros(2, dtype=np.int64)
        heur = None
        if self.config.heuristic == "geodesic":
            heur = geodesic_cost(free, g_ij - off)
        cells, expansions = lazy_theta_star(
            free, s_ij - off, g_ij - off, heur, 1.0, self.config.max_expansions
        )
        if cells is not None:
            cells = np.asarray(cells, dtype=np.int64) + off
        if cells is None:
            return fail(f"search budget exhausted after {expansions} expansions", notes)

        centres = grid.cell_center(cells)
        raw = np.concatenate([start_used[None], centres, goal_used[None]])
        waypoints = _dedupe(raw)
        if self.config.shortcut:
            waypoints = shortcut(grid, waypoints)
        if len(waypoints) < 2:
            waypoints = np.stack([start_used, goal_used])
        rounded = round_corners(grid, waypoints, self.config.corner_radius)
        path = resample_free(grid, rounded, self.config.smoothing_spacing)
        result = PlanResult(
            success=True,
            waypoints=waypoints,
            path=path,
            length=polyline_length(path),
            notes=notes,
            start_xy=start_used,
            goal_xy=goal_used,
            expansions=expansions,
            planning_time_s=time.perf_counter() - t0,
        )
        log.debug(
            "planned %.2f m, %d waypoints, %d expansions, %.1f ms",
            result.length,
            len(waypoints),
            expansions,
            1e3 * result.planning_time_s,
        )
        return result

    def _search_window(
        self, grid: WalkableGrid, s_ij: np.ndarray, g_ij: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Free cells of the start/goal component inside the bounding box of start and
        goal grown by ``search_window_margin``, and the window's (row, col) offset;
        ``(None, _)`` when the window is most of the map or does not connect them."""
        margin = self.config.search_window_margin
        H, W = grid.shape
        if not math.isfinite(margin):
            return None, np.zeros(2, dtype=np.int64)
        m = int(math.ceil(margin / grid.resolution))
        i0 = max(int(min(s_ij[0], g_ij[0])) - m, 0)
        i1 = min(int(max(s_ij[0], g_ij[0])) + m + 1, H)
        j0 = max(int(min(s_ij[1], g_ij[1])) - m, 0)
        j1 = min(int(max(s_ij[1], g_ij[1])) + m + 1, W)
        off = np.array([i0, j0], dtype=np.int64)
        if (i1 - i0) * (j1 - j0) > 0.6 * H * W:
            return None, off
        sub = grid.free[i0:i1, j0:j1]
        lab, _ = ndimage.label(sub, structure=_FOUR_CONNECTED)
        a = lab[s_ij[0] - i0, s_ij[1] - j0]
        if a == 0 or a != lab[g_ij[0] - i0, g_ij[1] - j0]:
            return None, off
        return lab == a, off


def _dedupe(points: np.ndarray) -> np.ndarray:
    """Drop consecutive duplicate points of a (K, 2) polyline."""
    if len(points) < 2:
        return points
    keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-9])
    return points[keep]


def shortcut(grid: WalkableGrid, points: np.ndarray) -> np.ndarray:
    """Greedy string pulling: from each kept point jump to the furthest visible one.

    grid: WalkableGrid. points: (K, 2) metres, consecutive points mutually visible.
    Returns (K', 2) with K' <= K, same endpoints, every segment collision-free.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) <= 2:
        return pts.copy()
    uv = grid.to_cell_coords(pts)
    out = [0]
    i = 0
    last = len(pts) - 1
    while i < last:
        j = last
        while j > i + 1 and not _los_uv(grid.free, uv[i], uv[j]):
            j -= 1
        out.append(j)
        i = j
    return pts[out]


def round_corners(grid: WalkableGrid, points: np.ndarray, radius: float) -> np.ndarray:
    """Round the corners of a (K, 2) polyline with quadratic Bezier arcs where free.

    radius: metres measured along each adjacent segment (capped at half its length);
    a corner whose arc would cross a non-free cell is tried with half the radius twice
    more and left sharp otherwise. Returns a denser (K'', 2) polyline.
    """
    pts = np.asarray(points, dtype=np.float64)
    if radius <= 0 or len(pts) < 3:
        return pts.copy()
    out = [pts[0]]
    for k in range(1, len(pts) - 1):
        a, b, c = out[-1], pts[k], pts[k + 1]
        ab = a - b
        cb = c - b
        la, lc = np.linalg.norm(ab), np.linalg.norm(cb)
        if la < 1e-9 or lc < 1e-9:
            out.append(b)
            continue
        # ``a`` is the end of the previous arc, which used at most half of segment (a, b);
        # leave half of (b, c) for the next corner unless c is the endpoint.
        r = min(radius, la, lc if k == len(pts) - 2 else 0.5 * lc)
        placed = False
        for _ in range(3):
            p1 = b + ab / la * r
            p2 = b + cb / lc * r
            n = max(int(math.ceil(2 * r / max(grid.resolution, 1e-6))), 4)
            t = np.linspace(0.0, 1.0, n + 1)[:, None]
            arc = (1 - t) ** 2 * p1 + 2 * (1 - t) * t * b + t**2 * p2
            seq = np.concatenate([out[-1][None], arc])
            uv = grid.to_cell_coords(seq)
            if all(_los_uv(grid.free, uv[m], uv[m + 1]) for m in range(len(uv) - 1)):
                out.extend(arc)
                placed = True
                break
            r *= 0.5
        if not placed:
            out.append(b)
    out.append(pts[-1])
    return _dedupe(np.asarray(out))


def resample_free(grid: WalkableGrid, points: np.ndarray, spacing: float) -> np.ndarray:
    """Resample a collision-free (K, 2) polyline every ``spacing`` metres, keeping it free.

    A resampled chord that spans a vertex of the input cuts that corner; where such a
    chord would cross a non-free cell the skipped input vertices are put back.
    Returns (M, 2) float64 metres.
    """
    pts = _dedupe(np.asarray(points, dtype=np.float64))
    out = resample_polyline(pts, spacing)
    if len(pts) <= 2:
        return out
    s_in = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    # Arc length of resampled points on the input polyline (they lie on it exactly).
    s_out = np.minimum(np.arange(len(out)) * spacing, s_in[-1])
    s_out[-1] = s_in[-1]
    uv = grid.to_cell_coords(out)
    rows = [out[0]]
    for k in range(len(out) - 1):
        inner = np.flatnonzero((s_in > s_out[k] + 1e-9) & (s_in < s_out[k + 1] - 1e-9))
        if inner.size and not _los_uv(grid.free, uv[k], uv[k + 1]):
            rows.extend(pts[inner])
        rows.append(out[k + 1])
    return np.asarray(rows)
