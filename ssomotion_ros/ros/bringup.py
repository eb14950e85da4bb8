"""Start the node graph in one process: ``ssomotion bringup`` (no ``ros2 launch`` needed).

Reads the graph spec (``config/demo.yaml`` by default, see
:mod:`ssomotion_ros.graph_spec`), writes its parameters to a temporary ROS params file
(so ``--ros-args -p name:=value`` on the command line overrides them), creates every
node in one process sharing one :class:`SharedState`, spins a SingleThreadedExecutor in
a thread and shuts down cleanly on SIGINT/SIGTERM: executor shutdown, join the spin
thread, destroy the nodes, then rclpy.shutdown.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import rclpy
import yaml
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from ssomotion_ros.graph_spec import GraphSpec, NodeSpec
from ssomotion_ros.ros.shared import SharedState

log = logging.getLogger("ssomotion.bringup")


def _import_plugin(spec: NodeSpec) -> type:
    module_name, _, cls_name = spec.plugin.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, cls_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"node {spec.name}: cannot load plugin {spec.plugin!r}: {exc}") from exc


def _remap_args(spec: NodeSpec) -> list[str]:
    if not spec.remappings:
        return []
    out = ["--ros-args"]
    for src, dst in spec.remappings.items():
        out += ["-r", f"{src}:={dst}"]
    return out


def _split_ros_args(args: Sequence[str]) -> list[str]:
    """Keep the ``--ros-args ...`` part of a command line (argv[0] dropped)."""
    args = list(args)
    if "--ros-args" in args:
        return args[args.index("--ros-args") :]
    return []


class ExecutorThread:
    """A SingleThreadedExecutor spinning ``nodes`` in a background thread.

    ``stop()`` shuts the executor down, joins the thread and destroys the nodes (in
    that order: skipping the join aborts some runs). ``stopped`` is set when the spin
    ends for any reason.
    """

    def __init__(self, nodes: list):
        self.nodes = list(nodes)
        self.executor = SingleThreadedExecutor()
        for n in self.nodes:
            self.executor.add_node(n)
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="ssomotion-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass
        except Exception:  # noqa: BLE001
            log.exception("executor stopped with an error")
        finally:
            self.stopped.set()

    def add_node(self, node) -> None:
        self.nodes.append(node)
        self.executor.add_node(node)

    def shutdown_executor(self) -> None:
        """Stop spinning (idempotent); the nodes stay alive until :meth:`stop`."""
        self.executor.shutdown()
        self._thread.join(timeout=5.0)

    def stop(self) -> None:
        self.shutdown_executor()
        for n in self.nodes:
            n.destroy_node()
        self.nodes.clear()
        if rclpy.ok():
            rclpy.shutdown()


class StopOnSignal:
    """Context manager: SIGINT/SIGTERM set ``event`` instead of raising."""

    def __init__(self, event: threading.Event):
        self.event = event
        self._old: dict = {}

    def __enter__(self) -> threading.Event:
        def _handler(signum, _frame):
            self.event.set()

        self._old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self.event

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def spin_until_signal(
    nodes: list,
    on_ready: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> int:
    """Spin ``nodes`` in a SingleThreadedExecutor until SIGINT/SIGTERM; clean shutdown.
    ``on_stop`` runs after the executor stopped and before the nodes are destroyed."""
    runner = ExecutorThread(nodes)
    with StopOnSignal(runner.stopped) as stop:
        if on_ready:
            on_ready()
        try:
            while not stop.wait(0.2):
                pass
        finally:
            runner.shutdown_executor()
            if on_stop:
                on_stop()
            runner.stop()
    return 0


def create_graph_nodes(
    graph: GraphSpec, ros_args: Sequence[str] = (), only: Sequence[str] = ()
) -> tuple[list, SharedState]:
    """Initialise rclpy with the graph's parameters and create its nodes (or those named
    in ``only``), sharing one :class:`SharedState`. The caller spins and shuts down."""
    specs = [n for n in graph.nodes if not only or n.name in only]
    if only:
        missing = sorted(set(only) - {n.name for n in specs})
        if missing:
            known = ", ".join(n.name for n in graph.nodes)
            raise ValueError(f"no node(s) {missing} in {graph.source}; the graph has: {known}")
    plugins = [(_import_plugin(s), s) for s in specs]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="ssomotion-params-") as f:
        yaml.safe_dump(graph.params_file_dict(), f)
        f.flush()
        init_args = ["ssomotion", "--ros-args", "--params-file", f.name, *ros_args]
        rclpy.init(args=init_args, signal_handler_options=SignalHandlerOptions.NO)
        shared = SharedState()
        nodes = []
        try:
            for cls, spec in plugins:
                nodes.append(cls(node_name=spec.name, shared=shared, cli_args=_remap_args(spec)))
        except Exception:
            for n in nodes:
                n.destroy_node()
            rclpy.shutdown()
            raise
    return nodes, shared


def run_graph(
    graph: GraphSpec,
    ros_args: Sequence[str] = (),
    only: Sequence[str] = (),
    record: str | Path | None = None,
) -> int:
    """Create every node of ``graph`` (or those named in ``only``) and spin them until
    SIGINT/SIGTERM; with ``record``, also write the main topics to a rosbag2 there."""
    if record is not None and Path(record).exists():
        raise ValueError(f"bag folder {record} exists already: choose a new path")
    nodes, _shared = create_graph_nodes(graph, ros_args, only)
    names = ", ".join(n.get_name() for n in nodes)
    recorder = None
    if record is not None:
        from ssomotion_ros.ros.recorder import DEFAULT_TOPICS, TopicRecorder

        rec_node = rclpy.create_node("ssomotion_recorder")
        nodes.append(rec_node)
        recorder = TopicRecorder(rec_node, record, DEFAULT_TOPICS)

    def ready():
        nodes[0].get_logger().info(f"bringup ready: {names} (Ctrl-C to stop)")

    def stopped():
        if recorder is not None:
            counts = recorder.close()
            log.info("bag %s: %s", record, counts)

    return spin_until_signal(nodes, ready, stopped)


def run_nodes(classes: list[type], args: Sequence[str] | None = None) -> int:
    """Run node classes alone with their default names (the per-node executables)."""
    ros_args = _split_ros_args(args or [])
    rclpy.init(args=["ssomotion", *ros_args], signal_handler_options=SignalHandlerOptions.NO)
    shared = SharedState()
    nodes = [cls(shared=shared) for cls in classes]
    return spin_until_signal(nodes)


def main(args: Sequence[str] | None = None) -> int:
    """``lib/ssomotion_ros/bringup``: the same as ``ssomotion bringup ARGS``."""
    from ssomotion_ros.cli.main import main as cli_main

    argv = list(sys.argv if args is None else args)
    return cli_main(["bringup", *argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
