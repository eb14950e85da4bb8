"""The object library: furniture built from parametric primitives, with affordances.

Every object lives in its own **local frame**: origin at the centre of its footprint on
the floor, +x = the object's front (the way a seat faces, the side a wardrobe opens,
away from the wall it stands against), +y = its left, +z = up; metres. ``size`` is
(depth along x, width along y, height). A placed object adds a map-frame position
(x, y of the footprint centre, floor at z = 0) and a yaw (radians, REP-103: the map
direction of local +x).

Each class samples its dimensions from realistic ranges (seeded ``numpy`` generator),
builds boxes and cylinders (:class:`Part`), and declares affordances in local
coordinates: ``sit`` (seat centre at seat height, facing = the seat's front), ``lie``
(lying surface centre at its height, facing = direction from head end to foot end,
extent = half length/width) and floor ``approach`` points on its open sides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ssomotion_ros.sso.types import Affordance

#: Distance from an object's footprint edge to its floor approach points, metres
#: (body radius 0.25 m + 0.1 m margin).
APPROACH_MARGIN = 0.35


@dataclass(frozen=True)
class Part:
    """One primitive of an object, in the object's local frame (metres).

    kind: ``"box"`` (axis-aligned in the local frame) or ``"cylinder"`` (vertical axis).
    center: (3,) centre of the primitive.
    size: (3,) box edge lengths (x, y, z); for a cylinder (2 r, 2 r, height).
    """

    kind: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]


def _box(x0, x1, y0, y1, z0, z1) -> Part:
    return Part("box", ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2), (x1 - x0, y1 - y0, z1 - z0))


def _cyl(x, y, r, z0, z1) -> Part:
    return Part("cylinder", (x, y, (z0 + z1) / 2), (2 * r, 2 * r, z1 - z0))


@dataclass(frozen=True)
class LocalAffordance:
    """An affordance in the object's local frame (see :class:`Affordance`)."""

    kind: str
    position: tuple[float, float, float]
    facing: float = 0.0
    extent: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class ObjectClass:
    """A furniture class of the library.

    name: class name (a row of the label CSV).
    depth, width, height: (min, max) metres of the sampled size (x, y, z).
    placement: default placement rule: ``wall`` (back against a wall), ``corner``,
        ``center`` (free-standing, e.g. tables), ``free`` (anywhere, any yaw).
    params: samples extra class parameters (e.g. seat height) from (rng, size).
    parts: builds the primitives from (size, params).
    affordances: sit/lie affordances from (size, params) (approach points are added
        from ``approach_sides``).
    approach_sides: sides with a floor approach point: ``front back left right``.
    """

    name: str
    depth: tuple[float, float]
    width: tuple[float, float]
    height: tuple[float, float]
    placement: str
    parts: Callable[[np.ndarray, dict], list[Part]]
    params: Callable[[np.random.Generator, np.ndarray], dict] = lambda rng, s: {}
    affordances: Callable[[np.ndarray, dict], list[LocalAffordance]] = lambda s, p: []
    approach_sides: tuple[str, ...] = ("front",)
    square: bool = False  # width = depth (round things)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# ------------------------------------------------------------------- seats


def _chair_params(rng, s):
    return {"seat_height": _u(rng, 0.43, 0.48)}


def _chair_parts(s, p):
    d, w, h = s
    sh = p["seat_height"]
    leg = 0.035
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (d / 2 - leg / 2), sy * (w / 2 - leg / 2)
            parts.append(_box(cx - leg / 2, cx + leg / 2, cy - leg / 2, cy + leg / 2, 0, sh - 0.04))
    parts.append(_box(-d / 2, d / 2, -w / 2, w / 2, sh - 0.04, sh))
    parts.append(_box(-d / 2, -d / 2 + 0.04, -w / 2, w / 2, sh, h))
    return parts


