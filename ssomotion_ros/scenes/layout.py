"""Room layouts: the room shell, placement rules, and the reachability guarantee.

Map frame (REP-103, metres): the room interior spans ``[0, width] x [0, depth]`` in x, y;
the floor is z = 0. Walls are ``south`` (y = 0), ``east`` (x = width), ``north``
(y = depth) and ``west`` (x = 0); a position along a wall (``offset``) is measured from
its start: x for south/north, y for east/west.

:func:`generate_spec` turns a parsed prompt (or classes + counts) into a
:class:`SceneSpec`: it samples the room size and door, places every object by its rule
(against walls, in corners, chairs around tables and desks, nightstands beside beds,
coffee tables in front of sofas, TVs facing sofas, stools at counters, clutter
anywhere), rejects overlaps (footprints grown by ``clearance``), and accepts a layout
only when every object has a floor approach point reachable on foot from the door on
a 2-D grid whose free cells keep ``body_radius`` from every obstacle. Failed layouts
are resampled; after ``max_attempts`` a :class:`LayoutError` says what did not fit.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ssomotion_ros.scenes.objects import LIBRARY, PlacedObject, get_class, sample_object
from ssomotion_ros.scenes.prompt import ParsedPrompt, parse_prompt

log = logging.getLogger(__name__)

WALLS = ("south", "east", "north", "west")

#: Default room size (width x, depth y) in metres per room type.
ROOM_SIZES = {
    "living room": (5.0, 4.2),
    "bedroom": (4.2, 3.8),
    "kitchen": (4.2, 3.4),
    "bathroom": (3.0, 2.6),
    "office": (4.0, 3.4),
    "dining room": (4.6, 4.0),
    "room": (4.5, 4.0),
}

#: Classes clutter mode draws from (the reference's cluttered rooms hold furniture).
CLUTTER_CLASSES = (
    "chair", "stool", "box", "plant", "trash can", "cabinet", "coffee table", "bench",
    "armchair", "lamp", "bookshelf", "dining table", "nightstand", "desk",
)  # fmt: skip

#: Placement order: big wall furniture first, dependants last.
_ORDER = (
    "bed", "wardrobe", "kitchen counter", "refrigerator", "bathtub", "sofa", "desk",
    "dining table", "tv stand", "bookshelf", "cabinet", "sink", "toilet", "coffee table",
    "nightstand", "armchair", "bench", "chair", "stool", "plant", "lamp", "box", "trash can",
)  # fmt: skip


class LayoutError(ValueError):
    """No valid layout was found (objects do not fit or are not reachable)."""


@dataclass
class Opening:
    """A door or window in a wall.

    wall: one of :data:`WALLS`. offset: metres along the wall to the opening's centre.
    width: metres. z0, z1: bottom and top height, metres.
    """

    wall: str
    offset: float
    width: float
    z0: float
    z1: float

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


@dataclass
class RoomSpec:
    """The room shell.

    width, depth: interior size along x and y, metres. height: wall height, metres.
    wall_thickness: metres (walls stand outside the interior).
    door: the door opening (the entry point for reachability).
    windows: window openings.
    ceiling: whether the mesh has a ceiling (off by default: scans then see the walls
        and furniture from inside without a lid, like most mapping datasets).
    room_type: the prompt's room type.
    cutout: [x0, y0, x1, y1] metres, a corner of the rectangle that is solid wall (an
        L-shaped room), or None.
    """

    width: float
    depth: float
    height: float = 2.6
    wall_thickness: float = 0.1
    door: Opening = field(default_factory=lambda: Opening("south", 0.8, 0.9, 0.0, 2.05))
    windows: list[Opening] = field(default_factory=list)
    ceiling: bool = False
    room_type: str = "room"
    cutout: list[float] | None = None

    def wall_length(self, wall: str) -> float:
        return self.width if wall in ("south", "north") else self.depth

    def wall_frame(self, wall: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(origin (2,), along (2,), inward normal (2,)) of a wall's inner face."""
        w, d = self.width, self.depth
        return {
            "south": (np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0])),
            "east": (np.array([w, 0.0]), np.array([0.0, 1.0]), np.array([-1.0, 0.0])),
            "north": (np.array([0.0, d]), np.array([1.0, 0.0]), np.array([0.0, -1.0])),
            "west": (np.array([0.0, 0.0]), np.array([0.0, 1.0]), np.array([1.0, 0.0])),
        }[wall]

    def covered(self, wall: str) -> tuple[float, float] | None:
        """The interval (along ``wall``, metres) hidden behind the cutout, or None."""
        if self.cutout is None:
            return None
        x0, y0, x1, y1 = self.cutout
        eps = 1e-9
        if wall == "south" and y0 <= eps:
            return (x0, x1)
        if wall == "north" and y1 >= self.depth - eps:
            return (x0, x1)
        if wall == "west" and x0 <= eps:
            return (y0, y1)
        if wall == "east" and x1 >= self.width - eps:
            return (y0, y1)
        return None

    def cutout_polygon(self) -> np.ndarray | None:
        """(4, 2) corners of the cutout, or None."""
        if self.cutout is None:
            return None
        x0, y0, x1, y1 = self.cutout
        return np.array([[x1, y1], [x0, y1], [x0, y0], [x1, y0]], dtype=np.float64)

    def door_pose(self, inside: float = 0.5) -> np.ndarray:
        """(3,) x, y, yaw of a person standing ``inside`` metres in front of the door,
        facing into the room."""
        o, a, n = self.wall_frame(self.door.wall)
        p = o + a * self.door.offset + n * inside
        return np.array([p[0], p[1], np.arctan2(n[1], n[0])])

    def door_zone(self) -> PlacedObject:
        """The floor area kept free inside the door (door width + 0.3 m, 1.1 m deep)."""
        o, a, n = self.wall_frame(self.door.wall)
        c = o + a * self.door.offset + n * 0.55
        return PlacedObject(
            "box", 0, c, float(np.arctan2(n[1], n[0])), np.array([1.1, self.door.width + 0.3, 1])
        )

    def to_dict(self) -> dict:
        return {
            "width": round(self.width, 6),
            "depth": round(self.depth, 6),
            "height": round(self.height, 6),
            "wall_thickness": self.wall_thickness,
            "door": self.door.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "ceiling": self.ceiling,
            "room_type": self.room_type,
            "cutout": None if self.cutout is None else [round(float(v), 6) for v in self.cutout],
        }

    @classmethod
    def from_dict(cls, d: dict) -> RoomSpec:
        try:
            room = cls(
                width=float(d["width"]),
                depth=float(d["depth"]),
                height=float(d.get("height", 2.6)),
                wall_thickness=float(d.get("wall_thickness", 0.1)),
                door=Opening(**d["door"]) if "door" in d else Opening("south", 0.8, 0.9, 0, 2.05),
                windows=[Opening(**w) for w in d.get("windows", [])],
                ceiling=bool(d.get("ceiling", False)),
                room_type=str(d.get("room_type", "room")),
                cutout=None if d.get("cutout") is None else [float(v) for v in d["cutout"]],
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"bad room entry in scene spec ({e}): {d}") from None
        if room.width <= 0 or room.depth <= 0 or room.height <= 0:
            raise ValueError(f"room width, depth and height must be positive: {d}")
        if room.cutout is not None:
            x0, y0, x1, y1 = room.cutout
            if not (0 <= x0 < x1 <= room.width and 0 <= y0 < y1 <= room.depth):
                raise ValueError(f"cutout {room.cutout} must lie inside the room")
        for op in [room.door, *room.windows]:
            cov = room.covered(op.wall)
            if cov and op.offset + op.width / 2 > cov[0] and op.offset - op.width / 2 < cov[1]:
                raise ValueError(f"opening {op} lies on wall hidden by the cutout")
            if op.wall not in WALLS:
                raise ValueError(f"opening wall must be one of {WALLS}, got {op.wall!r}")
            if not (op.width / 2 <= op.offset <= room.wall_length(op.wall) - op.width / 2):
                raise ValueError(f"opening {op} does not fit on the {op.wall} wall")
        return room


