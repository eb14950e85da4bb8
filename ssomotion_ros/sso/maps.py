"""Planning and guidance maps derived from a voxel snapshot.

* :class:`FloorMap` — floor height per (x, y) column and the walkable free space with
  clearance for a body radius (a Euclidean distance transform, scipy.ndimage).
* :class:`SDFVolume` — signed distance to occupied space on a dense (coarser) grid,
  queried at arbitrary points with trilinear ``grid_sample`` (differentiable in the
  query points).

2-D grid convention (shared with the planner): arrays are (H, W), row = y index,
column = x index; cell (i, j) has its centre at ``origin + ((j + 0.5) res, (i + 0.5) res)``
in the map frame; ``res`` is the voxel size, so a cell is one column of voxels.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ssomotion_ros.sso.config import MapsConfig
from ssomotion_ros.sso.fusion import VoxelSnapshot

log = logging.getLogger(__name__)


@dataclass
class FloorMap:
    """Floor and obstacles per voxel column (2-D grid convention of the module).

    height: (H, W) float32 floor height in metres (map z); NaN where unknown.
    blocked: (H, W) bool, an obstacle lies between ``step_height`` and ``body_height``
        above the floor there.
    known: (H, W) bool, the floor is known (seen, hole-filled, or inferred: unseen
        columns enclosed by walls / furniture take the map-wide floor height).
    origin: (2,) float64 map-frame (x, y) of the grid's lower corner, metres.
    resolution: cell size, metres.
    global_floor: map-wide floor height, metres (median floor voxel height, or the
        most common lowest-voxel height when no floor class is seen).
    lo: (2,) int64 global voxel (x, y) index of cell (0, 0).
    """

    height: np.ndarray
    blocked: np.ndarray
    known: np.ndarray
    origin: np.ndarray
    resolution: float
    global_floor: float
    lo: np.ndarray
    unknown_is_free: bool = False
    #: (H, W) bool: floor not seen but inferred (enclosed by observed structure).
    inferred: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.height.shape

    def cell_of(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """xy: (N, 2) metres -> (row (N,), col (N,), inside (N,) bool)."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        col = np.floor((xy[:, 0] - self.origin[0]) / self.resolution).astype(np.int64)
        row = np.floor((xy[:, 1] - self.origin[1]) / self.resolution).astype(np.int64)
        h, w = self.shape
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        return row, col, inside

    def floor_at(self, xy: np.ndarray) -> np.ndarray:
        """Floor height (N,) float64 at map (x, y) points (N, 2); ``global_floor`` where
        unknown or outside the grid."""
        row, col, inside = self.cell_of(xy)
        out = np.full(len(row), self.global_floor)
        if inside.any():
            h = self.height[row[inside], col[inside]]
            out[inside] = np.where(np.isfinite(h), h, self.global_floor)
        return out

    def free(self) -> np.ndarray:
        """(H, W) bool, walkable ignoring body size."""
        base = self.known | (self.unknown_is_free & ~self.known)
        return base & ~self.blocked

    def walkable(self, body_radius: float) -> np.ndarray:
        """(H, W) bool, walkable by a disc of ``body_radius`` metres centred in the cell.

        A cell is walkable when it is free and the nearest non-free cell centre is at
        least ``body_radius + resolution / 2`` away (the disc stays clear of that cell).
        """
        if body_radius < 0:
            raise ValueError(f"body_radius must be >= 0 metres, got {body_radius}")
        free = self.free()
        if not free.any():
            return free
        dist = ndimage.distance_transform_edt(free) * self.resolution
        return free & (dist >= body_radius + 0.5 * self.resolution - 1e-9)


