"""Compiled CPU kernels (numba) for fusing clouds into the voxel map.

The torch path in :mod:`ssomotion_ros.sso.fusion` groups points with a chain of tensor
operations (floor, bounding box, linear index, bincount, nonzero, gather, several
scatter reductions): each one is a full pass over the points, which is what limits it on
a CPU. These kernels group a cloud in three parallel passes over the points, each on
``threads`` contiguous slices of the cloud (numba ``prange``):

1. bounds: the cloud's box in metres (and whether any point is not finite), over the
   coordinates as one flat array so that the loop vectorizes;
2. mark: each point's cell in the cloud's voxel bounding box and its (label, instance)
   code (an int32 pair per point), the largest label and instance, and a
   1-bit-per-cell bitmap of the box per thread; the OR of the bitmaps with per-word
   prefix popcounts numbers the occupied voxels in key order (no sort, no id table; the
   bitmap fits in cache);
3. accumulate: each thread sums its points into its own 32-byte record per voxel (points,
   colour sums, and the first two distinct codes with their points; two 32-bit fields
   per uint64, so a point costs two additions), prefetching the record of the point
   :data:`_AHEAD` places ahead.

A parallel pass over the voxels then adds the threads' records and keeps each voxel's
votes inline (:class:`Votes`: up to two label and two instance pairs); a voxel whose
points carry three or more distinct codes (rare: three objects in one 4 cm voxel in one
cloud) gets exact votes from one extra pass over its points. The merge into the map's
sorted table is a linear walk (binary search when the table is much bigger than the
cloud) and a space-saving slot update straight from the votes (:func:`apply_votes`, in
parallel ranges of voxels). Results are identical to the torch path (tested): the same
sorted unique voxels, counts, colour sums, votes and slots.

The hot loops access arrays through :func:`_ld` / :func:`_st` (flat, unchecked, without
numba's negative-index wraparound code); every index they use is derived from the cloud's
own box and counts, and the one entry point that takes caller's rows
(:func:`apply_votes`) checks them first.

The kernels are used for clouds fused on the CPU whose voxel bounding box has at most
:attr:`FusionConfig.max_batch_cells` cells (the bitmaps take 1 bit per cell and thread,
2 MB each at the default 16 M), whose points are
finite and inside the map's coordinate range, with labels up to :data:`MAX_LABEL`
(16 382) and instance ids up to :data:`MAX_INSTANCE` (65 534); any other cloud takes the
torch path (same map, ~10x slower). They are compiled on first use (about 30 s;
``setup.sh`` does it once with :func:`warm_up`), then cached on disk by numba next
to this file (or in numba's user cache directory). :func:`available` is False when numba
is not installed; the fusion then uses the torch path.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

log = logging.getLogger(__name__)

try:  # numba is a declared dependency; stay usable (torch path) without it
    import numba as _nb

    # OpenMP first: numba would try TBB first and warn when it finds an old one (Open3D
    # bundles one); "workqueue" is the last resort (not thread safe: see _LAUNCH_LOCK)
    _nb.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
    _NUMBA_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without numba
    _nb = None
    _NUMBA_ERROR = str(exc)

#: Serializes the parallel kernel launches of all maps of the process (numba's
#: "workqueue" threading layer aborts on concurrent launches; each launch uses every
#: kernel thread anyway).
_LAUNCH_LOCK = threading.Lock()
#: Clouds with fewer points are grouped on one thread (a parallel launch costs more).
PARALLEL_MIN_POINTS = 20_000
#: Clouds with fewer voxels get their votes applied on one thread.
PARALLEL_MIN_VOXELS = 20_000
#: (label, instance) codes: ((label + 1) << 16 | (instance + 1)) + 1 in 31 bits. Clouds
#: with larger ids use the torch path.
_CODE_SHIFT = 16
MAX_LABEL = (1 << (30 - _CODE_SHIFT)) - 2
MAX_INSTANCE = (1 << _CODE_SHIFT) - 2
#: Clouds (chunks) grouped here have fewer points: colour sums are 32-bit fields
#: (255 x points) and per-voxel counts must be exact in float32 (<= 2^24).
MAX_POINTS = 1 << 24


#: Errors of compiling the kernels (numba typing/lowering, LLVM): the fusion then falls
#: back to the torch path with a warning instead of failing.
COMPILE_ERRORS: tuple = (RuntimeError,)
if _nb is not None:
    COMPILE_ERRORS = (_nb.core.errors.NumbaError, RuntimeError)


def available() -> bool:
    """True when the compiled kernels can be used (numba importable)."""
    return _nb is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (the ImportError text), else None."""
    return _NUMBA_ERROR


def max_threads() -> int:
    """Threads the compiled kernels may use (numba's NUMBA_NUM_THREADS, the CPU count by
    default); 1 without numba."""
    return int(_nb.config.NUMBA_NUM_THREADS) if _nb is not None else 1


