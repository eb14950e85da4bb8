"""Local crops of the global SSO and their bi-directional tri-plane decomposition.

Local grid (method facts, sizes from :class:`~ssomotion_ros.sso.config.TriplaneConfig`):
``nx x ny x nz`` voxels of edge ``v`` (101 x 101 x 81 of 0.04 m: +-2.0, +-2.0, +-1.6 m)
in the body frame of an agent at pose (x, y, yaw): body x forward, y left, z up; local
voxel (i, j, k) has its centre at ``((i - ci) v, (j - cj) v, (k - ck) v)`` relative to
the crop centre, which is at the agent's (x, y) and ``center_height`` above the floor
under the agent (``ci = (nx - 1) / 2``, the same for j, k). Each local voxel takes the
global voxel containing its centre (nearest sampling; outside the global grid = free).

Decomposition (as the SSOMotion reference code): split at the centre plane of an axis
(index ``c = (n + 1) // 2 - 1``, included in both halves) and project each half toward
the centre, keeping the occupied voxel nearest to the centre plane:

* ``x+``: i from c up to nx-1, ``x-``: i from c down to 0; likewise ``y+``, ``y-``;
* ``z``: only one map, from the plane ``pz = (nz + 1) // 2 - 1 + z_plane_offset``
  downward (k from pz down to 0): a height map of what is below 0.4 m above the centre.

Each map pixel holds the distance in metres from its plane to the voxel found (offset in
voxels times v), its RGB and label (then the label's 16-d semantic feature). Image
layout of the padded ``S x S`` maps (``S = max(nx, ny, nz)``), row index first:

* x+ / x-: ``[k, j]`` (row = z index from the bottom, column = y index from -y);
* y+ / y-: ``[k, i]`` (row = z index, column = x index from -x);
* z:       ``[j, i]`` (row = y index, column = x index), like the planning grid.

Pixels outside a map's extent or where nothing was found have ``mask`` False, depth 0,
label -1, RGB and feature 0.

Speed: the per-agent occupancy crop is gathered from a dense occupancy snapshot with
one row gather per agent; on the CPU the projections are one compiled pass per map
(:func:`ssomotion_ros.sso.cpu_kernels.project`, plane by plane from the centre, stopping
when every ray has hit) and the maps' pixels another
(:func:`ssomotion_ros.sso.cpu_kernels.triplane_pixels`); elsewhere the projections are
weighted ``amax`` reductions over the whole batch (the nearest voxel gets the largest
weight) and the pixels a few gathers, so no Python loop touches voxels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ssomotion_ros.sso.config import TriplaneConfig
from ssomotion_ros.sso.fusion import VoxelSnapshot, pack_keys
from ssomotion_ros.sso.types import TriPlanes


@dataclass
class DenseOccupancy:
    """Dense uint8 occupancy of a box of global voxels (1 = occupied).

    lo: (3,) int64 global voxel index of cell (0, 0, 0).
    dims: (X, Y, Z) sizes.
    grid: (X * Y + 1, Z + 1) uint8; row ``x * Y + y`` is the column at (x, y); the last
        row and the last column are always 0 (targets for out-of-box samples).
    rows: same shape, int32 row of the voxel in the snapshot, -1 where free.
    Memory: 5 bytes per cell (bounded by ``MapsConfig.max_dense_cells``).
    """

    lo: torch.Tensor
    dims: tuple[int, int, int]
    grid: torch.Tensor
    rows: torch.Tensor
    version: int = -1
    _zmax: torch.Tensor | None = None

    def zmax(self) -> torch.Tensor:
        """(X * Y + 1, Z + 1) int16: 1 + the highest occupied z index at or below each
        cell of its column, 0 where there is none (a prefix maximum, built once)."""
        if self._zmax is None:
            z = self.grid.shape[1]
            if z >= 32767:
                raise ValueError("column too tall for the int16 height index")
            k = torch.arange(1, z + 1, dtype=torch.int16, device=self.grid.device)
            self._zmax = torch.cummax(self.grid.to(torch.int16) * k, dim=1).values
        return self._zmax

    @classmethod
    def from_snapshot(cls, snap: VoxelSnapshot, lo=None, hi=None) -> DenseOccupancy:
        """Dense occupancy of ``snap``'s voxels within [lo, hi] (inclusive voxel indices;
        None = the snapshot's bounds)."""
        dev = snap.coords.device
        c = snap.coords.to(torch.int64)
        if len(snap) == 0 and lo is None:
            lo = torch.zeros(3, dtype=torch.int64, device=dev)
            hi = lo.clone()
        if lo is None:
            lo = c.min(dim=0).values
            hi = c.max(dim=0).values
        lo = torch.as_tensor(lo, dtype=torch.int64, device=dev)
        hi = torch.as_tensor(hi, dtype=torch.int64, device=dev)
        dims = tuple(int(d) for d in (hi - lo + 1).clamp(min=1))
        shape = (dims[0] * dims[1] + 1, dims[2] + 1)
        grid = torch.zeros(shape, dtype=torch.uint8, device=dev)
        rows = torch.full(shape, -1, dtype=torch.int32, device=dev)
        if len(snap):
            rel = c - lo
            ok = ((rel >= 0) & (rel < torch.tensor(dims, device=dev))).all(dim=1)
            idx = torch.nonzero(ok).squeeze(1)
            rel = rel[idx]
            r, z = rel[:, 0] * dims[1] + rel[:, 1], rel[:, 2]
            grid[r, z] = 1
            rows[r, z] = idx.to(torch.int32)
        return cls(lo=lo, dims=dims, grid=grid, rows=rows, version=snap.version)

    @property
    def ncells(self) -> int:
        return self.dims[0] * self.dims[1] * self.dims[2]


