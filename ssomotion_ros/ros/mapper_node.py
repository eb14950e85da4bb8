"""Mapper node: fuses semantic point clouds into the process's SceneModel.

Topics and services (names are parameters, see
:class:`~ssomotion_ros.sso.config.MapperConfig`):
  sub  /semantic_pointcloud        sensor_msgs/PointCloud2   label / palette layouts
  sub  (sensor_pose_topic)         PoseStamped / Odometry    cloud frame in the map frame
  pub  /ssomotion/sso/occupancy    sensor_msgs/PointCloud2   occupied voxels (x y z rgb
                                                             label instance), map frame
  pub  /ssomotion/sso/instances    visualization_msgs/MarkerArray  boxes + names
  srv  ~/save_map, ~/load_map      std_srvs/Trigger          the ``map_path`` file

The subscription callback only converts the message to a numpy array and enqueues it;
a worker thread fuses (so a 1M-point cloud never blocks the executor) and publishes at
``publish_rate``. One SceneModel per process: the node uses ``shared.scene_model`` when
another node created it, else creates it and puts it there (or takes ``scene_model``).
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from ssomotion_ros.ros.params import declare_config
from ssomotion_ros.ros.pointcloud import array_to_pointcloud2, pointcloud2_to_array
from ssomotion_ros.ros.shared import SharedState
from ssomotion_ros.sso.config import FusionConfig, MapperConfig, SceneModelConfig
from ssomotion_ros.sso.vocabulary import Vocabulary

#: Seconds between the worker's statistics log lines.
STATS_PERIOD = 10.0

#: An unchanged map is published again every this many publish periods.
REPUBLISH_EVERY = 5

#: dtype of the published occupancy cloud.
OCCUPANCY_DTYPE = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("rgb", "<f4"),
        ("label", "<u4"),
        ("instance", "<i4"),
    ]
)


def pose_to_matrix(pose) -> np.ndarray:
    """geometry_msgs/Pose -> (4, 4) float64 homogeneous transform."""
    q = pose.orientation
    x, y, z, w = q.x, q.y, q.z, q.w
    n = x * x + y * y + z * z + w * w
    if n < 1e-12:
        raise ValueError("pose orientation is a zero quaternion")
    s = 2.0 / n
    m = np.eye(4)
    m[:3, :3] = [
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ]
    m[:3, 3] = [pose.position.x, pose.position.y, pose.position.z]
    return m


def occupancy_array(centers, labels, rgb, instance, vocabulary: Vocabulary, color: str):
    """Occupied voxels as the structured array published on the occupancy topic.

    centers: (M, 3) float32 metres; labels (M,) int64; rgb (M, 3) uint8; instance (M,).
    color: "class" (palette colour of the label) or "rgb" (the fused mean colour).
    """
    out = np.zeros(len(centers), OCCUPANCY_DTYPE)
    out["x"], out["y"], out["z"] = centers[:, 0], centers[:, 1], centers[:, 2]
    col = vocabulary.colors_of(labels) if color == "class" else rgb
    col = col.astype(np.uint32)
    out["rgb"] = ((col[:, 0] << 16) | (col[:, 1] << 8) | col[:, 2]).view(np.float32)
    out["label"] = np.maximum(labels, 0).astype(np.uint32)
    out["instance"] = instance.astype(np.int32)
    return out


def instance_markers(instances, vocabulary: Vocabulary, frame_id: str, stamp) -> MarkerArray:
    """One translucent box and one name label per instance (after a DELETEALL)."""
    arr = MarkerArray()
    clear = Marker()
    clear.header.frame_id = frame_id
    clear.header.stamp = stamp
    clear.action = Marker.DELETEALL
    arr.markers.append(clear)
    for k, inst in enumerate(instances):
        color = vocabulary.colors_of(np.array([inst.label]))[0] / 255.0
        lo, hi = np.asarray(inst.bbox_min, float), np.asarray(inst.bbox_max, float)
        box = Marker()
        box.header.frame_id = frame_id
        box.header.stamp = stamp
        box.ns = "instances"
        box.id = 2 * k
        box.type = Marker.CUBE
        box.action = Marker.ADD
        c = (lo + hi) / 2
        box.pose.position.x, box.pose.position.y, box.pose.position.z = map(float, c)
        box.pose.orientation.w = 1.0
        box.scale.x, box.scale.y, box.scale.z = map(float, np.maximum(hi - lo, 1e-3))
        box.color.r, box.color.g, box.color.b = map(float, color)
        box.color.a = 0.35
        arr.markers.append(box)
        text = Marker()
        text.header = box.header
        text.ns = "instance_names"
        text.id = 2 * k + 1
        text.type = Marker.TEXT_VIEW_FACING
        text.action = Marker.ADD
        text.pose.position.x, text.pose.position.y = float(c[0]), float(c[1])
        text.pose.position.z = float(hi[2] + 0.15)
        text.pose.orientation.w = 1.0
        text.scale.z = 0.15
        text.color.r = text.color.g = text.color.b = text.color.a = 1.0
        text.text = f"{inst.name} #{inst.instance_id}"
        arr.markers.append(text)
    return arr


class MapperNode(Node):
    """See the module docstring.

    shared: the process's :class:`SharedState`; scene_model: use this SceneModel (it is
    also put into ``shared`` when that holds none).
    """

    def __init__(
        self,
        node_name: str = "ssomotion_mapper",
        shared: SharedState | None = None,
        scene_model=None,
        **node_kwargs,
    ):
        super().__init__(node_name, **node_kwargs)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.shared = shared or SharedState()
        self.config = cfg = declare_config(self, MapperConfig)
        if cfg.layout not in ("auto", "label", "palette", "rgb"):
            raise ValueError(
                f"parameter layout must be auto, label, palette or rgb, not {cfg.layout!r}"
            )
        if cfg.occupancy_color not in ("class", "rgb"):
            raise ValueError("parameter occupancy_color must be 'class' or 'rgb'")
        self.palette = Vocabulary.load(cfg.palette_path) if cfg.palette_path else None
        self._set_threads(cfg.torch_threads)
        with self.shared.lock:
            model = scene_model or self.shared.scene_model
            if model is None:
                from ssomotion_ros.sso.scene import SceneModel

                mcfg = SceneModelConfig(
                    fusion=FusionConfig(
                        voxel_size=cfg.voxel_size,
                        decay_half_life=cfg.decay_half_life,
                        max_voxels=cfg.max_voxels,
                        device=cfg.device,
                        cpu_kernel=cfg.cpu_kernel,
                        cpu_threads=cfg.cpu_threads,
                    ),
                    vocabulary=cfg.vocabulary_path or None,
                    reduction_weights=cfg.reduction_weights or None,
                    openclip_weights=cfg.openclip_weights or None,
                )
                model = SceneModel(mcfg)
            if self.shared.scene_model is None:
                self.shared.scene_model = model
        self.model = model
        if cfg.load_on_start and Path(cfg.map_path).is_file():
            self.model.load(cfg.map_path)
            self.get_logger().info(f"loaded map {cfg.map_path}")

        reliability = (
            ReliabilityPolicy.BEST_EFFORT
            if cfg.cloud_reliability == "best_effort"
            else ReliabilityPolicy.RELIABLE
        )
        qos = QoSProfile(depth=cfg.cloud_qos_depth, reliability=reliability)
        self.create_subscription(PointCloud2, cfg.cloud_topic, self._on_cloud, qos)
        self._poses: collections.deque = collections.deque(maxlen=200)  # (stamp, 4x4)
        if cfg.sensor_pose_topic:
            if cfg.sensor_pose_type not in ("pose_stamped", "odometry"):
                raise ValueError("parameter sensor_pose_type must be pose_stamped or odometry")
            mtype = PoseStamped if cfg.sensor_pose_type == "pose_stamped" else Odometry
            self.create_subscription(mtype, cfg.sensor_pose_topic, self._on_pose, 50)
        # latched outputs: late subscribers asking for transient-local get the last map
        out_qos = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.occ_pub = self.create_publisher(PointCloud2, cfg.occupancy_topic, out_qos)
        self.inst_pub = self.create_publisher(MarkerArray, cfg.instances_topic, out_qos)
        self.create_service(Trigger, cfg.save_service, self._on_save)
        self.create_service(Trigger, cfg.load_service, self._on_load)

        self._queue: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._warned_frame = False
        #: True until the worker has loaded the fusion kernels (clouds wait meanwhile)
        self._loading_kernels = True
        self.clouds_fused = 0
        self.clouds_dropped = 0
        self.clouds_rejected = 0
        self._published_version = -1
        self._stats_points = 0
        self._stats_seconds = 0.0
        self._stats_clouds = 0
        self._worker = threading.Thread(target=self._work, name="mapper-worker", daemon=True)
        self._worker.start()
        g = self.model.map._grouper
        kernels = f" (compiled CPU kernels, {g.threads} threads)" if g is not None else ""
        self.get_logger().info(
            f"fusing {cfg.cloud_topic} (layout {cfg.layout}) into a {cfg.voxel_size} m SSO on "
            f"{self.model.device}{kernels}; "
            f"voxels on {cfg.occupancy_topic}, instances on "
            f"{cfg.instances_topic}"
        )

    def _set_threads(self, wanted: int) -> None:
        import os

        import torch

        if wanted < 0:
            return
        current = torch.get_num_threads()
        n = wanted if wanted > 0 else min(current, max(1, (os.cpu_count() or 2) // 2))
        if n != current:
            torch.set_num_threads(n)
            self.get_logger().info(f"torch CPU threads: {current} -> {n} (torch_threads)")

    # -- callbacks: convert + enqueue only ---------------------------------------------
    def _on_pose(self, msg) -> None:
        pose = msg.pose.pose if isinstance(msg, Odometry) else msg.pose
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        try:
            self._poses.append((stamp, pose_to_matrix(pose)))
        except ValueError as exc:
            self.get_logger().error(f"bad pose on {self.config.sensor_pose_topic}: {exc}")

    def sensor_transform(self, stamp: float):
        """(4, 4) sensor-to-map transform for a cloud stamp, or None if no pose is near."""
        if not self._poses:
            return None
        poses = list(self._poses)
        k = int(np.argmin([abs(t - stamp) for t, _ in poses]))
        if abs(poses[k][0] - stamp) > self.config.max_pose_time_diff:
            return None
        return poses[k][1]

    def _on_cloud(self, msg: PointCloud2) -> None:
        try:
            arr = pointcloud2_to_array(msg).copy()
        except ValueError as exc:
            self.clouds_rejected += 1
            self.get_logger().error(f"bad PointCloud2 on {self.config.cloud_topic}: {exc}")
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        item = (arr, stamp, msg.header.frame_id)
        with self._cv:
            if len(self._queue) >= max(1, self.config.max_queued_clouds):
                self._queue.popleft()
                self.clouds_dropped += 1
                if self._loading_kernels:
                    self.get_logger().info(
                        "dropped the oldest waiting cloud: the fusion kernels are still loading "
                        "(at start only)"
                    )
                else:
                    self.get_logger().warning("mapper is behind: dropped the oldest waiting cloud")
            self._queue.append(item)
            self._cv.notify()

    # -- worker ------------------------------------------------------------------------
    def _warm_up_kernels(self) -> None:
        """Load (or, with a stale numba cache, compile) the compiled fusion kernels before
        the first cloud, so that it is not delayed and the log says why when it is."""
        if self.model.map._grouper is None:
            return
        from ssomotion_ros.sso import cpu_kernels

        t0 = time.perf_counter()
        try:
            cpu_kernels.warm_up()
        except Exception as exc:  # noqa: BLE001 - fusion still works (compiles on use)
            self.get_logger().warning(f"warming up the CPU fusion kernels failed: {exc}")
            return
        dt = time.perf_counter() - t0
        if dt > 3.0:
            self.get_logger().warning(
                f"compiled the CPU fusion kernels in {dt:.0f} s (numba's cache was missing "
                "or stale; ./setup.sh compiles them once)"
            )

    def _work(self) -> None:
        self._warm_up_kernels()
        self._loading_kernels = False
        period = 1.0 / self.config.publish_rate if self.config.publish_rate > 0 else None
        next_pub = time.monotonic()
        next_stats = time.monotonic() + STATS_PERIOD
        ticks = 0
        while not self._stop.is_set():
            with self._cv:
                if not self._queue:
                    self._cv.wait(timeout=0.05)
                items = list(self._queue)
                self._queue.clear()
            if items:
                # everything that queued up is fused in one call: per-call overhead (and,
                # with busy threads in the process, GIL hand-offs) is paid once
                t0 = time.perf_counter()
                self._stats_points += self.fuse_arrays(items)
                self._stats_seconds += time.perf_counter() - t0
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + STATS_PERIOD
                self._log_stats()
            if period is not None and time.monotonic() >= next_pub:
                next_pub = time.monotonic() + period
                ticks += 1
                try:
                    # on change, and every REPUBLISH_EVERY periods for volatile late joiners
                    self.publish_map(force=ticks % REPUBLISH_EVERY == 0)
                except Exception as exc:  # noqa: BLE001 - keep the worker alive
                    self.get_logger().error(f"publishing the map failed: {exc}")

    def _log_stats(self) -> None:
        n = self.clouds_fused - self._stats_clouds
        if n == 0 and not self.clouds_dropped:
            return
        ms = 1000 * self._stats_seconds / max(n, 1)  # per cloud
        self.get_logger().info(
            f"fused {n} clouds ({self._stats_points} points, {ms:.1f} ms each) in the last "
            f"{STATS_PERIOD:.0f} s; {self.clouds_dropped} dropped, {self.clouds_rejected} "
            f"rejected so far; map: {len(self.model.map)} voxels"
        )
        self._stats_clouds = self.clouds_fused
        self._stats_points = 0
        self._stats_seconds = 0.0

    def fuse_array(self, arr: np.ndarray, stamp: float, frame_id: str) -> int:
        """Fuse one converted cloud (worker thread). Returns points fused (0 on error)."""
        return self.fuse_arrays([(arr, stamp, frame_id)])

    def _to_map_cloud(self, arr: np.ndarray, stamp: float, frame_id: str):
        """Ingest one cloud and bring it into the map frame; None when it is dropped."""
        from ssomotion_ros.sso.ingest import ingest_cloud

        cfg = self.config
        transform = None
        if cfg.sensor_pose_topic and frame_id != cfg.frame_id:
            transform = self.sensor_transform(stamp)
            if transform is None:
                self.clouds_dropped += 1
                self.get_logger().warning(
                    f"no pose on {cfg.sensor_pose_topic} within {cfg.max_pose_time_diff} s "
                    f"of the cloud stamp {stamp:.3f}: cloud dropped"
                )
                return None
        elif frame_id and frame_id != cfg.frame_id and not self._warned_frame:
            self._warned_frame = True
            self.get_logger().warning(
                f"clouds arrive in frame {frame_id!r}, fused as frame {cfg.frame_id!r} "
                "(no tf2 here): publish them in the map frame or set sensor_pose_topic"
            )
        try:
            cloud = ingest_cloud(
                arr,
                palette=self.palette or self.model.vocabulary,
                layout=cfg.layout,
                label_field=cfg.label_field or None,
            )
        except ValueError as exc:
            self.clouds_rejected += 1
            self.get_logger().error(f"cloud not fused: {exc}")
            return None
        if transform is not None and len(cloud):
            p = cloud.points.astype(np.float64) @ transform[:3, :3].T + transform[:3, 3]
            cloud.points = p.astype(np.float32)
        return cloud

    def fuse_arrays(self, items) -> int:
        """Fuse converted clouds ``[(array, stamp, frame_id), ...]`` as one batch (worker
        thread; the batch takes the latest stamp). Returns points fused."""
        from ssomotion_ros.sso.ingest import SemanticCloud

        clouds = []
        for arr, stamp, frame_id in items:
            c = self._to_map_cloud(arr, stamp, frame_id)
            if c is not None:
                clouds.append((c, stamp))
        if not clouds:
            return 0
        stamp = max(st for _, st in clouds)
        total = 0
        # clouds with and without colour are fused separately (mean colour weights)
        for with_rgb in (True, False):
            part = [c for c, _ in clouds if (c.rgb is not None) == with_rgb]
            if not part:
                continue
            merged = SemanticCloud(
                points=np.concatenate([c.points for c in part]),
                labels=np.concatenate([c.labels for c in part]),
                instance=np.concatenate([c.instance for c in part]),
                rgb=np.concatenate([c.rgb for c in part]) if with_rgb else None,
                layout=part[0].layout,
            )
            try:
                total += self.model.fuse(merged, stamp=stamp)
            except ValueError as exc:
                self.clouds_rejected += len(part)
                self.get_logger().error(f"clouds not fused: {exc}")
                continue
            self.clouds_fused += len(part)
        return total

    def publish_map(self, force: bool = False) -> bool:
        """Publish occupancy and instances if the map changed (or ``force``)."""
        version = self.model.version
        if not force and version == self._published_version:
            return False
        self._published_version = version
        stamp = self.get_clock().now().to_msg()
        centers, labels, rgb, inst = self.model.occupied_voxels()
        arr = occupancy_array(
            centers, labels, rgb, inst, self.model.vocabulary, self.config.occupancy_color
        )
        self.occ_pub.publish(array_to_pointcloud2(arr, self.config.frame_id, stamp))
        instances = self.model.instances() if len(centers) else []
        self.inst_pub.publish(
            instance_markers(instances, self.model.vocabulary, self.config.frame_id, stamp)
        )
        return True

    # -- services ----------------------------------------------------------------------
    def _on_save(self, request, response):
        try:
            path = self.model.save(self.config.map_path)
            response.success, response.message = True, f"saved {path}"
        except (OSError, ValueError) as exc:
            response.success, response.message = False, f"save failed: {exc}"
        return response

    def _on_load(self, request, response):
        try:
            self.model.load(self.config.map_path)
            response.success, response.message = True, f"loaded {self.config.map_path}"
        except (OSError, ValueError) as exc:
            response.success, response.message = False, f"load failed (map kept): {exc}"
        return response

    def destroy_node(self) -> None:
        self._stop.set()
        if self._worker is not None:
            with self._cv:
                self._cv.notify_all()
            if self._worker.is_alive():
                self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args=None) -> int:
    """Run this node alone (``ros2 run ssomotion_ros mapper_node``)."""
    from ssomotion_ros.ros.bringup import run_nodes

    return run_nodes([MapperNode], args=args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
