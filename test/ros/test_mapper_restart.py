"""Killing and restarting the mapper mid-stream (issue 8) over real DDS.

Process A: scene node (lidar survey of a generated room) + mapper. Process B: the motion
node alone, fusing A's clouds with its embedded mapper (``cloud_topic``). A is SIGKILLed
mid-stream after its map was saved through ``~/save_map``; B keeps answering
instructions with the map it fused; A restarts and B's map keeps growing.
"""

from __future__ import annotations

import signal

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ssomotion_ros.ros.pointcloud import pointcloud2_to_array
from ssomotion_ros.sso.scene import SceneModel

PROMPT = "a living room with a sofa, a table, a chair and a bookshelf"

GRAPH_A = """
nodes:
  - name: ssomotion_scene
    executable: scene_node
    plugin: ssomotion_ros.ros.scene_node:SceneNode
    parameters:
      prompt: "{prompt}"
      seed: 0
      sensor: lidar
      lidar_ring_field: false
      layout: label
      topic: /semantic_pointcloud
      rate: 4.0
      num_poses: 12
  - name: ssomotion_mapper
    executable: mapper_node
    plugin: ssomotion_ros.ros.mapper_node:MapperNode
    parameters:
      cloud_topic: /semantic_pointcloud
      vocabulary_path: ssomotion_indoor
      map_path: "{map_path}"
      publish_rate: 0.5
"""

GRAPH_B = """
nodes:
  - name: ssomotion_motion
    executable: motion_node
    plugin: ssomotion_ros.ros.motion_node:MotionNode
    parameters:
      cloud_topic: /semantic_pointcloud
      mapper.vocabulary_path: ssomotion_indoor
      mapper.occupancy_topic: /motion_map/occupancy
      mapper.instances_topic: /motion_map/instances
      mapper.publish_rate: 1.0
      body_style: skeleton
"""

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def _say(ssomotion, text: str, agent: str):
    proc = ssomotion("say", text, "--agent", agent, "--wait", "--timeout", "60", timeout=90)
    return proc, proc.stdout + proc.stderr


def test_motion_node_survives_mapper_kill_and_restart(start_bringup, ssomotion, ros_node, tmp_path):
    map_path = tmp_path / "map_a.npz"
    graph_a = tmp_path / "a.yaml"
    graph_a.write_text(GRAPH_A.format(prompt=PROMPT, map_path=map_path))
    graph_b = tmp_path / "b.yaml"
    graph_b.write_text(GRAPH_B)

    b = start_bringup("--graph", str(graph_b), ready="motion node ready")
    assert "fusing /semantic_pointcloud with the embedded mapper" in b.log()
    a = start_bringup("--graph", str(graph_a))

    # B's own map, as its embedded mapper publishes it (occupied voxel counts)
    n = ros_node("ssomotion_test_restart")
    sizes: list[int] = []
    n.node.create_subscription(
        PointCloud2,
        "/motion_map/occupancy",
        lambda m: sizes.append(len(pointcloud2_to_array(m))),
        LATCHED,
    )
    names_b: set[str] = set()
    n.node.create_subscription(
        MarkerArray,
        "/motion_map/instances",
        lambda m: names_b.update(k.text.split(" #")[0] for k in m.markers if k.text),
        LATCHED,
    )
    goals = {"bookshelf", "sofa", "chair"}
    n.wait_for(
        lambda: sizes and sizes[-1] > 1000 and goals <= names_b,
        timeout=40,
        what="B's map (voxels and the goal objects) from A's clouds",
    )

    proc, out = _say(ssomotion, "walk to the bookshelf", "alice")
    assert proc.returncode == 0 and "final: SUCCEEDED" in out, out

    # save A's map through its service, then kill A mid-stream
    client = n.node.create_client(Trigger, "/ssomotion_mapper/save_map")
    assert client.wait_for_service(timeout_sec=15), "no /ssomotion_mapper/save_map"
    future = client.call_async(Trigger.Request())
    n.wait_for(future.done, timeout=30, what="the save_map reply")
    assert future.result().success, future.result().message
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    saved = SceneModel.from_file(map_path)
    assert not saved.is_empty() and len(saved.map) > 1000
    names = {i.name for i in saved.instances()}
    assert "bookshelf" in names, names

    # B keeps answering on the map it fused
    before_kill = max(sizes)
    proc, out = _say(ssomotion, "walk to the sofa", "bob")
    assert "bob: ACCEPTED" in out and proc.returncode == 0, out
    assert b.proc.poll() is None

    # A restarts; B keeps its map and goes on fusing the new clouds
    n_msgs = len(sizes)
    before_restart = max(sizes)
    assert before_restart >= before_kill
    start_bringup("--graph", str(graph_a))
    # fusion resumes on the new A's clouds: the map grows past its size before the restart
    n.wait_for(
        lambda: len(sizes) > n_msgs and sizes[-1] > before_restart,
        timeout=30,
        what="B's map growing after restart",
    )
    assert min(sizes[n_msgs:]) >= 0.95 * before_restart  # kept while A was gone, not reset
    proc, out = _say(ssomotion, "walk to the chair", "alice")
    assert proc.returncode == 0 and "final: SUCCEEDED" in out, out
    assert b.stop(timeout=40) == 0


def test_embedded_mapper_only_when_no_scene_is_shared():
    import rclpy
    from rclpy.parameter import Parameter

    from ssomotion_ros.ros.mapper_node import MapperNode
    from ssomotion_ros.ros.motion_node import MotionNode
    from ssomotion_ros.ros.shared import SharedState

    context = rclpy.Context()
    rclpy.init(context=context)
    params = [
        Parameter("cloud_topic", value="/my_cloud"),
        Parameter("mapper.voxel_size", value=0.05),
        Parameter("mapper.publish_rate", value=0),  # an int for a float parameter
    ]
    try:
        shared = SharedState()
        node = MotionNode("motion_alone", shared, context=context, parameter_overrides=params)
        try:
            assert isinstance(node.mapper, MapperNode)
            assert node.mapper.get_name() == "motion_alone_mapper"
            assert node.mapper.config.cloud_topic == "/my_cloud"
            assert node.mapper.config.voxel_size == 0.05
            assert node.mapper.config.publish_rate == 0.0
            assert shared.scene_model is node.mapper.model
        finally:
            node.destroy_node()
        # a scene already shared (the process's mapper) or generated: no second mapper
        owner = SharedState(scene_model=shared.scene_model)
        node = MotionNode("motion_composed", owner, context=context, parameter_overrides=params)
        try:
            assert node.mapper is None and owner.scene_model is shared.scene_model
        finally:
            node.destroy_node()
        with_prompt = [*params, Parameter("scene_file", value="/nonexistent.npz")]
        node = MotionNode(
            "motion_file", SharedState(), context=context, parameter_overrides=with_prompt
        )
        try:
            assert node.mapper is None
        finally:
            node.destroy_node()
    finally:
        context.try_shutdown()
