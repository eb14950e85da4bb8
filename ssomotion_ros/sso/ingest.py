"""Semantic point cloud ingestion: numpy structured arrays -> :class:`SemanticCloud`.

The ROS layer only turns a ``sensor_msgs/PointCloud2`` into a numpy structured array
(field names as in the message); everything else happens here, ROS-free.

Accepted layouts (``layout="auto"`` tries them in this order):

* ``"label"``: an integer field named ``label``, ``semantic_label``, ``class`` or
  ``ring`` (Hydra), any integer dtype (a float field holding whole numbers is accepted
  too). Optional instance field ``instance``, ``instance_label`` or ``instance_id``.
  Colour (for the map's mean RGB) from ``rgb``/``rgba`` when present.
* ``"palette"``: packed ``rgb`` / ``rgba`` segmentation colours (float32 or uint32
  packing, ``0x00RRGGBB`` in the low 24 bits, PCL style) or separate ``r,g,b`` /
  ``red,green,blue`` fields, decoded through a palette (a
  :class:`~ssomotion_ros.sso.vocabulary.Vocabulary` read from a
  ``name,red,green,blue,alpha,id`` CSV). Colours not in the palette get label -1.

Organized clouds (any shape, e.g. ``(H, W)``) are flattened row-major. Points with a
non-finite coordinate are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ssomotion_ros.sso.vocabulary import Vocabulary

log = logging.getLogger(__name__)

#: Integer label field names accepted, in order of preference.
LABEL_FIELDS: tuple[str, ...] = ("label", "semantic_label", "class", "ring")
#: Instance id field names accepted, in order of preference.
INSTANCE_FIELDS: tuple[str, ...] = ("instance", "instance_label", "instance_id")
#: Packed colour field names accepted.
COLOR_FIELDS: tuple[str, ...] = ("rgb", "rgba")
#: Separate colour channel field triples accepted.
CHANNEL_FIELDS: tuple[tuple[str, str, str], ...] = (("r", "g", "b"), ("red", "green", "blue"))
#: Layout names for ``layout`` ("rgb" is an alias of "palette").
LAYOUTS: tuple[str, ...] = ("auto", "label", "palette", "rgb")


@dataclass
class SemanticCloud:
    """A semantic point cloud ready for fusion (sensor or map frame, as given).

    points: (N, 3) float32, metres; only finite points.
    labels: (N,) int64 semantic label ids; -1 = no label.
    instance: (N,) int64 instance ids; -1 = none (all -1 when the cloud has no field).
    rgb: (N, 3) uint8 colours, or None when the cloud has none.
    layout: which layout was used, e.g. ``"label:semantic_label"`` or ``"palette:rgb"``.
    num_input: points in the input (including dropped ones).
    num_dropped: points dropped for a non-finite coordinate.
    """

    points: np.ndarray
    labels: np.ndarray
    instance: np.ndarray
    rgb: np.ndarray | None
    layout: str
    num_input: int = 0
    num_dropped: int = 0

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def subset(self, sel) -> SemanticCloud:
        """The cloud restricted to ``sel`` (a slice, index or bool array)."""
        return SemanticCloud(
            self.points[sel],
            self.labels[sel],
            self.instance[sel],
            None if self.rgb is None else self.rgb[sel],
            self.layout,
        )


def _accepted_text() -> str:
    return (
        f"an integer label field {list(LABEL_FIELDS)} (optional instance field "
        f"{list(INSTANCE_FIELDS)}), or packed colours {list(COLOR_FIELDS)} / channels "
        f"{[''.join(c) for c in CHANNEL_FIELDS]} with a palette CSV"
    )


def _as_int_labels(col: np.ndarray, name: str) -> np.ndarray:
    if np.issubdtype(col.dtype, np.integer) or col.dtype == np.bool_:
        return col.astype(np.int64)
    if np.issubdtype(col.dtype, np.floating):
        finite = np.isfinite(col)
        vals = col[finite]
        if vals.size and not np.all(vals == np.round(vals)):
            raise ValueError(
                f"field {name!r} is {col.dtype} with non-integer values; a label field must "
                "hold integer ids"
            )
        out = np.full(col.shape, -1, np.int64)
        out[finite] = vals.astype(np.int64)
        return out
    raise ValueError(f"field {name!r} has dtype {col.dtype}; a label field must be integer")


def unpack_rgb(col: np.ndarray) -> np.ndarray:
    """Packed colours -> (N, 3) uint8.

    col: (N,) float32 (PCL packing: the float's bits are ``0x??RRGGBB``) or any 32-bit
    integer (``0x??RRGGBB``). Returns (N, 3) uint8 [red, green, blue].
    """
    col = np.ascontiguousarray(col)
    if col.dtype.itemsize != 4:
        raise ValueError(f"packed colour field must be 4 bytes (float32/uint32), got {col.dtype}")
    if np.issubdtype(col.dtype, np.floating) or np.issubdtype(col.dtype, np.integer):
        v = col.view(np.uint32) if col.dtype != np.uint32 else col
        v = v.astype(np.uint32, copy=False)
    else:
        raise ValueError(f"packed colour field has unsupported dtype {col.dtype}")
    out = np.empty((v.shape[0], 3), np.uint8)
    out[:, 0] = (v >> 16) & 0xFF
    out[:, 1] = (v >> 8) & 0xFF
    out[:, 2] = v & 0xFF
    return out


def _colors(arr: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray | None, str | None]:
    for f in COLOR_FIELDS:
        if f in names and arr.dtype[f].shape == ():
            return unpack_rgb(arr[f]), f
    for trip in CHANNEL_FIELDS:
        if all(c in names for c in trip):
            chans = [np.asarray(arr[c]) for c in trip]
            if (
                all(np.issubdtype(c.dtype, np.floating) for c in chans)
                and max(float(np.nanmax(c)) if c.size else 0.0 for c in chans) <= 1.0
            ):
                chans = [np.nan_to_num(c) * 255.0 for c in chans]
            rgb = np.stack([np.clip(np.nan_to_num(c), 0, 255) for c in chans], axis=1)
            return rgb.astype(np.uint8), "".join(trip)
    return None, None


def ingest_cloud(
    cloud: np.ndarray,
    palette: Vocabulary | None = None,
    layout: str = "auto",
    label_field: str | None = None,
    instance_field: str | None = None,
) -> SemanticCloud:
    """Convert a structured point array into a :class:`SemanticCloud`.

    cloud: numpy structured array of any shape ((N,) unorganized, (H, W) organized),
        with float fields ``x``, ``y``, ``z`` in metres plus a semantic layout (see the
        module docstring).
    palette: vocabulary whose colours decode ``rgb`` segmentation colours; needed only
        for the palette layout.
    layout: ``"auto"``, ``"label"`` or ``"palette"`` (alias ``"rgb"``).
    label_field: use this integer field for labels (overrides the accepted names).
    instance_field: use this field for instance ids (overrides the accepted names).

    Raises ValueError naming the fields present and the accepted ones when the cloud has
    no usable layout. An empty or all-non-finite cloud is returned empty (not an error).
    """
    if not isinstance(cloud, np.ndarray) or cloud.dtype.names is None:
        raise ValueError(
            "ingest_cloud expects a numpy structured array (fields x, y, z, label ...), got "
            f"{type(cloud).__name__}"
            + (f" of dtype {cloud.dtype}" if isinstance(cloud, np.ndarray) else "")
        )
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {LAYOUTS}")
    if layout == "rgb":
        layout = "palette"
    names = tuple(cloud.dtype.names)
    missing = [c for c in ("x", "y", "z") if c not in names]
    if missing:
        raise ValueError(f"cloud lacks coordinate fields {missing}; it has fields {list(names)}")
    arr = cloud.reshape(-1)
    n_in = int(arr.shape[0])

    # --- semantic layout
    lab_name = None
    if label_field is not None:
        if label_field not in names:
            raise ValueError(
                f"label_field {label_field!r} is not in the cloud fields {list(names)}"
            )
        lab_name = label_field
    elif layout in ("auto", "label"):
        lab_name = next((f for f in LABEL_FIELDS if f in names), None)
    rgb, rgb_name = _colors(arr, names)
    if lab_name is not None and layout != "palette":
        labels = _as_int_labels(np.asarray(arr[lab_name]), lab_name)
        used = f"label:{lab_name}"
    elif layout in ("auto", "palette") and rgb is not None and palette is not None:
        labels = palette.decode_colors(rgb)
        used = f"palette:{rgb_name}"
        unknown = int(np.count_nonzero(labels < 0))
        if unknown:
            log.debug("%d of %d colours are not in palette %s", unknown, n_in, palette.source)
    else:
        hint = ""
        if rgb is not None and palette is None:
            hint = f" The cloud has colours ({rgb_name}) but no palette CSV was given."
        raise ValueError(
            f"no usable semantic layout (layout={layout!r}): the cloud has fields "
            f"{list(names)}; accepted: {_accepted_text()}.{hint}"
        )

    inst_name = instance_field
    if inst_name is not None and inst_name not in names:
        raise ValueError(f"instance_field {inst_name!r} is not in the cloud fields {list(names)}")
    if inst_name is None:
        inst_name = next((f for f in INSTANCE_FIELDS if f in names), None)
    if inst_name is not None:
        instance = _as_int_labels(np.asarray(arr[inst_name]), inst_name)
    else:
        instance = np.full(n_in, -1, np.int64)

    pts = np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float32, copy=False)
    finite = np.isfinite(pts).all(axis=1)
    n_bad = n_in - int(np.count_nonzero(finite))
    if n_bad:
        pts, labels, instance = pts[finite], labels[finite], instance[finite]
        rgb = None if rgb is None else rgb[finite]
    return SemanticCloud(
        points=np.ascontiguousarray(pts),
        labels=labels,
        instance=instance,
        rgb=rgb,
        layout=used,
        num_input=n_in,
        num_dropped=n_bad,
    )


def make_cloud(
    points: np.ndarray,
    labels: np.ndarray | None = None,
    rgb: np.ndarray | None = None,
    instance: np.ndarray | None = None,
) -> SemanticCloud:
    """Build a :class:`SemanticCloud` from plain arrays (validated, non-finite dropped).

    points: (N, 3) float, metres. labels: (N,) integer (None -> all -1).
    rgb: (N, 3) uint8 or None. instance: (N,) integer or None.
    """
    pts = np.asarray(points, np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {pts.shape}")
    n = pts.shape[0]

    def _vec(v, name):
        if v is None:
            return np.full(n, -1, np.int64)
        v = np.asarray(v)
        if v.shape != (n,):
            raise ValueError(f"{name} must be ({n},) to match points, got {v.shape}")
        return _as_int_labels(v, name)

    lab = _vec(labels, "labels")
    inst = _vec(instance, "instance")
    col = None
    if rgb is not None:
        col = np.asarray(rgb)
        if col.shape != (n, 3):
            raise ValueError(f"rgb must be ({n}, 3), got {col.shape}")
        col = col.astype(np.uint8)
    finite = np.isfinite(pts).all(axis=1)
    bad = n - int(finite.sum())
    if bad:
        pts, lab, inst = pts[finite], lab[finite], inst[finite]
        col = None if col is None else col[finite]
    return SemanticCloud(pts, lab, inst, col, "arrays", num_input=n, num_dropped=bad)
