"""An endless stream of semantic scans, as a mapping stack would publish them (ROS-free).

:class:`ScanStream` builds its world once (from a prompt, a scene spec file, or real
scan files), then produces :class:`StreamItem` clouds in a background thread into a
small bounded queue, so a ROS timer only pops ready clouds (scan generation never runs
on the executor thread). Generated worlds are surveyed by a robot driving through the
reachable floor (:func:`~.sensors.survey_poses`); the survey loops.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class SceneStreamConfig:
    """Parameters of the scene node / scan stream (one ROS parameter per field)."""

    #: Room description used when no spec_file / scan_file is given.
    prompt: str = "a living room with a sofa, two armchairs, a coffee table and a tv"
    #: Random seed of the generated room, the survey path and the sensor noise.
    seed: int = 0
    #: Scene spec (YAML/JSON, as written by 'ssomotion scene'); overrides prompt.
    spec_file: str = ""
    #: Real scan file(s) to replay instead of a generated room: a .pcd, a .ply with
    #: per-vertex labels, a scans .npz (from 'ssomotion scene'), or a folder of .pcd.
    scan_file: str = ""
    #: Simulated sensor: "depth" (organised RGB-D style cloud) or "lidar" (rings).
    sensor: str = "depth"
    #: Cloud layout: "label" (uint32 label + instance fields) or "rgb" (palette colours).
    layout: str = "label"
    #: Output topic of the semantic point clouds.
    topic: str = "/semantic_pointcloud"
    #: frame_id of the clouds (points are in this frame: the map, REP-103).
    frame_id: str = "map"
    #: Publish rate, clouds per second.
    rate: float = 2.0
    #: Robot poses of one survey loop (the survey repeats).
    num_poses: int = 24
    #: Metres between survey poses.
    pose_step: float = 0.4
    #: Depth camera image width, pixels.
    depth_width: int = 320
    #: Depth camera image height, pixels.
    depth_height: int = 240
    #: Lidar rings.
    lidar_rings: int = 16
    #: Give lidar clouds a ``ring`` field (off for consumers that read ``ring`` as label).
    lidar_ring_field: bool = True
    #: Clouds generated ahead of publishing (bounded queue size).
    prefetch: int = 2
    #: Stop after this many clouds (0: run forever).
    max_clouds: int = 0

    def __post_init__(self) -> None:
        if self.sensor not in ("depth", "lidar"):
            raise ValueError(f"sensor must be 'depth' or 'lidar', got {self.sensor!r}")
        if self.layout not in ("label", "rgb"):
            raise ValueError(f"layout must be 'label' or 'rgb', got {self.layout!r}")
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0 clouds per second, got {self.rate}")
        for name in ("num_poses", "depth_width", "depth_height", "lidar_rings", "prefetch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_clouds < 0:
            raise ValueError(f"max_clouds must be >= 0, got {self.max_clouds}")


@dataclass
class StreamItem:
    """One cloud of the stream.

    points: structured array (fields x y z + label/instance/rgb or rgb, ring for lidar),
        shape (H, W) or (N,), metres, in the stream's frame.
    sensor_pose: (4, 4) float64 sensor -> frame transform (identity for replayed files
        whose pose is unknown).
    index: running number of the cloud (0, 1, ...).
    source: where it came from (e.g. ``"depth pose 3"`` or a file name).
    """

    points: np.ndarray
    sensor_pose: np.ndarray
    index: int
    source: str = ""
    meta: dict = field(default_factory=dict)


def load_scan_file(path: str | Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Real/recorded scans from a file or folder: list of (points, pose (4, 4), name).

    .pcd -> :func:`~.loaders.read_pcd` (pose from its VIEWPOINT); .ply ->
    :func:`~.loaders.read_ply_labels` (vertices as the cloud); .npz ->
    :func:`~.sensors.scans_from_npz`; a folder -> its .pcd files in name order.
    Raises FileNotFoundError / ValueError with the path when unreadable.
    """
    from ssomotion_ros.scenes.loaders import read_pcd, read_pcd_header, read_ply_labels
    from ssomotion_ros.scenes.sensors import scans_from_npz

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.pcd"))
        if not files:
            raise ValueError(f"scan folder {path} holds no .pcd files")
        out = []
        for f in files:
            out.extend(load_scan_file(f))
        return out
    if not path.exists():
        raise FileNotFoundError(f"scan file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".pcd":
        vp = read_pcd_header(path).viewpoint
        return [(read_pcd(path), _pose_from_viewpoint(vp), path.name)]
    if suffix == ".ply":
        return [(read_ply_labels(path).vertices, np.eye(4), path.name)]
    if suffix == ".npz":
        return [
            (s.points, s.sensor_pose, f"{path.name}[{k}]")
            for k, s in enumerate(scans_from_npz(path))
        ]
    raise ValueError(f"unsupported scan file {path} (use .pcd, .ply, .npz or a folder of .pcd)")


def _pose_from_viewpoint(vp: np.ndarray) -> np.ndarray:
    t, (w, x, y, z) = vp[:3], vp[3:]
    n = np.sqrt(w * w + x * x + y * y + z * z) or 1.0
    w, x, y, z = w / n, x / n, y / n, z / n
    T = np.eye(4)
    T[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    T[:3, 3] = t
    return T


class ScanStream:
    """Produces :class:`StreamItem` clouds in a worker thread (see the module docstring).

    Construction builds the world (raises ValueError for bad prompts/specs/files, so a
    node fails at start-up with the reason). :meth:`start` launches the worker;
    :meth:`get` pops the next ready cloud (None if none is ready yet); :meth:`stop` ends
    the worker. ``scene`` is the generated :class:`~.scene.Scene` (None when replaying
    files).
    """

    def __init__(self, config: SceneStreamConfig | None = None):
        self.config = config or SceneStreamConfig()
        cfg = self.config
        self.scene = None
        self._files: list[tuple[np.ndarray, np.ndarray, str]] = []
        if cfg.scan_file:
            self._files = load_scan_file(cfg.scan_file)
            self.description = f"replaying {len(self._files)} cloud(s) from {cfg.scan_file}"
        else:
            from ssomotion_ros.scenes.layout import SceneSpec
            from ssomotion_ros.scenes.scene import Scene, generate_scene
            from ssomotion_ros.scenes.sensors import Raycaster, survey_poses

            if cfg.spec_file:
                self.scene = Scene(SceneSpec.load(cfg.spec_file))
                what = f"spec {cfg.spec_file}"
            else:
                self.scene = generate_scene(cfg.prompt, seed=cfg.seed)
                what = f"prompt {cfg.prompt!r} (seed {cfg.seed})"
            self._caster = Raycaster(self.scene)
            self._poses = survey_poses(
                self.scene,
                num=cfg.num_poses,
                step=cfg.pose_step,
                rng=np.random.default_rng(cfg.seed),
            )
            names = ", ".join(i.name for i in self.scene.instances)
            self.description = f"{cfg.sensor} scans of a generated room from {what}: {names}"
        self._rng = np.random.default_rng(cfg.seed + 1)
        self._queue: queue.Queue = queue.Queue(maxsize=cfg.prefetch)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._count = 0
        self.error: Exception | None = None

    def make(self, index: int) -> StreamItem:
        """Produce cloud number ``index`` (deterministic sequence for generated rooms)."""
        cfg = self.config
        if self._files:
            pts, pose, name = self._files[index % len(self._files)]
            return StreamItem(pts, pose, index, name)
        from ssomotion_ros.scenes.sensors import (
            DepthCameraConfig,
            LidarConfig,
            depth_scan,
            lidar_scan,
        )

        k = index % len(self._poses)
        pose = self._poses[k]
        if cfg.sensor == "depth":
            dc = DepthCameraConfig(width=cfg.depth_width, height=cfg.depth_height)
            scan = depth_scan(self._caster, pose, dc, cfg.layout, self._rng, index / cfg.rate)
        else:
            lc = LidarConfig(rings=cfg.lidar_rings, ring_field=cfg.lidar_ring_field)
            scan = lidar_scan(self._caster, pose, lc, cfg.layout, self._rng, index / cfg.rate)
        return StreamItem(scan.points, scan.sensor_pose, index, f"{cfg.sensor} pose {k}")

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                if self.config.max_clouds and self._count >= self.config.max_clouds:
                    return
                item = self.make(self._count)
                self._count += 1
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except Exception as exc:  # noqa: BLE001 - reported through .error and the log
            self.error = exc
            log.exception("scan stream stopped")

    def start(self) -> None:
        """Start the background producer (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._work, name="scan-stream", daemon=True)
            self._thread.start()

    def get(self, timeout: float = 0.0) -> StreamItem | None:
        """The next ready cloud, or None when none is ready within ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def stop(self) -> None:
        """Stop the producer and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
