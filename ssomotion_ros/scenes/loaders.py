"""Loaders (and a writer) for real scan files: PCD, PLY with per-vertex labels, compact_occ.

PCD (PCL's Point Cloud Data, v0.7 and the v0.6/v0.5 headers PCL still reads):

* ``DATA ascii``, ``binary`` and ``binary_compressed`` (LZF, see :mod:`.lzf`).
* ``SIZE``/``TYPE`` ``I``/``U`` of 1, 2, 4, 8 bytes and ``F`` of 4, 8 bytes; ``COUNT`` > 1
  becomes a sub-array field (``arr["normal"]`` of shape (..., COUNT)).
* Fields named ``_`` are PCL's padding and are dropped.
* The result is a numpy structured array whose field names are the file's ``FIELDS``.
  Organised clouds (``HEIGHT`` > 1) keep their image layout: shape ``(HEIGHT, WIDTH)``,
  row-major like PCL (``arr[v, u]`` is pixel row v, column u). Unorganised clouds
  (``HEIGHT`` == 1) have shape ``(N,)``. Invalid points stay in place as NaN
  coordinates (PCL convention); use :func:`valid_mask` to select them.
* Coordinates are in the file's sensor/map frame (metres); the header ``VIEWPOINT``
  (translation tx ty tz, quaternion qw qx qy qz) is returned by :func:`read_pcd_header`.

PLY with per-vertex labels (ScanNet style): ``element vertex`` with ``x y z`` and any
extra properties (``red green blue alpha``, ``label``, ``instance``, ``objectId``,
``NYU40``, ...), ascii or binary little/big endian; faces are read too when present.

``compact_occ.npy``: the SSOMotion reference's scene occupancy file, loaded through
:mod:`ssomotion_ros.sso.compact_occ` (the SSO module owns that format).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssomotion_ros.scenes.lzf import lzf_compress, lzf_decompress

log = logging.getLogger(__name__)

_PCD_TYPES = {
    ("I", 1): "i1",
    ("I", 2): "i2",
    ("I", 4): "i4",
    ("I", 8): "i8",
    ("U", 1): "u1",
    ("U", 2): "u2",
    ("U", 4): "u4",
    ("U", 8): "u8",
    ("F", 4): "f4",
    ("F", 8): "f8",
}
_PCD_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS")


@dataclass
class PcdHeader:
    """Parsed PCD header.

    fields: field names as in the file (padding ``_`` included).
    sizes: bytes per element of each field.
    types: ``"I"``, ``"U"`` or ``"F"`` per field.
    counts: elements per field.
    width, height: cloud layout (height 1: unorganised).
    viewpoint: (7,) float64: tx ty tz qw qx qy qz, the acquisition pose.
    points: total number of points (width * height).
    data: ``"ascii"``, ``"binary"`` or ``"binary_compressed"``.
    data_offset: byte offset of the data section in the file.
    version: the VERSION string (``"0.7"`` when absent).
    """

    fields: list[str]
    sizes: list[int]
    types: list[str]
    counts: list[int]
    width: int
    height: int
    viewpoint: np.ndarray = field(default_factory=lambda: np.array([0, 0, 0, 1, 0, 0, 0.0]))
    points: int = 0
    data: str = "ascii"
    data_offset: int = 0
    version: str = "0.7"

    def dtype(self, keep_padding: bool = True) -> np.dtype:
        """Packed little-endian record dtype of one point (padding fields named _pad<i>)."""
        names, formats = [], []
        for i, (name, size, typ, count) in enumerate(
            zip(self.fields, self.sizes, self.types, self.counts)
        ):
            if name == "_":
                if not keep_padding:
                    continue
                name = f"_pad{i}"
            base = "<" + _PCD_TYPES[(typ, size)]
            names.append(name)
            formats.append((base, (count,)) if count > 1 else base)
        return np.dtype({"names": names, "formats": formats})


def _bad(path: Path, msg: str) -> ValueError:
    return ValueError(f"{path}: not a readable PCD file: {msg}")


def read_pcd_header(path: str | Path) -> PcdHeader:
    """Parse the header of a PCD file (see :class:`PcdHeader`); raises ValueError if bad."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return _parse_pcd_header(path, head)


