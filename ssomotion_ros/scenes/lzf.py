"""LZF (liblzf) decompression and a simple compressor, in numpy/Python.

LZF is the compressor of PCL's ``DATA binary_compressed`` PCD files. No maintained PyPI
package provides it (the bindings found are single-release, unmaintained C extensions),
so this module implements the format itself. The stream is a sequence of tokens:

* ``ctrl < 32``: a literal run of ``ctrl + 1`` bytes follows.
* otherwise a back reference: ``len = ctrl >> 5`` (7 means "read one more length byte
  and add it"), ``offset = ((ctrl & 0x1f) << 8) + next_byte + 1``; copy ``len + 2``
  bytes from ``offset`` bytes back in the output (the source may overlap the
  destination: that repeats a pattern of period ``offset``).

The decompressor loops over tokens, not bytes (slice copies), so sensor data with long
runs decompresses fast. The compressor only emits matches that repeat the previous
1, 2, 4 or 8 bytes (runs of equal bytes, NaN/zero padding of organised clouds, repeated
float patterns); everything else is stored as literals. Its output is a valid LZF
stream that any LZF decoder (PCL's included) reads.
"""

from __future__ import annotations

import numpy as np

_MAX_LIT = 32  # longest literal run
_MAX_REF = 264  # longest back reference (7 + 255 + 2)
_MIN_MATCH = 8  # shortest repeat worth a back reference in the simple compressor
_PERIODS = (1, 2, 4, 8)


def lzf_decompress(data: bytes | bytearray | memoryview, out_size: int) -> bytes:
    """Decompress one LZF stream.

    data: the compressed bytes.
    out_size: the exact size of the decompressed data in bytes (PCD stores it).
    Returns the decompressed bytes (length ``out_size``).
    Raises ValueError when the stream is corrupt (a reference before the start of the
    output, a token running past the end of the input) or does not decompress to
    exactly ``out_size`` bytes.
    """
    if out_size < 0:
        raise ValueError(f"out_size must be >= 0, got {out_size}")
    src = bytes(data)
    n_in = len(src)
    out = bytearray(out_size)
    ip = 0
    op = 0
    while ip < n_in:
        ctrl = src[ip]
        ip += 1
        if ctrl < 32:
            n = ctrl + 1
            if ip + n > n_in:
                raise ValueError(
                    f"corrupt LZF stream: literal run of {n} bytes at input offset {ip - 1} "
                    f"runs past the end of the input ({n_in} bytes)"
                )
            if op + n > out_size:
                raise ValueError(
                    f"corrupt LZF stream: output exceeds the expected {out_size} bytes"
                )
            out[op : op + n] = src[ip : ip + n]
            ip += n
            op += n
        else:
            n = ctrl >> 5
            if n == 7:
                if ip >= n_in:
                    raise ValueError("corrupt LZF stream: truncated back-reference length")
                n += src[ip]
                ip += 1
            if ip >= n_in:
                raise ValueError("corrupt LZF stream: truncated back-reference offset")
            ref = op - ((ctrl & 0x1F) << 8) - src[ip] - 1
            ip += 1
            n += 2
            if ref < 0:
                raise ValueError(
                    f"corrupt LZF stream: back reference to {ref} before the start of the "
                    f"output at output offset {op}"
                )
            if op + n > out_size:
                raise ValueError(
                    f"corrupt LZF stream: output exceeds the expected {out_size} bytes"
                )
            dist = op - ref
            if dist >= n:
                out[op : op + n] = out[ref : ref + n]
            else:
                pattern = bytes(out[ref:op])
                reps = -(-n // dist)
                out[op : op + n] = (pattern * reps)[:n]
            op += n
    if op != out_size:
        raise ValueError(
            f"LZF stream decompressed to {op} bytes but {out_size} were expected "
            "(truncated or corrupt data)"
        )
    return bytes(out)


def _repeat_runs(buf: np.ndarray, period: int) -> list[tuple[int, int]]:
    """Runs [start, end) where buf[i] == buf[i - period] for all i in the run."""
    if buf.size <= period:
        return []
    eq = np.zeros(buf.size + 2, dtype=np.int8)
    eq[period + 1 : buf.size + 1] = buf[period:] == buf[:-period]
    d = np.diff(eq)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    keep = (ends - starts) >= _MIN_MATCH
    return list(zip(starts[keep].tolist(), ends[keep].tolist()))


def lzf_compress(data: bytes | bytearray | memoryview) -> bytes:
    """Compress bytes into a valid LZF stream (repeat-pattern matches only).

    data: the bytes to compress. Returns the LZF stream; ``lzf_decompress(result,
    len(data)) == data``. Data without repeats grows by 1/32 (literal headers).
    """
    raw = bytes(data)
    buf = np.frombuffer(raw, dtype=np.uint8)
    runs: list[tuple[int, int, int]] = []
    for p in _PERIODS:
        runs.extend((s, e, p) for s, e in _repeat_runs(buf, p))
    # Longest runs first would be optimal; starting order with greedy overlap trimming
    # is simple and good for padding-dominated data.
    runs.sort(key=lambda r: (r[0], -(r[1] - r[0])))
    out = bytearray()

    def emit_literals(a: int, b: int) -> None:
        while a < b:
            n = min(_MAX_LIT, b - a)
            out.append(n - 1)
            out.extend(raw[a : a + n])
            a += n

    pos = 0
    for s, e, p in runs:
        if e <= pos:
            continue
        s = max(s, pos)
        if s - p < 0 or e - s < _MIN_MATCH:
            continue
        emit_literals(pos, s)
        i = s
        off = p - 1
        while e - i >= 3:
            n = min(_MAX_REF, e - i)
            ln = n - 2
            if ln < 7:
                out.append((ln << 5) | (off >> 8))
            else:
                out.append((7 << 5) | (off >> 8))
                out.append(ln - 7)
            out.append(off & 0xFF)
            i += n
        pos = i
    emit_literals(pos, len(raw))
    return bytes(out)
