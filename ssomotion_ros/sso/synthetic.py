"""Synthetic semantic room scans with a known answer (for tests and benchmarks).

A box-shaped room (floor, four walls) with axis-aligned box furniture; points are
sampled uniformly on every furniture face and on the room's inner surfaces, labelled
with NYU-40 ids, coloured per class with noise, with one instance id per object. It is
what a perfect semantic mapper would see, so answers (seat heights, wall distances,
instance boxes) are known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssomotion_ros.sso.ingest import SemanticCloud, make_cloud

#: NYU-40 ids used by the synthetic rooms.
NYU = {"wall": 1, "floor": 2, "bed": 4, "chair": 5, "sofa": 6, "table": 7}
_COLORS = {
    1: (174, 199, 232),
    2: (152, 223, 138),
    4: (255, 187, 120),
    5: (188, 189, 34),
    6: (140, 86, 75),
    7: (255, 152, 150),
}


@dataclass
class Box:
    """Axis-aligned box: min corner, max corner (metres), label id, instance id."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    label: int
    instance: int


@dataclass
class SyntheticRoom:
    """Room size (x, y, z in metres, floor at z = 0, corner at the origin) and objects."""

    size: tuple[float, float, float] = (6.0, 5.0, 2.8)
    boxes: list[Box] = field(default_factory=list)

    @classmethod
    def default(cls) -> SyntheticRoom:
        """A room with a chair (seat top at 0.46 m, back rest on its -x side, so it faces
        +x), a table, a sofa (seat top 0.42 m, back on +y, facing -y) and a bed."""
        c, t, s, b = NYU["chair"], NYU["table"], NYU["sofa"], NYU["bed"]
        boxes = [
            # chair at (2.0, 1.5): seat 0.44..0.46 (thin), legs, back rest at -x
            Box((1.8, 1.3, 0.40), (2.2, 1.7, 0.46), c, 10),
            Box((1.8, 1.3, 0.0), (1.84, 1.34, 0.40), c, 10),
            Box((2.16, 1.3, 0.0), (2.2, 1.34, 0.40), c, 10),
            Box((1.8, 1.66, 0.0), (1.84, 1.7, 0.40), c, 10),
            Box((2.16, 1.66, 0.0), (2.2, 1.7, 0.40), c, 10),
            Box((1.76, 1.3, 0.46), (1.8, 1.7, 0.95), c, 10),
            # table top 0.72..0.76 with legs
            Box((3.0, 1.0, 0.72), (4.2, 1.8, 0.76), t, 11),
            Box((3.0, 1.0, 0.0), (3.05, 1.05, 0.72), t, 11),
            Box((4.15, 1.0, 0.0), (4.2, 1.05, 0.72), t, 11),
            Box((3.0, 1.75, 0.0), (3.05, 1.8, 0.72), t, 11),
            Box((4.15, 1.75, 0.0), (4.2, 1.8, 0.72), t, 11),
            # sofa: base up to 0.42, back rest on +y side
            Box((1.0, 4.0, 0.0), (3.0, 4.6, 0.42), s, 12),
            Box((1.0, 4.6, 0.0), (3.0, 4.85, 0.85), s, 12),
            # bed: top at 0.55
            Box((4.2, 3.0, 0.0), (5.8, 4.9, 0.55), b, 13),
        ]
        return cls(boxes=boxes)

    def boxes_of(self, instance: int) -> list[Box]:
        return [b for b in self.boxes if b.instance == instance]


def _sample_box_faces(rng, lo, hi, density: float):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    pts = []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        area = (hi[u] - lo[u]) * (hi[v] - lo[v])
        n = max(1, int(round(area * density)))
        for side in (lo[axis], hi[axis]):
            p = np.empty((n, 3))
            p[:, axis] = side
            p[:, u] = rng.uniform(lo[u], hi[u], n)
            p[:, v] = rng.uniform(lo[v], hi[v], n)
            pts.append(p)
    return np.concatenate(pts)