def _chair_aff(s, p):
    d, w, _ = s
    return [LocalAffordance("sit", (0.03, 0.0, p["seat_height"]), 0.0, ((d - 0.1) / 2, w / 2))]


def _upholstered_params(rng, s):
    return {
        "seat_height": _u(rng, 0.40, 0.45),
        "arm": _u(rng, 0.12, 0.18),
        "back": _u(rng, 0.16, 0.22),
    }


def _upholstered_parts(s, p):
    d, w, h = s
    sh, arm, back = p["seat_height"], p["arm"], p["back"]
    parts = [
        _box(-d / 2, d / 2, -w / 2 + arm, w / 2 - arm, 0.08, sh),  # seat base + cushion
        _box(-d / 2, -d / 2 + back, -w / 2 + arm, w / 2 - arm, sh, h),  # back rest
        _box(-d / 2, d / 2, -w / 2, -w / 2 + arm, 0.08, sh + 0.22),  # arms
        _box(-d / 2, d / 2, w / 2 - arm, w / 2, 0.08, sh + 0.22),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (d / 2 - 0.05), sy * (w / 2 - 0.05)
            parts.append(_box(cx - 0.03, cx + 0.03, cy - 0.03, cy + 0.03, 0, 0.08))
    return parts


def _seat_depth_center(s, p):
    d = s[0]
    x0 = -d / 2 + p["back"]
    return (x0 + d / 2) / 2, (d / 2 - x0)


def _armchair_aff(s, p):
    cx, sd = _seat_depth_center(s, p)
    iw = s[1] - 2 * p["arm"]
    return [LocalAffordance("sit", (cx, 0.0, p["seat_height"]), 0.0, (sd / 2, iw / 2))]


def _sofa_aff(s, p):
    cx, sd = _seat_depth_center(s, p)
    iw = s[1] - 2 * p["arm"]
    n = max(2, int(round(iw / 0.6)))
    out = []
    for i in range(n):
        y = -iw / 2 + (i + 0.5) * iw / n
        out.append(LocalAffordance("sit", (cx, y, p["seat_height"]), 0.0, (sd / 2, iw / n / 2)))
    out.append(LocalAffordance("lie", (cx, 0.0, p["seat_height"]), np.pi / 2, (iw / 2, sd / 2)))
    return out


def _stool_params(rng, s):
    return {"seat_radius": s[0] / 2}


def _stool_parts(s, p):
    r, h = p["seat_radius"], s[2]
    return [
        _cyl(0, 0, r * 0.9, 0, 0.03),
        _cyl(0, 0, 0.03, 0.03, h - 0.05),
        _cyl(0, 0, r, h - 0.05, h),
    ]


def _stool_aff(s, p):
    r = p["seat_radius"]
    return [LocalAffordance("sit", (0.0, 0.0, s[2]), 0.0, (r, r))]


def _bench_parts(s, p):
    d, w, h = s
    return [
        _box(-d / 2, d / 2, -w / 2, w / 2, h - 0.05, h),
        _box(-d / 2, d / 2, -w / 2, -w / 2 + 0.05, 0, h - 0.05),
        _box(-d / 2, d / 2, w / 2 - 0.05, w / 2, 0, h - 0.05),
    ]


def _bench_aff(s, p):
    d, w, h = s
    n = max(1, int(round(w / 0.6)))
    return [
        LocalAffordance("sit", (0.0, -w / 2 + (i + 0.5) * w / n, h), 0.0, (d / 2, w / n / 2))
        for i in range(n)
    ]


def _toilet_params(rng, s):
    return {"seat_height": _u(rng, 0.40, 0.44)}


def _toilet_parts(s, p):
    d, w, h = s
    sh = p["seat_height"]
    return [
        _box(-d / 2 + 0.18, d / 2 - 0.05, -0.12, 0.12, 0, sh - 0.05),  # pedestal
        _box(-d / 2 + 0.18, d / 2, -w / 2 + 0.02, w / 2 - 0.02, sh - 0.05, sh),  # bowl + seat
        _box(-d / 2, -d / 2 + 0.18, -w / 2, w / 2, 0.0, h),  # tank
    ]


def _toilet_aff(s, p):
    d, w, _ = s
    return [LocalAffordance("sit", (0.05, 0.0, p["seat_height"]), 0.0, (0.15, w / 2 - 0.02))]


# ------------------------------------------------------------------- tables


def _table_parts(s, p):
    d, w, h = s
    leg, top = 0.06, 0.04
    parts = [_box(-d / 2, d / 2, -w / 2, w / 2, h - top, h)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (d / 2 - 0.05), sy * (w / 2 - 0.05)
            parts.append(_box(cx - leg / 2, cx + leg / 2, cy - leg / 2, cy + leg / 2, 0, h - top))
    return parts


def _coffee_parts(s, p):
    d, w, h = s
    parts = _table_parts(s, p)
    parts.append(_box(-d / 2 + 0.05, d / 2 - 0.05, -w / 2 + 0.05, w / 2 - 0.05, 0.1, 0.13))
    return parts


def _desk_parts(s, p):
    d, w, h = s
    return [
        _box(-d / 2, d / 2, -w / 2, w / 2, h - 0.03, h),
        _box(-d / 2, d / 2 - 0.05, -w / 2, -w / 2 + 0.4, 0, h - 0.03),  # drawer pedestal
        _box(-d / 2, d / 2 - 0.05, w / 2 - 0.03, w / 2, 0, h - 0.03),  # side panel
        _box(-d / 2, -d / 2 + 0.02, -w / 2 + 0.4, w / 2 - 0.03, 0.3, h - 0.03),  # modesty panel
    ]


# ------------------------------------------------------------------- bedroom


def _bed_params(rng, s):
    return {"mattress_top": _u(rng, 0.50, 0.60), "headboard": 0.06}


def _bed_parts(s, p):
    d, w, h = s
    top, hb = p["mattress_top"], p["headboard"]
    return [
        _box(-d / 2 + hb, d / 2, -w / 2, w / 2, 0.05, top - 0.2),  # frame
        _box(-d / 2 + hb, d / 2 - 0.02, -w / 2 + 0.02, w / 2 - 0.02, top - 0.2, top),  # mattress
        _box(-d / 2, -d / 2 + hb, -w / 2, w / 2, 0, h),  # headboard
        _box(d / 2 - 0.06, d / 2, -w / 2, -w / 2 + 0.06, 0, 0.05),  # feet
        _box(d / 2 - 0.06, d / 2, w / 2 - 0.06, w / 2, 0, 0.05),
    ]


def _bed_aff(s, p):
    d, w, _ = s
    top, hb = p["mattress_top"], p["headboard"]
    length = d - hb - 0.02
    cx = -d / 2 + hb + length / 2
    return [
        LocalAffordance("lie", (cx, 0.0, top), 0.0, (length / 2 - 0.05, w / 2 - 0.05)),
        LocalAffordance("sit", (cx + 0.2, w / 2 - 0.2, top), np.pi / 2, (0.3, 0.2)),
        LocalAffordance("sit", (cx + 0.2, -w / 2 + 0.2, top), -np.pi / 2, (0.3, 0.2)),
    ]


def _block_parts(s, p):
    d, w, h = s
    return [
        _box(-d / 2, d / 2 - 0.02, -w / 2, w / 2, 0, 0.08),
        _box(-d / 2, d / 2, -w / 2, w / 2, 0.08, h),
    ]


def _nightstand_parts(s, p):
    d, w, h = s
    parts = [_box(-d / 2, d / 2, -w / 2, w / 2, 0.12, h)]
    for sy in (-1, 1):
        for sx in (-1, 1):
            cx, cy = sx * (d / 2 - 0.03), sy * (w / 2 - 0.03)
            parts.append(_box(cx - 0.02, cx + 0.02, cy - 0.02, cy + 0.02, 0, 0.12))
    return parts


def _shelf_params(rng, s):
    return {"shelves": int(rng.integers(4, 6))}


def _shelf_parts(s, p):
    d, w, h = s
    t = 0.02
    parts = [
        _box(-d / 2, d / 2, -w / 2, -w / 2 + t, 0, h),
        _box(-d / 2, d / 2, w / 2 - t, w / 2, 0, h),
        _box(-d / 2, -d / 2 + t, -w / 2 + t, w / 2 - t, 0, h),
    ]
    n = p["shelves"]
    for i in range(n + 1):
        z = 0.05 + i * (h - 0.05 - t) / n
        parts.append(_box(-d / 2 + t, d / 2, -w / 2 + t, w / 2 - t, z, z + t))
    return parts


# ------------------------------------------------------------------- living / kitchen


def _tv_params(rng, s):
    return {"stand_height": _u(rng, 0.42, 0.52), "tv_width": s[1] * _u(rng, 0.6, 0.8)}


def _tv_parts(s, p):
    d, w, h = s
    sh, tw = p["stand_height"], p["tv_width"]
    return [
        _box(-d / 2, d / 2, -w / 2, w / 2, 0.05, sh),
        _box(-d / 2 + 0.02, d / 2 - 0.02, -w / 2 + 0.02, w / 2 - 0.02, 0, 0.05),
        _box(-0.1, 0.1, -0.15, 0.15, sh, sh + 0.03),  # TV foot
        _box(-0.04, 0.02, -tw / 2, tw / 2, sh + 0.08, h),  # TV panel
        _box(-0.03, 0.01, -0.04, 0.04, sh + 0.03, sh + 0.08),
    ]


def _counter_parts(s, p):
    d, w, h = s
    return [
        _box(-d / 2, d / 2 - 0.07, -w / 2, w / 2, 0, 0.1),  # toe kick
        _box(-d / 2, d / 2 - 0.02, -w / 2, w / 2, 0.1, h - 0.04),
        _box(-d / 2, d / 2, -w / 2, w / 2, h - 0.04, h),  # worktop
    ]


def _sink_parts(s, p):
    d, w, h = s
    t = h - 0.2  # rim height; the tap rises to h
    return [
        _box(-d / 2, d / 2 - 0.02, -w / 2, w / 2, 0, t - 0.12),
        _box(-d / 2, d / 2, -w / 2, -w / 2 + 0.06, t - 0.12, t),  # basin rim
        _box(-d / 2, d / 2, w / 2 - 0.06, w / 2, t - 0.12, t),
        _box(d / 2 - 0.06, d / 2, -w / 2 + 0.06, w / 2 - 0.06, t - 0.12, t),
        _box(-d / 2, -d / 2 + 0.12, -w / 2 + 0.06, w / 2 - 0.06, t - 0.12, t),
        _box(-d / 2 + 0.12, d / 2 - 0.06, -w / 2 + 0.06, w / 2 - 0.06, t - 0.14, t - 0.12),
        _box(-d / 2 + 0.02, -d / 2 + 0.1, -0.02, 0.02, t, h),  # tap
    ]


def _tub_parts(s, p):
    d, w, h = s
    t = 0.07
    return [
        _box(-d / 2, d / 2, -w / 2, w / 2, 0, 0.1),
        _box(-d / 2, -d / 2 + t, -w / 2, w / 2, 0.1, h),
        _box(d / 2 - t, d / 2, -w / 2, w / 2, 0.1, h),
        _box(-d / 2 + t, d / 2 - t, -w / 2, -w / 2 + t, 0.1, h),
        _box(-d / 2 + t, d / 2 - t, w / 2 - t, w / 2, 0.1, h),
    ]


# ------------------------------------------------------------------- small things


def _plant_params(rng, s):
    return {"pot_height": _u(rng, 0.25, 0.4), "pot_radius": s[0] / 2 * _u(rng, 0.55, 0.75)}


def _plant_parts(s, p):
    r, h = s[0] / 2, s[2]
    ph, pr = p["pot_height"], p["pot_radius"]
    return [
        _cyl(0, 0, pr, 0, ph),
        _cyl(0, 0, 0.02, ph, ph + 0.15),
        _cyl(0, 0, r, ph + 0.15, h),
    ]


def _lamp_parts(s, p):
    r, h = s[0] / 2, s[2]
    return [
        _cyl(0, 0, r * 0.8, 0, 0.03),
        _cyl(0, 0, 0.015, 0.03, h - 0.3),
        _cyl(0, 0, r, h - 0.3, h),
    ]


def _box_parts(s, p):
    d, w, h = s
    return [_box(-d / 2, d / 2, -w / 2, w / 2, 0, h)]


def _trash_parts(s, p):
    return [_cyl(0, 0, s[0] / 2, 0, s[2])]


ALL_SIDES = ("front", "back", "left", "right")

#: The library, keyed by class name (every name is a row of the label CSV).
LIBRARY: dict[str, ObjectClass] = {
    c.name: c
    for c in [
        ObjectClass(
            "sofa",
            (0.80, 0.95),
            (1.60, 2.30),
            (0.78, 0.92),
            "wall",
            _upholstered_parts,
            _upholstered_params,
            _sofa_aff,
            ("front",),
        ),
        ObjectClass(
            "armchair",
            (0.75, 0.90),
            (0.75, 0.95),
            (0.80, 1.00),
            "corner",
            _upholstered_parts,
            _upholstered_params,
            _armchair_aff,
            ("front",),
        ),
        ObjectClass(
            "chair",
            (0.45, 0.55),
            (0.42, 0.50),
            (0.80, 0.95),
            "wall",
            _chair_parts,
            _chair_params,
            _chair_aff,
            ("front", "left", "right", "back"),
        ),
        ObjectClass(
            "stool",
            (0.32, 0.40),
            (0.32, 0.40),
            (0.45, 0.75),
            "free",
            _stool_parts,
            _stool_params,
            _stool_aff,
            ALL_SIDES,
            square=True,
        ),
        ObjectClass(
            "bench",
            (0.35, 0.45),
            (1.00, 1.60),
            (0.43, 0.47),
            "wall",
            _bench_parts,
            affordances=_bench_aff,
            approach_sides=("front", "back"),
        ),
        ObjectClass(
            "dining table",
            (0.80, 1.00),
            (1.20, 1.80),
            (0.73, 0.76),
            "center",
            _table_parts,
            approach_sides=ALL_SIDES,
        ),
        ObjectClass(
            "coffee table",
            (0.50, 0.70),
            (0.90, 1.30),
            (0.40, 0.46),
            "center",
            _coffee_parts,
            approach_sides=ALL_SIDES,
        ),
        ObjectClass("desk", (0.60, 0.80), (1.20, 1.60), (0.72, 0.76), "wall", _desk_parts),
        ObjectClass(
            "bed",
            (1.95, 2.15),
            (0.90, 1.80),
            (0.90, 1.10),
            "wall",
            _bed_parts,
            _bed_params,
            _bed_aff,
            ("left", "right", "front"),
        ),
        ObjectClass(
            "nightstand", (0.35, 0.45), (0.40, 0.50), (0.50, 0.60), "wall", _nightstand_parts
        ),
        ObjectClass("wardrobe", (0.55, 0.62), (0.90, 1.60), (1.90, 2.20), "wall", _block_parts),
        ObjectClass(
            "bookshelf",
            (0.28, 0.35),
            (0.70, 1.00),
            (1.60, 2.00),
            "wall",
            _shelf_parts,
            _shelf_params,
        ),
        ObjectClass("cabinet", (0.40, 0.50), (0.60, 1.20), (0.75, 1.00), "wall", _block_parts),
        ObjectClass(
            "tv stand", (0.40, 0.50), (1.20, 1.80), (1.00, 1.30), "wall", _tv_parts, _tv_params
        ),
        ObjectClass(
            "refrigerator", (0.65, 0.75), (0.60, 0.90), (1.70, 1.90), "corner", _block_parts
        ),
        ObjectClass(
            "kitchen counter", (0.60, 0.65), (1.20, 2.40), (0.88, 0.92), "wall", _counter_parts
        ),
        ObjectClass("sink", (0.45, 0.55), (0.50, 0.80), (1.00, 1.08), "wall", _sink_parts),
        ObjectClass(
            "toilet",
            (0.65, 0.75),
            (0.36, 0.42),
            (0.75, 0.80),
            "wall",
            _toilet_parts,
            _toilet_params,
            _toilet_aff,
        ),
        ObjectClass("bathtub", (0.70, 0.80), (1.50, 1.80), (0.50, 0.60), "wall", _tub_parts),
        ObjectClass(
            "plant",
            (0.40, 0.70),
            (0.40, 0.70),
            (0.80, 1.60),
            "corner",
            _plant_parts,
            _plant_params,
            approach_sides=ALL_SIDES,
            square=True,
        ),
        ObjectClass(
            "lamp",
            (0.30, 0.45),
            (0.30, 0.45),
            (1.40, 1.70),
            "corner",
            _lamp_parts,
            approach_sides=ALL_SIDES,
            square=True,
        ),
        ObjectClass(
            "box",
            (0.30, 0.60),
            (0.30, 0.60),
            (0.25, 0.60),
            "free",
            _box_parts,
            approach_sides=ALL_SIDES,
        ),
        ObjectClass(
            "trash can",
            (0.30, 0.40),
            (0.30, 0.40),
            (0.40, 0.60),
            "free",
            _trash_parts,
            approach_sides=ALL_SIDES,
            square=True,
        ),
    ]
}

#: Classes that are part of the room shell, not placed furniture.
STRUCTURE_CLASSES = ("floor", "wall", "ceiling", "door", "window")


def sample_object(name: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Sample a size (3,) metres (depth, width, height) and parameters for class ``name``."""
    cls = get_class(name)
    size = np.array([_u(rng, *cls.depth), _u(rng, *cls.width), _u(rng, *cls.height)])
    if cls.square:
        size[1] = size[0]
    params = cls.params(rng, size)
    return size, {k: (float(v) if isinstance(v, float) else v) for k, v in params.items()}


def get_class(name: str) -> ObjectClass:
    """The :class:`ObjectClass` of ``name``; ValueError listing the library if unknown."""
    if name not in LIBRARY:
        raise ValueError(f"unknown object class {name!r}; known classes: {', '.join(LIBRARY)}")
    return LIBRARY[name]


@dataclass
class PlacedObject:
    """A library object placed in the map frame.

    name: class name. instance_id: unique id (> 0) within the scene.
    position: (2,) float, metres, map x, y of the footprint centre (floor at z = 0).
    yaw: radians, map direction of the object's front (local +x).
    size: (3,) float, metres: depth (local x), width (local y), height.
    params: class parameters sampled with the size (e.g. ``seat_height``).
    """

    name: str
    instance_id: int
    position: np.ndarray
    yaw: float
    size: np.ndarray
    params: dict = field(default_factory=dict)

    def rotation(self) -> np.ndarray:
        """(2, 2) local-to-map rotation in the floor plane."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, -s], [s, c]])

    def to_map(self, local: np.ndarray) -> np.ndarray:
        """Local points (..., 3) -> map frame (..., 3), metres."""
        local = np.asarray(local, dtype=np.float64)
        xy = local[..., :2] @ self.rotation().T + self.position
        return np.concatenate([xy, local[..., 2:3]], axis=-1)

    def footprint(self, margin: float = 0.0) -> np.ndarray:
        """(4, 2) map-frame corners of the footprint grown by ``margin`` metres (CCW)."""
        d, w = self.size[0] / 2 + margin, self.size[1] / 2 + margin
        loc = np.array([[d, w], [-d, w], [-d, -w], [d, -w]])
        return loc @ self.rotation().T + self.position

    def parts(self) -> list[Part]:
        """Primitives in the local frame."""
        return get_class(self.name).parts(self.size, self.params)

    def approach_candidates(self, approach_margin: float = APPROACH_MARGIN) -> list:
        """Floor points from which the object can be approached, per open side.

        Returns a list of (side, facing yaw, extent (2,), points (K, 3)) with the K map-frame
        points ``approach_margin`` metres outside that side, ordered from the side's middle
        outwards (spanning the side plus 0.2 m beyond each end, 0.1 m apart).
        """
        cls = get_class(self.name)
        d, w = self.size[0] / 2, self.size[1] / 2
        out = []
        for side in cls.approach_sides:
            if side in ("front", "back"):
                sgn = 1.0 if side == "front" else -1.0
                half, face = w, (np.pi if side == "front" else 0.0)
            else:
                sgn = 1.0 if side == "left" else -1.0
                half, face = d, (-np.pi / 2 if side == "left" else np.pi / 2)
            k = int(np.floor((half + 0.2) / 0.1))
            offs = np.concatenate([[0.0], *[[i * 0.1, -i * 0.1] for i in range(1, k + 1)]])
            if side in ("front", "back"):
                loc = np.stack([np.full_like(offs, sgn * (d + approach_margin)), offs], 1)
            else:
                loc = np.stack([offs, np.full_like(offs, sgn * (w + approach_margin))], 1)
            pts = self.to_map(np.concatenate([loc, np.zeros((len(offs), 1))], 1))
            ext = np.array([half, 0.1])
            out.append((side, float(_wrap(self.yaw + face)), ext, pts))
        return out

    def affordances(self, free=None, approach_margin: float = APPROACH_MARGIN) -> list[Affordance]:
        """Map-frame affordances: sit/lie of the class plus floor approach points.

        free: a :class:`ssomotion_ros.scenes.layout.FreeSpace` or None. Without it, one
            approach point per open side (the side's middle, ``approach_margin`` metres
            out). With it, per side the first candidate of :meth:`approach_candidates`
            on reachable floor, and sides with none are left out.
        Approach facings point at the object.
        """
        cls = get_class(self.name)
        out = []
        for a in cls.affordances(self.size, self.params):
            pos = self.to_map(np.asarray(a.position))
            out.append(
                Affordance(
                    a.kind, pos, float(_wrap(self.yaw + a.facing)), np.asarray(a.extent, float)
                )
            )
        for _side, face, ext, pts in self.approach_candidates(approach_margin):
            if free is None:
                out.append(Affordance("approach", pts[0], face, ext))
                continue
            ok = np.flatnonzero(free.is_reachable(pts[:, :2]))
            if ok.size:
                out.append(Affordance("approach", pts[ok[0]], face, ext))
        return out

    def to_dict(self) -> dict:
        """JSON/YAML-friendly dict (see :meth:`from_dict`)."""
        return {
            "class": self.name,
            "instance_id": int(self.instance_id),
            "position": [round(float(v), 6) for v in self.position],
            "yaw": round(float(self.yaw), 6),
            "size": [round(float(v), 6) for v in self.size],
            "params": {
                k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.params.items()
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> PlacedObject:
        """Inverse of :meth:`to_dict`; missing ``size``/``params`` are an error."""
        for key in ("class", "instance_id", "position", "yaw", "size"):
            if key not in d:
                raise ValueError(f"object entry {d} lacks {key!r}")
        name = str(d["class"])
        klass = get_class(name)
        size = np.asarray(d["size"], dtype=np.float64)
        if size.shape != (3,) or np.any(size <= 0):
            raise ValueError(f"object {name}: size must be 3 positive numbers, got {d['size']}")
        params = dict(d.get("params") or {})
        if not params:
            params = klass.params(np.random.default_rng(0), size)
        pos = np.asarray(d["position"], dtype=np.float64)
        if pos.shape != (2,):
            raise ValueError(f"object {name}: position must be [x, y], got {d['position']}")
        return cls(name, int(d["instance_id"]), pos, float(d["yaw"]), size, params)


def _wrap(a: float) -> float:
    return (a + np.pi) % (2 * np.pi) - np.pi


# ------------------------------------------------------------------- meshing

_BOX_V = (
    np.array(
        [
            [-1, -1, -1],
            [1, -1, -1],
            [1, 1, -1],
            [-1, 1, -1],
            [-1, -1, 1],
            [1, -1, 1],
            [1, 1, 1],
            [-1, 1, 1],
        ],
        dtype=np.float64,
    )
    / 2
)
_BOX_F = np.array(
    [
        [0, 2, 1], [0, 3, 2],  # bottom (-z)
        [4, 5, 6], [4, 6, 7],  # top
        [0, 1, 5], [0, 5, 4],  # -y
        [2, 3, 7], [2, 7, 6],  # +y
        [1, 2, 6], [1, 6, 5],  # +x
        [3, 0, 4], [3, 4, 7],  # -x
    ],
    dtype=np.int64,
)  # fmt: skip


def part_mesh(part: Part, segments: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Triangles of one primitive in its object's local frame.

    Returns vertices (V, 3) float64 metres and faces (F, 3) int64, outward normals (CCW).
    Cylinders use ``segments`` sides.
    """
    c = np.asarray(part.center)
    s = np.asarray(part.size)
    if part.kind == "box":
        return _BOX_V * s + c, _BOX_F.copy()
    if part.kind != "cylinder":
        raise ValueError(f"unknown part kind {part.kind!r} (box, cylinder)")
    r, h = s[0] / 2, s[2]
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)
    bot = np.concatenate([ring, np.full((segments, 1), -h / 2)], axis=1)
    top = np.concatenate([ring, np.full((segments, 1), h / 2)], axis=1)
    verts = np.concatenate([bot, top, [[0, 0, -h / 2], [0, 0, h / 2]]]) + c
    i = np.arange(segments)
    j = (i + 1) % segments
    cb, ct = 2 * segments, 2 * segments + 1
    side = np.concatenate(
        [np.stack([i, j, j + segments], 1), np.stack([i, j + segments, i + segments], 1)]
    )
    caps = np.concatenate(
        [
            np.stack([np.full(segments, cb), j, i], 1),
            np.stack([np.full(segments, ct), i + segments, j + segments], 1),
        ]
    )
    return verts, np.concatenate([side, caps]).astype(np.int64)


def parts_mesh(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the meshes of ``parts``: vertices (V, 3) float64, faces (F, 3) int64."""
    vs, fs, n = [], [], 0
    for p in parts:
        v, f = part_mesh(p)
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    if not vs:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return np.concatenate(vs), np.concatenate(fs)


def object_mesh(obj: PlacedObject) -> tuple[np.ndarray, np.ndarray]:
    """Map-frame mesh of a placed object: vertices (V, 3) float64 metres, faces (F, 3)."""
    v, f = parts_mesh(obj.parts())
    return obj.to_map(v), f


def object_boxes(obj: PlacedObject) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Oriented 3-D boxes bounding each part: list of (center (3,), size (3,), yaw), map frame."""
    out = []
    for p in obj.parts():
        out.append((obj.to_map(np.asarray(p.center)), np.asarray(p.size, float), obj.yaw))
    return out
