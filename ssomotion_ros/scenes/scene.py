"""A generated scene: labelled mesh, ground-truth instances, semantic occupancy, picture.

:class:`Scene` is built deterministically from a :class:`~.layout.SceneSpec` (or from a
prompt and seed through :func:`generate_scene`). Everything is in the map frame
(REP-103: x, y on the floor, z up, metres; floor at z = 0).

Instance ids: furniture 1..N (as in the spec), then the door and the windows; the floor,
walls and ceiling are "stuff" with instance 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssomotion_ros.scenes.labels import LabelMap, default_labels
from ssomotion_ros.scenes.layout import (
    FreeSpace,
    LayoutConfig,
    SceneSpec,
    free_space,
    generate_spec,
)
from ssomotion_ros.scenes.objects import Part, PlacedObject, part_mesh
from ssomotion_ros.sso.types import Affordance, SceneInstance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Primitive:
    """A primitive placed in the map frame.

    part: the box/cylinder in its owner's local frame. position: (2,) owner origin,
    metres. yaw: owner yaw, radians. label: class id. instance: instance id (0: stuff).
    """

    part: Part
    position: tuple[float, float]
    yaw: float
    label: int
    instance: int

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Map-frame triangles: vertices (V, 3) float64 metres, faces (F, 3) int64."""
        v, f = part_mesh(self.part)
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        xy = v[:, :2] @ np.array([[c, s], [-s, c]]) + np.asarray(self.position)
        return np.concatenate([xy, v[:, 2:]], axis=1), f

    def contains(self, pts: np.ndarray) -> np.ndarray:
        """(N,) bool: whether map points (N, 3) lie inside the primitive."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        d = pts[:, :2] - np.asarray(self.position)
        loc = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], pts[:, 2]], 1)
        rel = loc - np.asarray(self.part.center)
        half = np.asarray(self.part.size) / 2
        if self.part.kind == "box":
            return np.all(np.abs(rel) <= half + 1e-9, axis=1)
        return (rel[:, 0] ** 2 + rel[:, 1] ** 2 <= half[0] ** 2) & (np.abs(rel[:, 2]) <= half[2])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned map bounds (lo (3,), hi (3,)), metres."""
        v, _ = self.mesh()
        return v.min(0), v.max(0)


