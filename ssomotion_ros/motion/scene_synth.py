"""Stage-2 training scenes: simple rooms of boxes placed collision-free around a motion.

This is the fallback scene source of the scene-controller training (the issue's "simple
rooms of boxes"): for each training window, random furniture boxes are placed in the
local crop where no joint of the window comes near them, plus a floor and — for
sitting / standing up / lying windows whose pelvis goes low — a support box (seat or
bed) under the pelvis. The local voxel grid and the bi-directional tri-plane maps follow
``ssomotion_ros.sso.config.TriplaneConfig`` (0.04 m voxels, 101 x 101 x 81, crop centre
0.9 m above the floor, z map projected downward from 0.4 m above the centre) and the
``ssomotion_ros.sso.types.TriPlanes`` layout (maps x+, x-, y+, y-, z; padded to S x S).

The projection is the SSO's own (``sso.triplane.decompose``), so the image layout is that
of ``SceneModel.local_triplanes``: x maps ``[k, j]``, y maps ``[k, i]``, the z map
``[j, i]`` (row first), padded to S x S.
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
        """Voxel centres along ``axis`` (metres, body frame; z above the floor)."""
        n = self.size[axis]
        c = (np.arange(n) - (n - 1) / 2) * self.voxel
        return c + (self.center_height if axis == 2 else 0.0)

    def triplane_config(self):
        """The same crop as an ``sso.config.TriplaneConfig``."""
        from ssomotion_ros.sso.config import TriplaneConfig

        return TriplaneConfig(
            voxel_size=self.voxel,
            grid_size=tuple(self.size),
            center_height=self.center_height,
            z_plane_offset=self.z_plane_offset,
        )


def _default_tables(dim: int):
    """(features (L, F), colours (L, 3), reduction) per NYU-40 label id.

    Features are the SSO's reduced text features of the NYU-40 vocabulary (the process
    text encoder + deterministic PCA); ``reduction`` is that PCA as a
    ``sso.vocabulary.LinearReduction`` (saved with the checkpoint, so scenes with any
    vocabulary get features in the same space). Returns (None, None, None) when the
    vocabulary or the text encoder cannot be loaded.
    """
    try:
        from ssomotion_ros.language.encoders import get_text_encoder
        from ssomotion_ros.sso.vocabulary import Vocabulary, pca_reduction, semantic_features

        vocab = Vocabulary.default()
        emb = get_text_encoder().encode(list(vocab.names))
        reduction = pca_reduction(emb, dim)
        table = semantic_features(vocab, dim=dim, reduction=reduction).table
        colors = np.zeros((len(table), 3), np.float32)
        colors[vocab.ids] = vocab.colors[:, :3] / 255.0
        return table, colors, reduction
    except Exception as e:  # noqa: BLE001 - optional dependency of the fallback
        log.warning("synthetic scenes use random label features (%s)", e)
        return None, None, None


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
        #: the semantic reduction behind ``feature_table`` (None if unknown)
        self.reduction = None
        if feature_table is None and use_vocabulary:
            feature_table, colors, self.reduction = _default_tables(semantic_dim)
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
        """Label grid (X, Y, Z) int16 of one window (-1 = free). joints: (T, 22, 3)."""
        return boxes_to_grid(*self.box_indices(joints, action), self.grid)

    def __call__(self, joints: np.ndarray, actions: np.ndarray, size: int = 101) -> SceneInput:
        """Tri-planes for a batch of windows.

        joints: (B, T, 22, 3) metres, window (body) frame. actions: (B,) action indices.
        size: padded image side S. Returns a :class:`SceneInput` of (B, 5, ...) tensors.
        """
        joints = np.asarray(joints)
        if joints.ndim != 4 or joints.shape[-2:] != (22, 3):
            raise ValueError(f"joints must be (B, T, 22, 3), got {joints.shape}")
        maps = torch.stack(
            [
                box_label_maps(*self.box_indices(j, int(a)), self.grid, size)
                for j, a in zip(joints, np.asarray(actions))
            ]
        )
        return label_maps_to_scene(maps[:, 0].long(), maps[:, 1], self.table, self.palette)


def boxes_to_grid(ranges: np.ndarray, labels: np.ndarray, grid: GridSpec) -> torch.Tensor:
    """Voxelise index boxes (later boxes overwrite earlier ones) -> (X, Y, Z) int16, -1 free."""
    lab = torch.full(grid.size, -1, dtype=torch.int16)
    for (x, y, z), label in zip(ranges, labels):
        lab[x[0] : x[1] + 1, y[0] : y[1] + 1, z[0] : z[1] + 1] = int(label)
    return lab


def box_label_maps(
    ranges: np.ndarray, labels: np.ndarray, grid: GridSpec, size: int | None = None
) -> torch.Tensor:
    """Tri-plane label and depth maps of index boxes, computed per box, without a voxel grid.

    Equals :func:`triplanes_from_labels` of :func:`boxes_to_grid` (the SSO's decomposition:
    centre planes ``c = (n + 1) // 2 - 1`` included in both halves, z plane
    ``(nz + 1) // 2 - 1 + z_plane_offset``, image layout x ``[k, j]``, y ``[k, i]``,
    z ``[j, i]``) at a fraction of the cost; overlapping boxes resolve as in the grid
    (the later box wins a tie).
    ranges: (nb, 3, 2) inclusive voxel index ranges; labels: (nb,).
    Returns (2, 5, S, S) float32: [0] label ids (-1 = none), [1] depth in metres.
    """
    X, Y, Z = grid.size
    S = size or max(X, Y, Z)
    cx, cy = (X + 1) // 2 - 1, (Y + 1) // 2 - 1
    pz = min(Z - 1, max(0, (Z + 1) // 2 - 1 + grid.z_plane_offset))
    r = torch.as_tensor(np.asarray(ranges, np.int64)).reshape(-1, 3, 2)
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
    nb = len(r)
    out = torch.zeros(2, 5, S, S)
    out[0] = -1
    if nb == 0:
        return out
    # (map, ray axis, image row axis, image column axis, plane index, direction)
    specs = [(0, 0, 2, 1, cx, 1), (1, 0, 2, 1, cx, -1), (2, 1, 2, 0, cy, 1),
             (3, 1, 2, 0, cy, -1), (4, 2, 1, 0, pz, -1)]  # fmt: skip
    tie = torch.arange(nb, dtype=torch.float32)[:, None, None] * 1e-3
    for m, ax, ra, ca, c, sgn in specs:
        lo, hi = r[:, ax, 0], r[:, ax, 1]
        if sgn > 0:
            near = lo.clamp_min(c)
            ok = hi >= near
            off = (near - c).float()
        else:
            near = hi.clamp_max(c)
            ok = lo <= near
            off = (c - near).float()
        nr, nc = grid.size[ra], grid.size[ca]
        ir, ic = torch.arange(nr), torch.arange(nc)
        cov_r = (ir[None] >= r[:, ra, 0, None]) & (ir[None] <= r[:, ra, 1, None])
        cov_c = (ic[None] >= r[:, ca, 0, None]) & (ic[None] <= r[:, ca, 1, None])
        cov = cov_r[:, :, None] & cov_c[:, None, :] & ok[:, None, None]
        d = torch.where(cov, off[:, None, None].expand(nb, nr, nc), torch.tensor(float("inf")))
        arg = (d - tie).argmin(0)
        dmin = torch.gather(d, 0, arg[None])[0]
        hit = torch.isfinite(dmin)
        h, w = min(nr, S), min(nc, S)
        out[0, m, :h, :w] = torch.where(hit, lab[arg], torch.tensor(-1.0))[:h, :w]
        out[1, m, :h, :w] = torch.where(hit, dmin * grid.voxel, torch.tensor(0.0))[:h, :w]
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


def triplanes_from_labels(
    lab: torch.Tensor,
    grid: GridSpec,
    table: torch.Tensor,
    palette: torch.Tensor,
    size: int | None = None,
) -> SceneInput:
    """Bi-directional tri-planes of local label grids, by the SSO's own decomposition
    (``ssomotion_ros.sso.triplane.decompose``: same centre planes, z plane and image
    layout as ``SceneModel.local_triplanes``).

    lab: (B, X, Y, Z) integer label ids (< 32768), -1 = free, in the crop of ``grid``.
    table: (L, F) features per label id. palette: (L', 3) colour per label id in [0, 1].
    size: padded image side S (default max(X, Y, Z)).
    Returns a :class:`SceneInput` with maps (x+, x-, y+, y-, z); depth in metres.
    """
    from ssomotion_ros.sso.triplane import decompose

    B, X, Y, Z = lab.shape
    S = size or max(X, Y, Z)
    maps = decompose(lab >= 0, grid.triplane_config())
    depth = torch.zeros(B, 5, S, S)
    label = torch.full((B, 5, S, S), -1, dtype=torch.int64)
    for m, (off, found, idx) in enumerate(maps):
        dim = 1 if m < 2 else 2 if m < 4 else 3
        lb = torch.gather(lab, dim, idx.unsqueeze(dim)).squeeze(dim).long()  # (B, A, C)
        lb = torch.where(found, lb, torch.full_like(lb, -1)).transpose(1, 2)  # image [C, A]
        d = (off.float() * grid.voxel * found).transpose(1, 2)
        h, w = min(lb.shape[1], S), min(lb.shape[2], S)
        label[:, m, :h, :w] = lb[:, :h, :w]
        depth[:, m, :h, :w] = d[:, :h, :w]
    return label_maps_to_scene(label, depth, table, palette)
