"""Record topics to a rosbag2 (MCAP) folder from inside a node process.

Raw (CDR) subscriptions, so recording costs no deserialization. Topics whose type is
not known yet are subscribed as soon as a publisher appears (checked every 0.5 s).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ssomotion_ros.recording import BagWriter

#: What ``--record`` writes by default. Left out, for size: the raw semantic clouds
#: (~2 MB each; the fused occupancy is recorded) and the body mesh markers (rebuilt from
#: HumanMotion by any viewer).
DEFAULT_TOPICS = {
    "/ssomotion/sso/occupancy": "sensor_msgs/msg/PointCloud2",
    "/ssomotion/sso/instances": "visualization_msgs/msg/MarkerArray",
    "/ssomotion/instruction": "std_msgs/msg/String",
    "/ssomotion/instruction_msg": "ssomotion_ros/msg/Instruction",
    "/ssomotion/status": "ssomotion_ros/msg/MotionStatus",
    "/ssomotion/motion": "ssomotion_ros/msg/HumanMotion",
    "/ssomotion/people": "ssomotion_ros/msg/People",
}


def message_class(msgtype: str):
    """``"pkg/msg/Name"`` -> the rclpy message class."""
    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


class TopicRecorder:
    """Attach to ``node``; records ``topics`` into ``path`` until :meth:`close`.

    ``topics``: topic names (their types are discovered from the graph), or a dict of
    topic -> ``"pkg/msg/Name"`` (subscribed at once, before any publisher exists).
    """

    def __init__(self, node: Node, path: str | Path, topics, depth: int = 100):
        self.node = node
        self.writer = BagWriter(path)
        self.wanted = list(dict.fromkeys(topics))
        self._subs: dict[str, object] = {}
        self._qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        if isinstance(topics, dict):
            for topic, msgtype in topics.items():
                self._subscribe(topic, msgtype)
        self._timer = node.create_timer(0.5, self._discover)
        self._discover()
        node.get_logger().info(f"recording {len(self.wanted)} topics to {self.writer.path}")

    def _discover(self) -> None:
        known = dict(self.node.get_topic_names_and_types())
        for topic in self.wanted:
            if topic in self._subs or topic not in known:
                continue
            self._subscribe(topic, known[topic][0])

    def _subscribe(self, topic: str, msgtype: str) -> None:
        try:
            cls = message_class(msgtype)
        except (ImportError, AttributeError, ValueError) as exc:
            self.node.get_logger().warn(f"cannot record {topic} ({msgtype}): {exc}")
            self._subs[topic] = None
            return

        def _cb(data: bytes) -> None:
            now = self.node.get_clock().now().nanoseconds
            self.writer.write(topic, msgtype, now, data)

        self._subs[topic] = self.node.create_subscription(cls, topic, _cb, self._qos, raw=True)

    def close(self) -> dict[str, int]:
        """Stop recording and finalise the bag; returns messages written per topic."""
        self.node.destroy_timer(self._timer)
        for sub in self._subs.values():
            if sub is not None:
                self.node.destroy_subscription(sub)
        self._subs.clear()
        self.writer.close()
        return dict(self.writer.counts)
