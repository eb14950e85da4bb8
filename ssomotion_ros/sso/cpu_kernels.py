"""Compiled CPU kernels (numba) for grouping one cloud's points by voxel.

The torch path in :mod:`ssomotion_ros.sso.fusion` groups points with a chain of tensor
operations (floor, bounding box, linear index, bincount, nonzero, gather, several
scatter reductions): each one is a full pass over the points, which is what limits it on
a CPU. These kernels do the same work in a few fused passes: voxel indices and bounding
box; a 1-bit-per-cell bitmap over the box whose per-word prefix popcounts number the
occupied voxels in key order; one pass of sums; exact vote pairs from per-voxel buckets
of the mixed voxels only; and the merge into the map's sorted table (linear walks and a
sequential space-saving slot update). They are used for clouds fused on the CPU whose
voxel bounding box has at most ``max(4 N, 2^20)`` and
:attr:`FusionConfig.max_batch_cells` cells. Results are identical to the torch path
(tested): the same sorted unique voxels, counts, colour sums, votes and slots.

The kernels are compiled on first use (about 10 s; ``setup.sh`` does it once with
:func:`warm_up`), then cached on disk by numba next to this file (or in numba's user
cache directory). :func:`available` is False when numba is not installed; the fusion
then uses the torch path.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

try:  # numba is a declared dependency; stay usable (torch path) without it
    import numba as _nb

    _NUMBA_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without numba
    _nb = None
    _NUMBA_ERROR = str(exc)


def available() -> bool:
    """True when the compiled kernels can be used (numba importable)."""
    return _nb is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (the ImportError text), else None."""
    return _NUMBA_ERROR


