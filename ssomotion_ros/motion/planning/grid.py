"""2-D walkable grids: coordinate conventions, clearance, snapping, line of sight.

Grid convention (shared with ``SceneModel.walkable_grid(body_radius)``):

* ``free``: (H, W) bool, True where the body's centre may stand (clearance applied).
* ``origin_xy``: (2,) float, metres, map frame: the outer corner of cell (0, 0).
* ``resolution``: float, metres per cell.
* Row index ``i`` follows y, column index ``j`` follows x; the centre of cell (i, j) is
  ``origin_xy + ((j + 0.5) * res, (i + 0.5) * res)``.

Internally the search works in *cell coordinates* ``(u, v) = ((x, y) - origin) / res``
so that cell (i, j) covers ``[j, j + 1) x [i, i + 1)`` and its centre is
``(j + 0.5, i + 0.5)``.

Movement rule (used consistently by the search, the reachability test and the line of
sight): a path may only pass through free cells and may not cut a corner between two
cells that touch only diagonally; in other words free cells are 4-connected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: 4-connectivity structure for :func:`scipy.ndimage.label`.
_FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def _as_xy(xy, name: str) -> np.ndarray:
    """Return ``xy`` as a (2,) float64 array (the first two entries of a 2-/3-vector)."""
    try:
        arr = np.asarray(xy, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 2- or 3-vector of metres, got {xy!r}") from exc
    if arr.shape[0] not in (2, 3) or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} must be a finite 2- or 3-vector (x, y[, z]) in metres, got {xy!r}"
        )
    return arr[:2].copy()


@dataclass
class WalkableGrid:
    """A 2-D grid of positions where the body centre may stand (map frame).

    free: (H, W) bool; True = walkable with the body clearance already applied.
    origin_xy: (2,) float64, metres, map frame; outer corner of cell (0, 0).
    resolution: float, metres per cell (> 0).
    occupied: optional (H, W) bool raw obstacle footprint (before clearance); only used
        to word failure reasons ("inside an obstacle" vs "too close to one").
    """

    free: np.ndarray
    origin_xy: np.ndarray
    resolution: float
    occupied: np.ndarray | None = None

    def __post_init__(self) -> None:
        free = np.asarray(self.free)
        if free.ndim != 2 or free.shape[0] < 1 or free.shape[1] < 1:
            raise ValueError(
                f"free must be a non-empty (H, W) boolean grid, got shape {free.shape}"
            )
        if free.dtype != bool:
            if not np.issubdtype(free.dtype, np.number):
                raise ValueError(f"free must be boolean (True = walkable), got {free.dtype}")
            free = free != 0
        self.free = np.ascontiguousarray(free)
        self.origin_xy = _as_xy(self.origin_xy, "origin_xy")
        res = float(self.resolution)
        if not math.isfinite(res) or res <= 0:
            raise ValueError(f"resolution must be a positive number of metres, got {res}")
        self.resolution = res
        if self.occupied is not None:
            occ = np.asarray(self.occupied).astype(bool)
            if occ.shape != self.free.shape:
                raise ValueError(f"occupied has shape {occ.shape} but free has {self.free.shape}")
            self.occupied = occ
        self._labels: np.ndarray | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_occupancy(
        cls,
        occupied: np.ndarray,
        origin_xy,
        resolution: float,
        clearance_radius: float,
    ) -> WalkableGrid:
        """Build a walkable grid from raw occupancy by applying a body clearance.

        occupied: (H, W) bool, True where an obstacle projects onto the floor.
        origin_xy: (2,) float, metres, map frame (same convention as ``free``).
        resolution: float, metres per cell.
        clearance_radius: float, metres (>= 0): the body radius to keep clear.

        A cell is free when the Euclidean distance from its centre to the centre of
        every occupied cell is at least ``clearance_radius + resolution / sqrt(2)``.
        The extra half cell diagonal makes the guarantee hold for *every point* of a
        path that only crosses free cells: any such point is at least
        ``clearance_radius`` from every occupied cell centre.
        """
        occ = np.asarray(occupied)
        if occ.ndim != 2:
            raise ValueError(f"occupied must be an (H, W) grid, got shape {occ.shape}")
        occ = occ.astype(bool)
        res = float(resolution)
        if not math.isfinite(res) or res <= 0:
            raise ValueError(f"resolution must be a positive number of metres, got {res}")
        radius = float(clearance_radius)
        if not math.isfinite(radius) or radius < 0:
            raise ValueError(f"clearance_radius must be >= 0 metres, got {radius}")
        if not occ.any():
            free = np.ones(occ.shape, dtype=bool)
        else:
            dist = ndimage.distance_transform_edt(~occ) * res
            free = dist >= radius + res / math.sqrt(2.0) - 1e-9
            free &= ~occ
        return cls(free=free, origin_xy=origin_xy, resolution=res, occupied=occ)

    @classmethod
    def coerce(cls, grid) -> WalkableGrid:
        """Accept a :class:`WalkableGrid`, a ``(free, origin_xy, resolution)`` tuple, or
        any object with ``free``, ``origin_xy`` and ``resolution`` attributes (such as
        what ``SceneModel.walkable_grid`` returns)."""
        if isinstance(grid, WalkableGrid):
            return grid
        if isinstance(grid, (tuple, list)) and len(grid) == 3:
            return cls(free=grid[0], origin_xy=grid[1], resolution=grid[2])
        if all(hasattr(grid, a) for a in ("free", "origin_xy", "resolution")):
            return cls(free=grid.free, origin_xy=grid.origin_xy, resolution=grid.resolution)
        raise ValueError(
            "expected a WalkableGrid, a (free, origin_xy, resolution) tuple or an object "
            f"with those attributes, got {type(grid).__name__}"
        )

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) number of rows (y) and columns (x)."""
        return self.free.shape  # type: ignore[return-value]

    @property
    def extent_xy(self) -> np.ndarray:
        """(2, 2) float: [[x_min, y_min], [x_max, y_max]] of the grid, metres."""
        H, W = self.shape
        lo = self.origin_xy
        return np.stack([lo, lo + np.array([W, H]) * self.resolution])

    def to_cell_coords(self, xy) -> np.ndarray:
        """(..., 2) metres, map frame -> (..., 2) continuous cell coords (u=x, v=y)."""
        return (np.asarray(xy, dtype=np.float64) - self.origin_xy) / self.resolution

    def from_cell_coords(self, uv) -> np.ndarray:
        """(..., 2) continuous cell coords -> (..., 2) metres, map frame."""
        return np.asarray(uv, dtype=np.float64) * self.resolution + self.origin_xy

    def world_to_cell(self, xy) -> np.ndarray:
        """(..., 2) metres -> (..., 2) int64 cell indices (i = row/y, j = col/x).

        Indices may lie outside the grid; check with :meth:`in_bounds`.
        """
        uv = self.to_cell_coords(xy)
        return np.floor(uv[..., ::-1]).astype(np.int64)

    def cell_center(self, ij) -> np.ndarray:
        """(..., 2) int cell indices (i, j) -> (..., 2) float metres, map frame."""
        ij = np.asarray(ij, dtype=np.float64)
        return self.origin_xy + (ij[..., ::-1] + 0.5) * self.resolution

    def in_bounds(self, ij) -> np.ndarray:
        """(..., 2) int cell indices -> (...) bool, True inside the grid."""
        ij = np.asarray(ij)
        H, W = self.shape
        return (ij[..., 0] >= 0) & (ij[..., 0] < H) & (ij[..., 1] >= 0) & (ij[..., 1] < W)

    def contains(self, xy) -> np.ndarray:
        """(..., 2) metres -> (...) bool, True where the point lies on the grid."""
        return self.in_bounds(self.world_to_cell(xy))

    def is_free(self, xy) -> np.ndarray:
        """(..., 2) metres, map frame -> (...) bool; points off the grid are not free."""
        ij = self.world_to_cell(xy)
        H, W = self.shape
        ok = self.in_bounds(ij)
        ic = np.clip(ij[..., 0], 0, H - 1)
        jc = np.clip(ij[..., 1], 0, W - 1)
        return ok & self.free[ic, jc]

    def is_occupied(self, xy) -> np.ndarray:
        """(..., 2) metres -> (...) bool: True where the raw occupancy is known and set."""
        ij = self.world_to_cell(xy)
        if self.occupied is None:
            return np.zeros(ij.shape[:-1], dtype=bool)
        H, W = self.shape
        ok = self.in_bounds(ij)
        ic = np.clip(ij[..., 0], 0, H - 1)
        jc = np.clip(ij[..., 1], 0, W - 1)
        return ok & self.occupied[ic, jc]

    # ------------------------------------------------------------------ connectivity
    @property
    def labels(self) -> np.ndarray:
        """(H, W) int32 connected-component id of every free cell (0 = not free).

        Components follow the movement rule (4-connectivity, no corner cutting).
        """
        if self._labels is None:
            self._labels, _ = ndimage.label(self.free, structure=_FOUR_CONNECTED)
        return self._labels

    def component_area(self, ij) -> float:
        """Area in m^2 of the free component containing cell ``ij`` (0 if not free)."""
        lab = self.labels[int(ij[0]), int(ij[1])]
        if lab == 0:
            return 0.0
        return float(np.count_nonzero(self.labels == lab)) * self.resolution**2

    def nearest_free_cell(
        self, xy, max_distance: float | None = None
    ) -> tuple[np.ndarray | None, float]:
        """Nearest free cell to a point.

        xy: (2,) metres, map frame. max_distance: metres; None searches the whole grid.
        Returns ``(ij, distance)``: the (2,) int64 cell index whose centre is nearest to
        ``xy`` and that distance in metres, or ``(None, inf)`` when no free cell lies
        within ``max_distance``.
        """
        xy = _as_xy(xy, "xy")
        H, W = self.shape
        uv = self.to_cell_coords(xy)
        if max_distance is None:
            i0, i1, j0, j1 = 0, H, 0, W
        else:
            r = float(max_distance) / self.resolution + 1.0
            i0 = max(int(math.floor(uv[1] - r)), 0)
            i1 = min(int(math.ceil(uv[1] + r)) + 1, H)
            j0 = max(int(math.floor(uv[0] - r)), 0)
            j1 = min(int(math.ceil(uv[0] + r)) + 1, W)
            if i0 >= i1 or j0 >= j1:
                return None, math.inf
        win = self.free[i0:i1, j0:j1]
        ii, jj = np.nonzero(win)
        if ii.size == 0:
            return None, math.inf
        du = jj + j0 + 0.5 - uv[0]
        dv = ii + i0 + 0.5 - uv[1]
        d2 = du * du + dv * dv
        k = int(np.argmin(d2))
        dist = math.sqrt(float(d2[k])) * self.resolution
        if max_distance is not None and dist > max_distance + 1e-12:
            return None, math.inf
        return np.array([ii[k] + i0, jj[k] + j0], dtype=np.int64), dist

    # ------------------------------------------------------------------ line of sight
    def segment_cells(self, p_xy, q_xy) -> np.ndarray:
        """Cells touched by the segment p -> q (metres), following the movement rule.

        Returns (N, 2) int64 cell indices (may include cells off the grid). Where the
        segment passes exactly through a cell corner both cells beside the corner are
        included (no corner cutting).
        """
        p = self.to_cell_coords(_as_xy(p_xy, "p_xy"))
        q = self.to_cell_coords(_as_xy(q_xy, "q_xy"))
        return _segment_cells_uv(p, q)

    def line_of_sight(self, p_xy, q_xy) -> bool:
        """True when every cell the segment p -> q (metres, map frame) crosses is free."""
        p = self.to_cell_coords(_as_xy(p_xy, "p_xy"))
        q = self.to_cell_coords(_as_xy(q_xy, "q_xy"))
        return _los_uv(self.free, p, q)

    def polyline_free(self, points_xy) -> np.ndarray:
        """(K, 2) metres polyline -> (K-1,) bool, True where segment k is collision-free."""
        pts = np.asarray(points_xy, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"points_xy must be (K, 2) metres, got shape {pts.shape}")
        uv = self.to_cell_coords(pts)
        return np.array(
            [_los_uv(self.free, uv[k], uv[k + 1]) for k in range(len(uv) - 1)], dtype=bool
        )