if _nb is not None:
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.core import types as _types

    _jit = _nb.njit(cache=True, nogil=True, boundscheck=False)
    _pjit = _nb.njit(cache=True, nogil=True, boundscheck=False, parallel=True)
    _prange = _nb.prange

    @_nb.extending.intrinsic
    def _prefetch(typingctx, arr, idx):  # pragma: no cover - compiled
        """Prefetch (write intent) the cache line of element ``idx`` of ``arr``'s flat
        data (LLVM ``llvm.prefetch``; a hint, no effect on results)."""
        sig = _types.void(arr, idx)

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), _ir.IntType(8).as_pointer())
            i32 = _ir.IntType(32)
            fnty = _ir.FunctionType(_ir.VoidType(), [ptr.type, i32, i32, i32])
            fn = _cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
            builder.call(fn, [ptr, i32(1), i32(3), i32(1)])
            return context.get_dummy_value()

        return sig, codegen

    @_nb.extending.intrinsic
    def _ld(typingctx, arr, idx):  # pragma: no cover - compiled
        """``arr.flat[idx]`` without numba's negative-index wraparound (``idx`` must be in
        range: the kernels derive every index from the cloud's box and counts). The hot
        loops use it: the wraparound code numba emits for each ``arr[i]`` (even with
        ``boundscheck=False``) made them ~1.5x slower and kept them from vectorizing."""
        sig = arr.dtype(arr, idx)

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            return builder.load(builder.gep(ary.data, [args[1]]))

        return sig, codegen

    @_nb.extending.intrinsic
    def _st(typingctx, arr, idx, val):  # pragma: no cover - compiled
        """``arr.flat[idx] = val`` (cast to the array's dtype) without wraparound, as
        :func:`_ld`."""
        sig = _types.void(arr, idx, val)

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            v = context.cast(builder, args[2], signature.args[2], signature.args[0].dtype)
            builder.store(v, builder.gep(ary.data, [args[1]]))
            return context.get_dummy_value()

        return sig, codegen

    @_nb.extending.intrinsic
    def _popcount(typingctx, x):  # pragma: no cover - compiled
        """Set bits of a uint64 (LLVM ``llvm.ctpop``: the popcnt instruction where the
        CPU has one), as int64."""
        sig = _types.int64(x)

        def codegen(context, builder, signature, args):
            i64 = _ir.IntType(64)
            fn = _cgutils.get_or_insert_function(
                builder.module, _ir.FunctionType(i64, [i64]), "llvm.ctpop.i64"
            )
            return builder.call(fn, [args[0]])

        return sig, codegen

    @_jit
    def _rank(word, pre, cell):  # pragma: no cover
        """Row of an occupied cell: marked cells before it (bitmap ``word``, prefix
        counts ``pre``)."""
        w = cell >> 6
        one = np.uint64(1)
        return _ld(pre, w) + _popcount(_ld(word, w) & ((one << np.uint64(cell & 63)) - one))

    # ---- pass 1: bounds
    #: Lanes of the bounds pass: 16 points (48 floats, a multiple of 3 and of the 16
    #: float32 lanes of an AVX-512 register), so that lane k always holds axis k % 3.
    _LANES = 48

    @_jit
    def _bounds_range(f, a, b, out):  # pragma: no cover
        """Box of points a..b of ``f`` ((3N,) float32, x y z per point) into ``out`` (7,):
        min x y z, max x y z, and the sum of 0 x every coordinate (0, or NaN when a
        coordinate is NaN or infinite). The flat lanes let LLVM vectorize the loop."""
        inf = np.float32(np.inf)
        zero = np.float32(0.0)
        lo = np.full(_LANES, inf, np.float32)
        hi = np.full(_LANES, -inf, np.float32)
        nz = np.zeros(_LANES, np.float32)
        i = 3 * a
        e = 3 * b
        while i + _LANES <= e:
            for k in range(_LANES):
                v = _ld(f, i + k)
                lo[k] = min(lo[k], v)
                hi[k] = max(hi[k], v)
                nz[k] += v * zero
            i += _LANES
        k = 0
        while i < e:
            v = _ld(f, i)
            lo[k] = min(lo[k], v)
            hi[k] = max(hi[k], v)
            nz[k] += v * zero
            i += 1
            k += 1
        for c in range(3):
            lc = inf
            hc = -inf
            for k in range(c, _LANES, 3):
                lc = min(lc, lo[k])
                hc = max(hc, hi[k])
            out[c] = lc
            out[3 + c] = hc
        out[6] = nz.sum()

    @_pjit
    def _bounds(p, nt):  # pragma: no cover
        """(nt, 7) per-slice rows of :func:`_bounds_range` for p (N, 3) float32."""
        n = p.shape[0]
        f = p.reshape(-1)
        out = np.empty((nt, 7), np.float32)
        for t in _prange(nt):
            _bounds_range(f, n * t // nt, n * (t + 1) // nt, out[t])
        return out

    # ---- pass 2: cells, codes and bitmaps
    #: Points per block of the mark pass: their cells are computed in one vectorized
    #: loop, then their bits set in a second one.
    _MARK_BLOCK = 256

    @_jit
    def _code(la, ia, sh):  # pragma: no cover
        """(label, instance) code: ((label + 1) << sh | (instance + 1)) + 1 with negatives
        as -1 (0 = empty slot); labels up to MAX_LABEL and instances up to MAX_INSTANCE
        fit in 31 bits (larger ids are caught by the caller)."""
        return ((max(la, -1) + 1) << sh | (max(ia, -1) + 1)) + 1

    @_jit
    def _mark_range(f, vs, lo0, lo1, lo2, e1, e2, a, b, lab, inst, sh, lc, bits, st):
        # pragma: no cover
        """Points a..b: cell (lc[2i], int32) and code (lc[2i + 1]) of each point, their
        bits in ``bits``, and (largest label, largest instance) into ``st``. Computing
        the codes here, in a streaming pass, leaves the accumulate pass one 8-byte
        stream instead of two int64 ones (it was ~20 % faster in all)."""
        one = np.uint64(1)
        lm = np.int64(-1)
        im = np.int64(-1)
        s = a
        while s < b:
            e = min(s + _MARK_BLOCK, b)
            for i in range(s, e):
                # float32 division, as the torch path does (identical voxels); int32 is
                # enough: every cell is inside the checked box (< 2^31 cells)
                cx = np.int32(np.floor(_ld(f, 3 * i) / vs)) - lo0
                cy = np.int32(np.floor(_ld(f, 3 * i + 1) / vs)) - lo1
                cz = np.int32(np.floor(_ld(f, 3 * i + 2) / vs)) - lo2
                _st(lc, 2 * i, (cx * e1 + cy) * e2 + cz)
                la = _ld(lab, i)
                ia = _ld(inst, i)
                lm = max(lm, la)
                im = max(im, ia)
                _st(lc, 2 * i + 1, _code(la, ia, sh))
            for i in range(s, e):
                cell = _ld(lc, 2 * i)
                w = cell >> 6
                _st(bits, w, _ld(bits, w) | (one << np.uint64(cell & 63)))
            s = e
        st[0] = lm
        st[1] = im

    @_pjit
    def _mark(p, vs, lo0, lo1, lo2, e1, e2, nw, lab, inst, sh, nt):  # pragma: no cover
        """(lc (2N,) int32 cell and code of each point, bits (nt, nw) uint64 per-slice
        bitmaps, st (nt, 2) per-slice largest label and instance)."""
        n = p.shape[0]
        f = p.reshape(-1)
        lc = np.empty(2 * n, np.int32)
        bits = np.zeros((nt, nw), np.uint64)
        st = np.empty((nt, 2), np.int64)
        lo0 = np.int32(lo0)
        lo1 = np.int32(lo1)
        lo2 = np.int32(lo2)
        e1 = np.int32(e1)
        e2 = np.int32(e2)
        for t in _prange(nt):
            _mark_range(
                f,
                vs,
                lo0,
                lo1,
                lo2,
                e1,
                e2,
                n * t // nt,
                n * (t + 1) // nt,
                lab,
                inst,
                sh,
                lc,
                bits[t],
                st[t],
            )
        return lc, bits, st

    @_jit
    def _prefix(bits):  # pragma: no cover
        nt, nw = bits.shape
        word = bits[0].copy()
        for t in range(1, nt):
            for w in range(nw):
                word[w] |= bits[t, w]
        pre = np.empty(nw, np.int64)
        nu = 0
        for w in range(nw):
            pre[w] = nu
            nu += _popcount(word[w])
        return word, pre, nu

    # ---- pass 3: per-thread records
    # record (4 x uint64, two 32-bit fields each, so that a point costs two additions):
    # 0 points | red sum << 32, 1 green sum | blue sum << 32, 2 first code | second code
    # << 32, 3 points of the second code | bit 63 set when a third code was seen.
    #: Prefetch distance of the accumulate pass (points; a power of two): the record of
    #: point i + _AHEAD is prefetched while point i is added.
    _AHEAD = 32

    @_jit
    def _accumulate_range(lc, word, pre, rgb, rs, a, b, rec, ring):  # pragma: no cover
        """Points a..b (cells and codes ``lc`` of :func:`_mark`) into ``rec`` ((U * 4,)
        uint64 records). rgb: (3N,) uint8 with ``rs`` = 3, or (3,) zeros with ``rs`` = 0
        when the cloud has no colours (the same loop, without a branch per point); ring:
        (_AHEAD,) int64 scratch (rows of the points ahead)."""
        m32 = np.uint64(0xFFFFFFFF)
        one = np.uint64(1)
        zero = np.uint64(0)
        msk = _AHEAD - 1
        for i in range(a, min(a + _AHEAD, b)):
            u = _rank(word, pre, _ld(lc, 2 * i))
            _st(ring, i & msk, u)
            _prefetch(rec, u * 4)
        for i in range(a, b):
            r = _ld(ring, i & msk) * 4
            j = i + _AHEAD
            if j < b:  # the record of a point ahead: ranked and prefetched now
                q = _rank(word, pre, _ld(lc, 2 * j))
                _st(ring, j & msk, q)
                _prefetch(rec, q * 4)
            k = rs * i
            _st(rec, r, _ld(rec, r) + (one | (np.uint64(_ld(rgb, k)) << 32)))
            c1 = np.uint64(_ld(rgb, k + 1)) | (np.uint64(_ld(rgb, k + 2)) << 32)
            _st(rec, r + 1, _ld(rec, r + 1) + c1)
            code = np.uint64(_ld(lc, 2 * i + 1))
            cc = _ld(rec, r + 2)
            # the first point of a voxel sets its first code without a branch (a
            # mispredicted branch per new voxel cost ~9 % of this pass)
            cc = cc | (code if (cc & m32) == zero else zero)
            _st(rec, r + 2, cc)
            if (cc & m32) != code:  # rare: a second (or third) code
                c1 = cc >> 32
                if c1 == code:
                    _st(rec, r + 3, _ld(rec, r + 3) + one)
                elif c1 == zero:
                    _st(rec, r + 2, cc | (code << 32))
                    _st(rec, r + 3, _ld(rec, r + 3) + one)
                else:
                    _st(rec, r + 3, _ld(rec, r + 3) | (one << 63))

    @_pjit
    def _accumulate_points(lc, word, pre, nu, rgb, has_rgb, nt):  # pragma: no cover
        """Per-slice records (nt, U, 4)."""
        n = lc.shape[0] // 2
        rec = np.zeros((nt, nu * 4), np.uint64)
        rgbf = rgb.reshape(-1) if has_rgb else np.zeros(3, np.uint8)
        rs = 3 if has_rgb else 0
        for t in _prange(nt):
            ring = np.empty(_AHEAD, np.int64)
            _accumulate_range(lc, word, pre, rgbf, rs, n * t // nt, n * (t + 1) // nt, rec[t], ring)
        return rec.reshape(nt, nu, 4)

    # ---- per voxel: add the threads' records, codes -> inline votes
    @_jit
    def _two_pairs(v0, n0, v1, n1, out_v, out_w, o):  # pragma: no cover
        """Up to two (value, points) pairs, values >= 0 only, equal values summed, sorted
        by value, into ``out_v[o:o + 2]`` / ``out_w[o:o + 2]`` (flat (U * 2,); -1 = none)."""
        if v1 == v0:
            n0 += n1
            v1 = -1
        if v1 >= 0 and (v0 < 0 or v1 < v0):
            v0, v1 = v1, v0
            n0, n1 = n1, n0
        if v0 < 0:  # v0 < 0 implies v1 < 0 after the swap
            _st(out_v, o, -1)
            _st(out_w, o, 0.0)
            _st(out_v, o + 1, -1)
            _st(out_w, o + 1, 0.0)
        else:
            _st(out_v, o, v0)
            _st(out_w, o, n0)
            _st(out_v, o + 1, v1 if v1 >= 0 else -1)
            _st(out_w, o + 1, n1 if v1 >= 0 else 0)

    @_jit
    def _emit_range(
        word,
        pre,
        rec,
        nu,
        lo0,
        lo1,
        lo2,
        e1,
        e2,
        sh,
        has_rgb,
        kb,
        wa,
        wb,
        ucoords,
        keys,
        count,
        rgb_sum,
        lv,
        lw,
        iv,
        iw,
        ovf,
    ):  # pragma: no cover
        """Voxels of bitmap words wa..wb; rec: (nt * U * 4,) flat records; every output
        flat (see :func:`_emit`)."""
        one = np.uint64(1)
        off = np.int64(1) << (kb - 1)
        mask = (np.int64(1) << sh) - 1
        m32 = np.uint64(0xFFFFFFFF)
        nt = rec.shape[0] // (nu * 4)
        # the (x, y, z) of the walk's cell, stepped from the previous one (no divisions)
        prev = wa << 6
        q = prev // e2
        cx = q // e1
        cy = q - cx * e1
        cz = prev - q * e2
        for w in range(wa, wb):
            bw = _ld(word, w)
            u = _ld(pre, w)
            while bw != 0:
                low = bw & (~bw + one)  # lowest set bit
                cell = (w << 6) + _popcount(low - one)
                cz += cell - prev
                prev = cell
                if cz >= e2:  # next row(s): divide only for long jumps
                    if cz < 2 * e2:
                        cz -= e2
                        cy += 1
                    else:
                        q = cz // e2
                        cz -= q * e2
                        cy += q
                    if cy >= e1:
                        q = cy // e1
                        cy -= q * e1
                        cx += q
                x = cx + lo0
                y = cy + lo1
                z = cz + lo2
                _st(ucoords, 3 * u, x)
                _st(ucoords, 3 * u + 1, y)
                _st(ucoords, 3 * u + 2, z)
                _st(keys, u, ((x + off) << (2 * kb)) | ((y + off) << kb) | (z + off))
                c = 0
                r = 0
                g = 0
                b = 0
                k0 = 0
                k1 = 0
                n0 = 0
                n1 = 0
                of = 0
                for t in range(nt):
                    o = (t * nu + u) * 4
                    r0 = _ld(rec, o)
                    if r0 == 0:
                        continue
                    ct = np.int64(r0 & m32)
                    c += ct
                    r += np.int64(r0 >> 32)
                    r1 = _ld(rec, o + 1)
                    g += np.int64(r1 & m32)
                    b += np.int64(r1 >> 32)
                    r2 = _ld(rec, o + 2)
                    r3 = _ld(rec, o + 3)
                    if (r3 >> 63) != 0:
                        of = 1
                    m1 = np.int64(r3 & m32)
                    for j in range(2):
                        code = np.int64(r2 & m32) if j == 0 else np.int64(r2 >> 32)
                        if code == 0:
                            continue
                        m = ct - m1 if j == 0 else m1
                        if k0 == code:
                            n0 += m
                        elif k1 == code:
                            n1 += m
                        elif k0 == 0:
                            k0 = code
                            n0 = m
                        elif k1 == 0:
                            k1 = code
                            n1 = m
                        else:
                            of = 1
                _st(count, u, c)
                if has_rgb:
                    _st(rgb_sum, 3 * u, r)
                    _st(rgb_sum, 3 * u + 1, g)
                    _st(rgb_sum, 3 * u + 2, b)
                _st(ovf, u, of)
                # code - 1 = (label + 1) << sh | (instance + 1)
                la0 = ((k0 - 1) >> sh) - 1
                ia0 = ((k0 - 1) & mask) - 1
                if k1 != 0:
                    la1 = ((k1 - 1) >> sh) - 1
                    ia1 = ((k1 - 1) & mask) - 1
                else:
                    la1 = -1
                    ia1 = -1
                _two_pairs(la0, n0, la1, n1, lv, lw, 2 * u)
                _two_pairs(ia0, n0, ia1, n1, iv, iw, 2 * u)
                u += 1
                bw ^= low

    @_pjit
    def _emit(word, pre, rec, nu, lo0, lo1, lo2, e1, e2, sh, has_rgb, kb, nt):
        # pragma: no cover
        """Per voxel, in key order: coords (U, 3) int32, packed keys (U,) int64, points
        (U,) float32, colour sums (U, 3) float32 (U, 0 without colours), label and
        instance pairs (U, 2) int32 values (-1 = none) / float32 points, and (U,) uint8
        1 = the voxel has three or more codes (its pairs are not exact)."""
        nw = word.shape[0]
        ucoords = np.empty(nu * 3, np.int32)
        keys = np.empty(nu, np.int64)
        count = np.empty(nu, np.float32)
        rgb_sum = np.empty(nu * 3 if has_rgb else 0, np.float32)
        lv = np.empty(nu * 2, np.int32)
        lw = np.empty(nu * 2, np.float32)
        iv = np.empty(nu * 2, np.int32)
        iw = np.empty(nu * 2, np.float32)
        ovf = np.empty(nu, np.uint8)
        recf = rec.reshape(-1)
        for t in _prange(nt):
            _emit_range(
                word,
                pre,
                recf,
                nu,
                lo0,
                lo1,
                lo2,
                e1,
                e2,
                sh,
                has_rgb,
                kb,
                nw * t // nt,
                nw * (t + 1) // nt,
                ucoords,
                keys,
                count,
                rgb_sum,
                lv,
                lw,
                iv,
                iw,
                ovf,
            )
        return (
            ucoords.reshape(nu, 3),
            keys,
            count,
            rgb_sum.reshape(nu, 3 if has_rgb else 0),
            lv.reshape(nu, 2),
            lw.reshape(nu, 2),
            iv.reshape(nu, 2),
            iw.reshape(nu, 2),
            ovf,
        )

    # ---- exact votes of the voxels with three or more codes, as pair lists
    @_jit
    def _overflow_codes(lc, word, pre, ovf, count):  # pragma: no cover
        """Codes - 1 of the points of the voxels flagged in ``ovf`` (``lc`` of
        :func:`_mark`), bucketed by voxel: (start (U + 1,), codes)."""
        nu = ovf.shape[0]
        start = np.zeros(nu + 1, np.int64)
        for u in range(nu):
            start[u + 1] = start[u] + (np.int64(count[u]) if ovf[u] != 0 else 0)
        codes = np.empty(start[nu], np.int64)
        if start[nu] == 0:
            return start, codes
        fill = start[:nu].copy()
        for i in range(lc.shape[0] // 2):
            u = _rank(word, pre, lc[2 * i])
            if ovf[u] != 0:
                codes[fill[u]] = np.int64(lc[2 * i + 1]) - 1
                fill[u] += 1
        return start, codes

    @_jit
    def _exact_pairs(ovf, start, codes, sh, which):  # pragma: no cover
        """(voxel, value, points) pairs of the voxels flagged in ``ovf``, counted from
        their points' codes (``start``/``codes`` of :func:`_overflow_codes`; ``which`` 0:
        label = (code >> sh) - 1, 1: instance = (code & (2^sh - 1)) - 1), values >= 0
        only, sorted by voxel then value."""
        nu = ovf.shape[0]
        mask = (np.int64(1) << sh) - 1
        cap = codes.shape[0]
        out_v = np.empty(cap, np.int64)
        out_val = np.empty(cap, np.int64)
        out_w = np.empty(cap, np.float32)
        p = 0
        for u in range(nu):
            if ovf[u] == 0:
                continue
            a = start[u]
            b = start[u + 1]
            vals = np.empty(b - a, np.int64)
            for x in range(a, b):
                c = codes[x]
                vals[x - a] = (c >> sh) - 1 if which == 0 else (c & mask) - 1
            vals.sort()
            for x in range(b - a):
                v = vals[x]
                if v < 0:
                    continue
                if p > 0 and out_v[p - 1] == u and out_val[p - 1] == v:
                    out_w[p - 1] += 1.0
                else:
                    out_v[p] = u
                    out_val[p] = v
                    out_w[p] = 1.0
                    p += 1
        return out_v[:p], out_val[:p], out_w[:p]


class Votes:
    """One cloud's label (or instance) votes per voxel, as the compiled kernels make
    them: at most two (value, points) pairs inline per voxel, and the exact pair list of
    the few voxels with more.

    v2: (U, 2) int32 values sorted, -1 = none (values are >= 0); w2: (U, 2) float32
    points of each; ovf: (U,) uint8, 1 = the voxel's votes are the pairs of ``xv`` /
    ``xval`` / ``xw`` instead ((X,) int64 voxel, int64 value, float32 points, sorted by
    voxel then value).
    """

    __slots__ = ("v2", "w2", "ovf", "xv", "xval", "xw")

    def __init__(self, v2, w2, ovf, xv, xval, xw):
        self.v2, self.w2, self.ovf = v2, w2, ovf
        self.xv, self.xval, self.xw = xv, xval, xw

    def __len__(self) -> int:
        """Voxels."""
        return int(self.v2.shape[0])

    def subset(self, idx: np.ndarray) -> Votes:
        """The votes of voxels ``idx`` ((S,) int64 increasing indices), re-indexed."""
        remap = np.full(len(self), -1, np.int64)
        remap[idx] = np.arange(idx.shape[0])
        r = remap[self.xv]
        keep = r >= 0
        return Votes(
            self.v2[idx],
            self.w2[idx],
            self.ovf[idx],
            r[keep],
            self.xval[keep],
            self.xw[keep],
        )

    @staticmethod
    def from_pairs(rows: np.ndarray, vals: np.ndarray, w: np.ndarray, nu: int) -> Votes:
        """Votes of ``nu`` voxels from (P,) pairs (voxel int64 sorted, value int64,
        points float32; one pair per (voxel, value)): every voxel with pairs uses the
        exact list."""
        ovf = np.zeros(nu, np.uint8)
        ovf[rows] = 1
        return Votes(
            np.full((nu, 2), -1, np.int32),
            np.zeros((nu, 2), np.float32),
            ovf,
            np.asarray(rows, np.int64),
            np.asarray(vals, np.int64),
            np.asarray(w, np.float32),
        )


class _Clock:
    """Adds the seconds since the previous call to ``timings[name]`` (no-op for None)."""

    def __init__(self, timings: dict | None):
        self.timings = timings
        self.t = time.perf_counter() if timings is not None else 0.0

    def __call__(self, name: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[name] = self.timings.get(name, 0.0) + now - self.t
            self.t = now


class DenseGrouper:
    """Groups clouds by voxel with the compiled kernels (see the module docstring).
    Stateless and thread safe.

    max_cells: largest voxel bounding box (cells) of one cloud; threads: kernel threads,
    0 = :func:`max_threads`.
    """

    def __init__(self, max_cells: int, threads: int = 0):
        if not available():
            raise RuntimeError(f"numba is not available: {_NUMBA_ERROR}")
        if int(threads) < 0:
            raise ValueError(f"threads must be >= 0 (0 = all cores), got {threads}")
        self.max_cells = int(max_cells)
        #: Threads used; also the number of slices a cloud is split into.
        self.threads = min(int(threads), max_threads()) if threads else max_threads()
        #: Slices of the cloud (one record set each); equal to ``threads`` except in tests.
        self.parts = self.threads
        #: When a dict: every :meth:`group` call adds the seconds of its phases to it
        #: (``bounds``, ``mark``, ``accumulate``, ``emit``, ``vote_pairs``: the exact pair
        #: lists of voxels with three or more codes, usually none; the benchmark reports
        #: them). None (default) = not timed.
        self.timings: dict | None = None

    def group(
        self,
        points,
        voxel_size,
        labels,
        instance,
        rgb,
        transform=None,
        coord_min=-(1 << 20),
        coord_max=(1 << 20) - 1,
        key_bits=21,
    ):
        """Group one cloud's points by voxel, or None when the cloud needs the torch path.

        points: (N, 3) float32 metres, sensor frame when ``transform`` is given, else map.
        voxel_size: metres. labels, instance: (N,) int64, negative = none. rgb: (N, 3) uint8
        or None. transform: (4, 4) float64 sensor-to-map matrix or None.
        coord_min/coord_max: the map's voxel coordinate range; key_bits: bits per axis
        of the packed keys (``fusion.pack_keys``).

        Returns None when the cloud is empty or has :data:`MAX_POINTS` points or more
        (16.7 M; :attr:`FusionConfig.chunk_points` is 2 M by default), when a point is not
        finite or outside [coord_min, coord_max], when
        the bounding box has more than ``max_cells`` cells (or 2^31), or when
        a label is over :data:`MAX_LABEL` or an instance over :data:`MAX_INSTANCE`. Else a
        dict: ``ucoords`` (U, 3) int32 unique voxels sorted lexicographically; ``keys``
        (U,) int64 their packed keys (increasing); ``count`` (U,) float32 points per
        voxel; ``rgb_sum`` (U, 3) float32 or None; ``lvotes`` / ``ivotes``: the label /
        instance :class:`Votes` (``ivotes`` None when no point has an instance).
        """
        pts = np.ascontiguousarray(points, dtype=np.float32)
        if transform is not None:
            tf = np.asarray(transform, np.float64)
            # in float64, rounded to float32, as the torch path does
            pts = (pts.astype(np.float64) @ tf[:3, :3].T + tf[:3, 3]).astype(np.float32)
        n = pts.shape[0]
        if n == 0 or n >= MAX_POINTS:
            return None
        lab = np.ascontiguousarray(labels, np.int64)
        inst = np.ascontiguousarray(instance, np.int64)
        has_rgb = rgb is not None
        rgb_arr = np.ascontiguousarray(rgb, np.uint8) if has_rgb else np.zeros((1, 3), np.uint8)
        # the kernels' accesses are unchecked: every per-point array must match the points
        if pts.shape != (n, 3) or lab.shape != (n,) or inst.shape != (n,):
            raise ValueError(
                f"points {pts.shape}, labels {lab.shape} and instance {inst.shape} must be "
                "(N, 3), (N,) and (N,) for the same N"
            )
        if has_rgb and rgb_arr.shape != (n, 3):
            raise ValueError(f"rgb must be ({n}, 3), got {rgb_arr.shape}")
        with _LAUNCH_LOCK:
            nt = self.parts if n >= PARALLEL_MIN_POINTS else 1
            _nb.set_num_threads(max(1, min(nt, self.threads)))
            return self._group(
                pts, voxel_size, lab, inst, rgb_arr, has_rgb, nt, coord_min, coord_max, key_bits
            )

    def _group(
        self, pts, voxel_size, lab, inst, rgb_arr, has_rgb, nt, coord_min, coord_max, key_bits
    ):
        clock = _Clock(self.timings)
        box = _bounds(pts, nt)
        clock("bounds")
        if not np.isfinite(box[:, 6]).all():
            return None  # non-finite points: the torch path drops them with a warning
        vs = np.float32(voxel_size)
        # floor(p / vs) is monotonic in p: the box of the voxels is the voxels of the box
        vlo = np.floor(box[:, :3].min(0) / vs).astype(np.float64)
        vhi = np.floor(box[:, 3:6].max(0) / vs).astype(np.float64)
        if (vlo < coord_min).any() or (vhi > coord_max).any():
            return None
        lo = vlo.astype(np.int64)
        ext = vhi.astype(np.int64) - lo + 1
        cells = int(ext[0]) * int(ext[1]) * int(ext[2])
        if cells > self.max_cells or cells >= 1 << 31:
            return None
        nw = (cells + 63) >> 6
        e1, e2 = int(ext[1]), int(ext[2])
        sh = _CODE_SHIFT
        lo0, lo1, lo2 = int(lo[0]), int(lo[1]), int(lo[2])
        lc, bits, st = _mark(pts, vs, lo0, lo1, lo2, e1, e2, nw, lab, inst, sh, nt)
        imax = int(st[:, 1].max())
        if int(st[:, 0].max()) > MAX_LABEL or imax > MAX_INSTANCE:
            return None  # ids too big for the codes
        word, pre, nu = _prefix(bits)
        clock("mark")
        rec = _accumulate_points(lc, word, pre, nu, rgb_arr, has_rgb, nt)
        clock("accumulate")
        ucoords, keys, count, rgb_sum, lv, lw, iv, iw, ovf = _emit(
            word,
            pre,
            rec,
            nu,
            lo0,
            lo1,
            lo2,
            e1,
            e2,
            sh,
            has_rgb,
            int(key_bits),
            nt,
        )
        clock("emit")
        if ovf.any():
            start, codes = _overflow_codes(lc, word, pre, ovf, count)
            lx = _exact_pairs(ovf, start, codes, sh, 0)
            ix = _exact_pairs(ovf, start, codes, sh, 1)
        else:  # the common case: every voxel's votes are inline
            lx = ix = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
        lvotes = Votes(lv, lw, ovf, *lx)
        ivotes = Votes(iv, iw, ovf, *ix) if imax >= 0 else None
        clock("vote_pairs")
        return {
            "ucoords": ucoords,
            "keys": keys,
            "count": count,
            "rgb_sum": rgb_sum if has_rgb else None,
            "lvotes": lvotes,
            "ivotes": ivotes,
        }


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
    def _slot_row(ids, cnts, r, vals, w, s, e, miss):  # pragma: no cover
        """Space-saving update of row ``r`` of the K slots ``ids`` / ``cnts`` with the
        pairs ``vals[s:e]`` / ``w[s:e]`` (distinct values), with the same result as
        ``fusion._slot_update``: a value with a slot adds to it; the row's other values
        take its empty slots in order when there are enough, otherwise, heaviest first
        (ties in pair order), each replaces the smallest count (first on ties) and
        inherits it. miss: scratch of at least e - s int64."""
        k = ids.shape[1]
        free = 0
        for j in range(k):
            if ids[r, j] < 0:
                free += 1
        nmiss = 0
        for i in range(s, e):
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
        if nmiss <= free:  # empty slots always form a suffix of a row's slots
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

    @_jit
    def _vote_rows(
        ids, cnts, votes, add_votes, rows, has_rows, v2, w2, ovf, xv, xval, xw, fill, ua, ub
    ):  # pragma: no cover
        """Apply the votes of voxels ua..ub (a :class:`Votes`' arrays, v2 / w2 flat
        (U * 2,)) to the slots of table rows ``rows[u]`` (``u`` itself when not
        ``has_rows``), adding each voxel's points to ``votes`` when ``add_votes``. fill:
        the rows are new (their slots and votes are not initialized: every slot and vote
        is written). ids / cnts (M, K) C-contiguous; rows must be valid and distinct
        (unchecked flat accesses; ranges of voxels can run in parallel)."""
        k = ids.shape[1]
        nx = xv.shape[0]
        miss = np.empty(max(2, nx), np.int64)
        p = np.searchsorted(xv, ua)
        zero = np.float32(0.0)
        for u in range(ua, ub):
            r = _ld(rows, u) if has_rows else u
            o = r * k  # flat offset of the row's slots
            exact = _ld(ovf, u) != 0
            if fill and not exact and (k >= 2 or _ld(v2, 2 * u + 1) < 0):
                # the common case of a new row: its inline pairs (absent ones are -1 with
                # 0 points) are its first slots, in order; no branch per slot
                s = 2 * u
                if add_votes:
                    _st(votes, r, _ld(w2, s) + _ld(w2, s + 1))
                _st(ids, o, _ld(v2, s))
                _st(cnts, o, _ld(w2, s))
                if k >= 2:
                    _st(ids, o + 1, _ld(v2, s + 1))
                    _st(cnts, o + 1, _ld(w2, s + 1))
                for j in range(2, k):
                    _st(ids, o + j, -1)
                    _st(cnts, o + j, zero)
                continue
            if exact:  # the exact pairs (few voxels): xval[s:e]
                while p < nx and xv[p] < u:
                    p += 1
                s = p
                while p < nx and xv[p] == u:
                    p += 1
                e = p
                tot = zero
                for i in range(s, e):
                    tot += xw[i]
            else:  # inline: v2[s:e]
                s = 2 * u
                e = s
                tot = zero
                if _ld(v2, s) >= 0:
                    e += 1
                    tot += _ld(w2, s)
                    if _ld(v2, s + 1) >= 0:
                        e += 1
                        tot += _ld(w2, s + 1)
            if fill:  # exact pairs, or two inline pairs for one slot: space-saving
                if add_votes:
                    _st(votes, r, tot)
                for j in range(k):
                    _st(ids, o + j, -1)
                    _st(cnts, o + j, zero)
            else:
                if add_votes:
                    _st(votes, r, _ld(votes, r) + tot)
                if not exact:  # the common case: the values already have slots
                    done = 0
                    for i in range(s, e):
                        vi = _ld(v2, i)
                        for j in range(k):
                            if _ld(ids, o + j) == vi:
                                done += 1
                                break
                    if done == e - s:
                        for i in range(s, e):
                            vi = _ld(v2, i)
                            for j in range(k):
                                if _ld(ids, o + j) == vi:
                                    _st(cnts, o + j, _ld(cnts, o + j) + _ld(w2, i))
                                    break
                        continue
            if e == s:
                continue
            if exact:
                _slot_row(ids, cnts, r, xval, xw, s, e, miss)
            else:
                _slot_row(ids, cnts, r, v2, w2, s, e, miss)

    @_pjit
    def _vote_par(ids, cnts, votes, add_votes, rows, has_rows, v2, w2, ovf, xv, xval, xw, fill, nt):
        # pragma: no cover
        nu = ovf.shape[0]
        for t in _prange(nt):
            _vote_rows(
                ids,
                cnts,
                votes,
                add_votes,
                rows,
                has_rows,
                v2,
                w2,
                ovf,
                xv,
                xval,
                xw,
                fill,
                nu * t // nt,
                nu * (t + 1) // nt,
            )


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


def _vote_args(ids, cnts, votes, rows, v: Votes, fill: bool) -> tuple:
    """The arguments of :func:`_vote_rows` / :func:`_vote_par` (before the range), as
    the C-contiguous arrays of the dtypes the kernel's flat accesses assume."""
    add = votes is not None
    c = np.ascontiguousarray
    return (
        ids,
        cnts,
        votes if add else np.zeros(1, np.float32),
        add,
        c(rows, np.int64) if rows is not None else np.zeros(1, np.int64),
        rows is not None,
        c(v.v2, np.int32).reshape(-1),
        c(v.w2, np.float32).reshape(-1),
        c(v.ovf, np.uint8),
        c(v.xv, np.int64),
        c(v.xval, ids.dtype),
        c(v.xw, np.float32),
        bool(fill),
    )


def apply_votes(ids, cnts, votes, rows, v: Votes, fill: bool = False, threads: int = 1) -> None:
    """Apply one cloud's :class:`Votes` to the K slots of a table, in place (the same
    space-saving update as ``fusion._slot_update``).

    ids: (M, K) int slot values (-1 empty); cnts: (M, K) float32; votes: (M,) float32
    that also receives each voxel's points, or None; rows: (U,) int64 distinct table row
    of each voxel, or None when the rows are the voxels themselves. fill: the rows are
    new: every slot (and vote) of each voxel's row is written, whatever it held.
    threads: kernel threads (ranges of voxels in parallel; 1 below
    :data:`PARALLEL_MIN_VOXELS` voxels).
    """
    nu = len(v)
    if nu == 0:
        return
    # the kernel's flat accesses are unchecked: check the shapes and rows here
    if v.v2.shape != (nu, 2) or v.w2.shape != (nu, 2) or v.ovf.shape != (nu,):
        raise ValueError(f"votes of {nu} voxels need (U, 2) v2 / w2 and (U,) ovf")
    nx = v.xv.shape[0]
    if v.xval.shape != (nx,) or v.xw.shape != (nx,):
        raise ValueError("the exact pairs xv, xval and xw must have one length")
    if nx and (int(v.xv.min()) < 0 or int(v.xv.max()) >= nu):
        raise ValueError(f"exact pairs must name voxels in [0, {nu})")
    m = ids.shape[0]
    if ids.ndim != 2 or cnts.shape != ids.shape:
        raise ValueError(f"ids and cnts must both be (M, K), got {ids.shape} and {cnts.shape}")
    if not (ids.flags.c_contiguous and cnts.flags.c_contiguous):
        raise ValueError("ids and cnts must be C-contiguous")
    if votes is not None and (votes.shape != (m,) or not votes.flags.c_contiguous):
        raise ValueError(f"votes must be a contiguous ({m},) array, got {votes.shape}")
    if rows is None:
        if nu > m:
            raise ValueError(f"{nu} voxels of votes for a table of {m} rows")
    elif np.shape(rows) != (nu,) or int(np.min(rows)) < 0 or int(np.max(rows)) >= m:
        raise ValueError(f"rows must be ({nu},) indices into {m} table rows")
    args = _vote_args(ids, cnts, votes, rows, v, fill)
    nt = max(1, min(int(threads), max_threads())) if nu >= PARALLEL_MIN_VOXELS else 1
    if nt == 1:
        _vote_rows(*args, 0, nu)
        return
    with _LAUNCH_LOCK:
        _nb.set_num_threads(nt)
        _vote_par(*args, nt)


def update_slots(ids, cnts, rows, vals, w, votes=None, all_empty=False) -> None:
    """Space-saving slot update in place from a pair list (see ``fusion._slot_update``):
    :func:`apply_votes` with every row's pairs as an exact list.

    ids: (M, K) int slot values (-1 empty); cnts: (M, K) float32; rows, vals, w: (P,)
    int64 row, int64 value, float32 weight of unique (row, value) pairs sorted by row.
    votes: (M,) float32 that also receives ``w`` per row, or None.
    all_empty: every slot of the rows in ``rows`` is empty (-1).
    """
    if rows.shape[0] == 0:
        return
    urows, vox = np.unique(rows, return_inverse=True)
    v = Votes.from_pairs(vox.astype(np.int64), vals, w, urows.shape[0])
    apply_votes(ids, cnts, votes, urows.astype(np.int64), v, fill=all_empty)


# ---------------------------------------------------------------- tri-plane projections
if _nb is not None:

    @_jit
    def _project_axis(occ, b, dim, c, step, off, found, nx, ny, nz):  # pragma: no cover
        """Nearest occupied voxel from index ``c`` walking by ``step`` along ``dim`` (1 = x,
        2 = y) of occ (B, nx, ny, nz) flat uint8 for agent ``b``; off/found: (A, nz) flat
        int64 / uint8 for the other horizontal axis A. Not found -> offset = steps
        available - 1 (as the torch path). The inner loop over z is branch-free (it
        vectorizes)."""
        n = (nx if dim == 1 else ny) - c if step > 0 else c + 1
        na = ny if dim == 1 else nx
        for q in range(na * nz):
            _st(off, q, n - 1)
            _st(found, q, 0)
        left = na * nz
        one = np.uint8(1)
        zero = np.uint8(0)
        for t in range(n):
            i = c + t * step
            for a in range(na):
                base = ((b * nx + i) * ny + a) * nz if dim == 1 else ((b * nx + a) * ny + i) * nz
                fo = a * nz
                newly = 0
                for k in range(nz):
                    occupied = _ld(occ, base + k) != zero
                    fv = _ld(found, fo + k)
                    hit = occupied & (fv == zero)
                    _st(off, fo + k, t if hit else _ld(off, fo + k))
                    _st(found, fo + k, one if occupied else fv)
                    newly += 1 if hit else 0
                left -= newly
            if left == 0:
                break

    @_jit
    def _project_down(occ, b, pz, off, found, nx, ny, nz):  # pragma: no cover
        """z map: nearest occupied voxel from ``pz`` downward per (i, j); off/found (nx,
        ny) flat int64 / uint8."""
        for q in range(nx * ny):
            base = (b * nx * ny + q) * nz
            _st(off, q, pz)
            _st(found, q, 0)
            for t in range(pz + 1):
                if _ld(occ, base + pz - t) != 0:
                    _st(off, q, t)
                    _st(found, q, 1)
                    break

    @_jit
    def _project_all(occ, cx, cy, pz, z_map, offs, founds):  # pragma: no cover
        bn, nx, ny, nz = occ.shape
        f = occ.reshape(-1)
        for b in range(bn):
            _project_axis(
                f, b, 1, cx, 1, offs[0][b].reshape(-1), founds[0][b].reshape(-1), nx, ny, nz
            )
            _project_axis(
                f, b, 1, cx, -1, offs[1][b].reshape(-1), founds[1][b].reshape(-1), nx, ny, nz
            )
            _project_axis(
                f, b, 2, cy, 1, offs[2][b].reshape(-1), founds[2][b].reshape(-1), nx, ny, nz
            )
            _project_axis(
                f, b, 2, cy, -1, offs[3][b].reshape(-1), founds[3][b].reshape(-1), nx, ny, nz
            )
            if z_map:
                _project_down(
                    f, b, pz, offs[4][b].reshape(-1), founds[4][b].reshape(-1), nx, ny, nz
                )


def project(occ: np.ndarray, cx: int, cy: int, pz: int, z_map: bool = True):
    """Bi-directional projections of local occupancy (see ``triplane.decompose``).

    occ: (B, nx, ny, nz) uint8 (or bool) local occupancy, C-contiguous.
    cx, cy: centre plane indices of x and y; pz: the z plane (the z map looks down from it).
    Returns (offsets, founds): lists of 5 (4 without the z map) arrays in the order x+, x-,
    y+, y-, z with shapes (B, ny, nz), (B, ny, nz), (B, nx, nz), (B, nx, nz), (B, nx, ny):
    offsets int64 in voxels from the plane (steps available - 1 when nothing is found),
    founds bool.
    """
    occ = np.ascontiguousarray(occ).view(np.uint8)
    b, nx, ny, nz = occ.shape
    shapes = [(b, ny, nz), (b, ny, nz), (b, nx, nz), (b, nx, nz), (b, nx, ny)]
    if not z_map:
        shapes = shapes[:4]
    offs = [np.empty(sh, np.int64) for sh in shapes]
    founds = [np.empty(sh, np.uint8) for sh in shapes]  # bool, viewed as such below
    if not z_map:  # typed lists must have 5 entries: placeholders
        offs.append(np.empty((b, 0, 0), np.int64))
        founds.append(np.empty((b, 0, 0), np.uint8))
    if not (0 <= cx < nx and 0 <= cy < ny and 0 <= pz < nz):  # the kernel's accesses are unchecked
        raise ValueError(f"centre ({cx}, {cy}, {pz}) outside the local grid {occ.shape[1:]}")
    _project_all(occ, int(cx), int(cy), int(pz), bool(z_map), tuple(offs), tuple(founds))
    n = 5 if z_map else 4
    return offs[:n], [f.view(np.bool_) for f in founds[:n]]


if _nb is not None:

    @_jit
    def _pixels(off, found, idx, colf, zidx, zrel, use_zrel, rows, zp, ny, v, m, rowidx, depth):
        # pragma: no cover
        b_n, na, nc = off.shape
        for b in range(b_n):
            for a in range(na):
                for c in range(nc):
                    if not found[b, a, c]:
                        continue
                    if m < 2:  # x maps (A = j, C = k): idx = i
                        col = colf[b, idx[b, a, c] * ny + a]
                        z = zidx[b, c]
                    elif m < 4:  # y maps (A = i, C = k): idx = j
                        col = colf[b, a * ny + idx[b, a, c]]
                        z = zidx[b, c]
                    else:  # z map (A = i, C = j): idx = k
                        col = colf[b, a * ny + c]
                        z = zrel[b, a, c] if use_zrel else zidx[b, idx[b, a, c]]
                    row = rows[col * zp + z]
                    if row >= 0:
                        rowidx[b, m, c, a] = row + 1
                        depth[b, m, c, a] = np.float32(off[b, a, c]) * v


def triplane_pixels(maps, colf, zidx, zrel, rows, zp, ny, voxel_size, rowidx, depth) -> None:
    """Fill the tri-plane pixels (see ``triplane.extract_triplanes``), in place.

    maps: 5 (offset, found, index) triples of (B, A, C) arrays (int64, bool, int64) in
    the natural layout of ``triplane.decompose``; colf: (B, nx * ny) int64 dense-grid row
    of each local column; zidx: (B, nz) int64 dense-grid z of each local k; zrel: (B, nx,
    ny) int64 dense z of the z map's voxel, or None (then from zidx); rows: flat int32
    snapshot row per dense cell (-1 = none), ``zp`` cells per dense column; ny: local y
    size; voxel_size: metres. rowidx: (B, 5, S, S) int32 zeros, gets 1 + snapshot row of
    each found voxel; depth: (B, 5, S, S) float32 zeros, gets offset x voxel_size; both
    in image layout [C, A].
    """
    use = zrel is not None
    zr = zrel if use else np.zeros((1, 1, 1), np.int64)
    v = np.float32(voxel_size)
    for m, (off, found, idx) in enumerate(maps):
        _pixels(off, found, idx, colf, zidx, zr, use, rows, int(zp), int(ny), v, m, rowidx, depth)


def warm_up() -> bool:
    """Compile (or load from numba's cache) every kernel on tiny inputs; False when numba
    is missing. ``setup.sh`` calls it so that the first fusion is not slowed down."""
    if not available():
        return False
    g = DenseGrouper(1 << 20)
    # three codes in the first voxel: the exact-vote path compiles too
    pts = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.02, 0.0, 0.0], [0.05, 0, 0]], np.float32)
    labels = np.array([1, 2, 3, 1], np.int64)
    for rgb in (np.zeros((4, 3), np.uint8), None):
        if g.group(pts, 0.04, labels, labels, rgb) is None:  # pragma: no cover
            raise RuntimeError("the compiled grouping refused its warm-up cloud")
    occ = np.zeros((1, 3, 3, 3), np.uint8)
    occ[0, 2, 1, 0] = 1
    for z_map in (True, False):
        project(occ, 1, 1, 1, z_map)
    i2 = np.zeros((1, 2, 2), np.int64)
    tri_maps = [(i2, i2 == 0, i2)] * 5
    for zrel in (i2, None):
        triplane_pixels(
            tri_maps,
            np.zeros((1, 4), np.int64),
            np.zeros((1, 2), np.int64),
            zrel,
            np.zeros(8, np.int32),
            2,
            2,
            0.04,
            np.zeros((1, 5, 2, 2), np.int32),
            np.zeros((1, 5, 2, 2), np.float32),
        )
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
        update_slots(ids, slots, np.array([1, 1, 1]), np.array([1, 2, 3]), f, f.copy(), True)
        update_slots(ids, slots, np.array([2]), np.array([1]), f[:1], all_empty=True)
        v = Votes.from_pairs(np.array([0, 1]), np.array([1, 2]), f[:2], 3)
        for rows, fill in ((None, True), (np.array([0, 1, 2]), False)):
            _vote_par(*_vote_args(ids, slots, f.copy(), rows, v, fill), 1)
    return True