if _nb is not None:
    _jit = _nb.njit(cache=True, nogil=True, boundscheck=False)

    @_jit
    def _voxelize(pts, vs, lo_lim, hi_lim, vox):  # pragma: no cover
        lo0 = lo1 = lo2 = np.int64(1) << 62
        hi0 = hi1 = hi2 = -(np.int64(1) << 62)
        for i in range(pts.shape[0]):
            # float32 division, as the torch path does (identical voxels)
            fx = np.floor(pts[i, 0] / vs)
            fy = np.floor(pts[i, 1] / vs)
            fz = np.floor(pts[i, 2] / vs)
            if not (lo_lim <= fx <= hi_lim and lo_lim <= fy <= hi_lim and lo_lim <= fz <= hi_lim):
                return False, lo0, lo1, lo2, hi0, hi1, hi2  # the caller uses the torch path
            a = np.int64(fx)
            b = np.int64(fy)
            c = np.int64(fz)
            vox[i, 0] = a
            vox[i, 1] = b
            vox[i, 2] = c
            if a < lo0:
                lo0 = a
            if a > hi0:
                hi0 = a
            if b < lo1:
                lo1 = b
            if b > hi1:
                hi1 = b
            if c < lo2:
                lo2 = c
            if c > hi2:
                hi2 = c
        return True, lo0, lo1, lo2, hi0, hi1, hi2

    @_jit
    def _popcount(x):  # pragma: no cover
        x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
        x = (x & np.uint64(0x3333333333333333)) + (
            (x >> np.uint64(2)) & np.uint64(0x3333333333333333)
        )
        x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
        return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))

    @_jit
    def _group(vox, lo0, lo1, lo2, e1, e2, ncells, lab, inst, rgb, has_rgb):  # pragma: no cover
        n = vox.shape[0]
        # pass 1: each point's cell, marked in a bitmap of the bounding box (1 bit per
        # cell: small enough to stay in cache, unlike a table of ids)
        nw = (ncells + 63) >> 6
        bits = np.zeros(nw, np.uint64)
        lin = np.empty(n, np.int64)
        one = np.uint64(1)
        for i in range(n):
            cell = ((vox[i, 0] - lo0) * e1 + (vox[i, 1] - lo1)) * e2 + (vox[i, 2] - lo2)
            lin[i] = cell
            bits[cell >> 6] |= one << np.uint64(cell & 63)
        # a voxel's row = the number of marked cells before it (cell order = (x, y, z)
        # order): per-word prefix counts + a popcount inside the word
        pre = np.empty(nw, np.int64)
        nu = 0
        for w in range(nw):
            pre[w] = nu
            nu += _popcount(bits[w])
        ucoords = np.empty((nu, 3), np.int64)
        e12 = e1 * e2
        u = 0
        for w in range(nw):
            word = bits[w]
            while word != 0:
                low = word & (~word + one)  # lowest set bit
                cell = (w << 6) + _popcount(low - one)
                ucoords[u, 0] = cell // e12 + lo0
                ucoords[u, 1] = (cell // e2) % e1 + lo1
                ucoords[u, 2] = cell % e2 + lo2
                u += 1
                word ^= low
        count = np.zeros(nu, np.float32)
        rgb_sum = np.zeros((nu, 3 if has_rgb else 0), np.float32)
        lab0 = np.full(nu, -1, np.int64)  # the voxel's label while its points agree
        labc = np.zeros(nu, np.float32)
        inst0 = np.full(nu, -1, np.int64)
        instc = np.zeros(nu, np.float32)
        mixed = np.zeros(nu, np.uint8)  # bit 1: labels differ, bit 2: instances differ
        vid = np.empty(n, np.int64)
        # pass 2: sums per voxel
        for i in range(n):
            cell = lin[i]
            w = cell >> 6
            u = pre[w] + _popcount(bits[w] & ((one << np.uint64(cell & 63)) - one))
            vid[i] = u
            count[u] += 1.0
            if has_rgb:
                rgb_sum[u, 0] += rgb[i, 0]
                rgb_sum[u, 1] += rgb[i, 1]
                rgb_sum[u, 2] += rgb[i, 2]
            ll = lab[i]
            if ll >= 0:
                cur = lab0[u]
                if cur == ll:
                    labc[u] += 1.0
                elif cur < 0:
                    lab0[u] = ll
                    labc[u] = 1.0
                else:
                    mixed[u] |= 1
            ii = inst[i]
            if ii >= 0:
                cur = inst0[u]
                if cur == ii:
                    instc[u] += 1.0
                elif cur < 0:
                    inst0[u] = ii
                    instc[u] = 1.0
                else:
                    mixed[u] |= 2
        first = np.empty((nu, 2), np.int64)
        first[:, 0] = lab0
        first[:, 1] = inst0
        first_n = np.empty((nu, 2), np.float32)
        first_n[:, 0] = labc
        first_n[:, 1] = instc
        return ucoords, count, rgb_sum, first, first_n, mixed, vid

    @_jit
    def _pairs(vid, values, first, first_n, mixed, count, bit):  # pragma: no cover
        """Unique (voxel, value) pairs with point counts, sorted by voxel then value:
        unmixed voxels from (first, first_n), mixed ones (``mixed & bit``) from their
        points. vid: (N,) each point's voxel row; count: (U,) points per voxel."""
        n = vid.shape[0]
        nu = first.shape[0]
        # bucket the mixed voxels' points by voxel (one pass: the buckets are sized by
        # the voxels' point counts)
        start = np.zeros(nu + 1, np.int64)
        for u in range(nu):
            start[u + 1] = start[u] + (np.int64(count[u]) if (mixed[u] & bit) != 0 else 0)
        fill = start[:nu].copy()
        buf = np.empty(start[nu], np.int64)
        for i in range(n):
            u = vid[i]
            if (mixed[u] & bit) != 0 and values[i] >= 0:
                buf[fill[u]] = values[i]
                fill[u] += 1
        nm = start[nu]
        out_v = np.empty(nu + nm, np.int64)
        out_val = np.empty(nu + nm, np.int64)
        out_w = np.empty(nu + nm, np.float32)
        p = 0
        for u in range(nu):
            if (mixed[u] & bit) != 0:
                a = start[u]
                b = fill[u]
                for x in range(a + 1, b):  # insertion sort of the voxel's few values
                    v = buf[x]
                    y = x - 1
                    while y >= a and buf[y] > v:
                        buf[y + 1] = buf[y]
                        y -= 1
                    buf[y + 1] = v
                for x in range(a, b):
                    if x > a and buf[x] == buf[x - 1]:
                        out_w[p - 1] += 1.0
                    else:
                        out_v[p] = u
                        out_val[p] = buf[x]
                        out_w[p] = 1.0
                        p += 1
            elif first[u] >= 0:
                out_v[p] = u
                out_val[p] = first[u]
                out_w[p] = first_n[u]
                p += 1
        return out_v[:p], out_val[:p], out_w[:p]


class DenseGrouper:
    """Groups clouds by voxel with the compiled kernels: a bitmap over the cloud's voxel
    bounding box (1 bit per cell, ``max_cells`` at most) numbers the occupied voxels in
    (x, y, z) order, then one pass sums each voxel's points. Stateless and thread safe.
    """

    def __init__(self, max_cells: int):
        if not available():
            raise RuntimeError(f"numba is not available: {_NUMBA_ERROR}")
        self.max_cells = int(max_cells)

    def voxelize(self, points: np.ndarray, voxel_size: float, transform, coord_min, coord_max):
        """Integer voxel coordinates of ``points`` and their bounding box.

        points: (N, 3) float32 metres, sensor frame when ``transform`` is given, else map.
        transform: (4, 4) float64 sensor-to-map matrix or None. voxel_size: metres.
        Returns ``(vox (N, 3) int64, lo (3,) int64, hi (3,) int64)`` voxel indices, or
        None when some point falls outside [coord_min, coord_max] (the caller then
        filters with torch).
        """
        pts = np.ascontiguousarray(points, dtype=np.float32)
        if transform is not None:
            tf = np.asarray(transform, np.float64)
            # in float64, rounded to float32, as the torch path does
            pts = (pts.astype(np.float64) @ tf[:3, :3].T + tf[:3, 3]).astype(np.float32)
        vox = np.empty((pts.shape[0], 3), np.int64)
        ok, *b = _voxelize(pts, np.float32(voxel_size), float(coord_min), float(coord_max), vox)
        if not ok:
            return None
        return vox, np.array(b[:3], np.int64), np.array(b[3:], np.int64)

    def group(self, vox, lo, hi, labels, instance, rgb):
        """Group points by voxel.

        vox, lo, hi: the result of :meth:`voxelize`. labels, instance: (N,) int64, -1 =
        none. rgb: (N, 3) uint8 or None.
        Returns a dict of numpy arrays: ``ucoords`` (U, 3) int64 unique voxels sorted
        lexicographically; ``count`` (U,) float32 points per voxel; ``rgb_sum`` (U, 3)
        float32 or None; ``first`` (U, 2) int64 / ``first_n`` (U, 2) float32 the voxel's
        label / instance and its points when all its labelled points agree (``mixed`` bit
        1 / bit 2 otherwise); ``vid`` (N,) int64 each point's voxel row. Pass it to
        :meth:`pairs` for the votes.
        """
        ext = hi - lo + 1
        cells = int(ext[0]) * int(ext[1]) * int(ext[2])
        if cells > self.max_cells:
            raise ValueError(f"bounding box of {cells} cells > max_cells={self.max_cells}")
        has_rgb = rgb is not None
        rgb_arr = np.ascontiguousarray(rgb, np.uint8) if has_rgb else np.zeros((1, 3), np.uint8)
        ucoords, count, rgb_sum, first, first_n, mixed, vid = _group(
            vox,
            int(lo[0]),
            int(lo[1]),
            int(lo[2]),
            int(ext[1]),
            int(ext[2]),
            cells,
            np.ascontiguousarray(labels, np.int64),
            np.ascontiguousarray(instance, np.int64),
            rgb_arr,
            has_rgb,
        )
        return {
            "ucoords": ucoords,
            "count": count,
            "rgb_sum": rgb_sum if has_rgb else None,
            "first": first,
            "first_n": first_n,
            "mixed": mixed,
            "vid": vid,
        }

    @staticmethod
    def pairs(groups: dict, values: np.ndarray, which: int):
        """Exact (voxel, value, points) pairs of one grouping, sorted by voxel then value.

        groups: the dict from :meth:`group`; values: (N,) int64 the per-point labels
        (``which`` = 0) or instances (``which`` = 1), -1 = none. Returns three arrays:
        (P,) int64 voxel rows, (P,) int64 values, (P,) float32 point counts.
        """
        return _pairs(
            groups["vid"],
            np.ascontiguousarray(values, np.int64),
            np.ascontiguousarray(groups["first"][:, which]),
            np.ascontiguousarray(groups["first_n"][:, which]),
            groups["mixed"],
            groups["count"],
            np.uint8(1 << which),
        )


# ---------------------------------------------------------------------------- merging
if _nb is not None:

    @_jit
    def _find_rows(keys, ukeys):  # pragma: no cover
        """Both sorted: (U,) row of each ukey in keys, or -1; and the insertion position."""
        m = keys.shape[0]
        u = ukeys.shape[0]
        row = np.empty(u, np.int64)
        pos = np.empty(u, np.int64)
        j = 0
        for i in range(u):
            q = ukeys[i]
            while j < m and keys[j] < q:
                j += 1
            pos[i] = j
            row[i] = j if (j < m and keys[j] == q) else -1
        return row, pos

    @_jit
    def _insert(old, new, old_dst, fill):  # pragma: no cover
        """Copy rows of ``old`` (M, C) to rows ``old_dst`` of ``new`` (M + nn, C); every
        other row of ``new`` gets ``fill``."""
        total = new.shape[0]
        c = new.shape[1]
        taken = np.zeros(total, np.bool_)
        for i in range(old.shape[0]):
            d = old_dst[i]
            taken[d] = True
            for k in range(c):
                new[d, k] = old[i, k]
        for d in range(total):
            if not taken[d]:
                for k in range(c):
                    new[d, k] = fill

    @_jit
    def _accumulate(
        rows, count, rgb_add, has_rgb, hit, max_ev, t_rel, ev, last, rgb_sum, rgb_w
    ):  # pragma: no cover
        for i in range(rows.shape[0]):
            r = rows[i]
            e = ev[r] + count[i] * hit
            ev[r] = e if e < max_ev else max_ev
            last[r] = t_rel
            if has_rgb:
                rgb_sum[r, 0] += rgb_add[i, 0]
                rgb_sum[r, 1] += rgb_add[i, 1]
                rgb_sum[r, 2] += rgb_add[i, 2]
                rgb_w[r] += count[i]

    @_jit
    def _decay(rows, t_rel, half_life, ev, last, votes, rgb_sum, rgb_w, lab_cnt, inst_cnt):
        # pragma: no cover
        for i in range(rows.shape[0]):
            r = rows[i]
            dt = np.float32(t_rel) - last[r]
            if dt < 0:
                dt = np.float32(0.0)
            f = np.float32(0.5) ** (dt / np.float32(half_life))
            ev[r] *= f
            votes[r] *= f
            rgb_w[r] *= f
            for k in range(3):
                rgb_sum[r, k] *= f
            for k in range(lab_cnt.shape[1]):
                lab_cnt[r, k] *= f
            for k in range(inst_cnt.shape[1]):
                inst_cnt[r, k] *= f

    @_jit
    def _slots(ids, cnts, rows, vals, w, votes, add_votes):  # pragma: no cover
        """Space-saving update of K slots per row, sequentially, with the same result as
        ``fusion._slot_update``: pairs (rows sorted) whose value has a slot add to it;
        a row's other values take its empty slots in order when there are enough,
        otherwise, heaviest first, each replaces the row's smallest count (first on
        ties) and inherits it."""
        k = ids.shape[1]
        p = rows.shape[0]
        miss = np.empty(p, np.int64)  # scratch: the current row's unmatched pairs
        s = 0
        while s < p:
            r = rows[s]
            e = s
            while e < p and rows[e] == r:
                e += 1
            free = 0
            for j in range(k):
                if ids[r, j] < 0:
                    free += 1
            nmiss = 0
            for i in range(s, e):
                if add_votes:
                    votes[r] += w[i]
                hit = -1
                for j in range(k):
                    if ids[r, j] == vals[i]:
                        hit = j
                        break
                if hit >= 0:
                    cnts[r, hit] += w[i]
                else:
                    miss[nmiss] = i
                    nmiss += 1
            if nmiss <= free:
                for t in range(nmiss):
                    i = miss[t]
                    j = k - free + t
                    ids[r, j] = vals[i]
                    cnts[r, j] = w[i]
            else:
                # heaviest first, ties in pair order (a stable sort by weight, descending)
                order = miss[:nmiss][np.argsort(-w[miss[:nmiss]], kind="mergesort")]
                for t in range(nmiss):
                    i = order[t]
                    mj = 0
                    for j in range(1, k):
                        if cnts[r, j] < cnts[r, mj]:
                            mj = j
                    ids[r, mj] = vals[i]
                    cnts[r, mj] = cnts[r, mj] + w[i]
            s = e


def find_rows(keys: np.ndarray, ukeys: np.ndarray):
    """keys: (M,) int64 sorted map keys; ukeys: (U,) int64 sorted unique query keys.
    Returns (row (U,) int64, -1 when absent; pos (U,) int64 insertion positions)."""
    if keys.shape[0] > 8 * ukeys.shape[0]:  # few queries into a big table: binary search
        pos = np.searchsorted(keys, ukeys)
        hit = keys[np.minimum(pos, keys.shape[0] - 1)] == ukeys
        return np.where(hit, pos, -1).astype(np.int64), pos.astype(np.int64)
    return _find_rows(keys, ukeys)


def insert_rows(old: np.ndarray, old_dst: np.ndarray, total: int, fill) -> np.ndarray:
    """A (total, ...) copy of ``old`` (M, ...) with old row i at ``old_dst[i]`` and every
    other row set to ``fill``; 1-D arrays are handled as (M, 1)."""
    shape = (total,) + old.shape[1:]
    new = np.empty(shape, old.dtype)
    cols = int(np.prod(old.shape[1:], dtype=np.int64))
    o2 = old.reshape(old.shape[0], cols)
    n2 = new.reshape(total, cols)
    _insert(o2, n2, old_dst, old.dtype.type(fill))
    return new


def accumulate(rows, count, rgb_add, hit, max_ev, t_rel, ev, last, rgb_sum, rgb_w) -> None:
    """In place: ``ev[rows] = min(ev + count * hit, max_ev)``, ``last[rows] = t_rel`` and,
    when ``rgb_add`` (U, 3) float32 is given, colour sums and weights. rows: (U,) int64
    unique; count: (U,) float32 points per voxel."""
    has = rgb_add is not None
    _accumulate(
        rows,
        count,
        rgb_add if has else np.zeros((1, 3), np.float32),
        has,
        np.float32(hit),
        np.float32(max_ev),
        np.float32(t_rel),
        ev,
        last,
        rgb_sum,
        rgb_w,
    )


def decay(rows, t_rel, half_life, ev, last, votes, rgb_sum, rgb_w, lab_cnt, inst_cnt) -> None:
    """In place: multiply the decayed quantities of ``rows`` (int64) by
    ``0.5 ** (max(t_rel - last, 0) / half_life)`` (seconds)."""
    _decay(rows, t_rel, half_life, ev, last, votes, rgb_sum, rgb_w, lab_cnt, inst_cnt)


def update_slots(ids, cnts, rows, vals, w, votes=None) -> None:
    """Space-saving slot update in place (see ``fusion._slot_update``).

    ids: (M, K) int slot values (-1 empty); cnts: (M, K) float32; rows, vals, w: (P,)
    int64 row, int64 value, float32 weight of unique (row, value) pairs sorted by row.
    votes: (M,) float32 that also receives ``w`` per row, or None.
    """
    if rows.shape[0] == 0:
        return
    add = votes is not None
    _slots(
        ids,
        cnts,
        rows,
        vals.astype(ids.dtype, copy=False),
        w,
        votes if add else np.zeros(1, np.float32),
        add,
    )


def warm_up() -> bool:
    """Compile (or load from numba's cache) every kernel on tiny inputs; False when numba
    is missing. ``setup.sh`` calls it so that the first fusion is not slowed down."""
    if not available():
        return False
    g = DenseGrouper(1 << 20)
    pts = np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.01, 0.0, 0.0]], np.float32)
    vox, lo, hi = g.voxelize(pts, 0.04, None, -(1 << 20), (1 << 20) - 1)
    labels = np.array([1, 2, 3], np.int64)
    r = g.group(vox, lo, hi, labels, labels, np.zeros((3, 3), np.uint8))
    g.group(vox, lo, hi, labels, labels, None)
    g.pairs(r, labels, 0)
    keys = np.array([1, 5], np.int64)
    row, pos = find_rows(keys, np.array([1, 3], np.int64))
    for old in (
        np.zeros((2, 3), np.float32),
        np.zeros(2, np.float32),
        np.zeros(2, np.int64),
        np.zeros((2, 3), np.int32),
        np.zeros((2, 2), np.int32),
        np.zeros((2, 2), np.int64),
    ):
        insert_rows(old, np.array([0, 2]), 3, 0)
    f = np.zeros(3, np.float32)
    f3 = np.zeros((3, 3), np.float32)
    accumulate(np.array([0]), f[:1], f3[:1], 1.0, 10.0, 0.0, f, f.copy(), f3, f.copy())
    accumulate(np.array([0]), f[:1], None, 1.0, 10.0, 0.0, f, f.copy(), f3, f.copy())
    slots = np.zeros((3, 2), np.float32)
    decay(np.array([0]), 1.0, 2.0, f, f.copy(), f.copy(), f3, f.copy(), slots, slots.copy())
    for ids in (np.full((3, 2), -1, np.int32), np.full((3, 2), -1, np.int64)):
        update_slots(ids, slots, np.array([0, 0, 0]), np.array([1, 2, 3]), f, votes=f.copy())
        update_slots(ids, slots, np.array([0]), np.array([1]), f[:1])
    return True