def build_floor_map(
    snap: VoxelSnapshot, floor_ids: np.ndarray, cfg: MapsConfig, default_floor: float = 0.0
) -> FloorMap:
    """Floor heights and obstacle columns from the occupied voxels of ``snap``.

    floor_ids: (K,) int64 label ids that are walkable ground (e.g. floor, rug).
    """
    vs = snap.voxel_size
    coords = snap.coords.cpu().numpy().astype(np.int64)
    labels = snap.labels.cpu().numpy()
    m = int(math.ceil(cfg.margin / vs))
    if len(coords) == 0:
        lo = np.array([-m, -m], np.int64)
        shape = (2 * m + 1, 2 * m + 1)
        nan = np.full(shape, np.nan, np.float32)
        return FloorMap(
            nan,
            np.zeros(shape, bool),
            np.zeros(shape, bool),
            lo * vs,
            vs,
            default_floor,
            lo,
            cfg.unknown_is_free,
        )
    lo = coords[:, :2].min(axis=0) - m
    hi = coords[:, :2].max(axis=0) + m
    w, h = (hi - lo + 1).tolist()
    cx = coords[:, 0] - lo[0]
    cy = coords[:, 1] - lo[1]
    flat = torch.from_numpy(cy * w + cx)
    zc = torch.from_numpy((coords[:, 2] + 0.5) * vs)
    is_floor = np.isin(labels, floor_ids) if len(floor_ids) else np.zeros(len(labels), bool)
    # --- floor height per column
    height = torch.full((h * w,), -math.inf, dtype=torch.float64)
    ff = torch.from_numpy(is_floor)
    if ff.any():
        height.scatter_reduce_(0, flat[ff], zc[ff], reduce="amax")
        global_floor = float(np.median(zc[ff].numpy()))
    else:
        lowest = torch.full((h * w,), math.inf, dtype=torch.float64)
        lowest.scatter_reduce_(0, flat, zc, reduce="amin")
        vals = lowest[torch.isfinite(lowest)].numpy()
        q = np.round(vals / vs).astype(np.int64)
        uq, cnt = np.unique(q, return_counts=True)
        global_floor = float(uq[np.argmax(cnt)] * vs) if len(uq) else default_floor
        # the mode of voxel centres is (k + 0.5) vs; snap to the centre value seen
        near = vals[np.abs(vals - global_floor) <= vs]
        global_floor = float(np.median(near)) if len(near) else global_floor
    height = height.numpy().reshape(h, w)
    known = np.isfinite(height)
    # columns without a floor voxel whose lowest voxel lies at the global floor
    lowest = torch.full((h * w,), math.inf, dtype=torch.float64)
    nf = torch.from_numpy(~is_floor)
    if nf.any():
        lowest.scatter_reduce_(0, flat[nf], zc[nf], reduce="amin")
    lowest = lowest.numpy().reshape(h, w)
    at_floor = ~known & (np.abs(lowest - global_floor) <= cfg.floor_tolerance + 0.5 * vs)
    height[at_floor] = global_floor
    known = known | at_floor
    # close small holes in the floor (sensor gaps)
    holes = ndimage.binary_closing(known, iterations=2) & ~known
    height[holes] = global_floor
    known = known | holes
    height[~known] = np.nan
    # --- obstacles: non-floor voxels between step and body height above the floor
    col_floor = np.where(known, height, global_floor).reshape(-1)
    rel = zc.numpy() - col_floor[flat.numpy()]
    block = (~is_floor) & (rel > cfg.step_height) & (rel < cfg.body_height)
    blocked = np.zeros(h * w, bool)
    blocked[flat.numpy()[block]] = True
    blocked = blocked.reshape(h, w)
    inferred = np.zeros((h, w), bool)
    if cfg.fill_enclosed_unknown and known.any():
        # unseen floor enclosed by what was seen (walls / furniture, small gaps sealed)
        # is floor at the map-wide height; a leak to the grid border fills nothing
        seal = max(0, int(round(cfg.enclosure_seal / vs)))
        walls = ndimage.binary_dilation(blocked, iterations=seal) if seal else blocked
        cand = ~known & ~walls
        lab, _ = ndimage.label(cand)
        edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        inferred = cand & (lab > 0) & ~np.isin(lab, edge)
        # grow into the sealing ring where it is not an obstacle
        if seal and inferred.any():
            grown = ndimage.binary_dilation(inferred, iterations=seal) & ~known & ~blocked
            inferred = grown & ~np.isin(lab, edge[edge > 0])
        height[inferred] = global_floor
        known = known | inferred
    return FloorMap(
        height=height.astype(np.float32),
        blocked=blocked,
        known=known,
        origin=lo.astype(np.float64) * vs,
        resolution=vs,
        global_floor=global_floor,
        lo=lo,
        unknown_is_free=cfg.unknown_is_free,
        inferred=inferred,
    )