def _parse_pcd_header(path: Path, head: bytes) -> PcdHeader:
    values: dict[str, list[str]] = {}
    pos = 0
    data = None
    while True:
        nl = head.find(b"\n", pos)
        if nl < 0:
            raise _bad(path, "header has no DATA line (is this a PCD file?)")
        line = head[pos:nl].decode("ascii", errors="replace").strip()
        pos = nl + 1
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        key = parts[0].upper()
        if key == "DATA":
            if len(parts) < 2:
                raise _bad(path, "DATA line without a format")
            data = parts[1].lower()
            break
        if key not in _PCD_KEYS:
            raise _bad(path, f"unknown header line {line[:60]!r}")
        values[key] = parts[1:]
    if data not in ("ascii", "binary", "binary_compressed"):
        raise _bad(path, f"unsupported DATA {data!r} (ascii, binary, binary_compressed)")
    if "FIELDS" not in values:
        raise _bad(path, "no FIELDS line")
    fields = values["FIELDS"]
    nf = len(fields)
    try:
        sizes = [int(s) for s in values.get("SIZE", ["4"] * nf)]
        types = [t.upper() for t in values.get("TYPE", ["F"] * nf)]
        counts = [int(c) for c in values.get("COUNT", ["1"] * nf)]
        width = int(values.get("WIDTH", ["0"])[0])
        height = int(values.get("HEIGHT", ["1"])[0])
        points = int(values.get("POINTS", [str(width * height)])[0])
        viewpoint = np.array([float(v) for v in values.get("VIEWPOINT", "0 0 0 1 0 0 0".split())])
    except ValueError as e:
        raise _bad(path, f"malformed number in header ({e})") from None
    if not (len(sizes) == len(types) == len(counts) == nf):
        raise _bad(
            path,
            f"FIELDS has {nf} entries but SIZE {len(sizes)}, TYPE {len(types)}, "
            f"COUNT {len(counts)}",
        )
    for name, s, t, c in zip(fields, sizes, types, counts):
        if (t, s) not in _PCD_TYPES:
            raise _bad(path, f"field {name!r}: unsupported TYPE {t} with SIZE {s}")
        if c < 1:
            raise _bad(path, f"field {name!r}: COUNT must be >= 1, got {c}")
    if width < 0 or height < 1:
        raise _bad(path, f"bad WIDTH {width} / HEIGHT {height}")
    if points != width * height:
        raise _bad(path, f"POINTS {points} != WIDTH {width} * HEIGHT {height}")
    if viewpoint.shape != (7,):
        raise _bad(path, "VIEWPOINT needs 7 numbers (tx ty tz qw qx qy qz)")
    version = values.get("VERSION", ["0.7"])[0]
    return PcdHeader(
        fields=fields,
        sizes=sizes,
        types=types,
        counts=counts,
        width=width,
        height=height,
        viewpoint=viewpoint,
        points=points,
        data=data,
        data_offset=pos,
        version=version,
    )


def _drop_padding(arr: np.ndarray) -> np.ndarray:
    keep = [n for n in arr.dtype.names if not n.startswith("_pad")]
    if len(keep) == len(arr.dtype.names):
        return arr
    out = np.empty(arr.shape, dtype=[(n, arr.dtype[n]) for n in keep])
    for n in keep:
        out[n] = arr[n]
    return out