@dataclass
class SceneSpec:
    """A complete, reproducible scene: room shell plus placed objects.

    room: the shell. objects: placed furniture (instance ids unique, > 0).
    prompt: the text it came from ("" for hand-written specs). seed: the RNG seed.
    """

    room: RoomSpec
    objects: list[PlacedObject]
    prompt: str = ""
    seed: int = 0

    def to_dict(self) -> dict:
        return {
            "format": "ssomotion_scene/1",
            "prompt": self.prompt,
            "seed": int(self.seed),
            "room": self.room.to_dict(),
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, d: dict) -> SceneSpec:
        """Build from :meth:`to_dict` output; ValueError naming the problem if malformed."""
        if not isinstance(d, dict) or "room" not in d:
            raise ValueError("scene spec must be a mapping with 'room' and 'objects'")
        objects = [PlacedObject.from_dict(o) for o in d.get("objects") or []]
        ids = [o.instance_id for o in objects]
        if len(set(ids)) != len(ids) or any(i <= 0 for i in ids):
            raise ValueError(f"object instance_ids must be unique and > 0, got {ids}")
        return cls(
            RoomSpec.from_dict(d["room"]), objects, str(d.get("prompt", "")), int(d.get("seed", 0))
        )

    def save(self, path: str | Path) -> None:
        """Write YAML (``.yaml``/``.yml``) or JSON (any other suffix)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            path.write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> SceneSpec:
        """Read a spec written by :meth:`save` (YAML or JSON, by suffix)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"scene spec not found: {path}")
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                d = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise ValueError(f"{path}: not valid YAML ({e})") from None
        else:
            try:
                d = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(d)