def _axis(n: int, v: float, device) -> torch.Tensor:
    return (torch.arange(n, device=device, dtype=torch.float64) - (n - 1) / 2.0) * v


def crop_indices(poses: torch.Tensor, floor_z: torch.Tensor, cfg: TriplaneConfig, vs: float):
    """Global voxel indices sampled by each agent's local grid.

    poses: (B, 3) float, (x, y, yaw) in metres / radians, map frame.
    floor_z: (B,) float, floor height under each agent, metres.
    Returns gx (B, nx, ny) int64, gy (B, nx, ny) int64, gz (B, nz) int64 (floor of the
    sample position divided by the global voxel size ``vs``).
    """
    nx, ny, nz = cfg.grid_size
    v = cfg.voxel_size
    dev = poses.device
    p = poses.to(torch.float64)
    lx, ly, lz = _axis(nx, v, dev), _axis(ny, v, dev), _axis(nz, v, dev)
    c, s = torch.cos(p[:, 2]), torch.sin(p[:, 2])
    wx = (
        p[:, 0, None, None]
        + c[:, None, None] * lx[None, :, None]
        - s[:, None, None] * ly[None, None, :]
    )
    wy = (
        p[:, 1, None, None]
        + s[:, None, None] * lx[None, :, None]
        + c[:, None, None] * ly[None, None, :]
    )
    zc = floor_z.to(torch.float64) + cfg.center_height
    if math.isclose(v, vs, rel_tol=1e-9):
        # contiguous z window: gz = floor((zc - ck v) / vs) + k, exact up to rounding
        gz0 = torch.floor((zc + lz[0]) / vs + 1e-9).to(torch.int64)
        gz = gz0[:, None] + torch.arange(nz, device=dev)[None, :]
    else:
        gz = torch.floor((zc[:, None] + lz[None, :]) / vs + 1e-9).to(torch.int64)
    gx = torch.floor(wx / vs + 1e-9).to(torch.int64)
    gy = torch.floor(wy / vs + 1e-9).to(torch.int64)
    return gx, gy, gz