def read_pcd(path: str | Path) -> np.ndarray:
    """Read a PCD file into a numpy structured array.

    path: a ``.pcd`` file (ascii, binary or binary_compressed).
    Returns a structured array with one field per PCD field (names as in the file,
    little-endian, ``COUNT`` > 1 as sub-arrays; padding ``_`` dropped), of shape
    ``(HEIGHT, WIDTH)`` for organised clouds and ``(N,)`` for unorganised ones.
    Coordinates are in metres in the file's frame; invalid points are NaN and kept.
    Packed colour fields (``rgb`` as F4, ``rgba`` as U4) are returned as stored.
    Raises FileNotFoundError for a missing file and ValueError (naming the file and
    the problem) for malformed headers, truncated data or corrupt compression.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PCD file not found: {path}")
    raw = path.read_bytes()
    hdr = _parse_pcd_header(path, raw[: 1 << 16])
    dtype = hdr.dtype(keep_padding=True)
    n = hdr.points
    body = memoryview(raw)[hdr.data_offset :]
    if hdr.data == "ascii":
        arr = _read_pcd_ascii(path, bytes(body), hdr, dtype)
    elif hdr.data == "binary":
        need = n * dtype.itemsize
        if len(body) < need:
            raise _bad(path, f"binary data has {len(body)} bytes, {need} needed for {n} points")
        arr = np.frombuffer(body[:need], dtype=dtype).copy()
    else:
        if len(body) < 8:
            raise _bad(path, "binary_compressed data lacks its 8-byte size header")
        csize, usize = np.frombuffer(body[:8], dtype="<u4").tolist()
        need = n * dtype.itemsize
        if usize != need:
            raise _bad(
                path,
                f"uncompressed size {usize} does not match {n} points x {dtype.itemsize} bytes",
            )
        if len(body) < 8 + csize:
            raise _bad(path, f"compressed data truncated ({len(body) - 8} of {csize} bytes)")
        try:
            flat = lzf_decompress(body[8 : 8 + csize], usize) if n else b""
        except ValueError as e:
            raise _bad(path, str(e)) from None
        # binary_compressed stores fields one after another (structure of arrays).
        arr = np.empty(n, dtype=dtype)
        off = 0
        for name in dtype.names:
            fdt = dtype[name]
            nbytes = fdt.itemsize * n
            base = fdt.base if fdt.shape else fdt
            vals = np.frombuffer(
                flat, dtype=base, count=n * max(1, int(np.prod(fdt.shape))), offset=off
            )
            arr[name] = vals.reshape((n,) + fdt.shape)
            off += nbytes
    arr = _drop_padding(arr)
    if hdr.height > 1:
        arr = arr.reshape(hdr.height, hdr.width)
    log.debug("read %s: %d points, fields %s, %s", path, n, arr.dtype.names, hdr.data)
    return arr


def _read_pcd_ascii(path: Path, body: bytes, hdr: PcdHeader, dtype: np.dtype) -> np.ndarray:
    n = hdr.points
    ncols = sum(hdr.counts)
    tokens = body.split()
    if len(tokens) < n * ncols:
        raise _bad(path, f"ascii data has {len(tokens)} values, {n * ncols} needed")
    table = np.array(tokens[: n * ncols], dtype=object).reshape(n, ncols)
    arr = np.empty(n, dtype=dtype)
    col = 0
    for name in dtype.names:
        fdt = dtype[name]
        base = fdt.base if fdt.shape else fdt
        cnt = int(np.prod(fdt.shape)) if fdt.shape else 1
        block = table[:, col : col + cnt].astype(str)
        try:
            if base.kind == "f":
                vals = block.astype(base)
            else:
                # integers may be written as "1.0e+03" or floats by some writers
                try:
                    vals = block.astype(np.int64 if base.kind == "i" else np.uint64).astype(base)
                except ValueError:
                    vals = block.astype(np.float64).astype(base)
        except ValueError as e:
            raise _bad(path, f"field {name!r}: {e}") from None
        arr[name] = vals.reshape((n,) + fdt.shape) if fdt.shape else vals[:, 0]
        col += cnt
    return arr


def valid_mask(cloud: np.ndarray) -> np.ndarray:
    """Boolean mask of points with finite x, y, z (same shape as ``cloud``)."""
    if cloud.dtype.names is None or not {"x", "y", "z"} <= set(cloud.dtype.names):
        raise ValueError("valid_mask needs a structured array with fields x, y, z")
    return np.isfinite(cloud["x"]) & np.isfinite(cloud["y"]) & np.isfinite(cloud["z"])


def write_pcd(
    path: str | Path,
    cloud: np.ndarray,
    data: str = "binary_compressed",
    viewpoint: np.ndarray | None = None,
) -> None:
    """Write a structured array as a PCD v0.7 file that PCL (and :func:`read_pcd`) read.

    cloud: structured array of shape (N,) (unorganised) or (H, W) (organised); fields of
        dtype int8..int64, uint8..uint64, float32/float64, optionally sub-arrays (COUNT).
    data: ``"ascii"``, ``"binary"`` or ``"binary_compressed"`` (LZF, fields stored one
        after another as PCL does).
    viewpoint: (7,) tx ty tz qw qx qy qz of the sensor, default identity.
    """
    path = Path(path)
    if cloud.dtype.names is None:
        raise ValueError("write_pcd needs a numpy structured array (named fields)")
    if data not in ("ascii", "binary", "binary_compressed"):
        raise ValueError(f"data must be ascii, binary or binary_compressed, got {data!r}")
    if cloud.ndim == 2:
        height, width = cloud.shape
    elif cloud.ndim == 1:
        height, width = 1, cloud.shape[0]
    else:
        raise ValueError(f"cloud must have shape (N,) or (H, W), got {cloud.shape}")
    flat = np.ascontiguousarray(cloud.reshape(-1))
    n = flat.shape[0]
    names, sizes, types, counts, formats = [], [], [], [], []
    for name in flat.dtype.names:
        fdt = flat.dtype[name]
        base = fdt.base if fdt.shape else fdt
        if base.kind not in "iuf" or (base.kind == "f" and base.itemsize not in (4, 8)):
            raise ValueError(f"field {name!r}: dtype {base} cannot be stored in PCD")
        if re.search(r"\s", name) or not name:
            raise ValueError(f"field name {name!r} cannot be stored in PCD")
        names.append(name)
        sizes.append(base.itemsize)
        types.append({"i": "I", "u": "U", "f": "F"}[base.kind])
        counts.append(int(np.prod(fdt.shape)) if fdt.shape else 1)
        le = base.newbyteorder("<")
        formats.append((le, fdt.shape) if fdt.shape else le)
    packed = np.empty(n, dtype=np.dtype({"names": names, "formats": formats}))
    for name in names:
        packed[name] = flat[name]
    vp = np.array([0, 0, 0, 1, 0, 0, 0.0]) if viewpoint is None else np.asarray(viewpoint, float)
    if vp.shape != (7,):
        raise ValueError(f"viewpoint must be (7,) tx ty tz qw qx qy qz, got {vp.shape}")
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\n"
        "VERSION 0.7\n"
        f"FIELDS {' '.join(names)}\n"
        f"SIZE {' '.join(map(str, sizes))}\n"
        f"TYPE {' '.join(types)}\n"
        f"COUNT {' '.join(map(str, counts))}\n"
        f"WIDTH {width}\nHEIGHT {height}\n"
        f"VIEWPOINT {' '.join(f'{v:.9g}' for v in vp)}\n"
        f"POINTS {n}\nDATA {data}\n"
    ).encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header)
        if data == "binary":
            f.write(packed.tobytes())
        elif data == "binary_compressed":
            soa = b"".join(np.ascontiguousarray(packed[name]).tobytes() for name in names)
            comp = lzf_compress(soa) if soa else b""
            f.write(np.array([len(comp), len(soa)], dtype="<u4").tobytes())
            f.write(comp)
        else:
            cols = []
            for name in names:
                v = packed[name].reshape(n, -1)
                if v.dtype.kind == "f":
                    cols.append(np.char.mod("%.9g" if v.dtype.itemsize == 4 else "%.17g", v))
                else:
                    cols.append(np.char.mod("%d", v))
            table = np.concatenate(cols, axis=1) if cols else np.empty((n, 0), str)
            f.write("\n".join(" ".join(r) for r in table).encode("ascii"))
            f.write(b"\n")


# ---------------------------------------------------------------------------- PLY

_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


@dataclass
class PlyLabels:
    """A PLY mesh/cloud with per-vertex properties.

    vertices: (N,) structured array with every vertex property of the file (``x y z``
        in metres plus e.g. ``red green blue alpha label instance``).
    faces: (F, 3) int64 vertex indices of triangles (polygons fan-triangulated), or an
        empty (0, 3) array when the file has no faces.
    label_field: name of the per-vertex label property found (``None`` if none).
    instance_field: name of the per-vertex instance property found (``None`` if none).
    """

    vertices: np.ndarray
    faces: np.ndarray
    label_field: str | None
    instance_field: str | None

    @property
    def points(self) -> np.ndarray:
        """(N, 3) float64 vertex positions, metres, file frame."""
        return np.stack([self.vertices[k].astype(np.float64) for k in ("x", "y", "z")], axis=1)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 per-vertex labels; raises ValueError if the file has none."""
        if self.label_field is None:
            raise ValueError(
                f"PLY has no per-vertex label property (have: {self.vertices.dtype.names})"
            )
        return self.vertices[self.label_field].astype(np.int64)

    @property
    def instances(self) -> np.ndarray | None:
        """(N,) int64 per-vertex instance ids, or None."""
        if self.instance_field is None:
            return None
        return self.vertices[self.instance_field].astype(np.int64)


