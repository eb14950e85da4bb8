"""Retarget node: puts each agent's synthesized motion onto a URDF avatar or robot.

Topics (names are parameters):
  sub  /ssomotion/motion                        ssomotion_ros/HumanMotion  windows, all agents
  pub  /ssomotion/retarget/<agent>/joint_states sensor_msgs/JointState     one per frame
  tf   <frame_id> -> <agent>/<root link>        root pose (when tf2_ros is importable)

With ``robot_state_publisher`` (``robot_description`` = the same URDF, ``frame_prefix`` =
``<agent>/``) remapped to the joint-state topic, RViz's RobotModel shows the robot moving.
Spherical joints (pybullet extension) are published as ``<joint>/x|y|z`` axis-angle
components, which robot_state_publisher does not understand; standard URDFs (revolute,
continuous, prismatic) are published exactly.

Callbacks only enqueue; a worker thread retargets each window (the previous window of the
same agent joins the smoothness term) and queues its frames; a 30 Hz timer publishes one
frame per agent (the motion's own rate).
"""

from __future__ import annotations

import collections
import queue
import sys
import threading
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from ssomotion_ros.config_fields import doc_field
from ssomotion_ros.msg import HumanMotion
from ssomotion_ros.ros.params import declare_config
from ssomotion_ros.ros.shared import SharedState


@dataclass
class RetargetNodeConfig:
    """Parameters of the retarget node."""

    urdf_path: str = doc_field("", "URDF to retarget onto; empty = the generated avatar.")
    override_path: str = doc_field(
        "", "YAML mapping override; empty = the shipped one matching the URDF file name."
    )
    agent_id: str = doc_field("", "Agent to follow; empty = every agent (one output each).")
    input_topic: str = doc_field("/ssomotion/motion", "HumanMotion windows to retarget.")
    output_prefix: str = doc_field(
        "/ssomotion/retarget", "Joint states go to <prefix>/<agent>/joint_states."
    )
    frame_id: str = doc_field("map", "Parent frame of the published root transforms.")
    iterations: int = doc_field(60, "Optimizer iterations per window (more = closer, slower).")
    device: str = doc_field("", "Torch device; empty = cuda when available, else cpu.")
    publish_tf: bool = doc_field(True, "Broadcast <frame_id> -> <agent>/<root link> on TF.")
    max_backlog: int = doc_field(
        4, "Windows waiting per agent before the oldest are dropped (CPU too slow)."
    )

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.max_backlog < 1:
            raise ValueError(f"max_backlog must be >= 1, got {self.max_backlog}")