def room_cloud(
    room: SyntheticRoom | None = None,
    num_points: int = 300_000,
    noise: float = 0.003,
    seed: int = 0,
    walls: bool = True,
) -> SemanticCloud:
    """Sample a semantic cloud of ``room`` (map frame, metres).

    num_points: approximate total points (shared by area). noise: Gaussian position noise
    (metres). Returns a :class:`SemanticCloud` with NYU-40 labels, colours, instances
    (floor 1, walls 2, objects their box instance id).
    """
    room = room or SyntheticRoom.default()
    rng = np.random.default_rng(seed)
    sx, sy, sz = room.size
    surfaces = [(Box((0, 0, -0.02), (sx, sy, 0.0), NYU["floor"], 1), "top")]
    if walls:
        surfaces += [
            (Box((0, 0, 0), (0.0, sy, sz), NYU["wall"], 2), "x"),
            (Box((sx, 0, 0), (sx, sy, sz), NYU["wall"], 2), "x"),
            (Box((0, 0, 0), (sx, 0.0, sz), NYU["wall"], 2), "y"),
            (Box((0, sy, 0), (sx, sy, sz), NYU["wall"], 2), "y"),
        ]
    areas = []
    for b, kind in surfaces:
        d = np.subtract(b.hi, b.lo)
        areas.append(
            d[0] * d[1] if kind == "top" else (d[1] * d[2] if kind == "x" else d[0] * d[2])
        )
    for b in room.boxes:
        d = np.subtract(b.hi, b.lo)
        areas.append(2 * (d[0] * d[1] + d[1] * d[2] + d[0] * d[2]))
    density = num_points / max(sum(areas), 1e-9)
    pts, labs, inst = [], [], []
    for b, kind in surfaces:
        lo, hi = np.asarray(b.lo, float), np.asarray(b.hi, float)
        if kind == "top":
            n = int(round((hi[0] - lo[0]) * (hi[1] - lo[1]) * density))
            p = np.stack(
                [rng.uniform(lo[0], hi[0], n), rng.uniform(lo[1], hi[1], n), np.full(n, hi[2])], 1
            )
        elif kind == "x":
            n = int(round((hi[1] - lo[1]) * (hi[2] - lo[2]) * density))
            p = np.stack(
                [np.full(n, lo[0]), rng.uniform(lo[1], hi[1], n), rng.uniform(lo[2], hi[2], n)], 1
            )
        else:
            n = int(round((hi[0] - lo[0]) * (hi[2] - lo[2]) * density))
            p = np.stack(
                [rng.uniform(lo[0], hi[0], n), np.full(n, lo[1]), rng.uniform(lo[2], hi[2], n)], 1
            )
        pts.append(p)
        labs.append(np.full(len(p), b.label))
        inst.append(np.full(len(p), b.instance))
    for b in room.boxes:
        p = _sample_box_faces(rng, b.lo, b.hi, density / 2)
        pts.append(p)
        labs.append(np.full(len(p), b.label))
        inst.append(np.full(len(p), b.instance))
    p = np.concatenate(pts)
    if noise > 0:
        p = p + rng.normal(0, noise, p.shape)
    lab = np.concatenate(labs)
    ins = np.concatenate(inst)
    base = np.array([_COLORS.get(int(k), (128, 128, 128)) for k in range(max(_COLORS) + 1)])
    rgb = np.clip(base[lab] + rng.normal(0, 8, (len(lab), 3)), 0, 255).astype(np.uint8)
    order = rng.permutation(len(p))
    return make_cloud(p[order], labels=lab[order], rgb=rgb[order], instance=ins[order])


def to_structured(cloud: SemanticCloud, label_field: str = "label", rgb_field: str | None = "rgb"):
    """A :class:`SemanticCloud` as a structured array (x, y, z float32, label uint32,
    instance int32, packed float32 rgb) — the layout a ROS PointCloud2 would carry."""
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), (label_field, "<u4"), ("instance", "<i4")]
    if rgb_field and cloud.rgb is not None:
        fields.append((rgb_field, "<f4"))
    arr = np.zeros(len(cloud), dtype=fields)
    arr["x"], arr["y"], arr["z"] = cloud.points.T
    arr[label_field] = np.maximum(cloud.labels, 0)
    arr["instance"] = cloud.instance
    if rgb_field and cloud.rgb is not None:
        c = cloud.rgb.astype(np.uint32)
        packed = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
        arr[rgb_field] = packed.view(np.float32)
    return arr
