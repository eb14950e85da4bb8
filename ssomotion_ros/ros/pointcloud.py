"""``sensor_msgs/PointCloud2`` <-> numpy structured arrays (no sensor_msgs_py needed).

* :func:`pointcloud2_to_array`: zero-copy view of the message's bytes as a structured
  array whose field names, types and offsets are the message's (``point_step`` padding
  kept as gaps, ``row_step`` padding dropped, big-endian clouds read as big-endian
  dtypes, ``count > 1`` fields as sub-arrays). Organized clouds (``height > 1``) come back
  as ``(height, width)``, unorganized as ``(width,)``.
* :func:`array_to_pointcloud2`: a structured array (any field set of the supported types)
  as a PointCloud2.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField

#: PointField datatype -> numpy type character code.
_TO_NUMPY = {
    PointField.INT8: "i1",
    PointField.UINT8: "u1",
    PointField.INT16: "i2",
    PointField.UINT16: "u2",
    PointField.INT32: "i4",
    PointField.UINT32: "u4",
    PointField.FLOAT32: "f4",
    PointField.FLOAT64: "f8",
}
_FROM_NUMPY = {np.dtype(v).str[1:]: k for k, v in _TO_NUMPY.items()}


def cloud_dtype(fields, point_step: int, is_bigendian: bool) -> np.dtype:
    """Numpy dtype of one point: fields with their offsets, itemsize ``point_step``."""
    order = ">" if is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in fields:
        if f.datatype not in _TO_NUMPY:
            raise ValueError(f"PointCloud2 field {f.name!r} has unknown datatype {f.datatype}")
        if f.name in names:
            raise ValueError(f"PointCloud2 field {f.name!r} appears twice")
        base = order + _TO_NUMPY[f.datatype]
        count = int(f.count) if f.count else 1
        names.append(f.name)
        formats.append((base, (count,)) if count > 1 else base)
        offsets.append(int(f.offset))
    for name, fmt, off in zip(names, formats, offsets):
        end = off + np.dtype(fmt).itemsize
        if end > point_step:
            raise ValueError(f"field {name!r} ends at byte {end} > point_step {point_step}")
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
    )


def pointcloud2_to_array(msg: PointCloud2) -> np.ndarray:
    """The cloud's points as a structured array (a view of ``msg.data`` where possible).

    Returns shape (height, width) when ``height > 1`` (organized), else (width,).
    Raises ValueError when the sizes in the header do not match the data.
    """
    h, w = int(msg.height), int(msg.width)
    step, row = int(msg.point_step), int(msg.row_step)
    dt = cloud_dtype(msg.fields, step, bool(msg.is_bigendian))
    if row < w * step:
        raise ValueError(f"row_step {row} < width {w} * point_step {step}")
    buf = np.frombuffer(memoryview(msg.data), dtype=np.uint8)
    if buf.size < h * row:
        raise ValueError(f"data has {buf.size} bytes, header needs {h} * {row}")
    if h * w == 0:
        return np.zeros((0,), dtype=dt)
    if row == w * step:
        arr = buf[: h * row].view(dt)
    else:  # padding at the end of each row: drop it
        rows = buf[: h * row].reshape(h, row)[:, : w * step]
        arr = np.ascontiguousarray(rows).reshape(-1).view(dt)
    return arr.reshape(h, w) if h > 1 else arr.reshape(w)


def array_to_pointcloud2(
    arr: np.ndarray, frame_id: str = "map", stamp=None, is_dense: bool | None = None
) -> PointCloud2:
    """A structured array as a PointCloud2.

    arr: (N,) unorganized or (H, W) organized structured array; fields of types
        int8..uint32, float32, float64 (sub-array fields become ``count``).
    stamp: a ``builtin_interfaces/Time`` (default zero).
    is_dense: default True when no x/y/z is NaN.
    """
    if arr.dtype.names is None:
        raise ValueError("array_to_pointcloud2 needs a structured array")
    if arr.ndim not in (1, 2):
        raise ValueError(f"array must be (N,) or (H, W), got shape {arr.shape}")
    msg = PointCloud2()
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    h, w = (arr.shape[0], arr.shape[1]) if arr.ndim == 2 else (1, arr.shape[0])
    big = None
    fields = []
    for name in arr.dtype.names:
        ft, off = arr.dtype.fields[name][:2]
        base, shape = ft.subdtype if ft.subdtype else (ft, ())
        code = base.str[1:]
        if code not in _FROM_NUMPY:
            raise ValueError(f"field {name!r} has unsupported dtype {base}")
        if base.byteorder in "<>":
            this_big = base.byteorder == ">"
            if big is not None and big != this_big:
                raise ValueError("fields mix byte orders")
            big = this_big
        fields.append(
            PointField(
                name=name,
                offset=int(off),
                datatype=_FROM_NUMPY[code],
                count=int(np.prod(shape)) if shape else 1,
            )
        )
    msg.fields = fields
    msg.height, msg.width = h, w
    msg.point_step = arr.dtype.itemsize
    msg.row_step = arr.dtype.itemsize * w
    msg.is_bigendian = bool(big) if big is not None else not np.little_endian
    data = np.ascontiguousarray(arr).tobytes()
    msg.data = data
    if is_dense is None:
        is_dense = True
        if all(c in arr.dtype.names for c in ("x", "y", "z")):
            xyz = np.stack([arr[c].reshape(-1) for c in ("x", "y", "z")], 1)
            is_dense = bool(np.isfinite(xyz).all())
    msg.is_dense = is_dense
    return msg