#: Property names recognised as per-vertex semantic labels, in priority order.
PLY_LABEL_NAMES = ("label", "semantic_label", "class", "category_id", "nyu40", "NYU40")
#: Property names recognised as per-vertex instance ids, in priority order.
PLY_INSTANCE_NAMES = ("instance", "instance_id", "instance_label", "objectId", "object_id")


def read_ply_labels(path: str | Path) -> PlyLabels:
    """Read a PLY with per-vertex labels (ScanNet ``*_vh_clean_2.labels.ply`` style).

    path: ``.ply`` file, ascii or binary (little/big endian), with ``element vertex``
        holding ``x y z`` and extra properties; an optional ``element face`` with a
        ``vertex_indices``/``vertex_index`` list.
    Returns :class:`PlyLabels`; the label property is the first of
    :data:`PLY_LABEL_NAMES` present, the instance property the first of
    :data:`PLY_INSTANCE_NAMES`. Raises FileNotFoundError / ValueError (file and
    problem named) for missing or malformed files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PLY file not found: {path}")
    raw = path.read_bytes()
    if not raw.startswith(b"ply"):
        raise ValueError(f"{path}: not a PLY file (does not start with 'ply')")
    end = raw.find(b"end_header")
    if end < 0:
        raise ValueError(f"{path}: PLY header has no end_header")
    nl = raw.find(b"\n", end)
    body_off = nl + 1
    lines = raw[:end].decode("ascii", errors="replace").splitlines()
    fmt = None
    elements: list[dict] = []
    for line in lines[1:]:
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            elements.append({"name": parts[1], "count": int(parts[2]), "props": []})
        elif parts[0] == "property":
            if not elements:
                raise ValueError(f"{path}: property before any element")
            if parts[1] == "list":
                if parts[2] not in _PLY_TYPES or parts[3] not in _PLY_TYPES:
                    raise ValueError(f"{path}: unknown PLY list type in {line!r}")
                elements[-1]["props"].append((parts[4], "list", parts[2], parts[3]))
            else:
                if parts[1] not in _PLY_TYPES:
                    raise ValueError(f"{path}: unknown PLY type {parts[1]!r}")
                elements[-1]["props"].append((parts[2], parts[1]))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise ValueError(f"{path}: unsupported PLY format {fmt!r}")
    endian = {"binary_big_endian": ">"}.get(fmt, "<")
    vertices = None
    faces = np.zeros((0, 3), dtype=np.int64)
    if fmt == "ascii":
        tokens = raw[body_off:].split()
        t = 0
        for el in elements:
            has_list = any(p[1] == "list" for p in el["props"])
            if not has_list:
                nprop = len(el["props"])
                block = np.array(tokens[t : t + nprop * el["count"]]).reshape(el["count"], nprop)
                t += nprop * el["count"]
                dt = np.dtype([(p[0], _PLY_TYPES[p[1]]) for p in el["props"]])
                rec = np.empty(el["count"], dtype=dt)
                for j, p in enumerate(el["props"]):
                    rec[p[0]] = block[:, j].astype(np.float64).astype(dt[p[0]])
                if el["name"] == "vertex":
                    vertices = rec
            else:
                tris = []
                for _ in range(el["count"]):
                    for p in el["props"]:
                        if p[1] == "list":
                            k = int(tokens[t])
                            idx = [int(x) for x in tokens[t + 1 : t + 1 + k]]
                            t += 1 + k
                            if p[0] in ("vertex_indices", "vertex_index"):
                                tris.extend([idx[0], idx[i], idx[i + 1]] for i in range(1, k - 1))
                        else:
                            t += 1
                if el["name"] == "face" and tris:
                    faces = np.asarray(tris, dtype=np.int64)
    else:
        buf = memoryview(raw)
        off = body_off
        for el in elements:
            has_list = any(p[1] == "list" for p in el["props"])
            if not has_list:
                dt = np.dtype([(p[0], endian + _PLY_TYPES[p[1]]) for p in el["props"]])
                need = dt.itemsize * el["count"]
                if off + need > len(raw):
                    raise ValueError(f"{path}: element {el['name']} truncated")
                rec = np.frombuffer(buf[off : off + need], dtype=dt)
                off += need
                if el["name"] == "vertex":
                    vertices = rec.astype(dt.newbyteorder("="))
            else:
                faces_el, off = _read_ply_binary_lists(path, raw, off, el, endian)
                if el["name"] == "face":
                    faces = faces_el
    if vertices is None:
        raise ValueError(f"{path}: PLY has no 'vertex' element")
    names = vertices.dtype.names
    for k in ("x", "y", "z"):
        if k not in names:
            raise ValueError(f"{path}: vertex element lacks property {k!r} (have {names})")
    label = next((n for n in PLY_LABEL_NAMES if n in names), None)
    inst = next((n for n in PLY_INSTANCE_NAMES if n in names), None)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"{path}: face indices out of range for {len(vertices)} vertices")
    return PlyLabels(vertices=vertices, faces=faces, label_field=label, instance_field=inst)


def _read_ply_binary_lists(path: Path, raw: bytes, off: int, el: dict, endian: str):
    props = el["props"]
    count = el["count"]
    # Fast path: the common single "list uchar int vertex_indices" with all triangles.
    if len(props) == 1 and props[0][1] == "list":
        ct = np.dtype(endian + _PLY_TYPES[props[0][2]])
        it = np.dtype(endian + _PLY_TYPES[props[0][3]])
        if count == 0:
            return np.zeros((0, 3), dtype=np.int64), off
        first = int(np.frombuffer(raw, dtype=ct, count=1, offset=off)[0])
        if first == 3:
            rec_dt = np.dtype([("n", ct), ("v", it, (3,))])
            need = rec_dt.itemsize * count
            if off + need <= len(raw):
                rec = np.frombuffer(raw, dtype=rec_dt, count=count, offset=off)
                if np.all(rec["n"] == 3):
                    return rec["v"].astype(np.int64), off + need
    tris = []
    for _ in range(count):
        for p in props:
            if p[1] == "list":
                ct = np.dtype(endian + _PLY_TYPES[p[2]])
                it = np.dtype(endian + _PLY_TYPES[p[3]])
                k = int(np.frombuffer(raw, dtype=ct, count=1, offset=off)[0])
                off += ct.itemsize
                idx = np.frombuffer(raw, dtype=it, count=k, offset=off).tolist()
                off += it.itemsize * k
                if p[0] in ("vertex_indices", "vertex_index"):
                    tris.extend([idx[0], idx[i], idx[i + 1]] for i in range(1, k - 1))
            else:
                off += np.dtype(_PLY_TYPES[p[1]]).itemsize
        if off > len(raw):
            raise ValueError(f"{path}: element {el['name']} truncated")
    return (np.asarray(tris, dtype=np.int64).reshape(-1, 3)), off


def write_ply_labels(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
) -> None:
    """Write a binary little-endian PLY with every field of ``vertices`` as a property.

    vertices: (N,) structured array with ``x y z`` (float32, metres) and extra scalar
        fields (e.g. ``red green blue`` uint8, ``label`` uint16/int32, ``instance``).
    faces: (F, 3) integer vertex indices, or None for a point cloud.
    """
    names = vertices.dtype.names
    if names is None or not {"x", "y", "z"} <= set(names):
        raise ValueError("write_ply_labels needs a structured array with fields x, y, z")
    rev = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int"}
    rev.update({"u4": "uint", "f4": "float", "f8": "double"})
    props, formats = [], []
    for n in names:
        dt = vertices.dtype[n]
        key = f"{dt.kind}{dt.itemsize}"
        if dt.shape or key not in rev:
            raise ValueError(f"field {n!r}: dtype {dt} cannot be a PLY scalar property")
        props.append(f"property {rev[key]} {n}")
        formats.append("<" + key)
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {len(vertices)}"]
    lines += props
    f_arr = None
    if faces is not None and len(faces):
        f_arr = np.asarray(faces)
        if f_arr.ndim != 2 or f_arr.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {f_arr.shape}")
        lines += [f"element face {len(f_arr)}", "property list uchar int vertex_indices"]
    lines.append("end_header")
    packed = np.empty(len(vertices), dtype=np.dtype({"names": list(names), "formats": formats}))
    for n in names:
        packed[n] = vertices[n]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(("\n".join(lines) + "\n").encode("ascii"))
        f.write(packed.tobytes())
        if f_arr is not None:
            rec = np.empty(len(f_arr), dtype=[("n", "u1"), ("v", "<i4", (3,))])
            rec["n"] = 3
            rec["v"] = f_arr
            f.write(rec.tobytes())


# ---------------------------------------------------------------------- compact_occ


def load_compact_occ(path: str | Path):
    """Load the SSOMotion reference's ``compact_occ.npy`` (+ ``compact_occ_info.json``).

    path: the npy file (its json next to it) or a folder holding both. Returns a
    :class:`ssomotion_ros.sso.compact_occ.CompactOcc` (rows ``[ix, iy, iz, r, g, b, 255,
    label]``, voxel size, bounds); the SSO module owns the format and its checks.
    """
    from ssomotion_ros.sso.compact_occ import load_compact_occ as _load

    return _load(path)