def _rot_to_quat(r: np.ndarray) -> tuple[float, float, float, float]:
    """(3, 3) rotation -> (x, y, z, w)."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(r).as_quat()
    return float(x), float(y), float(z), float(w)


class RetargetNode(Node):
    """See the module docstring."""

    def __init__(
        self,
        node_name: str = "ssomotion_retarget",
        shared: SharedState | None = None,
        **node_kwargs,
    ):
        super().__init__(node_name, **node_kwargs)
        self.shared = shared or SharedState()
        self.config = declare_config(self, RetargetNodeConfig)
        from ssomotion_ros.retarget import RetargetConfig, load_target

        cfg = RetargetConfig(
            iterations=self.config.iterations,
            copy_iterations=self.config.iterations,
            device=self.config.device or None,
            progress=False,
        )
        self.retargeter = load_target(
            self.config.urdf_path or None, self.config.override_path or None, cfg
        )
        robot = self.retargeter.robot
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(HumanMotion, self.config.input_topic, self._on_motion, qos)
        self._pubs: dict[str, object] = {}
        self._frames: dict[str, collections.deque] = {}
        self._history: dict[str, object] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._tf = None
        if self.config.publish_tf:
            try:
                from tf2_ros import TransformBroadcaster

                self._tf = TransformBroadcaster(self)
            except ImportError:
                self.get_logger().info("tf2_ros not importable: no root transforms")
        self._timer = self.create_timer(1.0 / 30.0, self._publish_frames)
        self._worker = threading.Thread(target=self._work, name="retarget-worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"retargeting {self.config.agent_id or 'every agent'} from "
            f"{self.config.input_topic} onto {robot.name!r} ({robot.num_dofs} DoFs); joint "
            f"states on {self.config.output_prefix}/<agent>/joint_states"
        )

    # -- callbacks: enqueue only ------------------------------------------------------
    def _on_motion(self, msg: HumanMotion) -> None:
        if self.config.agent_id and msg.agent_id != self.config.agent_id:
            return
        self._queue.put(msg)

    # -- worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.process_window(msg)
            except Exception as exc:  # noqa: BLE001 - a bad window must not kill the worker
                self.get_logger().error(f"failed to retarget a window of {msg.agent_id!r}: {exc}")

    def process_window(self, msg: HumanMotion) -> None:
        """Retarget one HumanMotion window and queue its frames (worker thread)."""
        from ssomotion_ros.retarget import prepare_source

        t = int(msg.num_frames)
        params = np.asarray(msg.smplx_params, np.float32)
        if params.size != t * 69 or t < 2:
            raise ValueError(
                f"smplx_params has {params.size} values for num_frames={t}; expected "
                f"{t * 69} (T x 69) and T >= 2"
            )
        fps = float(msg.fps) if msg.fps > 0 else 30.0
        rt = self.retargeter
        rt.cfg.fps = fps
        actions = np.array([msg.action] * t)
        src = prepare_source(params.reshape(t, 69), actions, rt.skeleton, rt.cfg)
        history = self._history.get(msg.agent_id)
        res = rt.retarget(src, history=history)
        self._history[msg.agent_id] = res
        stamp0 = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        frames = [(stamp0 + k / fps, res.q[k], res.root_rot[k], res.root_pos[k]) for k in range(t)]
        with self._lock:
            dq = self._frames.setdefault(msg.agent_id, collections.deque())
            backlog = self.config.max_backlog * t
            while len(dq) + t > backlog and dq:
                dq.popleft()
            dq.extend(frames)

    # -- playback ---------------------------------------------------------------------
    def _publisher(self, agent: str):
        if agent not in self._pubs:
            name = f"{self.config.output_prefix.rstrip('/')}/{agent or 'agent'}/joint_states"
            self._pubs[agent] = self.create_publisher(JointState, name, 10)
        return self._pubs[agent]

    def _publish_frames(self) -> None:
        with self._lock:
            due = {a: dq.popleft() for a, dq in self._frames.items() if dq}
        if not due:
            return
        now = self.get_clock().now().to_msg()
        robot = self.retargeter.robot
        transforms = []
        for agent, (_, q, rot, pos) in due.items():
            js = JointState()
            js.header.stamp = now
            js.name = list(robot.dof_names)
            js.position = [float(v) for v in q]
            self._publisher(agent).publish(js)
            if self._tf is not None:
                from geometry_msgs.msg import TransformStamped

                tr = TransformStamped()
                tr.header.stamp = now
                tr.header.frame_id = self.config.frame_id
                tr.child_frame_id = f"{agent}/{robot.link_names[0]}"
                tr.transform.translation.x = float(pos[0])
                tr.transform.translation.y = float(pos[1])
                tr.transform.translation.z = float(pos[2])
                x, y, z, w = _rot_to_quat(rot)
                tr.transform.rotation.x, tr.transform.rotation.y = x, y
                tr.transform.rotation.z, tr.transform.rotation.w = z, w
                transforms.append(tr)
        if transforms:
            self._tf.sendTransform(transforms)

    def destroy_node(self) -> None:
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args=None) -> int:
    """Run this node alone (``ros2 run ssomotion_ros retarget_node``)."""
    from ssomotion_ros.ros.bringup import run_nodes

    return run_nodes([RetargetNode], args=args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
