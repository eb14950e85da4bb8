"""Instruction node: takes instructions, assigns request ids, answers with MotionStatus.

Topics (names are parameters):
  sub  /ssomotion/instruction      std_msgs/String          text, optional "name: " prefix
  sub  /ssomotion/instruction_msg  ssomotion_ros/Instruction
  pub  /ssomotion/status           ssomotion_ros/MotionStatus

Callbacks only enqueue; a worker thread validates and answers, so a flood of
instructions never blocks the executor and every instruction gets a status.
"""

from __future__ import annotations

import queue
import sys
import threading

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from ssomotion_ros.instructions import InstructionConfig, Request, RequestIntake
from ssomotion_ros.msg import Instruction, MotionStatus
from ssomotion_ros.ros.params import declare_config
from ssomotion_ros.ros.shared import SharedState

NO_SCENE = "no scene received yet"


class InstructionNode(Node):
    """See the module docstring. ``shared`` is the process's :class:`SharedState`."""

    def __init__(
        self,
        node_name: str = "ssomotion_instruction",
        shared: SharedState | None = None,
        **node_kwargs,
    ):
        super().__init__(node_name, **node_kwargs)
        self.shared = shared or SharedState()
        self.config = declare_config(self, InstructionConfig)
        self.intake = RequestIntake(self.config, id_prefix=self.get_name())
        qos = QoSProfile(depth=self.config.queue_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.status_pub = self.create_publisher(MotionStatus, self.config.status_topic, qos)
        self.create_subscription(String, self.config.instruction_topic, self._on_string, qos)
        self.create_subscription(
            Instruction, self.config.instruction_msg_topic, self._on_instruction, qos
        )
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="instruction-worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"listening on {self.config.instruction_topic} (String) and "
            f"{self.config.instruction_msg_topic} (Instruction); statuses on "
            f"{self.config.status_topic}"
        )

    # -- callbacks: enqueue only ------------------------------------------------------
    def _on_string(self, msg: String) -> None:
        self._queue.put(("", "", msg.data))

    def _on_instruction(self, msg: Instruction) -> None:
        self._queue.put((msg.agent_id, msg.request_id, msg.text))

    # -- worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                agent_id, request_id, text = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.process_request(self.intake.make(text, agent_id, request_id))
            except Exception as exc:  # noqa: BLE001 - a bad request must not kill the worker
                self.get_logger().error(f"failed to handle instruction {text[:80]!r}: {exc}")

    def process_request(self, req: Request) -> None:
        """Answer one request (runs on the worker thread)."""
        if req.problem:
            self.get_logger().warn(f"[{req.request_id}] rejected: {req.problem}")
            self.publish_status(req, MotionStatus.REJECTED, req.problem)
            return
        if not self.shared.scene_ready():
            self.get_logger().info(f"[{req.request_id}] {req.agent_id}: {req.text!r}: {NO_SCENE}")
            self.publish_status(req, MotionStatus.REJECTED, NO_SCENE)
            return
        reason = (
            "this is the instruction-only node: run the motion node (motion_node, or the "
            "demo graph) to have instructions executed"
        )
        self.publish_status(req, MotionStatus.REJECTED, reason)

    def publish_status(self, req: Request, state: int, reason: str = "", goal: str = "") -> None:
        msg = MotionStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.config.frame_id
        msg.request_id = req.request_id
        msg.agent_id = req.agent_id
        msg.state = state
        msg.reason = reason
        msg.goal = goal
        msg.text = req.text
        self.status_pub.publish(msg)

    def destroy_node(self) -> None:
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=2.0)
        super().destroy_node()


def main(args=None) -> int:
    """Run this node alone (``ros2 run ssomotion_ros instruction_node``)."""
    from ssomotion_ros.ros.bringup import run_nodes

    return run_nodes([InstructionNode], args=args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
