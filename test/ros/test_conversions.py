"""Message conversions of the motion node, built by hand (no rclpy.init)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("ssomotion_ros.msg", reason="messages not built: run ./setup.sh")

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from ssomotion_ros.body.skeleton import JOINT_NAMES, forward_kinematics_np  # noqa: E402
from ssomotion_ros.ros import conversions as conv  # noqa: E402
from ssomotion_ros.synthesis.agents import PlaybackFrame, Status, StatusEvent  # noqa: E402
from ssomotion_ros.synthesis.types import MotionWindow  # noqa: E402

STAMP = Time(sec=12, nanosec=500)


def _window(t=5):
    rng = np.random.default_rng(0)
    p = (rng.standard_normal((t, 69)) * 0.2).astype(np.float32)
    roots = np.zeros((t, 7))
    roots[:, :3] = rng.standard_normal((t, 3))
    roots[:, 6] = 1.0
    return MotionWindow(
        "alice", "r-1", ["walk"] * 3 + ["sit"] * (t - 3), 30, p, forward_kinematics_np(p), roots
    )


def test_human_motion_round_trip():
    w = _window()
    msg = conv.human_motion_msg(w, STAMP, "map")
    assert (msg.agent_id, msg.request_id, msg.action) == ("alice", "r-1", "walk")
    assert (msg.start_frame, msg.num_frames, msg.fps) == (30, 5, 30.0)
    assert list(msg.joint_names) == list(JOINT_NAMES) and msg.header.frame_id == "map"
    back = conv.window_from_msg(msg)
    np.testing.assert_array_equal(back["params"], w.params)
    np.testing.assert_array_equal(back["joints"], w.joints)
    np.testing.assert_allclose(back["root_poses"], w.root_poses, atol=1e-6)
    # a window of 30 frames is ~32 kB on the wire
    assert len(serialize_message(msg)) < 2000 * 5
    msg.num_frames = 6
    with pytest.raises(ValueError, match="num_frames=6"):
        conv.window_from_msg(msg)


def test_path():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    msg = conv.path_msg(xy, STAMP, "map")
    assert len(msg.poses) == 3 and msg.header.frame_id == "map"
    np.testing.assert_allclose(conv.path_to_array(msg), xy)
    q = msg.poses[1].pose.orientation  # faces the next point: +y, yaw 90 deg
    assert 2 * math.atan2(q.z, q.w) == pytest.approx(math.pi / 2)
    assert len(conv.path_msg(np.zeros((0, 2)), STAMP).poses) == 0


def test_joint_states_rep155_names_and_angles():
    names = conv.joint_state_names("alice")
    assert len(names) == 63 and len(set(names)) == 63
    assert names[:3] == ["l_y_hip_alice", "l_p_hip_alice", "l_r_hip_alice"]
    assert "y_spine1_alice" in names and "r_r_wrist_alice" in names
    # left knee bent about the body's left axis (SMPL-X native x = map y): pure pitch
    p = np.zeros(69)
    knee = JOINT_NAMES.index("left_knee")
    p[3 * knee : 3 * knee + 3] = [0.5, 0.0, 0.0]
    ang = conv.joint_angles(p).reshape(21, 3)
    np.testing.assert_allclose(ang[knee - 1], [0.0, 0.5, 0.0], atol=1e-9)
    assert np.abs(np.delete(ang, knee - 1, axis=0)).max() < 1e-12
    msg = conv.joint_state_msg(p, "alice", STAMP)
    assert list(msg.name) == names and msg.position[names.index("l_p_knee_alice")] == 0.5


def _frame(agent="alice"):
    p = np.zeros(69, np.float32)
    p[66:68] = [1.0, 2.0]
    j = forward_kinematics_np(p)
    return PlaybackFrame(
        agent, p, j, np.array([0.5, 0.0, 0.0], np.float32), "walk", "r-1", "walk to the desk", 3
    )


def test_people():
    msg = conv.people_msg({"bob": _frame("bob"), "alice": _frame()}, STAMP, "map", {"bob": 0.1})
    assert [p.name for p in msg.people] == ["alice", "bob"]
    a, b = msg.people
    j0 = _frame().joints[0]
    assert (a.position.x, a.position.y, a.position.z) == pytest.approx((j0[0], j0[1], 0.0))
    assert b.position.z == pytest.approx(0.1) and a.velocity.x == pytest.approx(0.5)
    assert a.reliability == 1.0
    assert dict(zip(a.tagnames, a.tags))["action"] == "walk"


def test_body_markers_mesh_skeleton_label():
    from ssomotion_ros.viz.body_mesh import shared_body_mesh

    f = _frame()
    mesh = shared_body_mesh(400)
    arr = conv.body_marker_array(f, 1, STAMP, "map", mesh, "mesh")
    body, label = arr.markers
    assert body.type == Marker.TRIANGLE_LIST and len(body.points) == 3 * len(mesh.faces)
    assert body.ns == "body" and body.id == 1
    pts = np.array([[q.x, q.y, q.z] for q in body.points])
    # the mesh surrounds the pelvis at (1, 2) and stands on the floor
    assert np.allclose(pts[:, :2].mean(0), f.joints[0, :2], atol=0.15)
    assert pts[:, 2].min() == pytest.approx(0.0, abs=0.06) and pts[:, 2].max() > 1.5
    size = len(serialize_message(arr))
    assert size < 40_000, size  # ~29 kB at 400 faces: fine for DDS at 30 Hz
    assert label.type == Marker.TEXT_VIEW_FACING and label.text == "alice: walk to the desk"
    assert label.pose.position.z > f.joints[15, 2]
    skel = conv.body_marker_array(f, 0, STAMP, "map", None, "skeleton").markers
    assert [m.type for m in skel] == [Marker.LINE_LIST, Marker.SPHERE_LIST, Marker.TEXT_VIEW_FACING]
    assert len(skel[0].points) == 42 and len(skel[1].points) == 22
    with pytest.raises(ValueError, match="style"):
        conv.body_marker_array(f, 0, STAMP, "map", None, "wire")


def test_status():
    ev = StatusEvent("r-1", "alice", Status.FAILED, "no path", "walk to (1, 2)", "walk")
    msg = conv.status_msg(ev, STAMP, "map")
    assert (msg.state, msg.reason, msg.goal, msg.text) == (5, "no path", "walk to (1, 2)", "walk")
    from ssomotion_ros.msg import MotionStatus

    assert [int(s) for s in Status] == [
        MotionStatus.ACCEPTED,
        MotionStatus.REJECTED,
        MotionStatus.PLANNING,
        MotionStatus.EXECUTING,
        MotionStatus.SUCCEEDED,
        MotionStatus.FAILED,
        MotionStatus.CANCELLED,
    ]


def test_pelvis_transform():
    f = _frame()
    t = conv.pelvis_transform(f, STAMP, "map")
    assert t.child_frame_id == "alice/pelvis" and t.header.frame_id == "map"
    assert (t.transform.translation.x, t.transform.translation.y) == pytest.approx(
        (float(f.joints[0, 0]), float(f.joints[0, 1]))
    )
    assert t.transform.rotation.w == pytest.approx(1.0)