def _segment_ij(u0: float, v0: float, u1: float, v1: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the cells touched by the segment (u0, v0) -> (u1, v1) given in
    cell coordinates (may repeat); at exact corner passes both cells beside the corner
    are added."""
    du = u1 - u0
    dv = v1 - v0
    parts = []
    if du != 0.0:
        lo, hi = (u0, u1) if du > 0 else (u1, u0)
        a, b = math.floor(lo) + 1, math.ceil(hi)
        if b > a:
            parts.append((np.arange(a, b, dtype=np.float64) - u0) / du)
    if dv != 0.0:
        lo, hi = (v0, v1) if dv > 0 else (v1, v0)
        a, b = math.floor(lo) + 1, math.ceil(hi)
        if b > a:
            parts.append((np.arange(a, b, dtype=np.float64) - v0) / dv)
    if not parts:
        return (
            np.array([math.floor(v0), math.floor(v1)], dtype=np.intp),
            np.array([math.floor(u0), math.floor(u1)], dtype=np.intp),
        )
    ts = parts[0] if len(parts) == 1 else np.concatenate(parts)
    ts.sort()
    edges = np.empty(len(ts) + 2)
    edges[0] = 0.0
    edges[-1] = 1.0
    edges[1:-1] = ts
    mid = 0.5 * (edges[:-1] + edges[1:])
    # Interval midpoints, plus the endpoints' own cells (they differ only when an
    # endpoint lies exactly on a cell boundary; points belong to the cell they floor to).
    i = np.floor(np.concatenate([[v0, v1], v0 + mid * dv])).astype(np.intp)
    j = np.floor(np.concatenate([[u0, u1], u0 + mid * du])).astype(np.intp)
    if len(parts) == 2:
        corner = np.flatnonzero(np.diff(ts) < 1e-12)
        if corner.size:
            t = ts[corner]
            cu = np.round(u0 + t * du)
            cv = np.round(v0 + t * dv)
            bi = (cv - (1.0 if dv > 0 else 0.0)).astype(np.intp)
            bj = (cu - (1.0 if du > 0 else 0.0)).astype(np.intp)
            si = 1 if dv > 0 else -1
            sj = 1 if du > 0 else -1
            i = np.concatenate([i, bi + si, bi])
            j = np.concatenate([j, bj, bj + sj])
    return i, j


def _segment_cells_uv(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(N, 2) int64 cells (i, j) touched by the segment p -> q in cell coords (u, v)."""
    i, j = _segment_ij(float(p[0]), float(p[1]), float(q[0]), float(q[1]))
    return np.stack([i, j], axis=1).astype(np.int64)


def _los_uv(free: np.ndarray, p, q) -> bool:
    """Line of sight between two points in cell coordinates on a free grid."""
    u0, v0, u1, v1 = float(p[0]), float(p[1]), float(q[0]), float(q[1])
    H, W = free.shape
    # The grid is convex: the segment stays on it iff both endpoints do.
    if not (0.0 <= u0 < W and 0.0 <= u1 < W and 0.0 <= v0 < H and 0.0 <= v1 < H):
        return False
    i0, i1, j0, j1 = math.floor(v0), math.floor(v1), math.floor(u0), math.floor(u1)
    if abs(i1 - i0) <= 1 and abs(j1 - j0) <= 1:
        # Short segment (the common case): decide exactly without numpy.
        if not (free[i0, j0] and free[i1, j1]):
            return False
        if i0 == i1 or j0 == j1:
            return True
        # Diagonal step: which cell lies between, or both at an exact corner pass.
        ib, jb = max(i0, i1), max(j0, j1)
        y = v0 + (jb - u0) * (v1 - v0) / (u1 - u0)
        if abs(y - ib) < 1e-12:
            return bool(free[i0, j1] and free[i1, j0])
        row = ib if y > ib else ib - 1
        return bool(free[i0, j1]) if row == i0 else bool(free[i1, j0])
    i, j = _segment_ij(u0, v0, u1, v1)
    return bool(free[i, j].all())
