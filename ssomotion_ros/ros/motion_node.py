"""Motion node: instructions in, simulated humans out (supersedes the instruction node).

Topics (names are parameters; see ``docs/ros_nodes.md`` for the full tables):
  sub  /ssomotion/instruction          std_msgs/String            "name: text" or text
  sub  /ssomotion/instruction_msg      ssomotion_ros/Instruction
  pub  /ssomotion/status               ssomotion_ros/MotionStatus  every state of every request
  pub  /ssomotion/motion               ssomotion_ros/HumanMotion   windows as they are made
  pub  /ssomotion/people               ssomotion_ros/People        all agents, playback rate
  pub  /ssomotion/humans/markers       visualization_msgs/MarkerArray  bodies + labels
  pub  /ssomotion/humans/<agent>/planned_path   nav_msgs/Path
  pub  /ssomotion/humans/<agent>/executed_path  nav_msgs/Path
  pub  /ssomotion/humans/<agent>/joint_states   sensor_msgs/JointState

Threads: subscription callbacks only hand the text to the agent manager (which grounds
on its own thread); agents plan and synthesize on their worker threads; the playback
timer (node clock, so ``use_sim_time`` works) only advances the playback clock and
hands the frames to a publisher thread, which builds and publishes the outputs. Nothing
heavy runs on the executor.

Scene: the process's ``SharedState.scene_model`` (the mapper's). Running alone, the node
can build one itself from ``scene_file`` (a saved SceneModel) or ``scene_prompt`` (a
generated room), in the background, or fuse semantic clouds from ``cloud_topic``: then it
composes an embedded :class:`~ssomotion_ros.ros.mapper_node.MapperNode` (node
``<name>_mapper``, parameters ``mapper.*`` of this node, spun by its own executor thread)
that shares this process's SceneModel; fusion is the mapper's, not re-implemented here.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import sys
import threading
from dataclasses import dataclass

import numpy as np
from nav_msgs.msg import Path
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from ssomotion_ros.config_fields import doc_field, field_docs
from ssomotion_ros.instructions import InstructionConfig, RequestIntake
from ssomotion_ros.msg import HumanMotion, Instruction, MotionStatus, People
from ssomotion_ros.ros import conversions as conv
from ssomotion_ros.ros.params import declare_config
from ssomotion_ros.ros.shared import SharedState
from ssomotion_ros.synthesis.agents import AgentConfig, AgentManager, StatusEvent
from ssomotion_ros.synthesis.baseline import BaselineConfig

log = logging.getLogger(__name__)


@dataclass
class MotionNodeConfig:
    """Parameters of the motion node itself (instruction intake, agents and the baseline
    have their own dataclasses; see ``docs/ros_nodes.md``)."""

    synthesizer: str = doc_field(
        "baseline",
        "'baseline' (CMU clips along planned paths) or 'learned' (the SSOMotion generator; "
        "its parameters are declared as learned.* when selected).",
    )
    scene_prompt: str = doc_field(
        "", "Room to generate when no mapper shares a scene and no scene_file is given."
    )
    scene_seed: int = doc_field(0, "Seed of the generated room.")
    scene_file: str = doc_field("", "A map saved by SceneModel.save, used when running alone.")
    cloud_topic: str = doc_field(
        "",
        "Running alone (no shared scene, no scene_prompt/scene_file): fuse semantic "
        "PointCloud2 from this topic with an embedded mapper node <name>_mapper, configured "
        "by this node's mapper.* parameters (the mapper's, e.g. mapper.vocabulary_path). "
        "'' = off.",
    )
    playback_rate: float = doc_field(30.0, "Playback and people/joint-state rate, Hz.")
    body_style: str = doc_field("mesh", "Body markers: 'mesh', 'skeleton' or 'both'.")
    mesh_faces: int = doc_field(400, "Triangles of the decimated body mesh marker.")
    smplx_model_dir: str = doc_field(
        "", "Folder with smplx/SMPLX_NEUTRAL.npz: show the SMPL-X body ('' = the mannequin)."
    )
    mesh_rate: float = doc_field(
        10.0, "Rate of the body markers, Hz (skeleton/people/joints run at playback_rate)."
    )
    spawn_poses: str = doc_field("", "Given spawn poses: 'alice=x,y,yaw; bob=x,y,yaw'.")
    motion_topic: str = doc_field("/ssomotion/motion", "HumanMotion windows of every agent.")
    people_topic: str = doc_field("/ssomotion/people", "People message of every agent.")
    markers_topic: str = doc_field("/ssomotion/humans/markers", "Body and label markers.")
    agent_topic_prefix: str = doc_field(
        "/ssomotion/humans", "Per-agent topics: <prefix>/<agent>/planned_path, ..."
    )

    def __post_init__(self) -> None:
        if self.synthesizer not in ("baseline", "learned"):
            raise ValueError(
                f"synthesizer must be 'baseline' or 'learned', got {self.synthesizer!r}"
            )
        if not self.playback_rate > 0 or not self.mesh_rate > 0:
            raise ValueError("playback_rate and mesh_rate must be > 0 Hz")
        if self.body_style not in ("mesh", "skeleton", "both"):
            raise ValueError(f"body_style must be mesh, skeleton or both, got {self.body_style!r}")
        if self.mesh_faces < 50:
            raise ValueError(f"mesh_faces must be >= 50, got {self.mesh_faces}")
        from ssomotion_ros.synthesis.agents import parse_spawn_poses

        parse_spawn_poses(self.spawn_poses)


class _AgentOutputs:
    """Per-agent publishers, created when the agent first appears."""

    def __init__(self, node: MotionNode, agent_id: str, index: int):
        prefix = f"{node.cfg.agent_topic_prefix.rstrip('/')}/{agent_id}"
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.index = index
        self.planned = node.create_publisher(Path, f"{prefix}/planned_path", latched)
        self.executed = node.create_publisher(Path, f"{prefix}/executed_path", 10)
        self.joints = node.create_publisher(JointState, f"{prefix}/joint_states", 10)
        self.last_planned: str | None = None
        self.last_mesh_frame: tuple | None = None
        self.last_joint_key: tuple | None = None
        self.mesh_due = 0.0


class _NodeSpinner:
    """Spins one node with its own SingleThreadedExecutor in a daemon thread (the
    embedded mapper: the bringup's executor only knows the graph's nodes)."""

    def __init__(self, node: Node):
        from rclpy.executors import SingleThreadedExecutor

        self.node = node
        self.executor = SingleThreadedExecutor(context=node.context)
        self.executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, name="mapper-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - context shutdown ends the spin
            pass

    def stop(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=5.0)
        self.node.destroy_node()


class MotionNode(Node):
    """See the module docstring. ``shared`` is the process's :class:`SharedState`."""

    def __init__(
        self,
        node_name: str = "ssomotion_motion",
        shared: SharedState | None = None,
        **node_kwargs,
    ):
        super().__init__(node_name, **node_kwargs)
        self.shared = shared or SharedState()
        self.icfg = declare_config(self, InstructionConfig)
        self.cfg = declare_config(self, MotionNodeConfig)
        self.acfg = declare_config(self, AgentConfig, prefix="agents.")
        self.bcfg = declare_config(self, BaselineConfig, prefix="baseline.")
        self.mapper = None  # the embedded MapperNode when fusing cloud_topic itself
        self._mapper_runner = None
        if self.cfg.cloud_topic:
            self._start_mapper()
        self.intake = RequestIntake(self.icfg, id_prefix=self.get_name())
        qos = QoSProfile(depth=self.icfg.queue_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.status_pub = self.create_publisher(MotionStatus, self.icfg.status_topic, qos)
        self.motion_pub = self.create_publisher(HumanMotion, self.cfg.motion_topic, qos)
        self.people_pub = self.create_publisher(People, self.cfg.people_topic, 10)
        self.marker_pub = self.create_publisher(MarkerArray, self.cfg.markers_topic, 10)
        self._outputs: dict[str, _AgentOutputs] = {}
        self._tf = None
        try:  # TF frames per human (<agent>/pelvis) when tf2_ros is installed
            from tf2_ros import TransformBroadcaster

            self._tf = TransformBroadcaster(self)
        except ImportError:
            self.get_logger().info("tf2_ros not importable: no TF frames for the humans")
        self._frames: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._mesh = None

        from ssomotion_ros.synthesis.agents import parse_spawn_poses
        from ssomotion_ros.synthesis.baseline import BaselineSynthesizer

        if self.cfg.synthesizer == "learned":
            from ssomotion_ros.synthesis.learned import LearnedConfig, LearnedSynthesizer

            lcfg = declare_config(self, LearnedConfig, prefix="learned.")
            self.synthesizer = LearnedSynthesizer(lcfg)
        else:
            self.synthesizer = BaselineSynthesizer(self.bcfg)
        self.manager = AgentManager(
            self._scene,
            self.synthesizer,
            self._on_status,
            on_window=self._on_window,
            config=self.acfg,
            spawn_poses=parse_spawn_poses(self.cfg.spawn_poses),
        )
        self.create_subscription(String, self.icfg.instruction_topic, self._on_string, qos)
        self.create_subscription(
            Instruction, self.icfg.instruction_msg_topic, self._on_instruction, qos
        )
        self._publisher = threading.Thread(target=self._publish_loop, name="motion-publish")
        self._publisher.daemon = True
        self._publisher.start()
        self._warm = threading.Thread(target=self._warm_up, name="motion-warm-up", daemon=True)
        self._warm.start()
        self.create_timer(1.0 / self.cfg.playback_rate, self._on_tick)
        self.get_logger().info(
            f"motion node: instructions on {self.icfg.instruction_topic} and "
            f"{self.icfg.instruction_msg_topic}; statuses on {self.icfg.status_topic}; "
            f"motion on {self.cfg.motion_topic}; people on {self.cfg.people_topic}; "
            f"bodies on {self.cfg.markers_topic}"
        )

    # -- scene ---------------------------------------------------------------------------
    def _start_mapper(self) -> None:
        """Compose the embedded mapper that fuses ``cloud_topic`` into this process's
        SceneModel (only when no scene is shared and none is generated or loaded)."""
        if self.shared.scene_model is not None or self.cfg.scene_prompt or self.cfg.scene_file:
            why = (
                "a scene is already shared"
                if self.shared.scene_model is not None
                else "scene_prompt/scene_file is set"
            )
            self.get_logger().warning(f"cloud_topic {self.cfg.cloud_topic!r} ignored: {why}")
            return
        from rclpy.parameter import Parameter

        from ssomotion_ros.ros.mapper_node import MapperNode
        from ssomotion_ros.sso.config import MapperConfig

        overrides = {"cloud_topic": self.cfg.cloud_topic, "frame_id": self.icfg.frame_id}
        docs = field_docs(MapperConfig)
        defaults = MapperConfig()
        for f in dataclasses.fields(MapperConfig):
            default = getattr(defaults, f.name)
            if f.name in overrides or default is None or isinstance(default, (tuple, dict)):
                continue  # cloud_topic and frame_id are this node's
            if isinstance(default, list) and not default:
                continue
            desc = ParameterDescriptor(
                description=f"Embedded mapper: {docs.get(f.name, '')}",
                dynamic_typing=isinstance(default, float),  # accept 0 for 0.0
            )
            self.declare_parameter("mapper." + f.name, default, desc)
            value = self.get_parameter("mapper." + f.name).value
            if isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"parameter mapper.{f.name} must be a number, got {value!r}")
                value = float(value)
            overrides[f.name] = value
        params = [Parameter(k, value=v) for k, v in overrides.items()]
        self.mapper = MapperNode(
            f"{self.get_name()}_mapper",
            shared=self.shared,
            context=self.context,
            parameter_overrides=params,
            namespace=self.get_namespace(),
        )
        self._mapper_runner = _NodeSpinner(self.mapper)
        self.get_logger().info(
            f"no shared scene: fusing {self.cfg.cloud_topic} with the embedded mapper "
            f"{self.mapper.get_fully_qualified_name()}"
        )

    def _scene(self):
        return self.shared.scene_model if self.shared.scene_ready() else None

    def _warm_up(self) -> None:
        """Background start-up: own scene (if asked and none is shared), clips, encoder,
        body mesh. Instructions that arrive earlier wait in the intake queue."""
        # the text encoder loads in parallel with the scene (it takes the longest)
        encoder = threading.Thread(target=self.manager.warm_up, name="encoder", daemon=True)
        encoder.start()
        try:
            if self.shared.scene_model is None and (self.cfg.scene_file or self.cfg.scene_prompt):
                from ssomotion_ros.synthesis import scene_source

                if self.cfg.scene_file:
                    model = scene_source.scene_model_from_file(self.cfg.scene_file)
                    what = self.cfg.scene_file
                else:
                    model, _ = scene_source.scene_model_from_prompt(
                        self.cfg.scene_prompt, self.cfg.scene_seed
                    )
                    what = f"prompt {self.cfg.scene_prompt!r}"
                with self.shared.lock:
                    if self.shared.scene_model is None:
                        self.shared.scene_model = model
                self.get_logger().info(f"scene ready from {what}")
            _ = getattr(self.synthesizer, "library", None)
            if self.cfg.body_style in ("mesh", "both"):
                from ssomotion_ros.viz.body_mesh import SmplxDisplayMesh, shared_body_mesh

                if self.cfg.smplx_model_dir:
                    try:
                        self._mesh = SmplxDisplayMesh(self.cfg.smplx_model_dir, self.cfg.mesh_faces)
                        self.get_logger().info(f"bodies: SMPL-X from {self.cfg.smplx_model_dir}")
                    except (OSError, ValueError) as exc:
                        self.get_logger().error(f"cannot use SMPL-X ({exc}); showing the mannequin")
                if self._mesh is None:
                    self._mesh = shared_body_mesh(self.cfg.mesh_faces)
            encoder.join()
            self.get_logger().info("motion node ready")
        except Exception as exc:  # noqa: BLE001 - keep serving; requests report the problem
            self.get_logger().error(f"motion node start-up failed: {exc}")

    # -- callbacks: enqueue only ---------------------------------------------------------
    def _on_string(self, msg: String) -> None:
        self._submit("", "", msg.data)

    def _on_instruction(self, msg: Instruction) -> None:
        self._submit(msg.agent_id, msg.request_id, msg.text)

    def _submit(self, agent_id: str, request_id: str, text: str) -> None:
        try:
            req = self.intake.make(text, agent_id, request_id)
            self.manager.submit(req.request_id, req.agent_id, req.text, req.problem)
        except Exception as exc:  # noqa: BLE001 - never let bad input kill the executor
            self.get_logger().error(f"cannot take instruction {str(text)[:80]!r}: {exc}")

    def _on_status(self, ev: StatusEvent) -> None:
        self.status_pub.publish(
            conv.status_msg(ev, self.get_clock().now().to_msg(), self.icfg.frame_id)
        )
        level = self.get_logger().warn if ev.state in (1, 5) else self.get_logger().info
        extra = f" ({ev.reason})" if ev.reason else ""
        level(f"[{ev.request_id}] {ev.agent_id}: {ev.state.name}{extra}")

    def _on_window(self, window) -> None:
        self.motion_pub.publish(
            conv.human_motion_msg(window, self.get_clock().now().to_msg(), self.icfg.frame_id)
        )

    def _on_tick(self) -> None:
        now = self.get_clock().now()
        frames = self.manager.tick(now.nanoseconds * 1e-9)
        if not frames:
            return
        try:  # latest frames win: a slow publisher skips stale ones
            self._frames.get_nowait()
        except queue.Empty:
            pass
        self._frames.put_nowait((now, frames))

    # -- publisher thread ----------------------------------------------------------------
    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            try:
                now, frames = self._frames.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.publish_frames(now, frames)
            except Exception as exc:  # noqa: BLE001
                self.get_logger().error(f"publishing frames failed: {exc}")

    def _outputs_for(self, agent_id: str) -> _AgentOutputs:
        out = self._outputs.get(agent_id)
        if out is None:
            out = _AgentOutputs(self, agent_id, len(self._outputs))
            self._outputs[agent_id] = out
        return out

    def publish_frames(self, now, frames: dict) -> None:
        """Publish people, joint states, paths and (at ``mesh_rate``) body markers."""
        stamp = now.to_msg()
        fid = self.icfg.frame_id
        t = now.nanoseconds * 1e-9
        scene = self._scene()
        floor = {}
        if scene is not None:
            xy = np.array([f.joints[0, :2] for f in frames.values()], np.float64)
            fz = np.asarray(scene.floor_height(xy), np.float64).reshape(-1)
            floor = {a: (float(z) if np.isfinite(z) else 0.0) for a, z in zip(frames, fz)}
        self.people_pub.publish(conv.people_msg(frames, stamp, fid, floor))
        markers = MarkerArray()
        for agent_id, f in frames.items():
            out = self._outputs_for(agent_id)
            self_key = (f.request_id, f.frame, f.playing)
            if out.last_joint_key != self_key:
                out.joints.publish(conv.joint_state_msg(f.params, agent_id, stamp))
                out.last_joint_key = self_key
            if f.request_id and out.last_planned != f.request_id:
                out.planned.publish(conv.path_msg(f.planned_path, stamp, fid))
                out.last_planned = f.request_id
            if out.last_mesh_frame != self_key and t >= out.mesh_due:
                # body markers and the executed path at mesh_rate (both cost per point)
                if len(f.executed_path):
                    out.executed.publish(conv.path_msg(f.executed_path, stamp, fid))
                style = self.cfg.body_style
                markers.markers.extend(
                    conv.body_marker_array(f, out.index, stamp, fid, self._mesh, style).markers
                )
                out.last_mesh_frame = self_key
                out.mesh_due = t + 1.0 / self.cfg.mesh_rate
        if markers.markers:
            self.marker_pub.publish(markers)
        if self._tf is not None:
            self._tf.sendTransform([conv.pelvis_transform(f, stamp, fid) for f in frames.values()])

    def destroy_node(self) -> None:
        # also called on a node whose __init__ failed half-way (context shutdown)
        if hasattr(self, "_stop"):
            self._stop.set()
        if getattr(self, "_mapper_runner", None) is not None:
            self._mapper_runner.stop()  # executor first, then the mapper node
            self._mapper_runner = None
        if hasattr(self, "manager"):
            self.manager.shutdown()
        if hasattr(self, "_publisher") and self._publisher.is_alive():
            self._publisher.join(timeout=2.0)
        # remove the bodies from RViz
        try:
            gone = MarkerArray(markers=[Marker(action=Marker.DELETEALL)])
            self.marker_pub.publish(gone)
        except Exception:  # noqa: BLE001 - context may already be shut down
            pass
        super().destroy_node()


def main(args=None) -> int:
    """Run this node alone (``ros2 run ssomotion_ros motion_node``)."""
    from ssomotion_ros.ros.bringup import run_nodes

    return run_nodes([MotionNode], args=args if args is not None else sys.argv)


if __name__ == "__main__":
    sys.exit(main())