@dataclass
class LayoutConfig:
    """Placement and reachability parameters."""

    #: Minimum gap between object footprints, metres.
    clearance: float = 0.05
    #: Gap between an object's back and its wall, metres.
    wall_gap: float = 0.02
    #: Radius of the walking body for reachability, metres.
    body_radius: float = 0.25
    #: Cell size of the reachability grid, metres.
    grid_resolution: float = 0.05
    #: Candidate poses tried per object before a layout attempt fails.
    tries_per_object: int = 80
    #: Whole-layout attempts before giving up with a LayoutError.
    max_attempts: int = 40
    #: Grow an automatically sized room by this factor every ``grow_every`` failures.
    grow_factor: float = 1.08
    #: Failed attempts between room growths (automatic room size only).
    grow_every: int = 8
    #: Largest fraction of the floor that furniture footprints may cover when the room
    #: size is chosen automatically.
    max_fill: float = 0.33


# ------------------------------------------------------------------ geometry


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test of two convex quadrilaterals (4, 2); touching counts as apart."""
    ea = a[[1, 2, 3, 0]] - a
    eb = b[[1, 2, 3, 0]] - b
    e = np.concatenate([ea, eb])
    normals = np.stack([-e[:, 1], e[:, 0]], axis=1)  # (8, 2)
    pa = a @ normals.T
    pb = b @ normals.T
    sep = (pa.max(0) <= pb.min(0) + 1e-9) | (pb.max(0) <= pa.min(0) + 1e-9)
    return not bool(sep.any())


def _inside_room(poly: np.ndarray, room: RoomSpec, tol: float = 1e-6) -> bool:
    return bool(
        np.all(poly[:, 0] >= -tol)
        and np.all(poly[:, 0] <= room.width + tol)
        and np.all(poly[:, 1] >= -tol)
        and np.all(poly[:, 1] <= room.depth + tol)
    )


@dataclass
class FreeSpace:
    """2-D walkable free space of a scene (map frame, metres).

    origin: (2,) x, y of the grid corner (cell (0, 0) spans origin .. origin + res).
    resolution: cell size, metres.
    occupied: (NX, NY) bool, True where an obstacle (wall, furniture footprint) is.
    walkable: (NX, NY) bool, True where a body of ``body_radius`` fits (its centre may
        stand there).
    reachable: (NX, NY) bool, walkable cells connected to the door.
    body_radius: metres.
    """

    origin: np.ndarray
    resolution: float
    occupied: np.ndarray
    walkable: np.ndarray
    reachable: np.ndarray
    body_radius: float

    def cell(self, xy: np.ndarray) -> np.ndarray:
        """Map xy (..., 2) metres -> integer cell indices (..., 2) (may be out of range)."""
        return np.floor((np.asarray(xy)[..., :2] - self.origin) / self.resolution).astype(int)

    def center(self, ij: np.ndarray) -> np.ndarray:
        """Cell indices (..., 2) -> cell centres (..., 2), metres."""
        return self.origin + (np.asarray(ij) + 0.5) * self.resolution

    def is_reachable(self, xy: np.ndarray) -> np.ndarray:
        """(...,) bool: whether points xy (..., 2) lie on reachable cells."""
        xy = np.asarray(xy, dtype=np.float64)
        flat = xy.reshape(-1, xy.shape[-1])
        ij = self.cell(flat)
        ok = (ij[:, 0] >= 0) & (ij[:, 1] >= 0)
        ok &= (ij[:, 0] < self.reachable.shape[0]) & (ij[:, 1] < self.reachable.shape[1])
        out = np.zeros(len(flat), bool)
        out[ok] = self.reachable[ij[ok, 0], ij[ok, 1]]
        return out.reshape(xy.shape[:-1])

    def path(self, start_xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
        """Shortest 8-connected grid path on reachable cells: (K, 2) metres, map frame.

        Raises ValueError when start or goal is not reachable.
        """
        return _grid_path(self, np.asarray(start_xy, float), np.asarray(goal_xy, float))


def free_space(
    room: RoomSpec,
    objects: list[PlacedObject],
    body_radius: float = 0.25,
    resolution: float = 0.05,
) -> FreeSpace:
    """Rasterise walls and object footprints and find the floor reachable from the door.

    room, objects: the layout. body_radius: metres kept from obstacles.
    resolution: grid cell, metres. Returns :class:`FreeSpace`.
    """
    grid = _Grid(room, resolution)
    occ = grid.walls.copy()
    for obj in objects:
        grid.add(occ, obj)
    return grid.free(occ, room, body_radius)


class _Grid:
    """Cell centres of a room's floor grid (2 cells of padding outside the walls)."""

    def __init__(self, room: RoomSpec, resolution: float):
        pad = 2
        self.res = resolution
        self.nx = int(np.ceil(room.width / resolution)) + 2 * pad
        self.ny = int(np.ceil(room.depth / resolution)) + 2 * pad
        self.origin = np.array([-pad * resolution, -pad * resolution])
        ii, jj = np.meshgrid(np.arange(self.nx), np.arange(self.ny), indexing="ij")
        self.cx = self.origin[0] + (ii + 0.5) * resolution
        self.cy = self.origin[1] + (jj + 0.5) * resolution
        h = resolution / 2  # cells within half a cell of a wall count as wall (conservative)
        self.walls = (self.cx < h) | (self.cx > room.width - h)
        self.walls |= (self.cy < h) | (self.cy > room.depth - h)
        if room.cutout is not None:
            x0, y0, x1, y1 = room.cutout
            self.walls |= (
                (self.cx > x0 - h) & (self.cx < x1 + h) & (self.cy > y0 - h) & (self.cy < y1 + h)
            )

    def add(self, occ: np.ndarray, obj: PlacedObject) -> None:
        """Mark the cells that overlap ``obj``'s footprint (in place): cells whose centres
        lie in the footprint grown by half a cell diagonal, so walkable cell centres keep
        ``body_radius`` from the true footprint (conservative rasterisation)."""
        poly = obj.footprint(self.res * np.sqrt(0.5))
        lo = np.floor((poly.min(0) - self.origin) / self.res).astype(int) - 1
        hi = np.ceil((poly.max(0) - self.origin) / self.res).astype(int) + 1
        lo = np.clip(lo, 0, [self.nx, self.ny])
        hi = np.clip(hi, 0, [self.nx, self.ny])
        sx, sy = slice(lo[0], hi[0]), slice(lo[1], hi[1])
        px, py = self.cx[sx, sy], self.cy[sx, sy]
        inside = np.ones(px.shape, bool)
        for k in range(4):
            a, b = poly[k], poly[(k + 1) % 4]
            inside &= (b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0]) >= -1e-9
        occ[sx, sy] |= inside

    def free(self, occ: np.ndarray, room: RoomSpec, body_radius: float) -> FreeSpace:
        dist = ndimage.distance_transform_edt(~occ) * self.res
        walk = dist > body_radius
        comp, _ = ndimage.label(walk, structure=np.ones((3, 3), bool))
        start = room.door_pose(inside=body_radius + 0.1)[:2]
        sij = np.floor((start - self.origin) / self.res).astype(int)
        reach = np.zeros_like(walk)
        if 0 <= sij[0] < self.nx and 0 <= sij[1] < self.ny and comp[sij[0], sij[1]] > 0:
            reach = comp == comp[sij[0], sij[1]]
        return FreeSpace(self.origin, self.res, occ, walk, reach, body_radius)


