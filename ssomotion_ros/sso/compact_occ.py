"""The SSOMotion reference code's scene occupancy files.

``compact_occ.npy``: (M, 8) int32 rows ``[ix, iy, iz, r, g, b, 255, label]``, one per
occupied voxel; ``(ix, iy, iz)`` index a grid whose cell (0, 0, 0) spans
``[min_bound, min_bound + voxel_size)``; colours 0..255; label in the scene's label set
(the reference treats label 0 as empty space in its dense grids).

``compact_occ_info.json``: ``{"voxel_size": float, "grid_size": [X, Y, Z],
"min_bound": [x, y, z], "max_bound": [x, y, z]}`` with
``max_bound = min_bound + grid_size * voxel_size`` (metres).

Import places each voxel's centre ``min_bound + (idx + 0.5) voxel_size`` into the
SceneModel's grid (anchored at 0): when ``min_bound`` is not a multiple of the voxel
size, positions shift by less than half a voxel. Export writes the occupied voxels of a
SceneModel with ``min_bound`` at the corner of its lowest voxel; voxels with no label
are written with label 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssomotion_ros.sso.ingest import SemanticCloud, make_cloud

NPY_NAME = "compact_occ.npy"
INFO_NAME = "compact_occ_info.json"


@dataclass
class CompactOcc:
    """A loaded reference occupancy.

    rows: (M, 8) int32 ``[ix, iy, iz, r, g, b, 255, label]``.
    voxel_size: metres. grid_size: (3,) int. min_bound, max_bound: (3,) float64 metres.
    """

    rows: np.ndarray
    voxel_size: float
    grid_size: np.ndarray
    min_bound: np.ndarray
    max_bound: np.ndarray

    def centers(self) -> np.ndarray:
        """(M, 3) float64 voxel centres, metres."""
        return self.min_bound + (self.rows[:, :3].astype(np.float64) + 0.5) * self.voxel_size

    def to_cloud(self) -> SemanticCloud:
        """One point per voxel (its centre) with colour and label, for fusion."""
        return make_cloud(
            self.centers().astype(np.float32),
            labels=self.rows[:, 7].astype(np.int64),
            rgb=np.clip(self.rows[:, 3:6], 0, 255).astype(np.uint8),
        )

    def dense(self) -> np.ndarray:
        """(X, Y, Z, 4) int32 dense grid [r, g, b, label] like the reference's loader."""
        g = np.zeros((*[int(x) for x in self.grid_size], 4), np.int32)
        idx = tuple(self.rows[:, :3].T)
        g[idx] = np.hstack([self.rows[:, 3:6], self.rows[:, 7:8]])
        return g


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.is_dir():
        return p / NPY_NAME, p / INFO_NAME
    info = p.with_name(INFO_NAME)
    if not info.is_file():
        info = p.with_name(p.stem + "_info.json")
    return p, info


def load_compact_occ(path: str | Path) -> CompactOcc:
    """Load ``compact_occ.npy`` and its json (a folder holding both, or the npy path with
    the json next to it). Raises ValueError on missing files or inconsistent content."""
    npy, info = _paths(path)
    if not npy.is_file():
        raise ValueError(f"compact occupancy file not found: {npy}")
    if not info.is_file():
        raise ValueError(f"compact occupancy info not found next to {npy} (want {info.name})")
    rows = np.load(npy, allow_pickle=False)
    if rows.ndim != 2 or rows.shape[1] != 8:
        raise ValueError(
            f"{npy}: expected (M, 8) rows [ix,iy,iz,r,g,b,255,label], got {rows.shape}"
        )
    rows = rows.astype(np.int32)
    meta = json.loads(info.read_text())
    for k in ("voxel_size", "grid_size", "min_bound", "max_bound"):
        if k not in meta:
            raise ValueError(f"{info}: missing key {k!r}")
    occ = CompactOcc(
        rows=rows,
        voxel_size=float(meta["voxel_size"]),
        grid_size=np.asarray(meta["grid_size"], np.int64),
        min_bound=np.asarray(meta["min_bound"], np.float64),
        max_bound=np.asarray(meta["max_bound"], np.float64),
    )
    if len(rows) and ((rows[:, :3] < 0).any() or (rows[:, :3] >= occ.grid_size[None, :]).any()):
        raise ValueError(f"{npy}: voxel indices outside grid_size {occ.grid_size.tolist()}")
    return occ


def save_compact_occ(occ: CompactOcc, folder: str | Path) -> tuple[Path, Path]:
    """Write ``occ`` as ``compact_occ.npy`` + ``compact_occ_info.json`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / NPY_NAME, occ.rows.astype(np.int32))
    info = {
        "voxel_size": float(occ.voxel_size),
        "grid_size": [int(x) for x in occ.grid_size],
        "min_bound": [float(x) for x in occ.min_bound],
        "max_bound": [float(x) for x in occ.max_bound],
    }
    (folder / INFO_NAME).write_text(json.dumps(info, indent=4))
    return folder / NPY_NAME, folder / INFO_NAME


def from_scene(model) -> CompactOcc:
    """The occupied voxels of a SceneModel in the reference format."""
    snap = model.snapshot()
    coords = snap.coords.cpu().numpy().astype(np.int64)
    vs = snap.voxel_size
    if len(coords) == 0:
        z3 = np.zeros(3)
        return CompactOcc(np.zeros((0, 8), np.int32), vs, np.ones(3, np.int64), z3, z3 + vs)
    lo = coords.min(axis=0)
    grid = coords.max(axis=0) - lo + 1
    rows = np.zeros((len(coords), 8), np.int32)
    rows[:, :3] = coords - lo
    rows[:, 3:6] = snap.rgb.cpu().numpy()
    rows[:, 6] = 255
    rows[:, 7] = np.maximum(snap.labels.cpu().numpy(), 0)
    min_bound = lo * vs
    return CompactOcc(rows, vs, grid, min_bound.astype(np.float64), min_bound + grid * vs)


def export_compact_occ(model, folder: str | Path) -> tuple[Path, Path]:
    """Write a SceneModel's occupied voxels as the reference's two files in ``folder``."""
    return save_compact_occ(from_scene(model), folder)
