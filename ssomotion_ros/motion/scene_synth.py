"""Stage-2 training scenes: simple rooms of boxes placed collision-free around a motion.

This is the fallback scene source of the scene-controller training (the issue's "simple
rooms of boxes"): for each training window, random furniture boxes are placed in the
local crop where no joint of the window comes near them, plus a floor and — for
sitting / standing up / lying windows whose pelvis goes low — a support box (seat or
bed) under the pelvis. The local voxel grid and the bi-directional tri-plane maps follow
``ssomotion_ros.sso.config.TriplaneConfig`` (0.04 m voxels, 101 x 101 x 81, crop centre
0.9 m above the floor, z map projected downward from 0.4 m above the centre) and the
``ssomotion_ros.sso.types.TriPlanes`` layout (maps x+, x-, y+, y-, z; padded to S x S).

Image axes (documented here because the scene branch learns them): x maps are indexed
``[y, z]``, y maps ``[x, z]``, the z map ``[x, y]``; index 0 is the negative end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ssomotion_ros.motion.config import ACTIONS
from ssomotion_ros.motion.model import SceneInput

#: NYU-40 label ids (``config/labels/nyu40.csv``) used for the synthetic furniture.
FLOOR_LABEL = 2
FURNITURE_LABELS = (3, 4, 5, 6, 7, 10, 12, 14, 39)  # cabinet bed chair sofa table ...
SEAT_LABEL = 5  # chair
BED_LABEL = 4

log = logging.getLogger(__name__)


@dataclass
class GridSpec:
    """The local crop (body frame: x forward, y left, z up; metres)."""

    #: Voxel edge, metres.
    voxel: float = 0.04
    #: Voxels along x, y, z.
    size: tuple[int, int, int] = (101, 101, 81)
    #: Crop centre height above the floor, metres.
    center_height: float = 0.9
    #: The z map is projected downward from ``size[2] // 2 + z_plane_offset``.
    z_plane_offset: int = 10

    def centers(self, axis: int) -> np.ndarray:
        n = self.size[axis]
        c = (np.arange(n) - n // 2) * self.voxel
        return c + (self.center_height if axis == 2 else 0.0)


def _default_tables(dim: int):
    """(features (L, F), colours (L, 3)) per NYU-40 label id from the SSO vocabulary.

    Features are the SSO's own reduced text features (MiniLM + PCA by default); returns
    (None, None) when the vocabulary or text encoder cannot be loaded.
    """
    try:
        from ssomotion_ros.sso.vocabulary import Vocabulary, semantic_features

        vocab = Vocabulary.default()
        table = semantic_features(vocab, dim=dim).table
        colors = np.zeros((len(table), 3), np.float32)
        colors[vocab.ids] = vocab.colors[:, :3] / 255.0
        return table, colors
    except Exception as e:  # noqa: BLE001 - optional dependency of the fallback
        log.warning("synthetic scenes use random label features (%s)", e)
        return None, None


class BoxSceneSampler:
    """Makes tri-planes of box rooms that a given motion does not collide with.

    feature_table: (L, F) float32 per-label semantic features (row = label id), or None
    for a fixed random table (seeded). margin: clearance in metres between any joint and
    any furniture box.
    """

    def __init__(
        self,
        semantic_dim: int = 16,
        grid: GridSpec | None = None,
        feature_table: np.ndarray | None = None,
        margin: float = 0.15,
        max_boxes: int = 6,
        seed: int = 0,
        use_vocabulary: bool = True,
    ):
        self.grid = grid or GridSpec()
        self.margin = margin
        self.max_boxes = max_boxes
        self.rng = np.random.default_rng(seed)
        colors = None
        if feature_table is None and use_vocabulary:
            feature_table, colors = _default_tables(semantic_dim)
        if feature_table is None:
            feature_table = np.random.default_rng(1234).normal(size=(64, semantic_dim))
            feature_table = (feature_table / 3.0).astype(np.float32)
        if feature_table.shape[1] != semantic_dim:
            raise ValueError(
                f"feature_table must be (L, {semantic_dim}), got {feature_table.shape}"
            )
        self.table = torch.as_tensor(np.asarray(feature_table, np.float32))
        if colors is None:
            colors = np.random.default_rng(99).uniform(0.1, 0.9, (len(self.table), 3))
        self.palette = torch.as_tensor(np.asarray(colors), dtype=torch.float32)

    def _boxes(self, joints: np.ndarray, action: int) -> list[tuple]:
        """Boxes (lo (3,), hi (3,), label) for one window. joints: (T, 22, 3) body frame."""
        rng = self.rng
        g = self.grid
        ext = np.array([(g.size[0] // 2) * g.voxel, (g.size[1] // 2) * g.voxel])
        pts = joints.reshape(-1, 3)
        boxes = []
        name = ACTIONS[action] if 0 <= action < len(ACTIONS) else ""
        pelvis = joints[:, 0]
        k = int(np.argmin(pelvis[:, 2]))
        support = None
        if name in ("sit", "stand_up") and pelvis[k, 2] < 0.8:
            top = max(pelvis[k, 2] - 0.12, 0.2)
            c = pelvis[k, :2]
            support = (np.r_[c - 0.23, 0.0], np.r_[c + 0.23, top], SEAT_LABEL)
        elif name == "lie" and pelvis[k, 2] < 0.6 and pelvis[k, 2] > 0.3:
            top = pelvis[k, 2] - 0.12
            lo = pts[:, :2].min(0) - 0.1
            hi = pts[:, :2].max(0) + 0.1
            support = (np.r_[lo, 0.0], np.r_[hi, top], BED_LABEL)
        if support is not None:
            boxes.append(support)
        n = int(rng.integers(0, self.max_boxes + 1))
        for _ in range(n * 4):
            if len(boxes) >= n + (support is not None):
                break
            size = rng.uniform([0.3, 0.3, 0.3], [1.5, 1.5, 1.3])
            c = rng.uniform(-ext, ext)
            lo = np.r_[c - size[:2] / 2, 0.0]
            hi = np.r_[c + size[:2] / 2, size[2]]
            inside = np.all((pts > lo - self.margin) & (pts < hi + self.margin), axis=1)
            if inside.any():
                continue
            boxes.append((lo, hi, int(rng.choice(FURNITURE_LABELS))))
        return boxes

    def box_indices(self, joints: np.ndarray, action: int) -> tuple[np.ndarray, np.ndarray]:
        """Voxel index boxes of one window, floor first.

        joints: (T, 22, 3) metres, window frame. Returns ``ranges`` (nb, 3, 2) int64
        inclusive voxel index ranges along x, y, z and ``labels`` (nb,) int64.
        """
        g = self.grid
        zc = g.centers(2)
        floor_k = int(np.argmin(np.abs(zc + g.voxel / 2)))
        ranges = [[[0, g.size[0] - 1], [0, g.size[1] - 1], [floor_k, floor_k]]]
        labels = [FLOOR_LABEL]
        cs = [g.centers(0), g.centers(1), zc]
        for lo, hi, label in self._boxes(joints, action):
            r = []
            for ax in range(3):
                idx = np.nonzero((cs[ax] >= lo[ax]) & (cs[ax] <= hi[ax]))[0]
                if not len(idx):
                    break
                r.append([idx[0], idx[-1]])
            if len(r) == 3:
                ranges.append(r)
                labels.append(label)
        return np.asarray(ranges, np.int64), np.asarray(labels, np.int64)

    def occupancy(self, joints: np.ndarray, action: int) -> torch.Tensor:
        """Label grid (X, Y, Z) int64 of one window (-1 = free). joints: (T, 22, 3)."""
        return boxes_to_grid(*self.box_indices(joints, action), self.grid)

    def __call__(self, joints: np.ndarray, actions: np.ndarray, size: int = 101) -> SceneInput:
        """Tri-planes for a batch of windows.

        joints: (B, T, 22, 3) metres, window (body) frame. actions: (B,) action indices.
        size: padded image side S. Returns a :class:`SceneInput` of (B, 5, ...) tensors.
        """
        joints = np.asarray(joints)
        if joints.ndim != 4 or joints.shape[-2:] != (22, 3):
            raise ValueError(f"joints must be (B, T, 22, 3), got {joints.shape}")
        labs = torch.stack(
            [
                box_label_maps(*self.box_indices(j, int(a)), self.grid, size)
                for j, a in zip(joints, np.asarray(actions))
            ]
        )
        return label_maps_to_scene(labs[:, 0].long(), labs[:, 1], self.table, self.palette)


def boxes_to_grid(ranges: np.ndarray, labels: np.ndarray, grid: GridSpec) -> torch.Tensor:
    """Voxelise index boxes (later boxes overwrite earlier ones) -> (X, Y, Z) int64, -1 free."""
    lab = torch.full(grid.size, -1, dtype=torch.int64)
    for (x, y, z), label in zip(ranges, labels):
        lab[x[0] : x[1] + 1, y[0] : y[1] + 1, z[0] : z[1] + 1] = int(label)
    return lab


def box_label_maps(
    ranges: np.ndarray, labels: np.ndarray, grid: GridSpec, size: int = 101
) -> torch.Tensor:
    """Tri-plane label and depth maps of index boxes, without building the voxel grid.

    Same result as ``triplanes_from_labels(boxes_to_grid(...))`` when boxes do not overlap.
    Returns (2, 5, S, S) float32: [0] label ids (-1 = none), [1] depth in metres.
    """
    X, Y, Z = grid.size
    cx, cy, kz = X // 2, Y // 2, Z // 2 + grid.z_plane_offset
    v = grid.voxel
    r = torch.as_tensor(ranges)
    lab = torch.as_tensor(labels, dtype=torch.float32)
    nb = len(r)
    inf = torch.tensor(float("inf"))
    out = torch.zeros(2, 5, size, size)
    out[0] = -1
    # (map, axis along the ray, image axes, centre, direction +1 = away from centre upward)
    specs = [(0, 0, (1, 2), cx, 1), (1, 0, (1, 2), cx, -1), (2, 1, (0, 2), cy, 1),
             (3, 1, (0, 2), cy, -1), (4, 2, (0, 1), kz, -1)]  # fmt: skip
    for m, ax, (a, b), c, sgn in specs:
        na, nb_ = grid.size[a], grid.size[b]
        lo, hi = r[:, ax, 0], r[:, ax, 1]
        if sgn > 0:
            near = torch.maximum(lo, torch.full_like(lo, c + 1 if m < 4 else c))
            ok = hi >= near
            dist = (near - c).float()
        else:
            near = torch.minimum(hi, torch.full_like(hi, c - 1 if m < 4 else c))
            ok = lo <= near
            dist = (c - near).float()
        ia = torch.arange(na)
        ib = torch.arange(nb_)
        cov_a = (ia[None] >= r[:, a, 0, None]) & (ia[None] <= r[:, a, 1, None])  # (nb, na)
        cov_b = (ib[None] >= r[:, b, 0, None]) & (ib[None] <= r[:, b, 1, None])
        cov = cov_a[:, :, None] & cov_b[:, None, :] & ok[:, None, None]
        d = torch.where(cov, dist[:, None, None].expand(nb, na, nb_), inf)
        # ties (overlapping boxes): the later box wins, as in boxes_to_grid
        tie = torch.arange(nb, dtype=torch.float32)[:, None, None] * 1e-3
        arg = (d - tie).argmin(0)
        dmin = torch.gather(d, 0, arg[None])[0]
        hit = torch.isfinite(dmin)
        hh, ww = min(na, size), min(nb_, size)
        out[0, m, :hh, :ww] = torch.where(hit, lab[arg], torch.tensor(-1.0))[:hh, :ww]
        out[1, m, :hh, :ww] = torch.where(hit, dmin * v, torch.tensor(0.0))[:hh, :ww]
    return out


def label_maps_to_scene(
    label: torch.Tensor, depth: torch.Tensor, table: torch.Tensor, palette: torch.Tensor
) -> SceneInput:
    """label (B, 5, S, S) int64 (-1 none), depth (B, 5, S, S) metres -> SceneInput
    (semantic from ``table`` (L, F) and colour from ``palette`` (L, 3) by label id)."""
    mask = label >= 0
    safe = label.clamp(0, len(table) - 1)
    sem = table[safe] * mask[..., None]
    rgb = palette[label.clamp(0, len(palette) - 1)] * mask[..., None]
    return SceneInput(
        depth=depth * mask,
        rgb=rgb.permute(0, 1, 4, 2, 3).contiguous(),
        semantic=sem.permute(0, 1, 4, 2, 3).contiguous(),
        mask=mask,
    )


def _project(lab: torch.Tensor, dim: int, forward: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest occupied voxel along ``dim`` of lab (B, ...); returns (index, found)."""
    occ = lab >= 0
    n = occ.shape[dim]
    if not forward:
        occ = occ.flip(dim)
    found = occ.any(dim)
    idx = occ.to(torch.uint8).argmax(dim)
    if not forward:
        idx = n - 1 - idx
    return idx, found


