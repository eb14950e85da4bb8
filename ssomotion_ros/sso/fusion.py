"""The global voxel map: vectorized scatter fusion of semantic clouds on a torch device.

Storage (documented choice: a *sorted sparse voxel table*)
---------------------------------------------------------
Only voxels that were hit are stored, as rows of a table kept sorted by a 63-bit key
packing the integer voxel coordinates (21 bits per axis, +-2^20 voxels = +-41 km at
0.04 m). Per row (see :attr:`VoxelMap.bytes_per_voxel`, 104 B with the defaults):

========== ================ ==================================================
key        int64            packed (ix, iy, iz); voxel g spans [g*s, (g+1)*s)
coords     (3,) int32       ix, iy, iz
evidence   float32          hit evidence (decayed at ``last_seen``), capped
last_seen  float32          seconds since the map's epoch (first stamp fused)
votes      float32          total label votes (decayed), for the vote share
rgb_sum    (3,) float32     colour sum (decayed), rgb_w float32 its weight
lab_ids    (K,) int32       label slots (space-saving heavy hitters), -1 empty
lab_cnt    (K,) float32     their counts
inst_ids   (Ki,) int64      instance slots, inst_cnt (Ki,) float32
========== ================ ==================================================

Memory is bounded by ``FusionConfig.max_voxels * bytes_per_voxel``: when a fusion
would exceed ``max_voxels`` rows, the rows with the lowest decayed evidence (then the
oldest) are evicted. It grows with observed surface, not with the map's volume.

Fusion of one cloud (all vectorized, no Python loop over points or voxels):
one sort of the points by (voxel, label) gives the per-voxel groups and the per
(voxel, label) vote counts in the same pass; ``index_add_`` accumulates evidence,
colour and votes; new voxels are merged into the sorted table with ``searchsorted``
positions (a linear merge, no re-sort of the map). Label slots are updated with the
space-saving rule (a label not in the K slots replaces the weakest, inheriting its
count), so the majority label is exact while a voxel has seen at most K labels.

On a CPU map the same steps run as compiled numba loops
(:mod:`ssomotion_ros.sso.cpu_kernels`, ``FusionConfig.cpu_kernel``), with an identical
result. Once the main table is big (``delta_min_rows``), voxels seen for the first time go
to a small sorted side table, merged into the main table when it outgrows
``delta_fraction`` of it and before every snapshot, save or eviction: inserting into the
main table copies it, which would cost a fraction of a second per cloud at millions of
voxels.

Decay (optional, ``decay_half_life`` > 0): evidence, votes and colour weights of a row
are multiplied by ``0.5 ** (dt / half_life)`` lazily, whenever the row is touched and
when the map is queried. Voxels whose decayed evidence falls below
``occupied_threshold`` are no longer occupied.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ssomotion_ros.sso.config import FusionConfig, resolve_device
from ssomotion_ros.sso.ingest import SemanticCloud

log = logging.getLogger(__name__)

_BITS = 21
_OFF = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1
#: Voxel coordinates must lie in [COORD_MIN, COORD_MAX].
COORD_MIN = -_OFF
COORD_MAX = _OFF - 1


def pack_keys(coords: torch.Tensor) -> torch.Tensor:
    """(N, 3) integer voxel coords -> (N,) int64 keys, ordered lexicographically by x, y, z."""
    c = coords.to(torch.int64) + _OFF
    return (c[:, 0] << (2 * _BITS)) | (c[:, 1] << _BITS) | c[:, 2]


def unpack_keys(keys: torch.Tensor) -> torch.Tensor:
    """(N,) int64 keys -> (N, 3) int32 voxel coords."""
    x = (keys >> (2 * _BITS)) & _MASK
    y = (keys >> _BITS) & _MASK
    z = keys & _MASK
    return (torch.stack([x, y, z], dim=1) - _OFF).to(torch.int32)


@dataclass
class VoxelSnapshot:
    """Immutable view of the occupied voxels at one map version (on the map's device).

    keys: (M,) int64 sorted packed keys. coords: (M, 3) int32 voxel indices.
    labels: (M,) int64 majority label (-1 = none). share: (M,) float32 vote share of it.
    rgb: (M, 3) uint8 mean colour. instance: (M,) int64 majority instance (-1 = none).
    evidence: (M,) float32 decayed evidence. last_seen: (M,) float64 stamps (seconds).
    voxel_size: metres. version: the map version it was taken at.
    """

    keys: torch.Tensor
    coords: torch.Tensor
    labels: torch.Tensor
    share: torch.Tensor
    rgb: torch.Tensor
    instance: torch.Tensor
    evidence: torch.Tensor
    last_seen: torch.Tensor
    voxel_size: float
    version: int

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def centers(self) -> torch.Tensor:
        """(M, 3) float32 voxel centres, metres, map frame."""
        return (self.coords.to(torch.float32) + 0.5) * self.voxel_size

    def lookup(self, coords: torch.Tensor) -> torch.Tensor:
        """(N, 3) integer voxel coords -> (N,) int64 row in this snapshot, -1 if free."""
        if len(self) == 0:
            return torch.full((coords.shape[0],), -1, dtype=torch.int64, device=coords.device)
        q = pack_keys(coords)
        pos = torch.searchsorted(self.keys, q).clamp_(max=len(self) - 1)
        return torch.where(self.keys[pos] == q, pos, torch.full_like(pos, -1))


def _slot_update(ids: torch.Tensor, cnts: torch.Tensor, rows, vals, w, all_empty=False) -> None:
    """Space-saving heavy-hitter update of K slots per row, in place.

    ids: (M, K) slot values (-1 empty); cnts: (M, K) float32 counts.
    rows, vals, w: (P,) row index, value, weight of unique (row, value) pairs, sorted
        by row. all_empty: the caller guarantees every row's slots are empty (new rows).
    """
    if rows.numel() == 0:
        return
    k = ids.shape[1]
    vals = vals.to(ids.dtype)
    if all_empty:
        cand = torch.full((rows.numel(), k), -1, dtype=ids.dtype, device=ids.device)
    else:
        cand = ids.index_select(0, rows)
    match = cand == vals[:, None]
    has = match.any(dim=1) if not all_empty else torch.zeros_like(rows, dtype=torch.bool)
    flat_cnt = cnts.view(-1)
    flat_ids = ids.view(-1)
    if bool(has.all()):
        slot = match.to(torch.uint8).argmax(dim=1)
        flat_cnt.index_add_(0, rows * k + slot, w)
        return
    if bool(has.any()):
        slot = match.to(torch.uint8).argmax(dim=1)
        flat_cnt.index_add_(0, rows[has] * k + slot[has], w[has])
        miss = ~has
        rows, vals, w, cand = rows[miss], vals[miss], w[miss], cand[miss]
    # fast path: rows (sorted ascending) with no more new values than empty slots take
    # them directly; empty slots (-1) always form a suffix of a row's slots.
    n = rows.numel()
    ar = torch.arange(n, device=rows.device)
    first = torch.ones(n, dtype=torch.bool, device=rows.device)
    first[1:] = rows[1:] != rows[:-1]
    start = torch.cummax(torch.where(first, ar, torch.zeros_like(ar)), 0).values
    rank = ar - start
    last = torch.ones(n, dtype=torch.bool, device=rows.device)
    last[:-1] = first[1:]
    group_n = torch.zeros_like(ar)
    group_n[start[last]] = rank[last] + 1
    group_n = group_n.index_select(0, start)
    free = (cand < 0).sum(dim=1)
    fast = group_n <= free
    if bool(fast.all()):
        flat = rows * k + (k - free + rank)
        flat_ids[flat] = vals
        flat_cnt[flat] = w
        return
    if bool(fast.any()):
        flat = (rows * k + (k - free + rank))[fast]
        flat_ids[flat] = vals[fast]
        flat_cnt[flat] = w[fast]
        slow = ~fast
        rows, vals, w = rows[slow], vals[slow], w[slow]
    # heaviest first within a row: sort by weight desc, then stably by row
    o = torch.argsort(w, descending=True, stable=True)
    rows, vals, w = rows[o], vals[o], w[o]
    o = torch.argsort(rows, stable=True)
    rows, vals, w = rows[o], vals[o], w[o]
    while rows.numel():
        first = torch.ones_like(rows, dtype=torch.bool)
        first[1:] = rows[1:] != rows[:-1]
        r, v, ww = rows[first], vals[first], w[first]
        mn, s = cnts[r].min(dim=1)
        ids[r, s] = v
        cnts[r, s] = mn + ww
        rest = ~first
        rows, vals, w = rows[rest], vals[rest], w[rest]


def _group_pairs(vox_of_point: torch.Tensor, values: torch.Tensor, weights: torch.Tensor):
    """Unique (voxel, value) pairs with summed weights; values >= 0 only.

    vox_of_point: (N,) int64 batch voxel id; values: (N,) int64 (-1 = skip);
    weights: (N,) float32. Returns (vox (P,), value (P,), weight (P,)), sorted by vox.
    """
    ok = values >= 0
    if not bool(ok.any()):
        e = torch.zeros(0, dtype=torch.int64, device=values.device)
        return e, e, torch.zeros(0, device=values.device)
    if bool(ok.all()):
        v, vals, w = vox_of_point, values, weights
    else:
        v, vals, w = vox_of_point[ok], values[ok], weights[ok]
    vmax = int(vals.max())
    if vmax < (1 << 24):  # small values: use them directly in the key (no unique pass)
        uniq = None
        bits = max(1, vmax.bit_length())
        code = vals
    else:
        uniq, code = torch.unique(vals, return_inverse=True)
        bits = max(1, int(len(uniq)).bit_length())
    key = (v << bits) | code
    sk, perm = torch.sort(key)
    new = torch.ones_like(sk, dtype=torch.bool)
    new[1:] = sk[1:] != sk[:-1]
    pid = torch.cumsum(new, 0) - 1
    npairs = int(pid[-1]) + 1
    pw = torch.zeros(npairs, device=w.device).index_add_(0, pid, w[perm])
    pk = sk[new]
    pc = pk & ((1 << bits) - 1)
    return pk >> bits, (pc if uniq is None else uniq[pc]), pw


def _merge_consecutive(vox: torch.Tensor, vals: torch.Tensor, w: torch.Tensor):
    """Sum the weights of consecutive equal (vox, value) pairs; drop values < 0.

    Pairs must be sorted by voxel and, within a voxel, have equal values adjacent (true
    for (label, instance) codes sorted by code: the label is the major part).
    """
    ok = vals >= 0
    if not bool(ok.all()):
        vox, vals, w = vox[ok], vals[ok], w[ok]
    if vox.numel() == 0:
        return vox, vals, w
    new = torch.ones_like(vox, dtype=torch.bool)
    new[1:] = (vox[1:] != vox[:-1]) | (vals[1:] != vals[:-1])
    gid = torch.cumsum(new, 0) - 1
    sw = torch.zeros(int(gid[-1]) + 1, device=w.device).index_add_(0, gid, w)
    return vox[new], vals[new], sw


def _vote_pairs(vid: torch.Tensor, nu: int, values: torch.Tensor):
    """Unique (voxel, value) pairs and their point counts, sorted by voxel.

    vid: (N,) int64 batch voxel id in [0, nu); values: (N,) int64, -1 = no vote.
    Voxels whose points all carry one value (the common case) are handled with two
    scatter reductions; only points of mixed voxels go through a sort.
    """
    dev = vid.device
    ok = values >= 0
    if not bool(ok.any()):
        e = torch.zeros(0, dtype=torch.int64, device=dev)
        return e, e, torch.zeros(0, device=dev)
    if bool(ok.all()):
        v, val = vid, values
    else:
        v, val = vid[ok], values[ok]
    big = torch.iinfo(torch.int64).max
    vmin = torch.full((nu,), big, dtype=torch.int64, device=dev).scatter_reduce_(
        0, v, val, reduce="amin"
    )
    vmax = torch.full((nu,), -1, dtype=torch.int64, device=dev).scatter_reduce_(
        0, v, val, reduce="amax"
    )
    single = vmin == vmax
    nvote = torch.zeros(nu, device=dev).index_add_(0, v, torch.ones(v.shape[0], device=dev))
    svox = torch.nonzero(single).squeeze(1)
    mixed_vox = ~single
    mixed_vox[vmax < 0] = False  # voxels without any vote
    if not bool(mixed_vox.any()):
        return svox, vmin[svox], nvote[svox]
    mi = torch.nonzero(mixed_vox.index_select(0, v)).squeeze(1)  # points of mixed voxels
    mv, mval, mw = _group_pairs(
        v.index_select(0, mi), val.index_select(0, mi), torch.ones(mi.shape[0], device=dev)
    )
    pv = torch.cat([svox, mv])
    pval = torch.cat([vmin[svox], mval])
    pw = torch.cat([nvote[svox], mw])
    o = torch.argsort(pv, stable=True)
    return pv[o], pval[o], pw[o]


class _Rows:
    """A side table: the same fields as :class:`VoxelMap`'s main table (attributes)."""

    keys: torch.Tensor


def _subset_groups(idx, ukeys, ucoords, count, rgb_sum, lpairs, ipairs):
    """The per-voxel sums of one cloud restricted to the voxels ``idx`` ((S,) int64,
    increasing indices into ukeys); pairs are re-indexed (and stay sorted by voxel).
    Votes of the compiled path (``cpu_kernels.Votes``) are subset the same way."""
    remap = torch.full((ukeys.shape[0],), -1, dtype=torch.int64, device=ukeys.device)
    remap[idx] = torch.arange(idx.shape[0], device=ukeys.device)

    def pairs(p):
        if p is None:
            return None
        if not isinstance(p, tuple):  # cpu_kernels.Votes (CPU tensors only)
            return p.subset(idx.numpy())
        r = remap[p[0]]
        keep = r >= 0
        return r[keep], p[1][keep], p[2][keep]

    return (
        ukeys[idx],
        ucoords[idx],
        count[idx],
        None if rgb_sum is None else rgb_sum[idx],
        pairs(lpairs),
        pairs(ipairs),
    )


def _vote_slots(tbl, lvotes, ivotes, row_of_u, fill: bool, threads: int = 1) -> None:
    """Compiled slot update of a CPU table ``tbl`` from one cloud's label votes (which
    also add to ``votes``) and instance votes (``cpu_kernels.Votes``; layout:
    :meth:`VoxelMap._merge`). row_of_u: (U,) numpy int64 table row of each cloud voxel,
    or None when the rows are the voxels themselves; fill: the rows are new (their slots
    and votes are written, not added to); threads: kernel threads."""
    from ssomotion_ros.sso import cpu_kernels as ck

    for v, ids, cnts, votes in (
        (lvotes, tbl.lab_ids, tbl.lab_cnt, tbl.votes),
        (ivotes, tbl.inst_ids, tbl.inst_cnt, None),
    ):
        if v is None:
            continue
        ck.apply_votes(
            ids.numpy(),
            cnts.numpy(),
            None if votes is None else votes.numpy(),
            row_of_u,
            v,
            fill=fill,
            threads=threads,
        )


class VoxelMap:
    """Sparse global voxel map on a torch device (see the module docstring).

    Thread safety: :meth:`fuse` and :meth:`snapshot` take an internal lock; the
    snapshot returned is immutable and safe to use from any thread.
    """

    _FIELDS = (
        "keys",
        "coords",
        "evidence",
        "last_seen",
        "votes",
        "rgb_sum",
        "rgb_w",
        "lab_ids",
        "lab_cnt",
        "inst_ids",
        "inst_cnt",
    )
    #: Fields multiplied by the decay factor (in this order, as the compiled kernel takes
    #: them): evidence, last_seen (read only), votes, rgb_sum, rgb_w, lab_cnt, inst_cnt.
    _DECAYED = ("evidence", "last_seen", "votes", "rgb_sum", "rgb_w", "lab_cnt", "inst_cnt")

    def __init__(self, config: FusionConfig | None = None, device=None):
        self.config = config or FusionConfig()
        if not self.config.voxel_size > 0:
            raise ValueError(f"voxel_size must be > 0, got {self.config.voxel_size}")
        if self.config.label_slots < 1 or self.config.instance_slots < 1:
            raise ValueError("label_slots and instance_slots must be >= 1")
        self.device = resolve_device(device or self.config.device)
        self.voxel_size = float(self.config.voxel_size)
        self._lock = threading.RLock()
        self.version = 0
        #: Stamp (seconds) of the map's epoch: last_seen is stored relative to it.
        self.epoch: float | None = None
        #: Latest stamp fused (seconds), the map's "now" for decay.
        self.time: float = 0.0
        self.num_points_fused = 0
        self._alloc(0)
        #: Compiled CPU grouping (numba) when the map lives on the CPU; None = torch path.
        self._grouper = None
        kernel = self.config.cpu_kernel
        if int(self.config.cpu_threads) < 0:
            raise ValueError(
                f"cpu_threads must be >= 0 (0 = all cores), got {self.config.cpu_threads}"
            )
        if kernel not in ("auto", "compiled", "torch"):
            raise ValueError(f"cpu_kernel must be 'auto', 'compiled' or 'torch', got {kernel!r}")
        if self.device.type == "cpu" and kernel != "torch":
            from ssomotion_ros.sso import cpu_kernels

            if cpu_kernels.available():
                self._grouper = cpu_kernels.DenseGrouper(
                    self.config.max_batch_cells, self.config.cpu_threads
                )
            elif kernel == "compiled":
                raise ValueError(
                    "cpu_kernel='compiled' needs numba (pip install numba): "
                    f"{cpu_kernels.unavailable_reason()}"
                )
            else:
                log.info("numba not available, fusing with the torch path")

    # ------------------------------------------------------------------ storage
    def _alloc(self, m: int, tbl=None) -> None:
        """Fresh all-empty table fields with ``m`` rows on ``tbl`` (default: the main
        table, i.e. this map; also empties the side table then)."""
        t = self if tbl is None else tbl
        d, k, ki = self.device, self.config.label_slots, self.config.instance_slots
        t.keys = torch.zeros(m, dtype=torch.int64, device=d)
        t.coords = torch.zeros((m, 3), dtype=torch.int32, device=d)
        t.evidence = torch.zeros(m, device=d)
        t.last_seen = torch.zeros(m, device=d)
        t.votes = torch.zeros(m, device=d)
        t.rgb_sum = torch.zeros((m, 3), device=d)
        t.rgb_w = torch.zeros(m, device=d)
        t.lab_ids = torch.full((m, k), -1, dtype=torch.int32, device=d)
        t.lab_cnt = torch.zeros((m, k), device=d)
        t.inst_ids = torch.full((m, ki), -1, dtype=torch.int64, device=d)
        t.inst_cnt = torch.zeros((m, ki), device=d)
        if tbl is None:
            self._delta = self._new_rows(0)

    def __len__(self) -> int:
        """Stored voxels (main and side table)."""
        return int(self.keys.shape[0]) + int(self._delta.keys.shape[0])

    @property
    def bytes_per_voxel(self) -> int:
        """Bytes of storage per stored voxel row."""
        total = 0
        for f in self._FIELDS:
            t = getattr(self, f)
            per = t.element_size() * (t.shape[1] if t.dim() > 1 else 1)
            total += per
        return total

    @property
    def nbytes(self) -> int:
        """Bytes currently used by the table."""
        return sum(
            getattr(t, f).numel() * getattr(t, f).element_size()
            for t in (self, self._delta)
            for f in self._FIELDS
        )

    def clear(self) -> None:
        """Forget every voxel (the version still increases)."""
        with self._lock:
            self._alloc(0)
            self.version += 1

    def state_dict(self) -> dict:
        """CPU numpy copies of the table and its clock (see :meth:`load_state_dict`)."""
        with self._lock:
            self._compact()
            out = {f: getattr(self, f).cpu().numpy().copy() for f in self._FIELDS}
            out["epoch"] = np.float64(np.nan if self.epoch is None else self.epoch)
            out["time"] = np.float64(self.time)
            out["num_points_fused"] = np.int64(self.num_points_fused)
            return out

    def load_state_dict(self, state: dict) -> None:
        """Replace the table by ``state`` (as written by :meth:`state_dict`)."""
        missing = [f for f in self._FIELDS if f not in state]
        if missing:
            raise ValueError(f"voxel map state lacks {missing}")
        m = int(np.asarray(state["keys"]).shape[0])
        tensors = {}
        for f in self._FIELDS:
            ref = getattr(self, f)
            arr = np.asarray(state[f])
            if arr.shape[0] != m:
                raise ValueError(f"voxel map state: {f} has {arr.shape[0]} rows, keys {m}")
            if f in ("lab_ids", "lab_cnt", "inst_ids", "inst_cnt"):
                arr = _fit_slots(arr, ref.shape[1], -1 if f.endswith("ids") else 0)
            tensors[f] = torch.as_tensor(arr, dtype=ref.dtype).to(self.device)
        if m > 1 and not bool((tensors["keys"][1:] > tensors["keys"][:-1]).all()):
            raise ValueError("voxel map state: keys are not strictly increasing")
        with self._lock:
            for f, t in tensors.items():
                setattr(self, f, t)
            self._delta = self._new_rows(0)
            ep = float(state.get("epoch", np.nan))
            self.epoch = None if math.isnan(ep) else ep
            self.time = float(state.get("time", 0.0))
            self.num_points_fused = int(state.get("num_points_fused", 0))
            self.version += 1

    # ------------------------------------------------------------------ fusion
    def _decay_factor(self, tbl, rows: torch.Tensor, t_rel: float) -> torch.Tensor | None:
        hl = self.config.decay_half_life
        if hl <= 0:
            return None
        dt = (t_rel - tbl.last_seen[rows]).clamp_(min=0)
        return torch.pow(0.5, dt / hl)

    def fuse(self, cloud: SemanticCloud, stamp: float | None = None, transform=None) -> int:
        """Fuse a cloud; returns the number of points fused.

        cloud: a :class:`SemanticCloud` (points (N, 3) float32 metres in the sensor frame
            when ``transform`` is given, else in the map frame).
        stamp: seconds (e.g. the message stamp); None = the map's latest time.
        transform: (4, 4) float sensor-to-map transform, or None (points already in map).

        Big clouds are fused in chunks of ``chunk_points`` (each chunk atomic). Points
        outside the coordinate range (+-2^20 voxels) are dropped with a warning. On any
        error the map keeps everything fused before the failing chunk.
        """
        n = len(cloud)
        pts = np.asarray(cloud.points)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"cloud.points must be (N, 3), got {pts.shape}")
        if transform is not None:
            tf = np.asarray(transform, np.float64)
            if tf.shape != (4, 4) or not np.isfinite(tf).all():
                raise ValueError(f"transform must be a finite (4, 4) matrix, got {tf.shape}")
        if n == 0:
            return 0
        if n > self.config.warn_points:
            log.warning(
                "fusing a very large cloud (%d points > warn_points=%d) in chunks of %d",
                n,
                self.config.warn_points,
                self.config.chunk_points,
            )
        if stamp is None:
            stamp = self.time if self.epoch is not None else 0.0
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite seconds, got {stamp}")
        chunk = max(1, int(self.config.chunk_points))
        done = 0
        starts = range(0, n, chunk)
        it = starts
        if n > chunk:
            from tqdm import tqdm

            it = tqdm(starts, desc="fusing cloud", unit="chunk", leave=False)
        for s in it:
            part = cloud if n <= chunk else cloud.subset(slice(s, s + chunk))  # no copy
            done += self._fuse_chunk(part, stamp, transform)
        return done

    def _prepare(self, cloud: SemanticCloud, transform):
        dev = self.device
        p = torch.from_numpy(np.ascontiguousarray(cloud.points, dtype=np.float32)).to(dev)
        if transform is not None:
            tf = torch.as_tensor(np.asarray(transform, np.float64), dtype=torch.float64, device=dev)
            p = (p.double() @ tf[:3, :3].T + tf[:3, 3]).float()
        v = torch.floor(p / self.voxel_size)
        lo, hi = v.min(dim=0).values, v.max(dim=0).values
        if bool((lo >= COORD_MIN).all()) and bool((hi <= COORD_MAX).all()):
            ok = slice(None)
        else:
            ok = (v >= COORD_MIN).all(dim=1) & (v <= COORD_MAX).all(dim=1)
            log.warning("dropping %d points outside the map's coordinate range", int((~ok).sum()))
        v = v[ok].to(torch.int64)
        lab = torch.from_numpy(cloud.labels).to(dev)[ok]
        if self.config.ignore_labels:
            ign = torch.as_tensor(list(self.config.ignore_labels), dtype=torch.int64, device=dev)
            lab = torch.where(torch.isin(lab, ign), torch.full_like(lab, -1), lab)
        inst = torch.from_numpy(cloud.instance).to(dev)[ok]
        rgb = None
        if cloud.rgb is not None:
            rgb = torch.from_numpy(np.ascontiguousarray(cloud.rgb)).to(dev)[ok]
        return v, lab, inst, rgb

    def _fuse_chunk(self, cloud: SemanticCloud, stamp: float, transform) -> int:
        if self._grouper is not None:
            done = self._fuse_chunk_compiled(cloud, stamp, transform)
            if done is not None:
                return done
        v, lab, inst, rgb = self._prepare(cloud, transform)
        n = int(v.shape[0])
        if n == 0:
            return 0
        dev = self.device
        vmin = v.min(dim=0).values
        ext = v.max(dim=0).values - vmin + 1
        cells = int(ext[0]) * int(ext[1]) * int(ext[2])
        if cells.bit_length() > 62:
            # spans too much for one linear index: split along x and fuse the halves
            mid = int(vmin[0]) + int(ext[0]) // 2
            left = (v[:, 0] < mid).cpu().numpy()
            return self._fuse_chunk_split(cloud, stamp, transform, left)
        vl = (v - vmin).T.contiguous()  # (3, N): contiguous rows are faster to combine
        lin = vl[0].mul_(int(ext[1])).add_(vl[1]).mul_(int(ext[2])).add_(vl[2])
        # ---- group points by voxel: a dense histogram over the cloud's bounding box when
        # it is small enough (bincount + nonzero, O(N + cells)), else a sort (O(N log N))
        if cells <= max(4 * n, 1 << 20) and cells <= self.config.max_batch_cells:
            hist = torch.bincount(lin, minlength=cells)
            ulin = torch.nonzero(hist).squeeze(1)
            nu = int(ulin.shape[0])
            lut = torch.empty(cells, dtype=torch.int64, device=dev)
            lut[ulin] = torch.arange(nu, device=dev)
            vid = lut.index_select(0, lin)
            count = hist[ulin].to(torch.float32)
        else:
            ulin, vid = torch.unique(lin, sorted=True, return_inverse=True)
            nu = int(ulin.shape[0])
            count = torch.zeros(nu, device=dev).index_add_(0, vid, torch.ones(n, device=dev))
        uz = ulin % ext[2]
        uy = (ulin // ext[2]) % ext[1]
        ux = ulin // (ext[2] * ext[1])
        ucoords = torch.stack([ux, uy, uz], dim=1) + vmin
        ukeys = pack_keys(ucoords)  # sorted: same lexicographic order as lin
        rgb_sum = None
        if rgb is not None:
            rgb_sum = torch.zeros((nu, 3), device=dev).index_add_(0, vid, rgb.to(torch.float32))
        imax = int(inst.max())
        lmax = int(lab.max())
        if imax < 0:
            lpairs = _vote_pairs(vid, nu, lab)
            ipairs = None
        elif (lmax + 2).bit_length() + (imax + 2).bit_length() <= 62 and int(inst.min()) >= -1:
            # one pass for labels and instances: vote on (label, instance) codes, then
            # split the (few) pairs into label pairs and instance pairs
            base = imax + 2
            code = (lab.clamp(min=-1) + 1) * base + (inst + 1)
            pv, pc, pw = _vote_pairs(vid, nu, code)
            plab, pins = pc // base - 1, pc % base - 1
            lpairs = _merge_consecutive(pv, plab, pw)
            ipairs = _group_pairs(pv, pins, pw)
        else:
            lpairs = _vote_pairs(vid, nu, lab)
            ipairs = _vote_pairs(vid, nu, inst)

        with self._lock:
            self._merge(ukeys, ucoords, count, rgb_sum, lpairs, ipairs, stamp)
            self.num_points_fused += n
            self.version += 1
        return n

    def _fuse_chunk_compiled(self, cloud: SemanticCloud, stamp: float, transform) -> int | None:
        """CPU fusion with the compiled grouping kernels; None when this chunk needs the
        torch path (see :meth:`cpu_kernels.DenseGrouper.group`: non-finite points or
        points outside the coordinate range, a bounding box too large for the bitmap,
        ids too large for 31-bit codes)."""
        lab = np.asarray(cloud.labels, np.int64)
        if self.config.ignore_labels:
            lab = np.where(np.isin(lab, list(self.config.ignore_labels)), -1, lab)
        from ssomotion_ros.sso import cpu_kernels

        try:
            r = self._grouper.group(
                cloud.points,
                self.voxel_size,
                lab,
                cloud.instance,
                cloud.rgb,
                transform,
                COORD_MIN,
                COORD_MAX,
                _BITS,
            )
        except cpu_kernels.COMPILE_ERRORS as exc:  # e.g. an untested numba/LLVM version
            log.warning("compiled CPU kernels unusable (%s); fusing with the torch path", exc)
            self._grouper = None
            return None
        if r is None:
            return None
        n = len(cloud)
        ucoords = torch.from_numpy(r["ucoords"])
        ukeys = torch.from_numpy(r["keys"])  # sorted: voxels are numbered in key order
        count = torch.from_numpy(r["count"])
        rgb_sum = None if r["rgb_sum"] is None else torch.from_numpy(r["rgb_sum"])
        lpairs, ipairs = r["lvotes"], r["ivotes"]  # cpu_kernels.Votes
        with self._lock:
            self._merge(ukeys, ucoords, count, rgb_sum, lpairs, ipairs, stamp, compiled=True)
            self.num_points_fused += n
            self.version += 1
        return n

    def _apply_compiled(self, tbl, ukeys, ucoords, count, rgb_sum, lpairs, ipairs, t_rel):
        """:meth:`_apply` for a CPU map with the compiled kernels (same result; linear
        walks instead of a chain of tensor operations)."""
        from ssomotion_ros.sso import cpu_kernels as ck

        cfg = self.config
        m = tbl.keys.shape[0]
        if m == 0:  # an empty table (first cloud, fresh side table): the cloud's voxels
            self._fill_empty(tbl, ukeys, ucoords, count, rgb_sum, lpairs, ipairs, t_rel)
            return
        uk = ukeys.numpy()
        row, pos = ck.find_rows(tbl.keys.numpy(), uk)
        found = row >= 0
        if cfg.decay_half_life > 0 and found.any():
            ck.decay(
                row[found],
                t_rel,
                cfg.decay_half_life,
                *(getattr(tbl, f).numpy() for f in self._DECAYED),
            )
        new = ~found
        nn = int(new.sum())
        if nn:
            new_dst = np.arange(nn) + pos[new]
            old_dst = np.arange(m) + np.searchsorted(uk[new], tbl.keys.numpy())
            total = m + nn
            for f in self._FIELDS:
                old = getattr(tbl, f).numpy()
                fill = -1 if f in ("lab_ids", "inst_ids") else 0
                setattr(tbl, f, torch.from_numpy(ck.insert_rows(old, old_dst, total, fill)))
            tbl.keys.numpy()[new_dst] = uk[new]
            tbl.coords.numpy()[new_dst] = ucoords.numpy()[new]
            row_of_u = row.copy()
            row_of_u[new] = new_dst
            if m:
                row_of_u[found] = old_dst[row[found]]
        else:
            row_of_u = row
        ck.accumulate(
            row_of_u,
            count.numpy(),
            None if rgb_sum is None else rgb_sum.numpy(),
            cfg.hit_weight,
            cfg.max_evidence,
            t_rel,
            tbl.evidence.numpy(),
            tbl.last_seen.numpy(),
            tbl.rgb_sum.numpy(),
            tbl.rgb_w.numpy(),
        )
        _vote_slots(tbl, lpairs, ipairs, row_of_u, False, self._kernel_threads())

    def _kernel_threads(self) -> int:
        """Threads of the compiled kernels (1 without them)."""
        return self._grouper.threads if self._grouper is not None else 1

    def _fill_empty(self, tbl, ukeys, ucoords, count, rgb_sum, lpairs, ipairs, t_rel):
        """:meth:`_apply_compiled` into an empty table: the rows are the cloud's voxels
        (same values as inserting them one by one: zero plus the sums). Fields that the
        vote kernel writes in full are allocated without being cleared first; ``tbl``
        gets the new rows only once they are complete."""
        cfg = self.config
        u = int(ukeys.shape[0])
        d, k, ki = self.device, cfg.label_slots, cfg.instance_slots
        new = _Rows()
        new.keys = ukeys.contiguous()
        new.coords = ucoords.to(torch.int32).contiguous()
        new.evidence = (count * cfg.hit_weight).clamp_(max=cfg.max_evidence)
        new.last_seen = torch.full((u,), t_rel, device=d)
        if rgb_sum is not None:
            new.rgb_sum = rgb_sum.contiguous()
            new.rgb_w = count.clone()
        else:
            new.rgb_sum = torch.zeros((u, 3), device=d)
            new.rgb_w = torch.zeros(u, device=d)
        # written in full by the vote kernel (fill=True)
        new.votes = torch.empty(u, device=d)
        new.lab_ids = torch.empty((u, k), dtype=torch.int32, device=d)
        new.lab_cnt = torch.empty((u, k), device=d)
        if ipairs is not None:
            new.inst_ids = torch.empty((u, ki), dtype=torch.int64, device=d)
            new.inst_cnt = torch.empty((u, ki), device=d)
        else:
            new.inst_ids = torch.full((u, ki), -1, dtype=torch.int64, device=d)
            new.inst_cnt = torch.zeros((u, ki), device=d)
        _vote_slots(new, lpairs, ipairs, None, True, self._kernel_threads())
        for f in self._FIELDS:
            setattr(tbl, f, getattr(new, f))

    def _fuse_chunk_split(self, cloud, stamp, transform, left: np.ndarray) -> int:
        # `left` indexes the points that survived the range filter; recompute on subsets
        pts = np.asarray(cloud.points, np.float32)
        if transform is not None:
            tf = np.asarray(transform, np.float64)
            pts = (pts @ tf[:3, :3].T + tf[:3, 3]).astype(np.float32)
        vx = np.floor(pts / self.voxel_size)
        ok = ((vx >= COORD_MIN) & (vx <= COORD_MAX)).all(axis=1)
        idx = np.flatnonzero(ok)
        mapped = SemanticCloud(
            pts, cloud.labels, cloud.instance, cloud.rgb, cloud.layout, len(cloud), 0
        )
        a = mapped.subset(idx[left])
        b = mapped.subset(idx[~left])
        return self._fuse_chunk(a, stamp, None) + self._fuse_chunk(b, stamp, None)

    def _apply(self, tbl, ukeys, ucoords, count, rgb_sum, lpairs, ipairs, t_rel: float) -> None:
        """Add one cloud's per-voxel sums to the rows of ``tbl`` (the map itself = the
        main table, or the side table), inserting the voxels it lacks (torch path)."""
        cfg = self.config
        dev = self.device
        m = tbl.keys.shape[0]
        if m:
            pos = torch.searchsorted(tbl.keys, ukeys)
            found = tbl.keys[pos.clamp(max=m - 1)] == ukeys
        else:
            pos = torch.zeros_like(ukeys)
            found = torch.zeros_like(ukeys, dtype=torch.bool)
        # ---- decay the rows about to be updated
        rows_f = pos[found]
        fac = self._decay_factor(tbl, rows_f, t_rel)
        if fac is not None and rows_f.numel():
            tbl.evidence[rows_f] *= fac
            tbl.votes[rows_f] *= fac
            tbl.rgb_sum[rows_f] *= fac[:, None]
            tbl.rgb_w[rows_f] *= fac
            tbl.lab_cnt[rows_f] *= fac[:, None]
            tbl.inst_cnt[rows_f] *= fac[:, None]
        # ---- insert new rows (linear merge of two sorted key arrays)
        new = ~found
        nn = int(new.sum())
        if nn:
            nkeys = ukeys[new]
            total = m + nn
            old_dst = torch.arange(m, device=dev) + torch.searchsorted(nkeys, tbl.keys)
            new_dst = torch.arange(nn, device=dev) + pos[new]
            for f in self._FIELDS:
                old = getattr(tbl, f)
                shape = (total,) + tuple(old.shape[1:])
                fill = -1 if f in ("lab_ids", "inst_ids") else 0
                t = torch.full(shape, fill, dtype=old.dtype, device=dev)
                if m:
                    t[old_dst] = old
                setattr(tbl, f, t)
            tbl.keys[new_dst] = nkeys
            tbl.coords[new_dst] = ucoords[new].to(torch.int32)
            row_of_u = torch.empty_like(pos)
            row_of_u[new] = new_dst
            if m:
                row_of_u[found] = old_dst[pos[found]]
        else:
            row_of_u = pos
        # ---- accumulate
        tbl.evidence.index_add_(0, row_of_u, count * cfg.hit_weight)
        tbl.evidence.clamp_(max=cfg.max_evidence)
        tbl.last_seen[row_of_u] = t_rel
        if rgb_sum is not None:
            tbl.rgb_sum.index_add_(0, row_of_u, rgb_sum)
            tbl.rgb_w.index_add_(0, row_of_u, count)
        pvox, plab, pcount = lpairs
        if pvox.numel():
            prow = row_of_u[pvox]
            tbl.votes.index_add_(0, prow, pcount)
            _slot_update(tbl.lab_ids, tbl.lab_cnt, prow, plab, pcount, all_empty=m == 0)
        if ipairs is not None and ipairs[0].numel():
            ivox, ival, icount = ipairs
            _slot_update(tbl.inst_ids, tbl.inst_cnt, row_of_u[ivox], ival, icount, all_empty=m == 0)

    def _merge(self, ukeys, ucoords, count, rgb_sum, lpairs, ipairs, stamp, compiled=False):
        """Merge one cloud's per-voxel sums into the map (caller holds the lock).

        ukeys: (U,) int64 sorted packed keys; ucoords: (U, 3) integer; count: (U,) float32
        points per voxel; rgb_sum: (U, 3) float32 or None; lpairs / ipairs: (voxel index
        into ukeys, value, points) label / instance pairs sorted by voxel, or None; with
        ``compiled``, ``cpu_kernels.Votes`` (or None) instead.
        Voxels already in the main table are updated there; new voxels go to the side
        table while the main table is big (inserting into a sorted table copies it), and
        the side table is merged in once it outgrows ``delta_fraction`` of the main one.
        """
        cfg = self.config
        if self.epoch is None:
            self.epoch = stamp
        t_rel = stamp - self.epoch
        self.time = max(self.time, stamp)
        apply = self._apply_compiled if compiled else self._apply
        m = self.keys.shape[0]
        d = self._delta
        if d.keys.shape[0] == 0 and m <= cfg.delta_min_rows:
            apply(self, ukeys, ucoords, count, rgb_sum, lpairs, ipairs, t_rel)
        else:
            if m:
                pos = torch.searchsorted(self.keys, ukeys).clamp_(max=m - 1)
                in_main = self.keys[pos] == ukeys
            else:
                in_main = torch.zeros_like(ukeys, dtype=torch.bool)
            for tbl, sel in ((self, in_main), (d, ~in_main)):
                idx = torch.nonzero(sel).squeeze(1)
                if idx.numel() == 0:
                    continue
                part = _subset_groups(idx, ukeys, ucoords, count, rgb_sum, lpairs, ipairs)
                apply(tbl, *part, t_rel)
            if d.keys.shape[0] > max(cfg.delta_min_rows, cfg.delta_fraction * m):
                self._compact()
        if len(self) > cfg.max_voxels:
            self._compact()
            self._evict(cfg.max_voxels, t_rel)

    def _compact(self) -> None:
        """Merge the side table into the main table (both sorted, keys disjoint)."""
        d = self._delta
        nd = d.keys.shape[0]
        if nd == 0:
            return
        m = self.keys.shape[0]
        if m == 0:
            for f in self._FIELDS:
                setattr(self, f, getattr(d, f))
        else:
            dev = self.device
            main_dst = torch.arange(m, device=dev) + torch.searchsorted(d.keys, self.keys)
            side_dst = torch.arange(nd, device=dev) + torch.searchsorted(self.keys, d.keys)
            for f in self._FIELDS:
                a, b = getattr(self, f), getattr(d, f)
                t = torch.empty((m + nd,) + tuple(a.shape[1:]), dtype=a.dtype, device=dev)
                t[main_dst] = a
                t[side_dst] = b
                setattr(self, f, t)
        self._delta = self._new_rows(0)

    def _new_rows(self, m: int) -> _Rows:
        rows = _Rows()
        self._alloc(m, rows)
        return rows

    def _evict(self, keep: int, t_rel: float) -> None:
        ev = self._effective_evidence(t_rel)
        # lowest evidence first, oldest first on ties: score = evidence + tiny * recency
        score = ev.double() + 1e-9 * self.last_seen.double()
        idx = torch.topk(score, keep, largest=True, sorted=False).indices
        idx = torch.sort(idx).values
        log.warning("voxel map over max_voxels=%d: evicting %d voxels", keep, len(self) - keep)
        for f in self._FIELDS:
            setattr(self, f, getattr(self, f)[idx].contiguous())

    def _effective_evidence(self, t_rel: float) -> torch.Tensor:
        hl = self.config.decay_half_life
        if hl <= 0:
            return self.evidence
        return self.evidence * torch.pow(0.5, (t_rel - self.last_seen).clamp(min=0) / hl)

    # ------------------------------------------------------------------ queries
    def snapshot(self, time: float | None = None) -> VoxelSnapshot:
        """Occupied voxels at ``time`` (seconds; None = the latest stamp fused)."""
        with self._lock:
            self._compact()
            t_rel = (self.time if time is None else float(time)) - (self.epoch or 0.0)
            ev = self._effective_evidence(t_rel)
            occ = ev >= self.config.occupied_threshold
            idx = torch.nonzero(occ).squeeze(1)
            ev = ev[idx]
            lab_cnt = self.lab_cnt[idx]
            best_cnt, best = lab_cnt.max(dim=1)
            labels = self.lab_ids[idx].gather(1, best[:, None]).squeeze(1).to(torch.int64)
            labels = torch.where(best_cnt > 0, labels, torch.full_like(labels, -1))
            votes = self.votes[idx]
            share = torch.where(votes > 0, (best_cnt / votes.clamp(min=1e-12)).clamp(max=1.0), 0)
            rgb_w = self.rgb_w[idx].clamp(min=1e-12)[:, None]
            rgb = torch.where(
                self.rgb_w[idx][:, None] > 0,
                (self.rgb_sum[idx] / rgb_w).round().clamp(0, 255),
                torch.full_like(self.rgb_sum[idx], 128.0),
            ).to(torch.uint8)
            ic, ib = self.inst_cnt[idx].max(dim=1)
            inst = self.inst_ids[idx].gather(1, ib[:, None]).squeeze(1)
            inst = torch.where(ic > 0, inst, torch.full_like(inst, -1))
            last = self.last_seen[idx].double() + (self.epoch or 0.0)
            return VoxelSnapshot(
                keys=self.keys[idx].clone(),
                coords=self.coords[idx].clone(),
                labels=labels,
                share=share.float(),
                rgb=rgb,
                instance=inst,
                evidence=ev.clone(),
                last_seen=last,
                voxel_size=self.voxel_size,
                version=self.version,
            )


def _fit_slots(arr: np.ndarray, k: int, fill) -> np.ndarray:
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[1] == k:
        return arr
    if arr.shape[1] > k:
        return arr[:, :k]
    pad = np.full((arr.shape[0], k - arr.shape[1]), fill, dtype=arr.dtype)
    return np.concatenate([arr, pad], axis=1)
