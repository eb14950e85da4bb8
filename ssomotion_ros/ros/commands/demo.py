"""``ssomotion demo``: the demo. For now it starts the node graph (like ``bringup``)."""

from __future__ import annotations

import argparse

from ssomotion_ros.ros.commands import bringup

NAME = "demo"
HELP = "run the demo (currently: start the node graph, as 'ssomotion bringup' does)"


def configure(parser: argparse.ArgumentParser) -> None:
    bringup.configure(parser)
    parser.add_argument(
        "--headless", action="store_true", help="do not try to open RViz (no display needed)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (0: run until Ctrl-C)",
    )


def run(args: argparse.Namespace) -> int:
    if args.duration > 0:
        import os
        import signal
        import threading

        threading.Timer(args.duration, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    return bringup.run(args)