def triplanes_from_labels(
    lab: torch.Tensor,
    grid: GridSpec,
    table: torch.Tensor,
    palette: torch.Tensor,
    size: int = 101,
) -> SceneInput:
    """Bi-directional tri-planes of label grids.

    lab: (B, X, Y, Z) int64 label ids, -1 = free. table: (L, F) features per label id.
    palette: (L', 3) colour per label id in [0, 1]. Returns a :class:`SceneInput` with
    maps (x+, x-, y+, y-, z) padded to ``size``: depth in metres from the centre plane.
    """
    B, X, Y, Z = lab.shape
    cx, cy = X // 2, Y // 2
    kz = Z // 2 + grid.z_plane_offset
    v = grid.voxel
    parts = []
    # x+: voxels with i > cx, nearest to the centre plane (ascending i)
    sub = lab[:, cx + 1 :]
    i, f = _project(sub, 1, True)
    parts.append((torch.gather(sub, 1, i[:, None]).squeeze(1), (i + 1) * v, f))
    sub = lab[:, :cx]
    i, f = _project(sub, 1, False)
    parts.append((torch.gather(sub, 1, i[:, None]).squeeze(1), (cx - i) * v, f))
    sub = lab[:, :, cy + 1 :]
    i, f = _project(sub, 2, True)
    parts.append((torch.gather(sub, 2, i[:, :, None]).squeeze(2), (i + 1) * v, f))
    sub = lab[:, :, :cy]
    i, f = _project(sub, 2, False)
    parts.append((torch.gather(sub, 2, i[:, :, None]).squeeze(2), (cy - i) * v, f))
    sub = lab[..., : kz + 1]
    i, f = _project(sub, 3, False)
    parts.append((torch.gather(sub, 3, i[..., None]).squeeze(3), (kz - i) * v, f))

    S = size
    depth = torch.zeros(B, 5, S, S)
    label = torch.full((B, 5, S, S), -1, dtype=torch.int64)
    mask = torch.zeros(B, 5, S, S, dtype=torch.bool)
    for m, (lb, d, f) in enumerate(parts):
        h, w = lb.shape[1:]
        hh, ww = min(h, S), min(w, S)
        lb = torch.where(f, lb, torch.full_like(lb, -1))
        label[:, m, :hh, :ww] = lb[:, :hh, :ww]
        depth[:, m, :hh, :ww] = torch.where(f, d.float(), torch.zeros_like(d, dtype=torch.float))[
            :, :hh, :ww
        ]
        mask[:, m, :hh, :ww] = f[:, :hh, :ww]
    return label_maps_to_scene(label, depth, table, palette)