@dataclass
class LabeledMesh:
    """A triangle mesh with per-vertex and per-face semantics (map frame).

    vertices: (V, 3) float32 metres. faces: (F, 3) int32.
    vertex_label, vertex_instance: (V,) int32. face_label, face_instance: (F,) int32.
    colors: (V, 3) uint8 appearance colours (palette colour shaded per instance).
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_label: np.ndarray
    vertex_instance: np.ndarray
    face_label: np.ndarray
    face_instance: np.ndarray
    colors: np.ndarray

    def save_ply(self, path: str | Path) -> None:
        """Binary PLY with ``x y z red green blue label instance`` per vertex + faces."""
        from ssomotion_ros.scenes.loaders import write_ply_labels

        v = np.zeros(
            len(self.vertices),
            dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"),
                   ("blue", "u1"), ("label", "<i4"), ("instance", "<i4")],
        )  # fmt: skip
        for i, k in enumerate("xyz"):
            v[k] = self.vertices[:, i]
        for i, k in enumerate(("red", "green", "blue")):
            v[k] = self.colors[:, i]
        v["label"] = self.vertex_label
        v["instance"] = self.vertex_instance
        write_ply_labels(path, v, self.faces)

    def to_open3d(self):
        """An ``open3d.geometry.TriangleMesh`` with vertex colours (appearance)."""
        import open3d as o3d

        m = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(self.vertices.astype(np.float64)),
            o3d.utility.Vector3iVector(self.faces.astype(np.int32)),
        )
        m.vertex_colors = o3d.utility.Vector3dVector(self.colors / 255.0)
        return m


@dataclass
class SemanticOccupancy:
    """Sparse semantic voxel occupancy of a scene (map frame).

    origin: (3,) float64 metres, corner of voxel (0, 0, 0).
    voxel_size: metres. shape: (3,) int grid size (X, Y, Z).
    indices: (M, 3) int32 voxel indices of occupied voxels (unique).
    label: (M,) int32 class ids. instance: (M,) int32 instance ids (0: stuff).
    rgb: (M, 3) uint8 appearance colours.
    """

    origin: np.ndarray
    voxel_size: float
    shape: np.ndarray
    indices: np.ndarray
    label: np.ndarray
    instance: np.ndarray
    rgb: np.ndarray

    def centers(self) -> np.ndarray:
        """(M, 3) float64 voxel centres, metres."""
        return self.origin + (self.indices + 0.5) * self.voxel_size

    def dense_label(self, empty: int = -1) -> np.ndarray:
        """(X, Y, Z) int32 label grid, ``empty`` where unoccupied."""
        g = np.full(tuple(self.shape), empty, np.int32)
        g[tuple(self.indices.T)] = self.label
        return g

    def save_npz(self, path: str | Path) -> None:
        """Write ``origin voxel_size shape indices label instance rgb`` (npz, compressed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            origin=self.origin,
            voxel_size=np.float64(self.voxel_size),
            shape=self.shape,
            indices=self.indices,
            label=self.label,
            instance=self.instance,
            rgb=self.rgb,
        )

    def to_compact_occ(self):
        """The reference's format: :class:`ssomotion_ros.sso.compact_occ.CompactOcc` with
        rows ``[ix, iy, iz, r, g, b, 255, label]`` (label 0 never occurs: floor is 1)."""
        from ssomotion_ros.sso.compact_occ import CompactOcc

        rows = np.zeros((len(self.indices), 8), np.int32)
        rows[:, :3] = self.indices
        rows[:, 3:6] = self.rgb
        rows[:, 6] = 255
        rows[:, 7] = self.label
        shape = np.asarray(self.shape, np.int64)
        return CompactOcc(
            rows=rows,
            voxel_size=float(self.voxel_size),
            grid_size=shape,
            min_bound=np.asarray(self.origin, np.float64),
            max_bound=np.asarray(self.origin, np.float64) + shape * self.voxel_size,
        )

    @classmethod
    def load_npz(cls, path: str | Path) -> SemanticOccupancy:
        """Read :meth:`save_npz` output."""
        with np.load(path) as z:
            return cls(
                z["origin"], float(z["voxel_size"]), z["shape"], z["indices"], z["label"],
                z["instance"], z["rgb"],
            )  # fmt: skip


def _shade(color: np.ndarray, instance: int) -> np.ndarray:
    """Palette colour varied per instance (deterministic) for appearance RGB."""
    if instance <= 0:
        return color.astype(np.uint8)
    rng = np.random.default_rng(1000 + instance)
    return np.clip(color.astype(int) + rng.integers(-25, 26, 3), 0, 255).astype(np.uint8)


