"""Write and read rosbag2 (MCAP) files with the ``rosbags`` library (no ROS tools needed).

The writer takes messages already serialized to CDR (what a raw rclpy subscription
delivers), so recording costs no conversion. Our own message types are registered from
the ``.msg`` files of the package, so any rosbag2 reader (``ros2 bag``, Foxglove,
rosbags) can decode them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from ssomotion_ros.graph_spec import share_dir

#: Package whose message definitions ship in ``msg/``.
PACKAGE = "ssomotion_ros"
_TYPE_RE = re.compile(r"^[A-Za-z_]\w*/msg/[A-Za-z]\w*$")


def make_typestore(msg_dir: Path | None = None):
    """A rosbags typestore with ROS 2 Kilted types plus ours (from ``msg_dir``)."""
    store = get_typestore(Stores.ROS2_KILTED)
    msg_dir = msg_dir or (share_dir() / "msg")
    types: dict = {}
    for path in sorted(Path(msg_dir).glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


class BagWriter:
    """Thread-safe rosbag2 writer (MCAP storage).

    ``write(topic, msgtype, timestamp_ns, data)``: ``msgtype`` like
    ``"ssomotion_ros/msg/HumanMotion"``, ``timestamp_ns`` int nanoseconds (receive
    time on the node clock), ``data`` the CDR bytes. Connections are created on first
    use. ``close()`` finalises the bag; a bag that is not closed is not readable.
    """

    def __init__(self, path: str | Path, typestore=None):
        self.path = Path(path)
        if self.path.exists():
            raise ValueError(f"bag folder {self.path} exists already: choose a new path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.typestore = typestore or make_typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self._closed = False

    def write(self, topic: str, msgtype: str, timestamp_ns: int, data: bytes) -> None:
        if not _TYPE_RE.match(msgtype):
            raise ValueError(f"message type {msgtype!r} is not of the form 'pkg/msg/Name'")
        if msgtype not in self.typestore.fielddefs:
            raise ValueError(
                f"message type {msgtype} is unknown to the bag's typestore: "
                "standard types come from ROS 2 Kilted, ours from the package msg/ folder"
            )
        with self._lock:
            if self._closed:
                raise ValueError(f"bag {self.path} is closed")
            conn = self._connections.get(topic)
            if conn is None:
                conn = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
                self._connections[topic] = conn
            elif conn.msgtype != msgtype:
                raise ValueError(f"topic {topic} was recorded as {conn.msgtype}, got {msgtype}")
            self._writer.write(conn, int(timestamp_ns), bytes(data))
            self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._writer.close()
                self._closed = True


def read_bag(path: str | Path, typestore=None) -> Iterator[tuple[str, str, int, object]]:
    """Yield ``(topic, msgtype, timestamp_ns, message)`` from a rosbag2 folder, with the
    messages deserialized to rosbags dataclasses."""
    store = typestore or make_typestore()
    with Reader(Path(path)) as reader:
        for conn, ts, raw in reader.messages():
            yield conn.topic, conn.msgtype, ts, store.deserialize_cdr(raw, conn.msgtype)
