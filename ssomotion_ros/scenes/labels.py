"""The scene vocabulary: class names, ids and palette colours from a Kimera-style CSV.

The CSV (``name,red,green,blue,alpha,id``, as Kimera-Semantics uses) shipped with the
package is ``config/labels/ssomotion_indoor.csv``: id 0 ``unlabeled``, then floor, wall,
ceiling, door, window and the furniture classes of :mod:`ssomotion_ros.scenes.objects`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ssomotion_ros.sso.vocabulary import labels_dir

#: The vocabulary CSV of generated scenes (in the SSO's shipped labels folder).
DEFAULT_LABELS_CSV = labels_dir() / "ssomotion_indoor.csv"


@dataclass(frozen=True)
class LabelMap:
    """Class names <-> ids <-> colours.

    names: class names in id order of the file rows.
    ids: (K,) int64 class ids.
    colors: (K, 3) uint8 RGB palette colours (row-aligned with ``names``).
    """

    names: tuple[str, ...]
    ids: np.ndarray
    colors: np.ndarray

    def id_of(self, name: str) -> int:
        """Class id of ``name``; ValueError listing the known names if unknown."""
        try:
            return int(self.ids[self.names.index(name)])
        except ValueError:
            raise ValueError(
                f"unknown class {name!r}; known classes: {', '.join(self.names)}"
            ) from None

    def name_of(self, label: int) -> str:
        """Class name of id ``label``; ValueError if the id is not in the map."""
        hit = np.flatnonzero(self.ids == int(label))
        if hit.size == 0:
            raise ValueError(f"label id {label} is not in the label map (ids {self.ids.tolist()})")
        return self.names[int(hit[0])]

    def color_of(self, label: int) -> np.ndarray:
        """(3,) uint8 palette colour of id ``label``."""
        hit = np.flatnonzero(self.ids == int(label))
        if hit.size == 0:
            raise ValueError(f"label id {label} is not in the label map")
        return self.colors[int(hit[0])]

    def lut(self) -> np.ndarray:
        """(max_id + 1, 3) uint8 colour look-up table indexed by class id (0 where unused)."""
        lut = np.zeros((int(self.ids.max()) + 1, 3), dtype=np.uint8)
        lut[self.ids] = self.colors
        return lut


def read_label_csv(path: str | Path) -> LabelMap:
    """Read a Kimera-style label CSV (``name,red,green,blue,alpha,id``).

    Raises ValueError naming the file and row when a column is missing, a value is out
    of range, or an id/name repeats.
    """
    path = Path(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"name", "red", "green", "blue", "alpha", "id"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"{path}: label CSV needs the header name,red,green,blue,alpha,id")
    names, ids, colors = [], [], []
    for i, r in enumerate(rows, start=2):
        try:
            rgb = [int(r["red"]), int(r["green"]), int(r["blue"])]
            ident = int(r["id"])
        except (TypeError, ValueError):
            raise ValueError(f"{path}:{i}: non-integer colour or id in {r}") from None
        if not all(0 <= c <= 255 for c in rgb) or ident < 0:
            raise ValueError(f"{path}:{i}: colour must be 0..255 and id >= 0, got {r}")
        names.append(r["name"].strip())
        ids.append(ident)
        colors.append(rgb)
    if len(set(names)) != len(names) or len(set(ids)) != len(ids):
        raise ValueError(f"{path}: class names and ids must be unique")
    return LabelMap(tuple(names), np.asarray(ids, np.int64), np.asarray(colors, np.uint8))


@lru_cache(maxsize=1)
def default_labels() -> LabelMap:
    """The vocabulary of generated scenes (:data:`DEFAULT_LABELS_CSV`)."""
    return read_label_csv(DEFAULT_LABELS_CSV)


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """Pack (N, 3) uint8 RGB into PCL's float32 ``rgb`` (bits 0x00RRGGBB viewed as float)."""
    c = np.asarray(colors).astype(np.uint32)
    return ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).view(np.float32)


def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rgb`: float32 (or uint32) packed colours -> (..., 3) uint8."""
    u = np.asarray(rgb)
    u = u.view(np.uint32) if u.dtype == np.float32 else u.astype(np.uint32)
    return np.stack([(u >> 16) & 255, (u >> 8) & 255, u & 255], axis=-1).astype(np.uint8)
