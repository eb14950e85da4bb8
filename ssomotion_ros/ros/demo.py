"""The demo: a generated room, streamed scans, a live map, three instructed humans.

``ssomotion demo --headless --out DIR`` starts the node graph of ``config/demo.yaml`` in
one process (scene node -> mapper -> motion node, sharing one SceneModel), waits until
the mapper has seen the objects the script needs, sends a scripted set of instructions
over DDS (walk through the clutter, sit on a named chair, lie on the bed, and one that
must be rejected), collects statuses and HumanMotion windows, records the topics to a
rosbag2 (MCAP), and writes pictures, a GIF and a metrics JSON into DIR.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from nav_msgs.msg import Path as NavPath
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from ssomotion_ros.graph_spec import GraphSpec, load_graph
from ssomotion_ros.msg import HumanMotion, Instruction, MotionStatus
from ssomotion_ros.ros.bringup import ExecutorThread, StopOnSignal, create_graph_nodes
from ssomotion_ros.ros.conversions import path_to_array, window_from_msg
from ssomotion_ros.ros.recorder import DEFAULT_TOPICS, TopicRecorder
from ssomotion_ros.ros.say import FINAL_STATES, STATE_NAMES

#: The scripted instructions: (agent, text, expected final state).
DEFAULT_SCRIPT: tuple[tuple[str, str, str], ...] = (
    ("alice", "walk to the bookshelf", "SUCCEEDED"),
    ("bob", "sit on the chair nearest to the bed", "SUCCEEDED"),
    ("carol", "lie on the bed", "SUCCEEDED"),
    ("dave", "sit on the piano", "REJECTED"),
)

_GOAL_XY = re.compile(r"at \((-?[\d.]+), (-?[\d.]+)")


@dataclass
class DemoConfig:
    """Options of ``ssomotion demo``."""

    #: Output folder (pictures, GIF, bag, metrics.json).
    out: Path = Path("demo_out")
    #: Room prompt for the scene node ("" = the graph's).
    prompt: str = ""
    #: Seed of the room and the survey.
    seed: int = 0
    #: How many of the scripted agents take part (1-3 humans; the rejected
    #: instruction is always sent).
    agents: int = 3
    #: Record a rosbag2 (MCAP) of the demo's topics.
    record: bool = True
    #: Folder of the bag ("" = OUT/bag, replaced on every run; a given folder must not
    #: exist yet).
    record_dir: str = ""
    #: Render the PNG pictures and the GIF.
    pictures: bool = True
    #: Seconds to wait for the map to show the objects the script needs.
    map_timeout_s: float = 60.0
    #: Seconds to wait for all final statuses after sending the instructions.
    motion_timeout_s: float = 120.0
    #: Graph spec ("" = config/demo.yaml).
    graph: str = ""
    #: The instructions: (agent, text, expected final state).
    script: tuple = DEFAULT_SCRIPT


@dataclass
class RequestLog:
    """Everything the demo saw of one instruction."""

    agent: str
    text: str
    expected: str
    request_id: str
    sent_at: float = 0.0
    states: list = field(default_factory=list)  # (state name, seconds since sent, reason)
    goal: str = ""
    reason: str = ""
    final: str = ""
    windows: list = field(default_factory=list)  # dicts from window_from_msg

    def add_status(self, msg: MotionStatus) -> None:
        name = STATE_NAMES.get(msg.state, str(msg.state))
        self.states.append((name, round(time.monotonic() - self.sent_at, 3), msg.reason))
        if msg.goal:
            self.goal = msg.goal
        if msg.reason:
            self.reason = msg.reason
        if msg.state in FINAL_STATES:
            self.final = name


class DemoDriver(Node):
    """Sends the script's instructions and collects statuses, motion and paths."""

    def __init__(self, script=None, qos_depth: int = 256, node_name="ssomotion_demo", **kw):
        super().__init__(node_name, **kw)
        if script is None:
            from rcl_interfaces.msg import ParameterDescriptor

            n = self.declare_parameter(
                "agents", 3, ParameterDescriptor(description="Scripted humans taking part (1-3).")
            ).value
            script = select_script(DEFAULT_SCRIPT, int(n))
        qos = QoSProfile(depth=qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.lock = threading.Lock()
        self.requests = {
            f"demo-{i + 1}": RequestLog(agent, text, expected, f"demo-{i + 1}")
            for i, (agent, text, expected) in enumerate(script)
        }
        self.planned: dict[str, np.ndarray] = {}
        self.pub = self.create_publisher(Instruction, "/ssomotion/instruction_msg", qos)
        self.create_subscription(MotionStatus, "/ssomotion/status", self._on_status, qos)
        self.create_subscription(HumanMotion, "/ssomotion/motion", self._on_motion, qos)
        for agent in {r.agent for r in self.requests.values()}:
            self.create_subscription(
                NavPath,
                f"/ssomotion/humans/{agent}/planned_path",
                lambda m, a=agent: self._on_path(a, m),
                latched,
            )

    def _on_status(self, msg: MotionStatus) -> None:
        with self.lock:
            req = self.requests.get(msg.request_id)
            if req is not None:
                req.add_status(msg)

    def _on_motion(self, msg: HumanMotion) -> None:
        try:
            w = window_from_msg(msg)
        except ValueError as exc:
            self.get_logger().warn(f"bad HumanMotion window: {exc}")
            return
        with self.lock:
            req = self.requests.get(msg.request_id)
            if req is not None:
                req.windows.append(w)

    def _on_path(self, agent: str, msg) -> None:
        with self.lock:
            self.planned[agent] = path_to_array(msg)

    def send_all(self) -> None:
        for req in self.requests.values():
            req.sent_at = time.monotonic()
            self.pub.publish(
                Instruction(agent_id=req.agent, request_id=req.request_id, text=req.text)
            )
            self.get_logger().info(f"sent [{req.request_id}] {req.agent}: {req.text!r}")

    def all_final(self) -> bool:
        with self.lock:
            return all(r.final for r in self.requests.values())


def select_script(script, agents: int) -> tuple:
    """The first ``agents`` (1-3) instructions expected to succeed, plus every instruction
    expected to be rejected."""
    if not 1 <= agents <= 3:
        raise ValueError(f"agents must be 1-3, got {agents}")
    humans = [s for s in script if s[2] != "REJECTED"][:agents]
    return tuple(humans) + tuple(s for s in script if s[2] == "REJECTED")


def _wait(pred, timeout: float, stop: threading.Event, poll: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if pred():
            return True
        time.sleep(poll)
    return pred()


def _needed_classes(script, class_names) -> set[str]:
    """Class names (of the map's vocabulary) that the instructions expected to succeed
    mention, e.g. {"bookshelf", "chair", "bed"}."""
    need = set()
    for _agent, text, expected in script:
        if expected == "REJECTED":
            continue
        padded = f" {' '.join(re.findall(r'[a-z]+', text.lower()))} "
        need.update(n for n in class_names if f" {n.lower()} " in padded)
    return need


def _metrics(req: RequestLog, scene) -> dict:
    """Reference metrics of one request's played motion (see docs/metrics.md)."""
    from ssomotion_ros.eval import metrics as M

    out: dict = {
        "agent": req.agent,
        "text": req.text,
        "expected": req.expected,
        "final": req.final or "NO FINAL STATUS",
        "as_expected": req.final == req.expected,
        "reason": req.reason,
        "goal": req.goal,
        "states": req.states,
        "windows": len(req.windows),
    }
    if not req.windows:
        return out
    wins = sorted(req.windows, key=lambda w: w["start_frame"])
    joints = np.concatenate([w["joints"] for w in wins])
    first_exec = next((t for s, t, _ in req.states if s == "EXECUTING"), None)
    out.update(
        frames=int(len(joints)),
        seconds=round(len(joints) / 30.0, 2),
        first_window_s=first_exec,
        contact=float(M.contact_score(joints, floor_height=scene.floor_height)),
        foot_skating_m_s=float(M.foot_skating(joints, floor_height=scene.floor_height)),
    )
    from ssomotion_ros.body.collision import body_points

    pts, _radii = body_points(joints, 2)

    def sdf(p):
        return scene.signed_distance(p).detach().cpu().numpy()

    # One voxel of tolerance: feet resting on the floor touch its occupied voxels.
    tol = float(scene.voxel_size)
    out["non_penetration"] = M.non_penetration_body(pts, sdf=sdf, tolerance=tol)
    out.update(M.interaction_penetration(pts, sdf))
    m = _GOAL_XY.search(req.goal)
    if m:
        goal = np.array([float(m.group(1)), float(m.group(2))])
        d = np.linalg.norm(joints[:, 0, :2] - goal, axis=1)
        out.update(
            goal_xy=goal.tolist(),
            min_goal_distance_m=float(d.min()),
            last_goal_distance_m=float(d[-1]),
        )
    return out


def run_demo(cfg: DemoConfig, ros_args=()) -> int:
    """Run the demo; returns 0 when every instruction ended as expected."""
    t0 = time.monotonic()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    script = select_script(cfg.script, cfg.agents)
    graph: GraphSpec = load_graph(cfg.graph or None)
    scene_spec = next((n for n in graph.nodes if n.plugin.endswith(":SceneNode")), None)
    if scene_spec is not None:
        if cfg.prompt:
            scene_spec.parameters["prompt"] = cfg.prompt
        scene_spec.parameters["seed"] = cfg.seed
    nodes, shared = create_graph_nodes(graph, ros_args)
    driver = DemoDriver(script)
    runner = ExecutorThread([*nodes, driver])
    recorder = None
    stop = threading.Event()
    report: dict = {"script": [list(s) for s in script], "out": str(out.resolve())}
    try:
        with StopOnSignal(stop):
            if cfg.record:
                bag = Path(cfg.record_dir) if cfg.record_dir else out / "bag"
                if not cfg.record_dir and bag.exists():
                    import shutil

                    shutil.rmtree(bag)
                recorder = TopicRecorder(driver, bag, DEFAULT_TOPICS)
            vocabulary = getattr(shared.scene_model, "vocabulary", None)
            need = _needed_classes(script, vocabulary.names if vocabulary is not None else ())
            print(f"[demo] mapping the room until it shows: {', '.join(sorted(need))}")

            history: list[int] = []

            def mapped() -> bool:
                """The needed objects are in the map and it stopped growing (< 1 % more
                occupied voxels over the last 3 s): the survey has covered the room."""
                if not shared.scene_ready():
                    return False
                scene = shared.scene_model
                history.append(len(scene.occupied_voxels()[0]))
                names = {i.name for i in scene.instances()}
                settled = len(history) > 3 and history[-1] <= 1.01 * history[-4]
                return need <= names and settled

            ok = _wait(mapped, cfg.map_timeout_s, stop, poll=1.0)
            report["map_ready_s"] = round(time.monotonic() - t0, 1)
            report["map_voxels"] = history[-1] if history else 0
            if not ok:
                print(
                    f"[demo] warning: after {cfg.map_timeout_s:.0f} s the map still lacks "
                    "some objects or is still growing; sending the instructions anyway"
                )
            pub_ready = _wait(lambda: driver.pub.get_subscription_count() > 0, 15.0, stop)
            if not pub_ready:
                raise RuntimeError("the motion node did not subscribe to the instruction topic")
            driver.send_all()
            done = _wait(driver.all_final, cfg.motion_timeout_s, stop, poll=0.5)
            report["instructions_done_s"] = round(time.monotonic() - t0, 1)
            if not done:
                print(
                    f"[demo] warning: not every instruction ended within "
                    f"{cfg.motion_timeout_s:.0f} s"
                )
            time.sleep(0.5)
            runner.shutdown_executor()  # no callbacks run while the recorder detaches
            if recorder is not None:
                report["bag"] = {"path": str(recorder.writer.path), "messages": recorder.close()}
                recorder = None
            scene = shared.scene_model
            with driver.lock:
                reqs = list(driver.requests.values())
                planned = dict(driver.planned)
            report["requests"] = [_metrics(r, scene) for r in reqs]
            report["instances"] = [
                {"id": i.instance_id, "name": i.name, "centroid": np.round(i.centroid, 2).tolist()}
                for i in scene.instances()
            ]
            if cfg.pictures:
                report["pictures"] = _pictures(scene, reqs, planned, out)
    finally:
        runner.shutdown_executor()
        if recorder is not None:
            recorder.close()
        runner.stop()
    report["wall_s"] = round(time.monotonic() - t0, 1)
    expected_ok = all(r["as_expected"] for r in report["requests"])
    report["all_as_expected"] = expected_ok
    (out / "metrics.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    _print_summary(report, out)
    return 0 if expected_ok else 1


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _pictures(scene, reqs, planned, out: Path) -> dict:
    from ssomotion_ros.synthesis.types import MotionWindow
    from ssomotion_ros.viz.render import render_scene_and_motion

    windows = []
    labels = {}
    for r in reqs:
        for w in sorted(r.windows, key=lambda w: w["start_frame"]):
            windows.append(
                MotionWindow(
                    agent_id=w["agent_id"],
                    request_id=w["request_id"],
                    actions=np.array([w["action"]] * len(w["params"])),
                    start_frame=w["start_frame"],
                    params=w["params"],
                    joints=w["joints"],
                    root_poses=w["root_poses"],
                    planned_path=planned.get(r.agent, np.zeros((0, 2))),
                )
            )
        if r.windows:
            labels[r.agent] = r.text
    if not windows:
        return {}
    png, gif = render_scene_and_motion(
        scene, windows, out / "demo.png", out / "demo.gif", labels=labels
    )
    from ssomotion_ros.viz.render import RenderConfig

    top, _ = render_scene_and_motion(
        scene, windows, out / "demo_top.png", None, RenderConfig(view="top"), labels=labels
    )
    return {"png": str(png), "top_png": str(top), "gif": str(gif)}


def _print_summary(report: dict, out: Path) -> None:
    print("\n[demo] results")
    for r in report["requests"]:
        extra = ""
        if "min_goal_distance_m" in r:
            extra = (
                f"  goal dist {r['min_goal_distance_m']:.2f} m  contact {r['contact']:.2f}"
                f"  non-penetration {r['non_penetration']:.2f}"
            )
        mark = "ok " if r["as_expected"] else "BAD"
        print(
            f"  {mark} {r['agent']:>6}: {r['text']!r} -> {r['final']}"
            f"{' (' + r['reason'] + ')' if r['final'] == 'REJECTED' else ''}{extra}"
        )
    print(f"[demo] wall time {report['wall_s']} s; outputs in {out.resolve()}:")
    for key in ("png", "top_png", "gif"):
        if report.get("pictures", {}).get(key):
            print(f"    {report['pictures'][key]}")
    if "bag" in report:
        print(f"    {report['bag']['path']}  (rosbag2, MCAP)")
    print(f"    {out / 'metrics.json'}")


def driver_main(args=None) -> int:
    """``ros2 run ssomotion_ros demo_driver``: the demo's scripted instructions against a
    running graph (the launch file starts it). Waits for the motion node, sends the
    script, logs each final status and exits (0 when all ended as expected)."""
    import sys

    import rclpy

    from ssomotion_ros.ros.bringup import _split_ros_args

    rclpy.init(args=["demo_driver", *_split_ros_args(sys.argv if args is None else args)])
    node = DemoDriver()
    runner = ExecutorThread([node])
    stop = threading.Event()
    try:
        with StopOnSignal(stop):
            if not _wait(lambda: node.pub.get_subscription_count() > 0, 120.0, stop):
                node.get_logger().error("no motion node subscribed to /ssomotion/instruction_msg")
                return 3
            time.sleep(15.0)  # let the mapper see the room first
            node.send_all()
            _wait(node.all_final, 180.0, stop, poll=0.5)
            ok = True
            for r in node.requests.values():
                ok &= r.final == r.expected
                node.get_logger().info(
                    f"[{r.request_id}] {r.agent}: {r.text!r} -> {r.final or 'no final status'}"
                    f" {r.reason}"
                )
            return 0 if ok else 1
    finally:
        runner.stop()


def config_from_args(args) -> DemoConfig:
    return DemoConfig(
        out=Path(args.out),
        prompt=args.prompt,
        seed=args.seed,
        agents=args.agents,
        record=not args.no_record,
        record_dir=str(args.record or ""),
        pictures=not args.no_pictures,
        graph=str(args.graph or ""),
    )


__all__ = ["DEFAULT_SCRIPT", "DemoConfig", "DemoDriver", "driver_main", "run_demo"]
