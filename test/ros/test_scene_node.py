"""Scene node over real DDS: in-process with a subscriber, and alone in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2

from ssomotion_ros.ros.pointcloud import pointcloud2_to_array
from ssomotion_ros.ros.scene_node import SceneNode, _quat_from_matrix
from ssomotion_ros.scenes.labels import DEFAULT_LABELS_CSV, default_labels
from ssomotion_ros.sso.ingest import ingest_cloud
from ssomotion_ros.sso.vocabulary import Vocabulary

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _params(**kw):
    return [Parameter(k, value=v) for k, v in kw.items()]


def test_quaternion_reference():
    from scipy.spatial.transform import Rotation

    for q in Rotation.random(5, random_state=1).as_quat():
        R = Rotation.from_quat(q).as_matrix()
        got = np.array(_quat_from_matrix(R))
        assert np.allclose(got, q, atol=1e-9) or np.allclose(got, -q, atol=1e-9)


def test_scene_node_publishes_depth_clouds(ros_node):
    n = ros_node("ssomotion_scene_test")
    clouds: list[PointCloud2] = []
    poses: list[PoseStamped] = []
    n.node.create_subscription(PointCloud2, "/test_cloud", clouds.append, RELIABLE)
    n.node.create_subscription(PoseStamped, "/ssomotion/sensor_pose", poses.append, RELIABLE)
    node = SceneNode(
        context=n.context,
        parameter_overrides=_params(
            prompt="a bedroom with a bed and a chair", topic="/test_cloud", rate=10.0,
            depth_width=64, depth_height=48, seed=3, num_poses=4,
        ),
    )  # fmt: skip
    n.executor.add_node(node)
    try:
        n.wait_for(lambda: len(clouds) >= 3 and len(poses) >= 3, timeout=30, what="3 clouds")
    finally:
        n.executor.remove_node(node)
        node.destroy_node()
    msg = clouds[0]
    assert msg.header.frame_id == "map" and (msg.height, msg.width) == (48, 64)
    arr = pointcloud2_to_array(msg)
    assert arr.shape == (48, 64)
    assert {"x", "y", "z", "label", "instance", "rgb"} <= set(arr.dtype.names)
    labels = default_labels()
    ok = np.isfinite(arr["x"])
    assert ok.mean() > 0.5
    assert set(np.unique(arr["label"][ok]).tolist()) <= set(labels.ids.tolist())
    assert labels.id_of("floor") in arr["label"][ok]
    cloud = ingest_cloud(arr)
    assert cloud.layout == "label:label" and len(cloud) == int(ok.sum())
    assert abs(poses[0].pose.position.z - 1.2) < 1e-6  # camera mount height


def test_scene_node_alone_lidar_rgb_layout(ros_node, tmp_path):
    """The node's own executable (run_nodes) in a subprocess, palette layout."""
    n = ros_node("ssomotion_scene_test2")
    clouds: list[PointCloud2] = []
    n.node.create_subscription(PointCloud2, "/scan_rgb", clouds.append, RELIABLE)
    log = open(tmp_path / "node.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssomotion_ros.ros.scene_node", "--ros-args",
         "-p", "prompt:=a room with a bench and a plant", "-p", "sensor:=lidar",
         "-p", "layout:=rgb", "-p", "topic:=/scan_rgb", "-p", "lidar_rings:=8",
         "-p", "rate:=5.0"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    try:
        n.wait_for(lambda: len(clouds) >= 2, timeout=60, what="2 lidar clouds")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    arr = pointcloud2_to_array(clouds[0])
    assert arr.ndim == 1 and arr.dtype.names == ("x", "y", "z", "rgb", "ring")
    voc = Vocabulary.from_csv(DEFAULT_LABELS_CSV)
    cloud = ingest_cloud(arr, palette=voc, layout="palette")
    names = {voc.names[list(voc.ids).index(i)] for i in np.unique(cloud.labels) if i >= 0}
    assert {"floor", "wall"} <= names
    assert (cloud.labels >= 0).all()
    assert proc.returncode in (0, -15), (tmp_path / "node.log").read_text()


def test_scene_node_bad_prompt_fails_at_startup(tmp_path):
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "ssomotion_ros.ros.scene_node", "--ros-args",
         "-p", "prompt:=a room with a dragon"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "unknown word 'dragon'" in proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 60
