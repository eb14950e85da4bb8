"""``ssomotion bringup``: the node graph in one process (where ``ros2 launch`` is absent)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

NAME = "bringup"
HELP = "start the ssomotion node graph in one process (Ctrl-C or SIGTERM to stop)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--graph",
        type=Path,
        default=None,
        help="graph spec YAML (default: config/demo.yaml of the package)",
    )
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="NODE", help="start only these nodes"
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="DIR",
        help="record the main topics to a rosbag2 (MCAP) folder (must not exist yet)",
    )
    parser.epilog = (
        "ROS arguments go last: ssomotion bringup --ros-args -p "
        "ssomotion_motion:synthesizer:=learned -r /ssomotion/status:=/status"
    )
    parser.set_defaults(accepts_ros_args=True, fast_exit=True)


def run(args: argparse.Namespace) -> int:
    from ssomotion_ros.graph_spec import load_graph
    from ssomotion_ros.ros.bringup import run_graph

    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    try:
        graph = load_graph(args.graph)
        return run_graph(graph, args.ros_args, only=args.only, record=args.record)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
