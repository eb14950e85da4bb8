"""``ssomotion say``: publish one instruction over DDS and (optionally) print its statuses.

Our ``ros2 topic pub`` for machines without the ROS CLI. It waits for a subscriber
(with a timeout) before publishing, and with ``wait`` listens on the status topic for
replies carrying its request id until a final state (REJECTED, SUCCEEDED, FAILED,
CANCELLED) or the timeout.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from ssomotion_ros.msg import Instruction, MotionStatus

STATE_NAMES = {
    MotionStatus.ACCEPTED: "ACCEPTED",
    MotionStatus.REJECTED: "REJECTED",
    MotionStatus.PLANNING: "PLANNING",
    MotionStatus.EXECUTING: "EXECUTING",
    MotionStatus.SUCCEEDED: "SUCCEEDED",
    MotionStatus.FAILED: "FAILED",
    MotionStatus.CANCELLED: "CANCELLED",
}
FINAL_STATES = {
    MotionStatus.REJECTED,
    MotionStatus.SUCCEEDED,
    MotionStatus.FAILED,
    MotionStatus.CANCELLED,
}


@dataclass
class SayResult:
    """What happened to one ``say``."""

    request_id: str
    delivered: bool
    statuses: list
    timed_out: bool = False

    @property
    def final_state(self) -> int | None:
        for s in reversed(self.statuses):
            if s.state in FINAL_STATES:
                return s.state
        return None


def _same_text(status_text: str, sent: str) -> bool:
    """True if a status's text is the text we sent (the node shortens very long texts)."""
    if status_text == sent:
        return True
    return status_text.endswith("...") and sent.startswith(status_text[:-3])


def format_status(s: MotionStatus) -> str:
    parts = [f"[{s.request_id}] {s.agent_id}: {STATE_NAMES.get(s.state, s.state)}"]
    if s.goal:
        parts.append(f"goal: {s.goal}")
    if s.reason:
        parts.append(f"reason: {s.reason}")
    return "  ".join(parts)


def say(
    text: str,
    agent: str = "",
    wait: bool = False,
    timeout: float = 10.0,
    discovery_timeout: float = 10.0,
    use_string: bool = False,
    instruction_topic: str = "/ssomotion/instruction",
    instruction_msg_topic: str = "/ssomotion/instruction_msg",
    status_topic: str = "/ssomotion/status",
    on_status=None,
) -> SayResult:
    """Publish ``text`` and collect statuses. Initialises and shuts down rclpy itself
    when it is not running yet."""
    own_context = not rclpy.ok()
    if own_context:
        rclpy.init()
    node = rclpy.create_node(f"ssomotion_say_{uuid.uuid4().hex[:8]}")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    request_id = f"say-{uuid.uuid4().hex[:12]}"
    statuses: list = []
    try:
        qos = QoSProfile(depth=64, reliability=ReliabilityPolicy.RELIABLE)

        body = text.strip()
        if use_string and agent:
            body = text.strip()
        elif use_string:
            from ssomotion_ros.instructions import split_addressee

            body = split_addressee(text)[1]
        string_ids: set[str] = set()

        def on_msg(msg: MotionStatus) -> None:
            if (
                use_string
                and not string_ids
                and (_same_text(msg.text, body) or _same_text(msg.text, text))
            ):
                # A String carries no request id: adopt the node's id for our text.
                string_ids.add(msg.request_id)
            if msg.request_id == request_id or msg.request_id in string_ids:
                statuses.append(msg)
                if on_status:
                    on_status(msg)

        if wait:
            node.create_subscription(MotionStatus, status_topic, on_msg, qos)
        if use_string:
            pub = node.create_publisher(String, instruction_topic, qos)
            msg = String(data=f"{agent}: {text}" if agent else text)
        else:
            pub = node.create_publisher(Instruction, instruction_msg_topic, qos)
            msg = Instruction(agent_id=agent, request_id=request_id, text=text)
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.header.frame_id = "map"
        deadline = time.monotonic() + discovery_timeout
        while time.monotonic() < deadline:
            ready = pub.get_subscription_count() > 0
            if wait:
                ready = ready and node.count_publishers(status_topic) > 0
            if ready:
                break
            executor.spin_once(timeout_sec=0.05)
        else:
            return SayResult(request_id, False, statuses, timed_out=True)
        pub.publish(msg)
        if not wait:
            # Give the reliable writer a moment to hand the sample over before we leave.
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            return SayResult(request_id, True, statuses)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if statuses and statuses[-1].state in FINAL_STATES:
                return SayResult(request_id, True, statuses)
        return SayResult(request_id, True, statuses, timed_out=True)
    finally:
        executor.shutdown()
        node.destroy_node()
        if own_context and rclpy.ok():
            rclpy.shutdown()