@dataclass
class SDFVolume:
    """Dense signed distance (metres) to occupied space, for point queries.

    volume: (1, 1, D, H, W) float32 torch tensor indexed [z, y, x] (grid_sample layout),
        values at cell centres: > 0 in free space, < 0 inside occupied cells, truncated.
    origin: (3,) float64 map position of the centre of cell (0, 0, 0), metres.
    resolution: cell size, metres.
    truncation: |sdf| bound, metres.
    """

    volume: torch.Tensor
    origin: np.ndarray
    resolution: float
    truncation: float

    def _on(self, device) -> torch.Tensor:
        """The volume on ``device`` (copied once, then cached)."""
        if self.volume.device == torch.device(device):
            return self.volume
        cache = self.__dict__.setdefault("_device_copies", {})
        key = str(device)
        if key not in cache:
            cache[key] = self.volume.to(device)
        return cache[key]

    def query(self, points: torch.Tensor) -> torch.Tensor:
        """Signed distance at points.

        points: (N, 3) float tensor, metres, map frame (any device; may require grad).
        Returns (N,) float32 metres, differentiable w.r.t. ``points`` (trilinear). Points
        outside the volume get the value at the nearest border point plus their
        distance to the volume.
        """
        if points.dim() != 2 or points.shape[-1] != 3:
            raise ValueError(f"points must be (N, 3), got {tuple(points.shape)}")
        vol = self._on(points.device)
        d, h, w = vol.shape[2:]
        org = torch.as_tensor(self.origin, dtype=points.dtype, device=points.device)
        size = torch.tensor([w - 1, h - 1, d - 1], dtype=points.dtype, device=points.device)
        rel = (points - org) / self.resolution  # in cells, 0 = first centre
        relc = torch.minimum(torch.maximum(rel, torch.zeros_like(rel)), size)
        outside = torch.linalg.vector_norm((rel - relc) * self.resolution, dim=1)
        norm = relc / size.clamp(min=1) * 2 - 1
        grid = norm.view(1, -1, 1, 1, 3).to(vol.dtype)
        val = torch.nn.functional.grid_sample(
            vol, grid, mode="bilinear", padding_mode="border", align_corners=True
        ).view(-1)
        return val + outside.to(val.dtype)


def build_sdf(snap: VoxelSnapshot, cfg: MapsConfig) -> SDFVolume:
    """Signed distance volume of ``snap`` at ``voxel_size * sdf_stride`` resolution.

    A coarse cell is occupied when any voxel in it is. Outside: distance from the cell
    centre to the nearest occupied cell centre minus half a cell; inside: minus the
    distance to the nearest free cell centre plus half a cell (zero on the boundary).
    """
    vs = snap.voxel_size
    s = max(1, int(cfg.sdf_stride))
    res = vs * s
    coords = snap.coords.cpu().numpy().astype(np.int64)
    m = int(math.ceil(cfg.margin / res)) + 1
    if len(coords) == 0:
        vol = torch.full((1, 1, 2, 2, 2), float(cfg.sdf_truncation))
        return SDFVolume(vol, np.zeros(3), res, cfg.sdf_truncation)
    cc = np.floor_divide(coords, s)
    lo = cc.min(axis=0) - m
    hi = cc.max(axis=0) + m
    dims = hi - lo + 1
    if int(np.prod(dims)) > cfg.max_dense_cells:
        # keep the bound: coarsen until it fits
        f = int(math.ceil((np.prod(dims) / cfg.max_dense_cells) ** (1 / 3)))
        log.warning("SDF volume too large (%s cells); coarsening by %d", dims.tolist(), f)
        cfg2 = MapsConfig(**{**cfg.__dict__, "sdf_stride": s * f})
        return build_sdf(snap, cfg2)
    occ = np.zeros(tuple(dims[::-1]), bool)  # [z, y, x]
    rel = cc - lo
    occ[rel[:, 2], rel[:, 1], rel[:, 0]] = True
    d_out = ndimage.distance_transform_edt(~occ)
    d_in = ndimage.distance_transform_edt(occ)
    sdf = np.where(occ, -(d_in - 0.5), d_out - 0.5) * res
    sdf = np.clip(sdf, -cfg.sdf_truncation, cfg.sdf_truncation).astype(np.float32)
    origin = (lo.astype(np.float64) + 0.5) * res
    return SDFVolume(torch.from_numpy(sdf)[None, None], origin, res, cfg.sdf_truncation)
