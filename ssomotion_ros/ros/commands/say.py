"""``ssomotion say "walk to the sofa" [--agent NAME] [--wait]``."""

from __future__ import annotations

import argparse
import sys

NAME = "say"
HELP = "publish an instruction over DDS (like 'ros2 topic pub'); --wait prints its statuses"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help='the instruction, e.g. "walk to the sofa"')
    parser.add_argument("--agent", default="", help="agent to address (default: the node's)")
    parser.add_argument(
        "--wait", action="store_true", help="print status replies until a final state"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the final status"
    )
    parser.add_argument(
        "--discovery-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the instruction subscriber to appear",
    )
    parser.add_argument(
        "--string",
        action="store_true",
        help="publish std_msgs/String on /ssomotion/instruction instead of an Instruction msg",
    )
    parser.epilog = (
        "Exit codes: 0 published (with --wait: final state SUCCEEDED), 1 final state "
        "REJECTED/FAILED/CANCELLED, 3 no subscriber or no final status before the timeout."
    )


def run(args: argparse.Namespace) -> int:
    from ssomotion_ros.ros.say import STATE_NAMES, format_status, say

    result = say(
        args.text,
        agent=args.agent,
        wait=args.wait,
        timeout=args.timeout,
        discovery_timeout=args.discovery_timeout,
        use_string=args.string,
        on_status=lambda s: print(format_status(s), flush=True),
    )
    if not result.delivered:
        print(
            f"error: no subscriber for the instruction topic within "
            f"{args.discovery_timeout:.0f} s. Is 'ssomotion bringup' running with the "
            "same ROS_DOMAIN_ID?",
            file=sys.stderr,
        )
        return 3
    if not args.wait:
        print(f"sent [{result.request_id}]")
        return 0
    if result.final_state is None:
        print(f"error: no final status within {args.timeout:.0f} s", file=sys.stderr)
        return 3
    from ssomotion_ros.msg import MotionStatus

    print(f"final: {STATE_NAMES[result.final_state]}")
    return 0 if result.final_state == MotionStatus.SUCCEEDED else 1