def gather_local_occupancy(dense: DenseOccupancy, gx, gy, gz):
    """(B, nx, ny, nz) uint8 local occupancy by nearest sampling of ``dense``.

    gx, gy: (B, nx, ny) int64 global voxel indices; gz: (B, nz) int64.
    Returns (occ, col, zidx): col (B, nx, ny) int64 row of ``dense.grid`` per local
    column, zidx (B, nz) int64 column of ``dense.grid`` per local z (out of box -> the
    zero row / column).
    """
    b, nx, ny = gx.shape
    nz = gz.shape[1]
    X, Y, Z = dense.dims
    lo = dense.lo
    rx, ry, rz = gx - lo[0], gy - lo[1], gz - lo[2]
    inside = (rx >= 0) & (rx < X) & (ry >= 0) & (ry < Y)
    col = torch.where(inside, rx * Y + ry, torch.full_like(rx, X * Y)).view(b, nx * ny)
    zin = (rz >= 0) & (rz < Z)
    zidx = torch.where(zin, rz, torch.full_like(rz, Z))
    out = torch.zeros((b, nx * ny, nz), dtype=torch.uint8, device=gx.device)
    zcpu = rz.cpu()
    step_one = bool(((zcpu[:, 1:] - zcpu[:, :-1]) == 1).all()) if nz > 1 else True
    for a in range(b):
        cols = dense.grid.index_select(0, col[a])  # (nx*ny, Z+1)
        if step_one:
            # contiguous window: copy the part inside [0, Z)
            z0 = int(zcpu[a, 0])
            k0, k1 = max(0, -z0), min(nz, Z - z0)
            if k1 > k0:
                out[a, :, k0:k1] = cols[:, z0 + k0 : z0 + k1]
        else:
            out[a] = cols.index_select(1, zidx[a])
    return out.view(b, nx, ny, nz), col.view(b, nx, ny), zidx


def _nearest(occ: torch.Tensor, dim: int, start: int, stop: int, step: int):
    """Offset (voxels) from index ``start`` to the first occupied voxel walking by
    ``step`` along ``dim`` up to ``stop`` (inclusive). Returns (offset, found)."""
    n = abs(stop - start) + 1
    lo_, hi_ = min(start, stop), max(start, stop)
    part = occ.narrow(dim, lo_, hi_ - lo_ + 1)
    wdt = torch.uint8 if n + 1 <= 255 else torch.int16
    # weight n for the voxel at `start`, 1 for the one at `stop`
    w = torch.arange(n, 0, -1, device=occ.device, dtype=wdt)
    if step < 0:
        w = w.flip(0)
    part = part.to(wdt)
    if dim == 2 and occ.dim() == 4:
        # middle axis: a running elementwise maximum over slices is ~4x faster on CPU
        # than amax over a strided middle dimension
        m = None
        for t in range(n):
            sl = part.select(dim, t) * w[t]
            m = sl if m is None else torch.maximum(m, sl, out=m)
    else:
        shape = [1] * occ.dim()
        shape[dim] = n
        m = (part * w.view(shape)).amax(dim=dim)
    found = m > 0
    offset = (n - m.to(torch.int64)).clamp(max=n - 1)
    return offset, found