def _grid_path(fs: FreeSpace, start: np.ndarray, goal: np.ndarray) -> np.ndarray:
    import heapq

    s = tuple(fs.cell(start))
    g = tuple(fs.cell(goal))
    for name, c in (("start", s), ("goal", g)):
        inb = 0 <= c[0] < fs.reachable.shape[0] and 0 <= c[1] < fs.reachable.shape[1]
        if not inb or not fs.reachable[c]:
            raise ValueError(
                f"path {name} {start if name == 'start' else goal} is not on reachable floor"
            )
    nx, ny = fs.reachable.shape
    dist = np.full((nx, ny), np.inf)
    prev = -np.ones((nx, ny, 2), int)
    dist[s] = 0.0
    heap = [(0.0, s)]
    steps = [
        (dx, dy, float(np.hypot(dx, dy))) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy
    ]
    # A* with the octile heuristic
    while heap:
        _, c = heapq.heappop(heap)
        if c == g:
            break
        dc = dist[c]
        for dx, dy, w in steps:
            n = (c[0] + dx, c[1] + dy)
            if not (0 <= n[0] < nx and 0 <= n[1] < ny) or not fs.reachable[n]:
                continue
            nd = dc + w
            if nd < dist[n]:
                dist[n] = nd
                prev[n] = c
                hx, hy = abs(n[0] - g[0]), abs(n[1] - g[1])
                h = max(hx, hy) + (np.sqrt(2) - 1) * min(hx, hy)
                heapq.heappush(heap, (nd + h, n))
    cells = [g]
    while cells[-1] != s:
        p = tuple(prev[cells[-1]])
        if p[0] < 0:
            raise ValueError("no path between start and goal")
        cells.append(p)
    pts = fs.center(np.array(cells[::-1]))
    pts[0], pts[-1] = start[:2], goal[:2]
    return pts


