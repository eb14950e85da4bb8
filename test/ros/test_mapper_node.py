"""Mapper node over real DDS: clouds in, occupancy cloud and instance markers out,
save/load services; plus its worker logic on bad clouds (no DDS)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from ssomotion_ros.ros.mapper_node import MapperNode
from ssomotion_ros.ros.pointcloud import array_to_pointcloud2, pointcloud2_to_array
from ssomotion_ros.ros.shared import SharedState
from ssomotion_ros.sso.synthetic import room_cloud, to_structured

RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


class MapperProcess:
    """A MapperNode in its own rclpy context, spun in a background thread."""

    def __init__(self, overrides: dict, shared: SharedState | None = None):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.shared = shared or SharedState()
        try:
            self.node = MapperNode(
                shared=self.shared,
                context=self.context,
                parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
            )
        except Exception:
            self.context.try_shutdown()
            raise
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races end the spin
            pass

    def close(self):
        self.executor.shutdown()
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture
def mapper(tmp_path):
    made = []

    def _make(**overrides):
        m = MapperProcess(overrides)
        made.append(m)
        return m

    yield _make
    for m in made:
        m.close()


def test_cloud_in_occupancy_and_markers_out(mapper, ros_node, tmp_path):
    topic = "/test_mapper/cloud"
    m = mapper(
        cloud_topic=topic,
        occupancy_topic="/test_mapper/occupancy",
        instances_topic="/test_mapper/instances",
        publish_rate=5.0,
        map_path=str(tmp_path / "map.npz"),
        device="cpu",
    )
    assert m.shared.scene_model is m.node.model  # one SceneModel per process, shared
    assert not m.shared.scene_ready()
    n = ros_node("mapper_test_client")
    occ: list[PointCloud2] = []
    marks: list[MarkerArray] = []
    n.node.create_subscription(PointCloud2, "/test_mapper/occupancy", occ.append, RELIABLE)
    n.node.create_subscription(MarkerArray, "/test_mapper/instances", marks.append, RELIABLE)
    pub = n.node.create_publisher(PointCloud2, topic, RELIABLE)
    n.wait_for(
        lambda: (
            pub.get_subscription_count() > 0
            and n.node.count_publishers("/test_mapper/occupancy") > 0
        ),
        what="discovery of the mapper",
    )
    cloud = room_cloud(num_points=60_000, seed=2)
    arr = to_structured(cloud, label_field="semantic_label")
    pub.publish(array_to_pointcloud2(arr, "map"))
    n.wait_for(lambda: any(o.width > 1000 for o in occ), timeout=30, what="occupancy cloud")
    assert m.shared.scene_ready()
    got = pointcloud2_to_array(next(o for o in occ if o.width > 1000))
    assert set(got.dtype.names) >= {"x", "y", "z", "rgb", "label", "instance"}
    labels = set(np.unique(got["label"]).tolist())
    assert {1, 2, 5, 6, 7}.issubset(labels)  # wall, floor, chair, sofa, table
    assert len(got) == len(m.node.model.snapshot())
    n.wait_for(
        lambda: any(any(k.type == Marker.TEXT_VIEW_FACING for k in a.markers) for a in marks),
        timeout=30,
        what="instance markers",
    )
    texts = {k.text for a in marks for k in a.markers if k.type == Marker.TEXT_VIEW_FACING}
    assert any(t.startswith("chair") for t in texts) and any(t.startswith("bed") for t in texts)
    # save, clear, load through the services
    cli_save = n.node.create_client(Trigger, "/ssomotion_mapper/save_map")
    cli_load = n.node.create_client(Trigger, "/ssomotion_mapper/load_map")
    assert cli_save.wait_for_service(timeout_sec=10) and cli_load.wait_for_service(timeout_sec=10)
    res = cli_save.call_async(Trigger.Request())
    n.wait_for(res.done, what="save response")
    assert res.result().success, res.result().message
    assert (tmp_path / "map.npz").is_file()
    before = len(m.node.model.snapshot())
    m.node.model.clear()
    assert m.node.model.is_empty()
    res = cli_load.call_async(Trigger.Request())
    n.wait_for(res.done, what="load response")
    assert res.result().success, res.result().message
    assert len(m.node.model.snapshot()) == before


def test_bad_clouds_are_rejected_and_map_kept(mapper):
    m = mapper(publish_rate=0.0, device="cpu")
    node = m.node
    good = to_structured(room_cloud(num_points=5_000, seed=1))
    assert node.fuse_array(good, 1.0, "map") == len(good)
    n = len(node.model.snapshot())
    no_label = np.zeros(10, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    assert node.fuse_array(no_label, 2.0, "map") == 0
    all_nan = good.copy()
    all_nan["x"] = np.nan
    assert node.fuse_array(all_nan, 3.0, "map") == 0
    assert node.fuse_array(good[:0], 4.0, "odom") == 0  # empty, other frame: warns only
    assert node.clouds_rejected == 1
    assert len(node.model.snapshot()) == n
    # a second mapper in the same process shares the first one's SceneModel
    other = MapperProcess({"publish_rate": 0.0}, shared=m.shared)
    try:
        assert other.node.model is node.model
    finally:
        other.close()


def test_instruction_node_sees_the_fused_scene(ros_node):
    """Mapper and instruction node in one process share the SceneModel: once a cloud is
    fused, instructions are no longer rejected with "no scene received yet"."""
    from std_msgs.msg import String

    from ssomotion_ros.msg import MotionStatus
    from ssomotion_ros.ros.instruction_node import NO_SCENE, InstructionNode

    mp = MapperProcess({"cloud_topic": "/test_share/cloud", "publish_rate": 0.0})
    instr = InstructionNode(
        node_name="test_share_instruction",
        shared=mp.shared,
        context=mp.context,
        parameter_overrides=[
            Parameter("instruction_topic", value="/test_share/instruction"),
            Parameter("status_topic", value="/test_share/status"),
        ],
    )
    mp.executor.add_node(instr)
    try:
        n = ros_node("share_test_client")
        got: list = []
        n.node.create_subscription(MotionStatus, "/test_share/status", got.append, RELIABLE)
        say = n.node.create_publisher(String, "/test_share/instruction", RELIABLE)
        clouds = n.node.create_publisher(PointCloud2, "/test_share/cloud", RELIABLE)
        n.wait_for(
            lambda: (
                say.get_subscription_count() > 0
                and clouds.get_subscription_count() > 0
                and n.node.count_publishers("/test_share/status") > 0
            ),
            what="discovery",
        )
        say.publish(String(data="walk to the sofa"))
        n.wait_for(lambda: len(got) >= 1, what="first status")
        assert got[0].reason == NO_SCENE
        arr = to_structured(room_cloud(num_points=20_000, seed=4))
        clouds.publish(array_to_pointcloud2(arr, "map"))
        n.wait_for(mp.shared.scene_ready, timeout=30, what="fused scene")
        say.publish(String(data="walk to the sofa"))
        n.wait_for(lambda: len(got) >= 2, timeout=60, what="second status")
        assert got[1].reason != NO_SCENE
    finally:
        mp.executor.remove_node(instr)
        instr.destroy_node()
        mp.close()


def test_pose_to_matrix_matches_scipy():
    from geometry_msgs.msg import Pose
    from scipy.spatial.transform import Rotation

    from ssomotion_ros.ros.mapper_node import pose_to_matrix

    q = Rotation.from_euler("xyz", [0.3, -0.5, 1.2]).as_quat()  # x, y, z, w
    p = Pose()
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = q
    p.position.x, p.position.y, p.position.z = 1.0, 2.0, 3.0
    m = pose_to_matrix(p)
    assert np.allclose(m[:3, :3], Rotation.from_quat(q).as_matrix())
    assert np.allclose(m[:3, 3], [1, 2, 3])
    with pytest.raises(ValueError):
        pose_to_matrix(Pose(orientation=type(p.orientation)(x=0.0, y=0.0, z=0.0, w=0.0)))


def test_sensor_frame_clouds_use_the_nearest_pose(mapper):
    from geometry_msgs.msg import PoseStamped

    m = mapper(publish_rate=0.0, device="cpu", sensor_pose_topic="/test_pose/pose")
    node = m.node
    ps = PoseStamped()
    ps.header.stamp.sec = 10
    ps.pose.position.x = 5.0  # sensor 5 m along map x, rotated 90 deg about z
    ps.pose.orientation.z, ps.pose.orientation.w = np.sin(np.pi / 4), np.cos(np.pi / 4)
    node._on_pose(ps)
    arr = np.zeros(1, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u4")])
    arr["x"], arr["label"] = 1.02, 5  # 1 m ahead of the sensor -> map (5, 1)
    assert node.fuse_array(arr, 10.05, "camera") == 1
    c = node.model.snapshot().centers()[0].tolist()
    assert c == pytest.approx([5.02, 1.02, 0.02], abs=0.021)
    assert node.fuse_array(arr, 11.0, "camera") == 0  # no pose within 0.1 s: dropped
    assert len(node.model.snapshot()) == 1


def test_demo_graph_parameters_start(mapper):
    """The values config/demo.yaml uses: a shipped vocabulary by name, layout rgb."""
    m = mapper(vocabulary_path="ssomotion_indoor", layout="rgb", publish_rate=0.0, device="cpu")
    assert m.node.model.vocabulary.id_of("floor") is not None
    with pytest.raises(ValueError, match="layout"):
        MapperProcess({"layout": "weird"})


def test_queued_clouds_fused_as_one_batch(mapper):
    m = mapper(publish_rate=0.0, device="cpu")
    node = m.node
    a = to_structured(room_cloud(num_points=4_000, seed=1))
    b = to_structured(room_cloud(num_points=4_000, seed=2))
    bad = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    v0 = node.model.version
    n = node.fuse_arrays([(a, 1.0, "map"), (bad, 2.0, "map"), (b, 3.0, "map")])
    assert n == len(a) + len(b)
    assert node.model.version == v0 + 1  # one fusion for the batch
    assert node.clouds_fused == 2 and node.clouds_rejected == 1
    assert node.model.map.time == 3.0
