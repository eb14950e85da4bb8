"""Label vocabularies (id <-> name, palette colour -> id) and their semantic features.

A vocabulary file is a CSV with the header ``name,red,green,blue,alpha,id`` (Kimera's
palette format). The same file serves as

* the vocabulary: ``id -> name`` (ids need not be contiguous);
* the palette: segmentation colour ``(red, green, blue) -> id``, used to decode clouds
  that carry packed ``rgb`` segmentation colours instead of an integer label field.

``config/labels/nyu40.csv`` (NYU-40 / ScanNet class ids and the ScanNet colours) ships
with the package and is the default; users supply their own file the same way.

Semantic features (method: each category name is text-encoded once and reduced by one
shared linear layer to 16-d): :func:`semantic_features` encodes every name with the
process-wide :func:`~ssomotion_ros.language.encoders.get_text_encoder` and reduces it

* with trained weights when given (:class:`LinearReduction`, a ``(F, D)`` weight and
  ``(F,)`` bias, as stored in a motion checkpoint), else
* with a deterministic PCA of the vocabulary's embeddings: centred at their mean,
  the top-F right singular vectors, each sign-fixed so that its largest-magnitude
  entry is positive. Components beyond the rank of the vocabulary are zero.

Results are cached per (vocabulary, encoder, reduction).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CSV_HEADER = ("name", "red", "green", "blue", "alpha", "id")


def labels_dir() -> Path:
    """Folder of the shipped vocabularies (source tree, else the ament share folder)."""
    here = Path(__file__).resolve().parents[2] / "config" / "labels"
    if here.is_dir():
        return here
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        cand = Path(prefix) / "share" / "ssomotion_ros" / "config" / "labels"
        if prefix and cand.is_dir():
            return cand
    return here


def default_vocabulary_path() -> Path:
    """Path of the default vocabulary, ``config/labels/nyu40.csv``."""
    return labels_dir() / "nyu40.csv"


class Vocabulary:
    """Label ids, names and palette colours.

    ids: (K,) int64 label ids (unique, any order as in the file).
    names: list of K names.
    colors: (K, 4) uint8 RGBA palette colours.
    """

    def __init__(self, ids, names, colors=None, source: str = "<memory>"):
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        names = [str(n) for n in names]
        if len(names) != len(ids):
            raise ValueError(f"vocabulary: {len(ids)} ids but {len(names)} names")
        if len(np.unique(ids)) != len(ids):
            u, c = np.unique(ids, return_counts=True)
            raise ValueError(f"vocabulary {source}: duplicate ids {u[c > 1].tolist()}")
        if np.any(ids < 0):
            raise ValueError(f"vocabulary {source}: ids must be >= 0")
        if colors is None:
            colors = np.stack([_hash_color(int(i)) for i in ids]) if len(ids) else np.zeros((0, 4))
        colors = np.asarray(colors, dtype=np.uint8).reshape(len(ids), 4)
        self.ids = ids
        self.names = names
        self.colors = colors
        self.source = source
        self._by_id = {int(i): k for k, i in enumerate(ids)}
        self._by_name = {}
        for k, n in enumerate(names):
            self._by_name.setdefault(n.strip().lower(), int(ids[k]))
        rgb = colors[:, :3].astype(np.int64)
        keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        order = np.argsort(keys, kind="stable")
        self._color_keys = keys[order]
        self._color_ids = ids[order]
        uniq, counts = np.unique(keys, return_counts=True)
        self.palette_unique = bool(np.all(counts == 1))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_csv(cls, path: str | Path) -> Vocabulary:
        """Read a ``name,red,green,blue,alpha,id`` CSV (header required, extra columns ok).

        ``path`` may also name a shipped vocabulary (``"nyu40"``, ``"ssomotion_indoor"``:
        a file of :func:`labels_dir`)."""
        path = Path(path)
        if not path.is_file() and len(path.parts) == 1:
            shipped = labels_dir() / (path.name if path.suffix == ".csv" else f"{path.name}.csv")
            if shipped.is_file():
                path = shipped
        if not path.is_file():
            shipped = ", ".join(sorted(p.stem for p in labels_dir().glob("*.csv")))
            raise ValueError(f"vocabulary file not found: {path} (shipped vocabularies: {shipped})")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields = [h.strip() for h in (reader.fieldnames or [])]
            missing = [h for h in CSV_HEADER if h not in fields]
            if missing:
                raise ValueError(
                    f"vocabulary {path}: header {fields} lacks {missing}; expected "
                    f"'{','.join(CSV_HEADER)}'"
                )
            ids, names, colors = [], [], []
            for lineno, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                if not any(row.values()):
                    continue
                try:
                    ids.append(int(row["id"]))
                    colors.append([int(row[c]) for c in ("red", "green", "blue", "alpha")])
                except ValueError as e:
                    raise ValueError(f"vocabulary {path}:{lineno}: bad number ({e})") from e
                names.append(row["name"])
        colors = np.asarray(colors, dtype=np.int64).reshape(-1, 4)
        if colors.size and (colors.min() < 0 or colors.max() > 255):
            raise ValueError(f"vocabulary {path}: colour components must be in 0..255")
        return cls(ids, names, colors, source=str(path))

    @classmethod
    def load(cls, name_or_path: str | Path) -> Vocabulary:
        """A vocabulary from a CSV path, or the name of a shipped one (``"nyu40"``,
        ``"ssomotion_indoor"``: ``config/labels/<name>.csv``)."""
        p = Path(name_or_path).expanduser()
        if p.is_file():
            return cls.from_csv(p)
        shipped = labels_dir() / f"{name_or_path}.csv"
        if shipped.is_file():
            return cls.from_csv(shipped)
        names = sorted(x.stem for x in labels_dir().glob("*.csv"))
        raise ValueError(
            f"vocabulary {str(name_or_path)!r} is neither a CSV file nor a shipped vocabulary "
            f"(shipped: {names})"
        )

    @classmethod
    def from_names(cls, names, ids=None) -> Vocabulary:
        """A vocabulary from names (ids 0..K-1 unless given); colours are hashed."""
        names = list(names)
        ids = np.arange(len(names)) if ids is None else ids
        return cls(ids, names, None)

    @classmethod
    def default(cls) -> Vocabulary:
        """The shipped NYU-40 vocabulary."""
        return cls.from_csv(default_vocabulary_path())

    def to_csv(self, path: str | Path) -> None:
        """Write the vocabulary in the ``name,red,green,blue,alpha,id`` format."""
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for i, n, c in zip(self.ids, self.names, self.colors):
                w.writerow([n, int(c[0]), int(c[1]), int(c[2]), int(c[3]), int(i)])

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def key(self) -> tuple:
        """Hashable identity (ids and names) for caches."""
        return tuple(zip(self.ids.tolist(), self.names))

    @property
    def max_id(self) -> int:
        return int(self.ids.max()) if len(self.ids) else -1

    def name(self, label_id: int) -> str:
        """Name of ``label_id``; ``"unknown_<id>"`` when not in the vocabulary."""
        k = self._by_id.get(int(label_id))
        return self.names[k] if k is not None else f"unknown_{int(label_id)}"

    def id_of(self, name: str) -> int | None:
        """Id of a name (case-insensitive), or None."""
        return self._by_name.get(str(name).strip().lower())

    def ids_named(self, names) -> np.ndarray:
        """(M,) int64 ids whose names are in ``names`` (case-insensitive)."""
        wanted = {str(n).strip().lower() for n in names}
        return np.array(
            [int(i) for i, n in zip(self.ids, self.names) if n.strip().lower() in wanted],
            dtype=np.int64,
        )

    def decode_colors(self, rgb: np.ndarray) -> np.ndarray:
        """Palette decoding of segmentation colours.

        rgb: (N, 3) uint8 (any integer type in 0..255), segmentation colours.
        Returns (N,) int64 label ids; -1 where the colour is not in the palette.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 2 or rgb.shape[1] != 3:
            raise ValueError(f"decode_colors: rgb must be (N, 3), got {rgb.shape}")
        if not self.palette_unique:
            log.warning("vocabulary %s: palette colours are not unique; first id wins", self.source)
        rgb = rgb.astype(np.int64)
        keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        if len(self._color_keys) == 0:
            return np.full(len(keys), -1, np.int64)
        pos = np.clip(np.searchsorted(self._color_keys, keys), 0, len(self._color_keys) - 1)
        ok = self._color_keys[pos] == keys
        return np.where(ok, self._color_ids[pos], -1).astype(np.int64)

    def colors_of(self, label_ids: np.ndarray) -> np.ndarray:
        """(N,) label ids -> (N, 3) uint8 palette colours (hashed for unknown ids)."""
        label_ids = np.asarray(label_ids, dtype=np.int64).reshape(-1)
        size = max(self.max_id, int(label_ids.max()) if label_ids.size else -1) + 2
        table = np.zeros((size, 3), np.uint8)
        for i in range(size - 1):
            table[i] = _hash_color(i)[:3]
        if len(self.ids):
            table[self.ids] = self.colors[:, :3]
        table[-1] = (128, 128, 128)
        idx = np.where(label_ids >= 0, label_ids, size - 1)
        return table[idx]