class Scene:
    """A built scene (see the module docstring).

    spec: the :class:`SceneSpec` it was built from. labels: the vocabulary.
    primitives: every box/cylinder with label and instance (map frame).
    instances: ground-truth :class:`SceneInstance` list (furniture, door, windows), with
        affordances whose approach points are reachable from the door.
    free: the 2-D :class:`FreeSpace` (walkable, reachable floor).
    """

    def __init__(
        self,
        spec: SceneSpec,
        labels: LabelMap | None = None,
        layout_config: LayoutConfig | None = None,
    ):
        self.spec = spec
        self.labels = labels or default_labels()
        self.layout_config = layout_config or LayoutConfig()
        cfg = self.layout_config
        self.free: FreeSpace = free_space(
            spec.room, spec.objects, cfg.body_radius, cfg.grid_resolution
        )
        self.primitives: list[Primitive] = []
        self.instances: list[SceneInstance] = []
        self._build()
        self._mesh: LabeledMesh | None = None

    # --------------------------------------------------------------- building
    def _lid(self, name: str) -> int:
        return self.labels.id_of(name)

    def _build(self) -> None:
        room = self.spec.room
        t, H = room.wall_thickness, room.height
        W, D = room.width, room.depth
        floor, wall = self._lid("floor"), self._lid("wall")
        prims = self.primitives
        ident = (0.0, 0.0)

        def add_box(x0, x1, y0, y1, z0, z1, label, inst):
            c = ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2)
            prims.append(
                Primitive(Part("box", c, (x1 - x0, y1 - y0, z1 - z0)), ident, 0.0, label, inst)
            )

        add_box(-t, W + t, -t, D + t, -0.05, 0.0, floor, 0)
        if room.ceiling:
            add_box(-t, W + t, -t, D + t, H, H + 0.05, self._lid("ceiling"), 0)
        if room.cutout is not None:  # L-shaped room: the missing corner is solid wall
            x0, y0, x1, y1 = room.cutout
            add_box(x0, x1, y0, y1, 0.0, H, wall, 0)
        # objects first get their instance ids; the door and windows follow
        next_id = max([o.instance_id for o in self.spec.objects], default=0) + 1
        openings = [("door", room.door)] + [("window", w) for w in room.windows]
        opening_ids = {}
        for _kind, op in openings:
            opening_ids[id(op)] = next_id
            next_id += 1
        for wname in ("south", "east", "north", "west"):
            o, a, n = room.wall_frame(wname)
            length = room.wall_length(wname)
            ops = sorted([op for _, op in openings if op.wall == wname], key=lambda op: op.offset)

            def seg(u0, u1, z0, z1, label=wall, inst=0, depth0=-t, depth1=0.0, o=o, a=a, n=n):
                # u along the wall, depth along the inward normal (negative: in the wall)
                p0 = o + a * u0 + n * depth0
                p1 = o + a * u1 + n * depth1
                lo, hi = np.minimum(p0, p1), np.maximum(p0, p1)
                if u1 - u0 > 1e-6 and z1 - z0 > 1e-6:
                    add_box(lo[0], hi[0], lo[1], hi[1], z0, z1, label, inst)

            u = -t
            for op in ops:
                a0, a1 = op.offset - op.width / 2, op.offset + op.width / 2
                seg(u, a0, 0.0, H)
                seg(a0, a1, 0.0, op.z0)
                seg(a0, a1, op.z1, H)
                kind = "door" if op is room.door else "window"
                thick = 0.04 if kind == "door" else 0.02
                mid = -t / 2
                seg(a0, a1, op.z0, op.z1, self._lid(kind), opening_ids[id(op)],
                    mid - thick / 2, mid + thick / 2)  # fmt: skip
                u = a1
            seg(u, length + t, 0.0, H)
        # furniture
        for obj in self.spec.objects:
            lab = self._lid(obj.name)
            for p in obj.parts():
                prims.append(Primitive(p, tuple(obj.position), obj.yaw, lab, obj.instance_id))
            self.instances.append(self._instance_of(obj, lab))
        # door and windows as instances
        for kind, op in openings:
            o, a, n = room.wall_frame(op.wall)
            c2 = o + a * op.offset - n * (t / 2)
            half = np.abs(a) * op.width / 2 + np.abs(n) * (t / 2)
            lo = np.array([c2[0] - half[0], c2[1] - half[1], op.z0])
            hi = np.array([c2[0] + half[0], c2[1] + half[1], op.z1])
            affs = []
            if kind == "door":
                pose = room.door_pose(inside=self.layout_config.body_radius + 0.1)
                pos = np.array([pose[0], pose[1], 0.0])
                ext = np.array([op.width / 2, 0.1])
                affs.append(Affordance("approach", pos, float(pose[2] + np.pi), ext))
            self.instances.append(
                SceneInstance(
                    instance_id=opening_ids[id(op)],
                    label=self._lid(kind),
                    name=kind,
                    centroid=(lo + hi) / 2,
                    bbox_min=lo,
                    bbox_max=hi,
                    yaw=float(np.arctan2(n[1], n[0])),
                    affordances=affs,
                )
            )

    def _instance_of(self, obj: PlacedObject, label: int) -> SceneInstance:
        verts = []
        for p in obj.parts():
            v, _ = part_mesh(p)
            verts.append(obj.to_map(v))
        v = np.concatenate(verts)
        lo, hi = v.min(0), v.max(0)
        return SceneInstance(
            instance_id=obj.instance_id,
            label=label,
            name=obj.name,
            centroid=(lo + hi) / 2,
            bbox_min=lo,
            bbox_max=hi,
            yaw=float(obj.yaw),
            affordances=obj.affordances(self.free),
        )

    # --------------------------------------------------------------- queries
    def instance(self, instance_id: int) -> SceneInstance:
        """The instance with ``instance_id``; ValueError listing ids if absent."""
        for inst in self.instances:
            if inst.instance_id == instance_id:
                return inst
        raise ValueError(
            f"no instance {instance_id}; ids: {[i.instance_id for i in self.instances]}"
        )

    def instances_of(self, name: str) -> list[SceneInstance]:
        """Instances of class ``name`` (may be empty)."""
        return [i for i in self.instances if i.name == name]

    def start_pose(self) -> np.ndarray:
        """(3,) x, y, yaw of a person just inside the door, facing into the room."""
        return self.spec.room.door_pose(inside=self.layout_config.body_radius + 0.1)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo (3,), hi (3,)) metres of the whole mesh."""
        v = self.mesh().vertices
        return v.min(0).astype(np.float64), v.max(0).astype(np.float64)

    # --------------------------------------------------------------- outputs
    def mesh(self) -> LabeledMesh:
        """The labelled triangle mesh (cached)."""
        if self._mesh is not None:
            return self._mesh
        vs, fs, vl, vi, fl, fi, cs = [], [], [], [], [], [], []
        n = 0
        lut = self.labels.lut()
        for p in self.primitives:
            v, f = p.mesh()
            vs.append(v)
            fs.append(f + n)
            n += len(v)
            vl.append(np.full(len(v), p.label, np.int32))
            vi.append(np.full(len(v), p.instance, np.int32))
            fl.append(np.full(len(f), p.label, np.int32))
            fi.append(np.full(len(f), p.instance, np.int32))
            cs.append(np.repeat(_shade(lut[p.label], p.instance)[None], len(v), 0))
        self._mesh = LabeledMesh(
            np.concatenate(vs).astype(np.float32),
            np.concatenate(fs).astype(np.int32),
            np.concatenate(vl),
            np.concatenate(vi),
            np.concatenate(fl),
            np.concatenate(fi),
            np.concatenate(cs),
        )
        return self._mesh

    def occupancy(self, voxel_size: float = 0.04, solid: bool = False) -> SemanticOccupancy:
        """Semantic voxel occupancy of the scene.

        voxel_size: voxel edge, metres (> 0).
        solid: False marks voxels the surfaces pass through (what fused scans give);
            True also fills the inside of every primitive (for SDF-like queries).
        Where several primitives share a voxel, furniture wins over the room shell.
        """
        if not voxel_size > 0:
            raise ValueError(f"voxel_size must be > 0 metres, got {voxel_size}")
        m = self.mesh()
        lo = m.vertices.min(0).astype(np.float64) - voxel_size
        hi = m.vertices.max(0).astype(np.float64) + voxel_size
        shape = np.ceil((hi - lo) / voxel_size).astype(np.int64)
        pts, lab, inst, col = _sample_surface(m, voxel_size / 2)
        if solid:
            extra = [_fill_primitive(p, lo, voxel_size) for p in self.primitives]
            lut = self.labels.lut()
            for p, c in zip(self.primitives, extra):
                if len(c):
                    pts = np.concatenate([pts, c])
                    lab = np.concatenate([lab, np.full(len(c), p.label, np.int32)])
                    inst = np.concatenate([inst, np.full(len(c), p.instance, np.int32)])
                    col = np.concatenate(
                        [col, np.repeat(_shade(lut[p.label], p.instance)[None], len(c), 0)]
                    )
        idx = np.floor((pts - lo) / voxel_size).astype(np.int64)
        idx = np.clip(idx, 0, shape - 1)
        key = (idx[:, 0] * shape[1] + idx[:, 1]) * shape[2] + idx[:, 2]
        # dense scatter: room-shell samples first, furniture second (furniture wins)
        n = int(np.prod(shape))
        occ = np.zeros(n, bool)
        g_lab = np.zeros(n, np.int32)
        g_inst = np.zeros(n, np.int32)
        g_rgb = np.zeros((n, 3), np.uint8)
        for sel in (inst <= 0, inst > 0):
            k = key[sel]
            occ[k] = True
            g_lab[k] = lab[sel]
            g_inst[k] = inst[sel]
            g_rgb[k] = col[sel]
        flat = np.flatnonzero(occ)
        ijk = np.stack(np.unravel_index(flat, tuple(int(x) for x in shape)), axis=1)
        return SemanticOccupancy(
            origin=lo,
            voxel_size=float(voxel_size),
            shape=shape,
            indices=ijk.astype(np.int32),
            label=g_lab[flat],
            instance=g_inst[flat],
            rgb=g_rgb[flat],
        )

    def save_png(self, path: str | Path, path_xy: np.ndarray | None = None, dpi: int = 110) -> None:
        """Top-down picture of the layout with class names and instance ids.

        path_xy: optional (K, 2) metres, a robot/person path to draw.
        """
        from ssomotion_ros.scenes.render import draw_topdown

        draw_topdown(self, path, path_xy=path_xy, dpi=dpi)


def _sample_surface(m: LabeledMesh, spacing: float):
    """Points on every triangle at most ``spacing`` apart (barycentric lattices)."""
    v = m.vertices.astype(np.float64)
    tri = v[m.faces]
    e = np.stack([np.linalg.norm(tri[:, 1] - tri[:, 0], axis=1),
                  np.linalg.norm(tri[:, 2] - tri[:, 1], axis=1),
                  np.linalg.norm(tri[:, 0] - tri[:, 2], axis=1)], 1).max(1)  # fmt: skip
    nsub = np.maximum(1, np.ceil(e / spacing)).astype(np.int64)
    pts, lab, inst, col = [], [], [], []
    fcol = m.colors[m.faces[:, 0]]
    for k in np.unique(nsub):
        sel = np.flatnonzero(nsub == k)
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = i + j <= k
        a = (i[keep] / k)[None, :, None]
        b = (j[keep] / k)[None, :, None]
        t = tri[sel]
        p = (
            t[:, None, 0]
            + a * (t[:, None, 1] - t[:, None, 0])
            + b * (t[:, None, 2] - t[:, None, 0])
        )
        npts = p.shape[1]
        pts.append(p.reshape(-1, 3))
        lab.append(np.repeat(m.face_label[sel], npts))
        inst.append(np.repeat(m.face_instance[sel], npts))
        col.append(np.repeat(fcol[sel], npts, axis=0))
    return np.concatenate(pts), np.concatenate(lab), np.concatenate(inst), np.concatenate(col)


def _fill_primitive(p: Primitive, origin: np.ndarray, vs: float) -> np.ndarray:
    lo, hi = p.bounds()
    i0 = np.floor((lo - origin) / vs).astype(int)
    i1 = np.ceil((hi - origin) / vs).astype(int)
    axes = [origin[d] + (np.arange(i0[d], i1[d]) + 0.5) * vs for d in range(3)]
    if any(len(a) == 0 for a in axes):
        return np.zeros((0, 3))
    g = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return g[p.contains(g)]


def generate_scene(
    prompt: str,
    seed: int = 0,
    clutter: int | None = None,
    layout_config: LayoutConfig | None = None,
    labels: LabelMap | None = None,
) -> Scene:
    """Text prompt -> built :class:`Scene` (see :func:`~.layout.generate_spec`)."""
    spec = generate_spec(prompt, seed=seed, config=layout_config, clutter=clutter)
    return Scene(spec, labels=labels, layout_config=layout_config)
