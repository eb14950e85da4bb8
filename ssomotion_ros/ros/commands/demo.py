"""``ssomotion demo``: a generated room, a live map and three instructed humans."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = "run the demo: room from a prompt, live mapping, 3 instructed humans, pictures + bag"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo_out"),
        help="output folder (pictures, GIF, bag, metrics.json)",
    )
    parser.add_argument("--prompt", default="", help="room to generate (default: the graph's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the room and the survey")
    parser.add_argument(
        "--agents",
        type=int,
        default=3,
        choices=(1, 2, 3),
        help="scripted humans taking part (a rejected instruction is always sent)",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no display: never try to open RViz (pictures are written anyway)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the rosbag2 (MCAP) here (default: OUT/bag)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not write the rosbag2")
    parser.add_argument("--no-pictures", action="store_true", help="do not render PNG/GIF")
    parser.add_argument(
        "--graph",
        type=Path,
        default=None,
        help="graph spec YAML (default: config/demo.yaml of the package)",
    )
    parser.epilog = (
        "Exit code 0 when every scripted instruction ended as expected (3 SUCCEEDED, 1 "
        "REJECTED). ROS arguments go last (--ros-args -p NODE:name:=value)."
    )
    parser.set_defaults(accepts_ros_args=True, fast_exit=True)


def run(args: argparse.Namespace) -> int:
    import logging
    import os
    import shutil
    import subprocess

    from ssomotion_ros.ros.demo import config_from_args, run_demo

    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    cfg = config_from_args(args)
    viewer = None
    if not args.headless and os.environ.get("DISPLAY") and shutil.which("rviz2"):
        from ssomotion_ros.graph_spec import share_dir

        viewer = subprocess.Popen(["rviz2", "-d", str(share_dir() / "config" / "demo.rviz")])
    try:
        return run_demo(cfg, args.ros_args)
    finally:
        if viewer is not None:
            viewer.terminate()
