"""Retarget node over real DDS: HumanMotion windows in, JointState per frame out."""

from __future__ import annotations

import array

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from ssomotion_ros.body.skeleton import JOINT_NAMES, forward_kinematics_np
from ssomotion_ros.msg import HumanMotion
from ssomotion_ros.retarget.avatar import write_avatar_urdf
from ssomotion_ros.retarget.urdf import load_urdf
from ssomotion_ros.ros.retarget_node import RetargetNode, RetargetNodeConfig

RELIABLE = QoSProfile(depth=300, reliability=ReliabilityPolicy.RELIABLE)


def _window(agent: str, t: int = 8) -> HumanMotion:
    p = np.zeros((t, 69), np.float32)
    p[:, 3 + 3 * (JOINT_NAMES.index("left_elbow") - 1) + 1] = np.linspace(0, -0.8, t)
    p[:, 66] = np.linspace(0.0, 0.2, t)
    msg = HumanMotion()
    msg.agent_id = agent
    msg.request_id = "r1"
    msg.action = "walk"
    msg.fps = 30.0
    msg.num_frames = t
    msg.joint_names = list(JOINT_NAMES)
    msg.smplx_params = array.array("f", p.tobytes())
    msg.joint_positions = array.array("f", forward_kinematics_np(p).astype(np.float32).tobytes())
    return msg


def test_config_validation():
    with pytest.raises(ValueError, match="iterations"):
        RetargetNodeConfig(iterations=0)


def test_retarget_node_publishes_joint_states(ros_node, tmp_path):
    urdf = write_avatar_urdf(tmp_path / "avatar.urdf")
    robot = load_urdf(urdf)
    n = ros_node("ssomotion_test_retarget_client")
    node = RetargetNode(
        context=n.context,
        parameter_overrides=[
            Parameter("urdf_path", value=str(urdf)),
            Parameter("agent_id", value="alice"),
            Parameter("iterations", value=15),
            Parameter("device", value="cpu"),
        ],
    )
    n.executor.add_node(node)
    try:
        got: list[JointState] = []
        n.node.create_subscription(
            JointState, "/ssomotion/retarget/alice/joint_states", got.append, RELIABLE
        )
        pub = n.node.create_publisher(HumanMotion, "/ssomotion/motion", RELIABLE)
        n.wait_for(lambda: pub.get_subscription_count() > 0, what="retarget node discovery")
        pub.publish(_window("bob"))  # not followed: ignored
        pub.publish(_window("alice"))
        n.wait_for(lambda: len(got) >= 8, timeout=60.0, what="8 joint states")
        assert got[0].name == robot.dof_names
        q = np.array([m.position for m in got[:8]])
        assert q.shape == (8, robot.num_dofs)
        assert np.all(q >= robot.lower - 1e-9) and np.all(q <= robot.upper + 1e-9)
        # the left elbow bends over the window (native y rotation -> map z axis joint)
        k = robot.dof_names.index("left_elbow_z")
        assert abs(q[-1, k] - q[0, k]) > 0.3
        assert node.count_publishers("/ssomotion/retarget/bob/joint_states") == 0
    finally:
        n.executor.remove_node(node)
        node.destroy_node()
