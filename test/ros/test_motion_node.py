"""The motion node over real DDS: a generated room, instructions via ``ssomotion say`` and
topics, statuses, HumanMotion windows, people, paths and body markers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from nav_msgs.msg import Path as PathMsg
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import Bringup
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from ssomotion_ros.msg import HumanMotion, Instruction, MotionStatus, People

pytestmark = pytest.mark.dds

RELIABLE = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
PROMPT = "a bedroom with a bed, a desk and a chair"
FINAL = {MotionStatus.REJECTED, MotionStatus.SUCCEEDED, MotionStatus.FAILED, MotionStatus.CANCELLED}


def _motion_graph(tmp_path) -> Path:
    """A graph holding only the motion node, with its own generated room."""
    spec = {
        "nodes": [
            {
                "name": "ssomotion_motion",
                "executable": "motion_node",
                "plugin": "ssomotion_ros.ros.motion_node:MotionNode",
                "parameters": {"scene_prompt": PROMPT, "body_style": "both"},
            }
        ]
    }
    graph = tmp_path / "graph.yaml"
    graph.write_text(yaml.safe_dump(spec))
    return graph


@pytest.fixture(scope="module")
def motion_node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("motion_node")
    # shared by the tests of this module: start-up loads the room, clips and text encoder
    p = Bringup("bringup", "--graph", str(_motion_graph(tmp)), log_path=tmp / "motion.log")
    try:
        p.wait_for_log("motion node ready", timeout=120.0)
        yield p
    finally:
        rc = p.stop(timeout=40.0)
    assert rc == 0, p.log()


def test_say_walk_streams_motion_and_people(motion_node, ros_node, ssomotion):
    b = motion_node
    n = ros_node("motion_test_client")
    windows: list[HumanMotion] = []
    people: list[People] = []
    markers: list[MarkerArray] = []
    n.node.create_subscription(HumanMotion, "/ssomotion/motion", windows.append, RELIABLE)
    n.node.create_subscription(People, "/ssomotion/people", people.append, 10)
    n.node.create_subscription(MarkerArray, "/ssomotion/humans/markers", markers.append, 10)
    planned: list[PathMsg] = []
    executed: list[PathMsg] = []
    joints: list[JointState] = []
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    pre = "/ssomotion/humans/alice"
    n.node.create_subscription(PathMsg, f"{pre}/planned_path", planned.append, latched)
    n.node.create_subscription(PathMsg, f"{pre}/executed_path", executed.append, 10)
    n.node.create_subscription(JointState, f"{pre}/joint_states", joints.append, 10)
    n.wait_for(lambda: n.node.count_publishers("/ssomotion/motion") > 0, what="motion publisher")
    t0 = time.monotonic()
    proc = ssomotion("say", "walk to the desk", "--agent", "alice", "--wait", "--timeout", "60")
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr + b.log()
    states = [line.split(": ")[1].split()[0] for line in out.splitlines() if "] alice: " in line]
    assert states == ["ACCEPTED", "PLANNING", "EXECUTING", "SUCCEEDED"], out
    assert "goal: walk to desk #" in out and "final: SUCCEEDED" in out
    took = time.monotonic() - t0
    mine = [w for w in windows if w.agent_id == "alice"]
    assert len(mine) >= 2
    assert [w.start_frame for w in mine] == sorted(w.start_frame for w in mine)
    assert mine[0].start_frame == 0 and mine[0].num_frames == 30
    assert len(mine[0].smplx_params) == 30 * 69 and len(mine[0].joint_positions) == 30 * 22 * 3
    # played in real time: the request took about as long as its motion
    frames = mine[-1].start_frame + mine[-1].num_frames
    assert took > 0.8 * frames / 30.0
    n.wait_for(lambda: any(p.people for p in people), what="people")
    alice = [p for msg in people for p in msg.people if p.name == "alice"]
    assert alice and alice[-1].reliability == 1.0
    last = mine[-1]
    end = last.root_poses[-1].position
    assert abs(alice[-1].position.x - end.x) < 0.05 and abs(alice[-1].position.y - end.y) < 0.05
    n.wait_for(lambda: planned and executed and joints, what="paths and joint states")
    goal_end = planned[-1].poses[-1].pose.position
    assert abs(goal_end.x - end.x) < 0.2 and abs(goal_end.y - end.y) < 0.2
    assert len(executed[-1].poses) > 3 and len(joints[-1].name) == 63
    assert joints[-1].name[0] == "l_y_hip_alice"
    kinds = {(m.ns, m.type) for arr in markers for m in arr.markers}
    assert ("body", 11) in kinds and ("skeleton", 5) in kinds and ("label", 9) in kinds


def test_bad_input_and_flood_never_crash(motion_node, ros_node):
    b = motion_node
    n = ros_node("motion_flood_client")
    got: list[MotionStatus] = []
    n.node.create_subscription(MotionStatus, "/ssomotion/status", got.append, RELIABLE)
    pub_str = n.node.create_publisher(String, "/ssomotion/instruction", RELIABLE)
    pub_msg = n.node.create_publisher(Instruction, "/ssomotion/instruction_msg", RELIABLE)
    n.wait_for(
        lambda: (
            pub_str.get_subscription_count() > 0
            and pub_msg.get_subscription_count() > 0
            and n.node.count_publishers("/ssomotion/status") > 0
        ),
        what="discovery of the motion node",
    )
    texts = [
        "",
        "x" * 600,  # over max_text_length (500)
        "fly to the moon",
        "sit on the piano",
        "9bad name: walk",
        "carol: turn left",
        "\x00\x01 walk \udcff".encode("utf-8", "replace").decode(),
        "dave: stop",
        "walk to the desk, then sit on the banana",
        "erin: walk 40 metres forward",
    ]
    for k in range(200):
        pub_msg.publish(Instruction(agent_id="", request_id=f"flood-{k}", text=texts[k % 10]))
    pub_str.publish(String(data="zed: turn right"))
    n.wait_for(
        lambda: {s.request_id for s in got} >= {f"flood-{k}" for k in range(200)},
        timeout=60,
        what="a status for each of the 200 instructions",
    )
    by_id: dict[str, list[MotionStatus]] = {}
    for s in got:
        by_id.setdefault(s.request_id, []).append(s)
    first = {rid: ss[0] for rid, ss in by_id.items()}
    assert first["flood-0"].state == MotionStatus.REJECTED and "empty" in first["flood-0"].reason
    assert "too long" in first["flood-1"].reason
    assert "didn't understand" in first["flood-2"].reason
    assert "piano" in first["flood-3"].reason
    assert "not valid" in first["flood-4"].reason or first["flood-4"].state == 1
    assert first["flood-5"].state == MotionStatus.ACCEPTED  # carol: turn left
    # unreachable: accepted, then FAILED with the planner's reason
    n.wait_for(
        lambda: any(s.request_id == "flood-9" and s.state == MotionStatus.FAILED for s in got),
        what="FAILED for the unreachable goal",
    )
    failed = next(s for s in got if s.request_id == "flood-9" and s.state == MotionStatus.FAILED)
    assert "off the map" in failed.reason
    # still alive and answering
    n.wait_for(lambda: any(s.text == "turn right" for s in got), what="the String instruction")
    assert b.proc.poll() is None  # the fixture then checks a clean exit with agents busy