# ------------------------------------------------------------------ placement


class _Placer:
    def __init__(self, room: RoomSpec, cfg: LayoutConfig, rng: np.random.Generator):
        self.room = room
        self.cfg = cfg
        self.rng = rng
        self.placed: list[PlacedObject] = []
        self.zone = room.door_zone()
        self.grid = _Grid(room, cfg.grid_resolution)
        self.occ = self.grid.walls.copy()
        self.approach_pts: list[np.ndarray] = []

    def fits(self, obj: PlacedObject) -> bool:
        poly = obj.footprint()
        if not _inside_room(poly, self.room):
            return False
        grown = obj.footprint(self.cfg.clearance / 2)
        if _overlap(poly, self.zone.footprint()):
            return False
        cut = self.room.cutout_polygon()
        if cut is not None and _overlap(poly, cut):
            return False
        r = float(np.hypot(obj.size[0], obj.size[1])) / 2 + self.cfg.clearance / 2
        for o in self.placed:
            ro = float(np.hypot(o.size[0], o.size[1])) / 2 + self.cfg.clearance / 2
            dx, dy = obj.position - o.position
            if dx * dx + dy * dy >= (r + ro) ** 2:
                continue  # bounding circles apart
            if _overlap(grown, o.footprint(self.cfg.clearance / 2)):
                return False
        return True

    # candidate generators -------------------------------------------------
    def _against_wall(self, size, wall=None, corner=None) -> tuple[np.ndarray, float] | None:
        room, rng = self.room, self.rng
        wall = wall or WALLS[int(rng.integers(4))]
        o, a, n = room.wall_frame(wall)
        length = room.wall_length(wall)
        half_w = size[1] / 2
        if length < 2 * half_w:
            return None
        if corner is None:
            u = rng.uniform(half_w, length - half_w)
        else:
            u = half_w + 0.02 if corner == 0 else length - half_w - 0.02
        pos = o + a * u + n * (size[0] / 2 + self.cfg.wall_gap)
        return pos, float(np.arctan2(n[1], n[0]))

    def _free(self, size, axis_aligned=False):
        m = max(size[0], size[1]) / 2
        if self.room.width < 2 * m or self.room.depth < 2 * m:
            return None
        pos = np.array(
            [self.rng.uniform(m, self.room.width - m), self.rng.uniform(m, self.room.depth - m)]
        )
        yaw = (
            float(self.rng.integers(4)) * np.pi / 2
            if axis_aligned
            else float(self.rng.uniform(-np.pi, np.pi))
        )
        return pos, yaw

    def _relative(self, anchor: PlacedObject, local_xy, yaw_offset):
        pos = anchor.to_map(np.array([local_xy[0], local_xy[1], 0.0]))[:2]
        return pos, float(anchor.yaw + yaw_offset)

    def _first(self, name):
        return [o for o in self.placed if o.name == name]

    def candidate(self, name: str, size: np.ndarray, k: int, clutter: bool):
        rng = self.rng
        cls = get_class(name)
        if clutter:
            return self._free(size)
        gap = self.cfg.clearance + 0.03
        if name == "chair":
            tables = self._first("dining table") + self._first("desk")
            if tables and k < self.cfg.tries_per_object * 3 // 4:
                t = tables[int(rng.integers(len(tables)))]
                td, tw = t.size[0], t.size[1]
                if t.name == "desk":
                    return self._relative(
                        t, (td / 2 + gap + size[0] / 2 - 0.1, rng.uniform(-0.2, 0.2)), np.pi
                    )
                side = int(rng.integers(4))
                if side < 2:  # long sides (local +x / -x)
                    s = 1 if side == 0 else -1
                    nslot = max(1, int(tw // 0.6))
                    slot = int(rng.integers(nslot))
                    y = -tw / 2 + (slot + 0.5) * tw / nslot
                    return self._relative(
                        t, (s * (td / 2 + gap + size[0] / 2), y), np.pi if s > 0 else 0.0
                    )
                s = 1 if side == 2 else -1
                return self._relative(t, (0.0, s * (tw / 2 + gap + size[0] / 2)), -s * np.pi / 2)
        if name == "nightstand":
            beds = self._first("bed")
            if beds and k < self.cfg.tries_per_object // 2:
                b = beds[int(rng.integers(len(beds)))]
                s = 1 if rng.random() < 0.5 else -1
                x = -b.size[0] / 2 + size[0] / 2
                return self._relative(b, (x, s * (b.size[1] / 2 + gap + size[1] / 2)), 0.0)
        if name == "coffee table":
            seats = self._first("sofa") + self._first("armchair")
            if seats and k < self.cfg.tries_per_object // 2:
                s = seats[0]
                d = s.size[0] / 2 + rng.uniform(0.65, 0.8) + size[0] / 2
                return self._relative(s, (d, rng.uniform(-0.1, 0.1)), 0.0)
        if name == "armchair":
            tables = self._first("coffee table")
            if tables and k < self.cfg.tries_per_object // 2:
                t = tables[0]
                s = 1 if rng.random() < 0.5 else -1
                d = t.size[1] / 2 + rng.uniform(0.65, 0.8) + size[0] / 2
                return self._relative(t, (0.0, s * d), -s * np.pi / 2)
        if name == "stool":
            counters = self._first("kitchen counter") + self._first("dining table")
            if counters and k < self.cfg.tries_per_object // 2:
                c = counters[int(rng.integers(len(counters)))]
                y = rng.uniform(-c.size[1] / 2 + 0.2, c.size[1] / 2 - 0.2)
                return self._relative(c, (c.size[0] / 2 + gap + size[0] / 2, y), np.pi)
        if name == "tv stand":
            sofas = self._first("sofa")
            if sofas and k < self.cfg.tries_per_object // 2:
                f = np.array([np.cos(sofas[0].yaw), np.sin(sofas[0].yaw)])
                for wall in WALLS:
                    _, _, n = self.room.wall_frame(wall)
                    if float(n @ f) < -0.9:
                        return self._against_wall(size, wall)
        if name in ("coffee table", "dining table"):
            return self._free(size, axis_aligned=True)
        if cls.placement == "corner":
            walls = WALLS[int(rng.integers(4))]
            return self._against_wall(size, walls, corner=int(rng.integers(2)))
        if cls.placement == "free":
            return self._free(size) if rng.random() < 0.5 else self._against_wall(size)
        return self._against_wall(size)

    def place(self, name: str, iid: int, clutter: bool = False) -> PlacedObject | None:
        for k in range(self.cfg.tries_per_object):
            size, params = sample_object(name, self.rng)
            cand = self.candidate(name, size, k, clutter)
            if cand is None:
                continue
            pos, yaw = cand
            obj = PlacedObject(name, iid, np.asarray(pos, float), float(_wrap(yaw)), size, params)
            if self.fits(obj) and self.reachable_with(obj):
                self.placed.append(obj)
                return obj
        return None

    def reachable_with(self, obj: PlacedObject) -> bool:
        """Whether every placed object and ``obj`` stay reachable from the door."""
        occ = self.occ.copy()
        self.grid.add(occ, obj)
        fs = self.grid.free(occ, self.room, self.cfg.body_radius)
        pts = self.approach_pts + [_approach_points(obj)]
        if not all(len(p) and fs.is_reachable(p).any() for p in pts):
            return False
        self.occ = occ
        self.approach_pts = pts
        return True


def _approach_points(obj: PlacedObject) -> np.ndarray:
    """(K, 2) all approach candidate points of an object (all sides), metres."""
    c = obj.approach_candidates()
    return np.concatenate([x[3][:, :2] for x in c]) if c else np.zeros((0, 2))


def _wrap(a: float) -> float:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _sample_room(
    parsed: ParsedPrompt,
    items: list[str],
    clutter: list[str],
    rng: np.random.Generator,
    grow: float,
) -> RoomSpec:
    if parsed.room_size is not None:
        w, d = parsed.room_size
    else:
        w, d = ROOM_SIZES.get(parsed.room_type, ROOM_SIZES["room"])

        def fp(n: str) -> float:
            return float(np.mean(LIBRARY[n].depth) * np.mean(LIBRARY[n].width))

        # freely rotated clutter needs walking room all around: count it 1.7x
        area = sum(fp(n) for n in items) + 1.7 * sum(fp(n) for n in clutter)
        need = area / LayoutConfig.max_fill
        if need > w * d:
            s = np.sqrt(need / (w * d))
            w, d = w * s, d * s
        jitter = rng.uniform(0.92, 1.1, 2)
        scale = parsed.size_scale * grow
        w, d = float(w * jitter[0] * scale), float(d * jitter[1] * scale)
        w, d = max(w, 2.0), max(d, 2.0)
    if parsed.shape == "L" and parsed.room_size is None:
        w, d = w / np.sqrt(0.84), d / np.sqrt(0.84)  # the cutout takes ~16 % of the floor
    height = float(rng.uniform(2.5, 2.8))
    room = RoomSpec(width=w, depth=d, height=height, room_type=parsed.room_type)
    if parsed.shape == "L":
        cw, cd = w * float(rng.uniform(0.3, 0.45)), d * float(rng.uniform(0.3, 0.45))
        corner = int(rng.integers(4))
        x0 = 0.0 if corner in (0, 3) else w - cw
        y0 = 0.0 if corner in (0, 1) else d - cd
        room.cutout = [x0, y0, x0 + cw, y0 + cd]

    def free_offset(wall: str, width: float, margin: float) -> float | None:
        ln = room.wall_length(wall)
        lo, hi = width / 2 + margin, ln - width / 2 - margin
        if hi < lo:
            return None
        cov = room.covered(wall)
        for _ in range(20):
            u = float(rng.uniform(lo, hi))
            if cov is None or u + width / 2 + margin <= cov[0] or u - width / 2 - margin >= cov[1]:
                return u
        return None

    door_w = 0.9
    walls = [str(x) for x in rng.permutation(WALLS)]
    door_wall, off = walls[0], None
    for door_wall in walls:
        off = free_offset(door_wall, door_w, 0.15)
        if off is not None:
            break
    if off is None:
        raise LayoutError(f"room {w:.2f} x {d:.2f} m has no wall wide enough for a door")
    room.door = Opening(door_wall, off, door_w, 0.0, 2.05)
    n_win = int(rng.integers(1, 3))
    for wall in rng.permutation([x for x in WALLS if x != door_wall])[:n_win]:
        wall = str(wall)
        ww = float(min(rng.uniform(0.8, 1.6), room.wall_length(wall) - 0.6))
        if ww < 0.5:
            continue
        u = free_offset(wall, ww, 0.3)
        if u is None:
            continue
        room.windows.append(Opening(wall, u, ww, 0.9, min(2.2, height - 0.2)))
    return room


def generate_spec(
    prompt: str | ParsedPrompt,
    seed: int = 0,
    config: LayoutConfig | None = None,
    clutter: int | None = None,
) -> SceneSpec:
    """Build a reachable, collision-free layout for a prompt.

    prompt: room description (see :mod:`ssomotion_ros.scenes.prompt`) or its parse.
    seed: RNG seed; the same (prompt, seed, config) gives the same spec.
    clutter: overrides the prompt's number of random clutter objects.
    Raises ValueError for bad prompts and :class:`LayoutError` (a ValueError) when no
    valid layout is found in ``config.max_attempts`` attempts.
    """
    cfg = config or LayoutConfig()
    parsed = parse_prompt(prompt) if isinstance(prompt, str) else prompt
    if clutter is not None:
        if clutter < 0:
            raise ValueError(f"clutter must be >= 0, got {clutter}")
        parsed.clutter = clutter
    items = [n for n, c in parsed.objects for _ in range(c)]
    items.sort(key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER))
    rng = np.random.default_rng(seed)
    clutter_items = (
        [str(x) for x in rng.choice(CLUTTER_CLASSES, size=parsed.clutter)] if parsed.clutter else []
    )
    failures: dict[str, int] = {}
    grow = 1.0
    for attempt in range(cfg.max_attempts):
        if attempt and attempt % cfg.grow_every == 0 and parsed.room_size is None:
            grow *= cfg.grow_factor
        room = _sample_room(parsed, items, clutter_items, rng, grow)
        placer = _Placer(room, cfg, rng)
        ok = True
        iid = 1
        for name in items + clutter_items:
            is_clutter = iid > len(items)
            if placer.place(name, iid, clutter=is_clutter) is None:
                failures[f"could not place {name}"] = failures.get(f"could not place {name}", 0) + 1
                ok = False
                break
            iid += 1
        if not ok:
            continue
        fs = free_space(room, placer.placed, cfg.body_radius, cfg.grid_resolution)
        bad = unreachable_objects(placer.placed, fs)
        if bad:
            for o in bad:
                key = f"{o.name} not reachable from the door"
                failures[key] = failures.get(key, 0) + 1
            continue
        log.debug("layout for %r found at attempt %d", parsed, attempt + 1)
        text = prompt if isinstance(prompt, str) else ""
        return SceneSpec(room, placer.placed, text, seed)
    worst = ", ".join(f"{k} ({v}x)" for k, v in sorted(failures.items(), key=lambda kv: -kv[1])[:4])
    raise LayoutError(
        f"no valid layout for {prompt!r} after {cfg.max_attempts} attempts: {worst}. "
        "Use a larger room (e.g. 'a 6x5 m room ...'), fewer objects, or another seed."
    )


def unreachable_objects(objects: list[PlacedObject], fs: FreeSpace) -> list[PlacedObject]:
    """Objects with no approach point (see ``approach_candidates``) on reachable floor."""
    bad = []
    for o in objects:
        cands = o.approach_candidates()
        if not cands or not any(fs.is_reachable(c[3][:, :2]).any() for c in cands):
            bad.append(o)
    return bad
