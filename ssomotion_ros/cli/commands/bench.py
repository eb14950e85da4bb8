"""``ssomotion bench NAME --json FILE``: speed and memory benchmarks.

Each benchmark measures our figure and a peer's in the same run and reports ratios.
Benchmarks are provided by modules listed in :data:`PROVIDERS`; a provider defines
``BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict]]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

NAME = "bench"
HELP = "run a speed/memory benchmark (figures plus ratios against a peer)"

#: Modules that provide benchmarks (see the module docstring).
PROVIDERS: list[str] = [
    "ssomotion_ros.motion.planning.bench",
    "ssomotion_ros.language.bench",
    "ssomotion_ros.sso.bench",
    "ssomotion_ros.motion.bench",
    "ssomotion_ros.body.bench",
    "ssomotion_ros.scenes.bench",
    "ssomotion_ros.synthesis.bench",
]


def available() -> dict:
    found: dict = {}
    for modname in PROVIDERS:
        mod = importlib.import_module(modname)
        for name, fn in mod.BENCHMARKS.items():
            if name in found:
                raise RuntimeError(f"benchmark {name!r} is provided twice ({modname})")
            found[name] = fn
    return found


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="benchmark name, e.g. sso or motion")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for smoke tests")


def run(args: argparse.Namespace) -> int:
    found = available()
    if args.name not in found:
        known = ", ".join(sorted(found)) or "(none yet)"
        print(f"error: unknown benchmark {args.name!r}; available: {known}", file=sys.stderr)
        return 2
    result = found[args.name](args)
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
        print(f"wrote {args.json}")
    print(text)
    return 0
