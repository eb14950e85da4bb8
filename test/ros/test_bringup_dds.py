"""End to end over real DDS: bringup in a subprocess, instructions in, statuses out."""

from __future__ import annotations

from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from ssomotion_ros.msg import Instruction, MotionStatus

RELIABLE = QoSProfile(depth=300, reliability=ReliabilityPolicy.RELIABLE)


INSTRUCTION_ONLY_GRAPH = """
nodes:
  - name: ssomotion_instruction
    executable: instruction_node
    plugin: ssomotion_ros.ros.instruction_node:InstructionNode
"""


def test_say_wait_gets_rejected_no_scene(start_bringup, ssomotion, tmp_path):
    graph = tmp_path / "graph.yaml"
    graph.write_text(INSTRUCTION_ONLY_GRAPH)
    b = start_bringup("--graph", str(graph))
    proc = ssomotion("say", "walk to the sofa", "--agent", "alice", "--wait", "--timeout", "20")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # 1 = final state REJECTED
    assert "alice: REJECTED" in proc.stdout
    assert "reason: no scene received yet" in proc.stdout
    assert "final: REJECTED" in proc.stdout
    assert b.stop() == 0  # SIGTERM -> clean shutdown, exit code 0


def test_instruction_msg_and_string_and_bad_input(start_bringup, ros_node, tmp_path):
    graph = tmp_path / "graph.yaml"
    graph.write_text(INSTRUCTION_ONLY_GRAPH)
    start_bringup(
        "--graph", str(graph), "--ros-args", "-p", "ssomotion_instruction:max_text_length:=40"
    )
    n = ros_node("ssomotion_test_client")
    got: list[MotionStatus] = []
    n.node.create_subscription(MotionStatus, "/ssomotion/status", got.append, RELIABLE)
    pub_msg = n.node.create_publisher(Instruction, "/ssomotion/instruction_msg", RELIABLE)
    pub_str = n.node.create_publisher(String, "/ssomotion/instruction", RELIABLE)
    n.wait_for(
        lambda: (
            pub_msg.get_subscription_count() > 0
            and pub_str.get_subscription_count() > 0
            and n.node.count_publishers("/ssomotion/status") > 0
        ),
        what="discovery of the instruction node",
    )
    pub_msg.publish(Instruction(agent_id="bob", request_id="t-1", text="sit on the chair"))
    pub_str.publish(String(data="carol: lie on the bed"))
    pub_str.publish(String(data=""))
    pub_str.publish(String(data="x" * 41))  # over the max_text_length set above
    n.wait_for(lambda: len(got) >= 4, what="4 statuses")
    by_text = {s.text: s for s in got}
    first = next(s for s in got if s.request_id == "t-1")
    assert (first.agent_id, first.state, first.reason) == (
        "bob",
        MotionStatus.REJECTED,
        "no scene received yet",
    )
    carol = by_text["lie on the bed"]
    assert carol.agent_id == "carol" and carol.request_id.startswith("ssomotion_instruction-")
    assert "empty instruction" in by_text[""].reason
    too_long = next(s for s in got if "too long" in s.reason)
    assert "at most 40" in too_long.reason
    assert all(s.state == MotionStatus.REJECTED for s in got)
    assert len({s.request_id for s in got}) == len(got)


def test_say_without_subscriber_times_out(ssomotion):
    proc = ssomotion("say", "walk", "--discovery-timeout", "1")
    assert proc.returncode == 3
    assert "no subscriber" in proc.stderr


def test_bringup_records_a_bag(start_bringup, ssomotion, tmp_path):
    from ssomotion_ros.recording import read_bag

    graph = tmp_path / "graph.yaml"
    graph.write_text(INSTRUCTION_ONLY_GRAPH)
    bag = tmp_path / "bag"
    b = start_bringup("--graph", str(graph), "--record", str(bag))
    proc = ssomotion("say", "walk to the sofa", "--agent", "erin", "--wait", "--timeout", "20")
    assert "erin: REJECTED" in proc.stdout, proc.stdout + proc.stderr
    assert b.stop() == 0
    got = [(t, m) for t, _, _, m in read_bag(bag)]
    assert [m.text for t, m in got if t == "/ssomotion/instruction_msg"] == ["walk to the sofa"]
    statuses = [m for t, m in got if t == "/ssomotion/status"]
    assert statuses and statuses[0].agent_id == "erin"
    again = ssomotion("bringup", "--graph", str(graph), "--record", str(bag))
    assert again.returncode == 2 and "exists already" in again.stdout
