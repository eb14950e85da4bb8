"""SceneModel: the live Scene Semantic Occupancy shared by mapper, language and motion.

One SceneModel per process. A mapper thread calls :meth:`SceneModel.fuse` while other
threads query it; every query works on an immutable snapshot of one map version, and
derived products (dense occupancy, floor map, SDF, instances) are cached per version and
rebuilt lazily on the first query after a fusion.

Frames and units: map frame (REP-103: x forward, y left, z up), metres, radians.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ssomotion_ros.sso.config import SceneModelConfig, resolve_device
from ssomotion_ros.sso.fusion import VoxelMap, VoxelSnapshot
from ssomotion_ros.sso.ingest import SemanticCloud, ingest_cloud
from ssomotion_ros.sso.instances import extract_instances
from ssomotion_ros.sso.maps import FloorMap, SDFVolume, build_floor_map, build_sdf
from ssomotion_ros.sso.triplane import DenseOccupancy, extract_triplanes
from ssomotion_ros.sso.types import SceneInstance, TriPlanes
from ssomotion_ros.sso.vocabulary import (
    FeatureTable,
    LinearReduction,
    Vocabulary,
    semantic_features,
)

log = logging.getLogger(__name__)

#: Format version written by :meth:`SceneModel.save`.
SAVE_FORMAT = "ssomotion-sso-v1"


@dataclass
class PointFeatures:
    """What the SSO says at query points (all on the model's device).

    occupied: (N,) bool, the point's voxel is occupied.
    label: (N,) int64 majority label of the voxel, -1 if free/unlabelled.
    feature: (N, F) float32 semantic feature of that label (0 if none).
    rgb: (N, 3) float32 mean colour in [0, 1] (0 if free).
    share: (N,) float32 vote share of the label (0 if free).
    """

    occupied: torch.Tensor
    label: torch.Tensor
    feature: torch.Tensor
    rgb: torch.Tensor
    share: torch.Tensor


def _free_lookup(fm: FloorMap, body_radius: float):
    """xy (N, 2) -> (N,) bool: walkable for ``body_radius`` (False outside the grid)."""
    walk = fm.walkable(body_radius)

    def free_at(xy):
        row, col, inside = fm.cell_of(np.asarray(xy, np.float64).reshape(-1, 2))
        out = np.zeros(len(row), bool)
        out[inside] = walk[row[inside], col[inside]]
        return out

    return free_at


class SceneModel:
    """Fused SSO of a scene, on ``cuda`` when available, else CPU.

    config: :class:`~ssomotion_ros.sso.config.SceneModelConfig`.
    vocabulary: label set (default: the config's CSV, else NYU-40).
    reduction: trained semantic reduction weights (else deterministic PCA).
    encoder: text encoder (default: the process-wide one), used lazily.
    """

    def __init__(
        self,
        config: SceneModelConfig | None = None,
        vocabulary: Vocabulary | None = None,
        reduction: LinearReduction | None = None,
        encoder=None,
    ):
        self.config = config or SceneModelConfig()
        self.device = resolve_device(self.config.fusion.device)
        if vocabulary is None:
            vocabulary = (
                Vocabulary.load(self.config.vocabulary)
                if self.config.vocabulary
                else Vocabulary.default()
            )
        self.vocabulary = vocabulary
        if reduction is None and self.config.reduction_weights:
            reduction = LinearReduction.from_file(self.config.reduction_weights)
        self.reduction = reduction
        if encoder is None and self.config.openclip_weights:
            from ssomotion_ros.language.encoders import TextEncoderConfig, get_text_encoder

            encoder = get_text_encoder(
                TextEncoderConfig(kind="openclip", openclip_weights=self.config.openclip_weights)
            )
        self._encoder = encoder
        self.map = VoxelMap(self.config.fusion, self.device)
        self._cache_lock = threading.RLock()
        self._cache: dict = {}
        self._features: FeatureTable | None = None

    # ------------------------------------------------------------------ state
    @property
    def version(self) -> int:
        """Increases with every fusion/load/clear."""
        return self.map.version

    @property
    def voxel_size(self) -> float:
        return self.map.voxel_size

    def is_empty(self) -> bool:
        """True when no voxel is occupied."""
        return len(self.snapshot()) == 0

    def set_reduction(self, reduction: LinearReduction | None) -> None:
        """Use trained reduction weights (e.g. from a motion checkpoint); None = PCA."""
        self.reduction = reduction
        self._features = None

    def features(self) -> FeatureTable:
        """Semantic feature table of the vocabulary (cached)."""
        if self._features is None:
            self._features = semantic_features(
                self.vocabulary, self.config.feature_dim, self.reduction, self._encoder
            )
        return self._features

    # ------------------------------------------------------------------ fusion
    def fuse(
        self,
        cloud,
        stamp: float | None = None,
        transform=None,
        palette: Vocabulary | None = None,
        layout: str = "auto",
    ) -> int:
        """Fuse a cloud into the map; returns the number of points fused.

        cloud: a numpy structured array (see :func:`~ssomotion_ros.sso.ingest.ingest_cloud`)
            or a :class:`SemanticCloud`.
        stamp: seconds. transform: (4, 4) sensor-to-map, or None.
        palette: vocabulary for decoding ``rgb`` segmentation colours (default: this
            model's vocabulary). layout: ``"auto"``, ``"label"`` or ``"palette"``.
        Bad input raises ValueError before anything is changed.
        """
        if not isinstance(cloud, SemanticCloud):
            cloud = ingest_cloud(cloud, palette=palette or self.vocabulary, layout=layout)
        if cloud.num_dropped:
            log.debug("dropped %d non-finite points of %d", cloud.num_dropped, cloud.num_input)
        if len(cloud) == 0:
            if cloud.num_input:
                log.warning(
                    "cloud of %d points has no finite point; nothing fused", cloud.num_input
                )
            return 0
        return self.map.fuse(cloud, stamp=stamp, transform=transform)

    def clear(self) -> None:
        """Forget the fused map."""
        self.map.clear()

    # ------------------------------------------------------------------ cached products
    def _derived(self, snap: VoxelSnapshot, name: str, build):
        """``build(snap)`` cached per snapshot version (never mixes versions)."""
        with self._cache_lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] == snap.version:
                return hit[1]
        value = build(snap)
        with self._cache_lock:
            cur = self._cache.get(name)
            if cur is None or cur[0] <= snap.version:
                self._cache[name] = (snap.version, value)
        return value

    def snapshot(self) -> VoxelSnapshot:
        """Occupied voxels of the current version (immutable, cached)."""
        with self._cache_lock:
            hit = self._cache.get("snapshot")
            if hit is not None and hit[0] == self.map.version:
                return hit[1]
        snap = self.map.snapshot()
        with self._cache_lock:
            cur = self._cache.get("snapshot")
            if cur is None or cur[0] <= snap.version:
                self._cache["snapshot"] = (snap.version, snap)
        return snap

    def dense_occupancy(self, snap: VoxelSnapshot | None = None) -> DenseOccupancy | None:
        """Dense occupancy of the whole map, or None when it would exceed
        ``maps.max_dense_cells`` (queries then build regional grids)."""

        def build(snap):
            if len(snap) == 0:
                return DenseOccupancy.from_snapshot(snap)
            ext = snap.coords.max(dim=0).values - snap.coords.min(dim=0).values + 1
            if int(torch.prod(ext.to(torch.int64))) > self.config.maps.max_dense_cells:
                return None
            return DenseOccupancy.from_snapshot(snap)

        return self._derived(snap if snap is not None else self.snapshot(), "dense", build)

    def floor_map(self, snap: VoxelSnapshot | None = None) -> FloorMap:
        """Floor heights / obstacle columns (cached per version)."""

        def build(snap):
            ids = self.vocabulary.ids_named(self.config.maps.floor_names)
            return build_floor_map(
                snap, ids, self.config.maps, self.config.triplane.default_floor_height
            )

        return self._derived(snap if snap is not None else self.snapshot(), "floor", build)

    def sdf_volume(self, snap: VoxelSnapshot | None = None) -> SDFVolume:
        """Signed distance volume (cached per version)."""
        return self._derived(
            snap if snap is not None else self.snapshot(),
            "sdf",
            lambda s: build_sdf(s, self.config.maps),
        )

    # ------------------------------------------------------------------ queries
    def walkable_grid(self, body_radius: float | None = None):
        """2-D planning grid.

        body_radius: metres (default ``maps.body_radius``).
        Returns ``(free, origin_xy, resolution)``: free (H, W) bool, row = y index,
        col = x index; cell (i, j) centre = ``origin_xy + ((j + 0.5) res, (i + 0.5) res)``;
        origin_xy (2,) float64 metres (map frame); resolution float metres.
        """
        r = self.config.maps.body_radius if body_radius is None else float(body_radius)
        fm = self.floor_map()
        return fm.walkable(r), fm.origin.copy(), fm.resolution

    def floor_height(self, xy) -> np.ndarray:
        """xy: (N, 2) metres, map frame -> (N,) float64 floor heights, metres."""
        return self.floor_map().floor_at(np.asarray(xy, np.float64).reshape(-1, 2))

    def signed_distance(self, points) -> torch.Tensor:
        """Signed distance to occupied space.

        points: (N, 3) float tensor or array, metres, map frame (a tensor may require
        grad: the result is differentiable w.r.t. it).
        Returns (N,) float32 metres: > 0 free, < 0 inside occupied voxels; truncated
        at ``maps.sdf_truncation`` (see :func:`~ssomotion_ros.sso.maps.build_sdf`).
        """
        if not torch.is_tensor(points):
            points = torch.as_tensor(np.asarray(points, np.float32), device=self.device)
        return self.sdf_volume().query(points)

    def features_at(self, points) -> PointFeatures:
        """Voxel attributes at points.

        points: (N, 3) float tensor or array, metres, map frame.
        Returns :class:`PointFeatures` on the model's device.
        """
        p = torch.as_tensor(
            np.asarray(points, np.float32) if not torch.is_tensor(points) else points
        )
        p = p.to(self.device, torch.float32)
        if p.dim() != 2 or p.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got {tuple(p.shape)}")
        snap = self.snapshot()
        coords = torch.floor(p / snap.voxel_size).to(torch.int64)
        row = snap.lookup(coords)
        occ = row >= 0
        r = row.clamp(min=0)
        if len(snap) == 0:
            lab = torch.full_like(row, -1)
            rgb = torch.zeros((len(row), 3), device=self.device)
            share = torch.zeros(len(row), device=self.device)
        else:
            lab = torch.where(occ, snap.labels[r], torch.full_like(row, -1))
            rgb = snap.rgb[r].float() / 255.0 * occ[:, None]
            share = snap.share[r] * occ
        feat = self.features().lookup_torch(lab)
        return PointFeatures(occ, lab, feat, rgb, share)

    def local_triplanes(self, poses, floor_z=None, out: TriPlanes | None = None) -> TriPlanes:
        """Bi-directional tri-planes around agents (see :mod:`ssomotion_ros.sso.triplane`).

        poses: (B, 3) float (x, y, yaw), metres / radians, map frame.
        floor_z: (B,) floor heights, metres; None = the floor map under each agent.
        out: an earlier result (same B) to overwrite instead of allocating new tensors.
        Returns :class:`~ssomotion_ros.sso.types.TriPlanes` on the model's device.
        """
        p = torch.as_tensor(np.asarray(poses, np.float64) if not torch.is_tensor(poses) else poses)
        if p.dim() != 2 or p.shape[1] != 3:
            raise ValueError(f"poses must be (B, 3) (x, y, yaw), got {tuple(p.shape)}")
        if not bool(torch.isfinite(p).all()):
            raise ValueError("poses must be finite")
        p = p.to(self.device, torch.float64)
        snap = self.snapshot()
        if floor_z is None:
            fz = torch.as_tensor(self.floor_map(snap).floor_at(p[:, :2].cpu().numpy()))
        else:
            fz = torch.as_tensor(np.asarray(floor_z, np.float64).reshape(-1))
            if fz.shape[0] != p.shape[0]:
                raise ValueError(f"floor_z must be ({p.shape[0]},), got {tuple(fz.shape)}")
        fz = fz.to(self.device, torch.float64)
        feats = self.features()
        dense = self.dense_occupancy(snap)
        cfg = self.config.triplane
        if dense is not None:
            return extract_triplanes(snap, dense, p, fz, cfg, feats, out=out)
        # map too large for one dense grid: one regional grid per agent
        parts = []
        half = np.array(cfg.grid_size) * cfg.voxel_size / 2
        reach = float(np.hypot(half[0], half[1]))
        vs = snap.voxel_size
        for a in range(p.shape[0]):
            x, y = float(p[a, 0]), float(p[a, 1])
            zc = float(fz[a]) + cfg.center_height
            lo = np.floor(np.array([x - reach, y - reach, zc - half[2]]) / vs).astype(np.int64) - 1
            hi = np.floor(np.array([x + reach, y + reach, zc + half[2]]) / vs).astype(np.int64) + 1
            dense_a = DenseOccupancy.from_snapshot(snap, lo, hi)
            parts.append(extract_triplanes(snap, dense_a, p[a : a + 1], fz[a : a + 1], cfg, feats))
        return TriPlanes(
            *[
                torch.cat([getattr(t, f) for t in parts])
                for f in ("depth", "rgb", "semantic", "label", "mask")
            ]
        )

    def instances(self) -> list[SceneInstance]:
        """Object instances with affordances (cached per version); see
        :mod:`ssomotion_ros.sso.instances`."""

        def build(snap):
            fm = self.floor_map(snap)
            return extract_instances(
                snap.coords.cpu().numpy(),
                snap.labels.cpu().numpy(),
                snap.instance.cpu().numpy(),
                snap.voxel_size,
                self.vocabulary,
                self.config.instances,
                floor_at=fm.floor_at,
                free_at=_free_lookup(fm, self.config.maps.body_radius),
            )

        return self._derived(self.snapshot(), "instances", build)

    def occupied_voxels(self):
        """Numpy view for publishing: (centres (M, 3) float32 metres, labels (M,) int64,
        rgb (M, 3) uint8, instance (M,) int64)."""
        s = self.snapshot()
        return (
            s.centers().cpu().numpy(),
            s.labels.cpu().numpy(),
            s.rgb.cpu().numpy(),
            s.instance.cpu().numpy(),
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save the map to an ``.npz`` file (format ``ssomotion-sso-v1``).

        Arrays: the voxel table (``keys`` int64 sorted packed voxel keys, ``coords``
        (M, 3) int32, ``evidence``, ``last_seen`` (seconds since ``epoch``), ``votes``,
        ``rgb_sum`` (M, 3), ``rgb_w``, ``lab_ids`` (M, K) int32, ``lab_cnt`` (M, K),
        ``inst_ids`` (M, Ki) int64, ``inst_cnt``), scalars ``epoch``, ``time``,
        ``num_points_fused``, plus ``meta`` (JSON: format, voxel size, config) and
        ``vocabulary_csv`` (the vocabulary as CSV text).
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = (
                path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        state = self.map.state_dict()
        buf = io.StringIO()
        import csv

        w = csv.writer(buf)
        w.writerow(("name", "red", "green", "blue", "alpha", "id"))
        for i, n, c in zip(self.vocabulary.ids, self.vocabulary.names, self.vocabulary.colors):
            w.writerow([n, *[int(x) for x in c], int(i)])
        meta = {
            "format": SAVE_FORMAT,
            "voxel_size": self.voxel_size,
            "config": asdict(self.config),
        }
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            meta=np.array(json.dumps(meta)),
            vocabulary_csv=np.array(buf.getvalue()),
            **state,
        )
        tmp.replace(path)
        return path

    def load(self, path: str | Path) -> None:
        """Replace the map by a file written by :meth:`save` (same voxel size required).

        Raises ValueError (and keeps the current map) when the file is not valid.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"map file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001 - any read error means a bad file
            raise ValueError(f"cannot read map file {path}: {e}") from e
        if "meta" not in data:
            raise ValueError(f"{path} is not an SSO map (no 'meta')")
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != SAVE_FORMAT:
            raise ValueError(f"{path}: unknown format {meta.get('format')!r}, want {SAVE_FORMAT}")
        if abs(float(meta["voxel_size"]) - self.voxel_size) > 1e-9:
            raise ValueError(
                f"{path} has voxel size {meta['voxel_size']} m but this model uses "
                f"{self.voxel_size} m; build a SceneModel with that voxel size"
            )
        self.map.load_state_dict(data)
        if "vocabulary_csv" in data:
            import tempfile

            with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
                f.write(str(data["vocabulary_csv"]))
            try:
                voc = Vocabulary.from_csv(f.name)
            finally:
                Path(f.name).unlink(missing_ok=True)
            if voc.key != self.vocabulary.key:
                log.info("loaded map carries its own vocabulary (%d labels)", len(voc))
                self.vocabulary = voc
                self._features = None

    @classmethod
    def from_file(cls, path: str | Path, config: SceneModelConfig | None = None) -> SceneModel:
        """A new SceneModel loaded from :meth:`save` output (voxel size from the file)."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        config = config or SceneModelConfig()
        config.fusion.voxel_size = float(meta["voxel_size"])
        model = cls(config)
        model.load(path)
        return model

    def export_compact_occ(self, folder: str | Path):
        """Write ``compact_occ.npy`` + ``compact_occ_info.json`` (reference format)."""
        from ssomotion_ros.sso.compact_occ import export_compact_occ

        return export_compact_occ(self, folder)

    def import_compact_occ(self, path: str | Path, stamp: float | None = None) -> int:
        """Fuse a reference ``compact_occ.npy`` (+ json next to it); returns voxels fused."""
        from ssomotion_ros.sso.compact_occ import load_compact_occ

        occ = load_compact_occ(path)
        return self.fuse(occ.to_cloud(), stamp=stamp)