def _hash_color(i: int) -> np.ndarray:
    h = hashlib.md5(str(i).encode()).digest()
    return np.array([h[0], h[1], h[2], 255], dtype=np.uint8)


# ---------------------------------------------------------------------- features


@dataclass
class LinearReduction:
    """Trained shared reduction: ``feature = embedding @ weight.T + bias``.

    weight: (F, D) float32, D = the text encoder's dimension.
    bias: (F,) float32.
    """

    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        self.weight = np.asarray(self.weight, np.float32)
        self.bias = np.asarray(self.bias, np.float32).reshape(-1)
        if self.weight.ndim != 2 or self.bias.shape[0] != self.weight.shape[0]:
            raise ValueError(
                f"LinearReduction: weight must be (F, D) and bias (F,), got "
                f"{self.weight.shape} and {self.bias.shape}"
            )

    @classmethod
    def from_file(cls, path: str | Path) -> LinearReduction:
        """Load trained weights: an ``.npz`` with ``weight`` (F, D) and ``bias`` (F,), or a
        torch / safetensors state dict (e.g. a motion checkpoint) holding a 2-D
        ``*weight`` and matching ``*bias``; keys containing "reduction" are preferred."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"reduction weights file not found: {path}")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                state = {k: z[k] for k in z.files}
        elif path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            state = load_file(str(path))
        else:
            import torch

            state = torch.load(str(path), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            state = {k: v.numpy() for k, v in state.items() if hasattr(v, "numpy")}
        keys = sorted(state, key=lambda k: ("reduction" not in k, k))
        for k in keys:
            if k.endswith("weight") and np.asarray(state[k]).ndim == 2:
                b = k[: -len("weight")] + "bias"
                if b in state and np.asarray(state[b]).shape == (np.asarray(state[k]).shape[0],):
                    return cls(np.asarray(state[k]), np.asarray(state[b]))
        raise ValueError(f"{path}: no 2-D '*weight' with a matching '*bias' among {keys[:8]}")

    @property
    def digest(self) -> str:
        h = hashlib.sha1(self.weight.tobytes())
        h.update(self.bias.tobytes())
        return h.hexdigest()


def pca_reduction(embeddings: np.ndarray, dim: int = 16) -> LinearReduction:
    """Deterministic PCA reduction of ``embeddings`` (K, D) to ``dim`` components.

    Centred at the mean; components are the top right singular vectors, each with its
    largest-magnitude entry made positive; components beyond the numerical rank of the
    centred embeddings are zero rows. Returned as a :class:`LinearReduction` with
    ``bias = -mean @ weight.T``.
    """
    e = np.asarray(embeddings, np.float64)
    if e.ndim != 2:
        raise ValueError(f"pca_reduction: embeddings must be (K, D), got {e.shape}")
    k, d = e.shape
    mean = e.mean(axis=0) if k else np.zeros(d)
    weight = np.zeros((dim, d))
    if k > 1:
        _, s, vt = np.linalg.svd(e - mean, full_matrices=False)
        rank = int(np.sum(s > 1e-8 * max(s[0], 1e-30)))
        n = min(dim, rank)
        comp = vt[:n]
        flip = np.sign(comp[np.arange(n), np.argmax(np.abs(comp), axis=1)])
        weight[:n] = comp * flip[:, None]
    bias = -(mean @ weight.T)
    return LinearReduction(weight.astype(np.float32), bias.astype(np.float32))


class FeatureTable:
    """Per-label semantic features, indexable by label id.

    table: (max_id + 2, F) float32 numpy; row ``id`` is the feature of label ``id``,
    the last row (also used for -1 and ids outside the vocabulary) is zero.
    """

    def __init__(self, vocabulary: Vocabulary, features: np.ndarray):
        f = np.asarray(features, np.float32)
        self.dim = f.shape[1]
        self.table = np.zeros((vocabulary.max_id + 2, self.dim), np.float32)
        if len(vocabulary):
            self.table[vocabulary.ids] = f
        self._torch: dict = {}

    def lookup(self, labels: np.ndarray) -> np.ndarray:
        """labels: any-shape integer ids (-1 = none) -> (..., F) float32."""
        labels = np.asarray(labels, np.int64)
        n = self.table.shape[0]
        idx = np.where((labels >= 0) & (labels < n - 1), labels, n - 1)
        return self.table[idx]

    def torch_table(self, device):
        """The table as a torch tensor on ``device`` (cached)."""
        import torch

        key = str(device)
        t = self._torch.get(key)
        if t is None:
            t = torch.from_numpy(self.table).to(device)
            self._torch[key] = t
        return t

    def lookup_torch(self, labels):
        """labels: integer torch tensor, any shape (-1 = none) -> (..., F) float32."""
        table = self.torch_table(labels.device)
        n = table.shape[0]
        idx = torch_where_valid(labels, n - 1)
        return table[idx]


def torch_where_valid(labels, none_index: int):
    import torch

    return torch.where((labels >= 0) & (labels < none_index), labels, none_index)


_FEATURE_CACHE: dict = {}
_FEATURE_LOCK = threading.Lock()


def semantic_features(
    vocabulary: Vocabulary,
    dim: int = 16,
    reduction: LinearReduction | None = None,
    encoder=None,
) -> FeatureTable:
    """Reduced text features of every vocabulary name (cached).

    vocabulary: the label set; each name is encoded once.
    dim: F, the reduced dimension (16 in the method); ignored when ``reduction`` given.
    reduction: trained weights; None = deterministic PCA (see module docstring).
    encoder: a TextEncoder; None = ``get_text_encoder()`` (offline MiniLM by default).
    Returns a :class:`FeatureTable`.
    """
    if encoder is None:
        from ssomotion_ros.language.encoders import get_text_encoder

        encoder = get_text_encoder()
    key = (
        vocabulary.key,
        getattr(encoder, "name", type(encoder).__name__),
        dim,
        reduction.digest if reduction is not None else "pca",
    )
    with _FEATURE_LOCK:
        hit = _FEATURE_CACHE.get(key)
    if hit is not None:
        return hit
    emb = encoder.encode(list(vocabulary.names)) if len(vocabulary) else np.zeros((0, 1))
    if reduction is None:
        reduction = pca_reduction(emb, dim)
    elif reduction.weight.shape[1] != emb.shape[1]:
        raise ValueError(
            f"reduction weight is {reduction.weight.shape} but the text encoder "
            f"{getattr(encoder, 'name', '?')} gives {emb.shape[1]}-d embeddings"
        )
    feats = emb.astype(np.float32) @ reduction.weight.T + reduction.bias
    table = FeatureTable(vocabulary, feats)
    with _FEATURE_LOCK:
        _FEATURE_CACHE[key] = table
    return table