def decompose(
    occ: torch.Tensor, cfg: TriplaneConfig, z_map: bool = True, compiled: bool | None = None
):
    """Bi-directional projections of local occupancy.

    occ: (B, nx, ny, nz) uint8/bool local occupancy.
    Returns a list of 5 tuples (offset, found, index) in TRIPLANE_ORDER, in the map's
    natural layout before transposition: x maps (B, ny, nz), y maps (B, nx, nz), z map
    (B, nx, ny); ``offset`` in voxels from the plane, ``index`` the voxel index along the
    projected axis. ``z_map=False`` returns only the four x / y maps.
    """
    _, nx, ny, nz = occ.shape
    cx, cy = (nx + 1) // 2 - 1, (ny + 1) // 2 - 1
    pz = min(nz - 1, max(0, (nz + 1) // 2 - 1 + cfg.z_plane_offset))
    if compiled is not False and occ.device.type == "cpu":
        from ssomotion_ros.sso import cpu_kernels

        if compiled and not cpu_kernels.available():
            raise ValueError(f"compiled=True needs numba: {cpu_kernels.unavailable_reason()}")
        if cpu_kernels.available():  # one compiled pass per map instead of ~100 tensor ops
            offs, founds = cpu_kernels.project(occ.numpy(), cx, cy, pz, z_map)
            base = (cx, cx, cy, cy, pz)
            sign = (1, -1, 1, -1, -1)
            out = []
            for m, (o, f) in enumerate(zip(offs, founds)):
                off = torch.from_numpy(o)
                out.append((off, torch.from_numpy(f), base[m] + sign[m] * off))
            return out
    res = []
    for dim, c, n in ((1, cx, nx), (2, cy, ny)):
        off, f = _nearest(occ, dim, c, n - 1, +1)
        res.append((off, f, c + off))
        off, f = _nearest(occ, dim, c, 0, -1)
        res.append((off, f, c - off))
    if z_map:
        off, f = _nearest(occ, 3, pz, 0, -1)
        res.append((off, f, pz - off))
    return res


def _z_map_from_columns(dense: DenseOccupancy, col, gz, cfg: TriplaneConfig):
    """The z map from the dense grid's column height index (no per-voxel scan).

    Valid when the local z samples are consecutive global voxels (local voxel size equal
    to the global one). col: (B, nx, ny) dense row per local column; gz: (B, nz) global
    z index per local k. Returns (offset, found, k index, dense-relative z) (B, nx, ny).
    """
    nz = gz.shape[1]
    Z = dense.dims[2]
    pz = min(nz - 1, max(0, (nz + 1) // 2 - 1 + cfg.z_plane_offset))
    rp = gz[:, pz] - dense.lo[2]  # plane, relative to the dense grid
    rb = gz[:, 0] - dense.lo[2]  # crop bottom
    look = rp.clamp(0, Z - 1)
    zm = dense.zmax()
    b, nx, ny = col.shape
    flat = col.view(b, -1) * zm.shape[1] + look[:, None]
    hz = zm.view(-1).index_select(0, flat.view(-1)).view(b, nx, ny).to(torch.int64) - 1
    found = (hz >= 0) & (hz >= rb.view(b, 1, 1)) & (rp.view(b, 1, 1) >= 0)
    off = torch.where(found, rp.view(b, 1, 1) - hz, torch.zeros_like(hz))
    return off, found, pz - off, hz.clamp(min=0)


def _compiled() -> bool:
    from ssomotion_ros.sso import cpu_kernels

    return cpu_kernels.available()


def _pixels_torch(maps, colf, zidx, zrel, col, rows_flat, zp, cfg, rowidx, depth) -> None:
    """The tensor path of ``cpu_kernels.triplane_pixels`` (same arguments, as tensors;
    ``col`` = colf as (B, nx, ny))."""
    dev = colf.device
    b = colf.shape[0]
    nx, ny, nz = cfg.grid_size
    ar = {n: torch.arange(n, device=dev) for n in {nx, ny, nz}}
    for m, (off, found, idx) in enumerate(maps):
        # natural layout (B, A, C); image layout [C, A]
        if m < 2:  # x maps (B, ny, nz): idx = i -> column (i, j), z = k
            c = colf.gather(1, (idx * ny + ar[ny].view(1, ny, 1)).view(b, -1)).view(idx.shape)
            z = zidx[:, None, :].expand_as(idx)
        elif m < 4:  # y maps (B, nx, nz): idx = j -> column (i, j), z = k
            c = colf.gather(1, (ar[nx].view(1, nx, 1) * ny + idx).view(b, -1)).view(idx.shape)
            z = zidx[:, None, :].expand_as(idx)
        else:  # z map (B, nx, ny): idx = k -> column (i, j), z = zidx[k]
            c = col
            if zrel is not None:
                z = zrel
            else:
                z = zidx.gather(1, idx.view(b, -1)).view(idx.shape)
        row = rows_flat.index_select(0, (c * zp + z).view(-1)).view(c.shape).to(torch.int64)
        ok = found & (row >= 0)
        h, w = idx.shape[2], idx.shape[1]
        rowidx[:, m, :h, :w] = torch.where(ok, row + 1, 0).transpose(1, 2).to(torch.int32)
        depth[:, m, :h, :w] = (off.to(torch.float32) * cfg.voxel_size * ok).transpose(1, 2)


def extract_triplanes(
    snap: VoxelSnapshot,
    dense: DenseOccupancy,
    poses: torch.Tensor,
    floor_z: torch.Tensor,
    cfg: TriplaneConfig,
    features,
    out: TriPlanes | None = None,
) -> TriPlanes:
    """Tri-planes for a batch of agents.

    snap: occupied voxels (attributes); dense: their dense occupancy (same version).
    poses: (B, 3) float (x, y, yaw), metres / radians, map frame.
    floor_z: (B,) float, floor height under each agent, metres.
    features: a :class:`~ssomotion_ros.sso.vocabulary.FeatureTable` (label -> F-d).
    out: a TriPlanes returned by an earlier call with the same B, sizes and device whose
        contents are no longer needed: it is overwritten and returned (saves allocating
        ~5 MB per agent, which dominates on CPU). None = new tensors.
    Returns :class:`~ssomotion_ros.sso.types.TriPlanes` on the snapshot's device;
    ``rgb`` and ``semantic`` are channels-last views (``.contiguous()`` if needed).
    """
    dev = snap.coords.device
    vs = snap.voxel_size
    nx, ny, nz = cfg.grid_size
    S = max(nx, ny, nz)
    b = poses.shape[0]
    gx, gy, gz = crop_indices(poses.to(dev), floor_z.to(dev), cfg, vs)
    occ, col, zidx = gather_local_occupancy(dense, gx, gy, gz)
    z_fast = gz.shape[1] < 2 or bool(((gz[:, 1:] - gz[:, :-1]) == 1).all())
    maps = decompose(occ, cfg, z_map=not z_fast)
    zrel = None
    if z_fast:
        off, found, idx, zrel = _z_map_from_columns(dense, col, gz, cfg)
        maps.append((off, found, idx))
    ftab = features.torch_table(dev)
    none_row = ftab.shape[0] - 1
    # rowidx: 0 = nothing found (or padding), else 1 + the voxel's snapshot row
    fdim = ftab.shape[1]
    if out is not None:
        want = (b, 5, S, S)
        if tuple(out.depth.shape) != want or tuple(out.semantic.shape) != (b, 5, fdim, S, S):
            raise ValueError(
                f"out has depth {tuple(out.depth.shape)} / semantic "
                f"{tuple(out.semantic.shape)}; this call needs {want} / {(b, 5, fdim, S, S)}"
            )
        depth = out.depth.zero_()
    else:
        depth = torch.zeros((b, 5, S, S), device=dev)
    rowidx = torch.zeros((b, 5, S, S), dtype=torch.int32, device=dev)
    zp = dense.grid.shape[1]
    rows_flat = dense.rows.view(-1)
    colf = col.view(b, nx * ny)
    if dev.type == "cpu" and _compiled():
        from ssomotion_ros.sso import cpu_kernels

        np_maps = [tuple(np.ascontiguousarray(t.numpy()) for t in mp) for mp in maps]
        cpu_kernels.triplane_pixels(
            np_maps,
            colf.numpy(),
            zidx.numpy(),
            None if zrel is None else zrel.numpy(),
            rows_flat.numpy(),
            zp,
            ny,
            cfg.voxel_size,
            rowidx.numpy(),
            depth.numpy(),
        )
    else:
        _pixels_torch(maps, colf, zidx, zrel, col, rows_flat, zp, cfg, rowidx, depth)
    flat = rowidx.view(-1)
    tables = snap.__dict__.get("_triplane_tables")
    if tables is None:  # label / colour per (1 + row), row 0 = nothing; cached per snapshot
        tables = (
            torch.cat([torch.full((1,), -1, dtype=torch.int64, device=dev), snap.labels]),
            torch.cat([torch.zeros((1, 3), device=dev), snap.rgb.to(torch.float32) / 255.0]),
        )
        snap.__dict__["_triplane_tables"] = tables
    lab_tab, rgb_tab = tables
    if out is None:
        mask = rowidx > 0
        label = lab_tab[rowidx]
        rgb_nat = torch.empty((b, 5, S, S, 3), device=dev)
        sem_nat = torch.empty((b, 5, S, S, fdim), device=dev)
    else:
        mask = torch.gt(rowidx, 0, out=out.mask)
        torch.index_select(lab_tab, 0, flat, out=out.label.view(-1))
        label = out.label
        rgb_nat = out.rgb.permute(0, 1, 3, 4, 2)
        sem_nat = out.semantic.permute(0, 1, 3, 4, 2)
        if not (rgb_nat.is_contiguous() and sem_nat.is_contiguous()):
            raise ValueError("out must come from extract_triplanes (channels-last rgb/semantic)")
    torch.index_select(rgb_tab, 0, flat, out=rgb_nat.view(-1, 3))
    fidx = torch.where((label >= 0) & (label < none_row), label, none_row).view(-1)
    torch.index_select(ftab, 0, fidx, out=sem_nat.view(-1, fdim))
    rgb = rgb_nat.permute(0, 1, 4, 2, 3)
    sem = sem_nat.permute(0, 1, 4, 2, 3)
    return TriPlanes(depth=depth, rgb=rgb, semantic=sem, label=label, mask=mask)


def reference_triplanes_numpy(occ, cfg: TriplaneConfig):
    """Slow numpy reference of :func:`decompose` for tests: loops over every ray.

    occ: (nx, ny, nz) bool. Returns 5 arrays of offsets (voxels, -1 = none) in the
    image layout of the module docstring (x: [k, j], y: [k, i], z: [j, i]).
    """
    import numpy as np

    occ = np.asarray(occ, bool)
    nx, ny, nz = occ.shape
    cx, cy = (nx + 1) // 2 - 1, (ny + 1) // 2 - 1
    pz = min(nz - 1, max(0, (nz + 1) // 2 - 1 + cfg.z_plane_offset))
    out = [np.full((nz, ny), -1), np.full((nz, ny), -1), np.full((nz, nx), -1)]
    out += [np.full((nz, nx), -1), np.full((ny, nx), -1)]
    for j in range(ny):
        for k in range(nz):
            for t, i in enumerate(range(cx, nx)):
                if occ[i, j, k]:
                    out[0][k, j] = t
                    break
            for t, i in enumerate(range(cx, -1, -1)):
                if occ[i, j, k]:
                    out[1][k, j] = t
                    break
    for i in range(nx):
        for k in range(nz):
            for t, j in enumerate(range(cy, ny)):
                if occ[i, j, k]:
                    out[2][k, i] = t
                    break
            for t, j in enumerate(range(cy, -1, -1)):
                if occ[i, j, k]:
                    out[3][k, i] = t
                    break
        for j in range(ny):
            for t, k in enumerate(range(pz, -1, -1)):
                if occ[i, j, k]:
                    out[4][j, i] = t
                    break
    return out


def global_keys(gx, gy, gz):
    """Pack (N,) global voxel indices into map keys (helper for callers)."""
    return pack_keys(torch.stack([gx, gy, gz], dim=1))
