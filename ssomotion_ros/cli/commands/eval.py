"""``ssomotion eval --suite NAME --json FILE``: run an evaluation suite.

Suites are provided by modules listed in :data:`PROVIDERS`. A provider module defines
``SUITES: dict[str, Callable[[argparse.Namespace], dict]]``; the callable runs the
suite with the parsed arguments and returns a JSON-serialisable dict of results.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

NAME = "eval"
HELP = "run an evaluation suite and write its metrics as JSON"

#: Modules that provide evaluation suites (see the module docstring).
PROVIDERS: list[str] = [
    "ssomotion_ros.language.evaluation",
    "ssomotion_ros.motion.datasets.evaluation",
    "ssomotion_ros.motion.quality",
    "ssomotion_ros.eval.synthesis_eval",
    "ssomotion_ros.retarget.evaluation",
]


def available_suites() -> dict:
    suites: dict = {}
    for modname in PROVIDERS:
        mod = importlib.import_module(modname)
        for name, fn in mod.SUITES.items():
            if name in suites:
                raise RuntimeError(f"suite {name!r} is provided twice ({modname})")
            suites[name] = fn
    return suites


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", help="suite name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--plots", type=Path, help="folder for plots, where a suite makes any")
    parser.add_argument("--checkpoint", type=Path, help="motion checkpoint (default: shipped)")
    parser.add_argument("--samples", type=int, default=None, help="samples per case (best-of-N)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument(
        "--quick", action="store_true", help="a small subset, for smoke tests (where supported)"
    )


def _first_line(fn) -> str:
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def run(args: argparse.Namespace) -> int:
    suites = available_suites()
    if args.list:
        for name in sorted(suites):
            print(f"{name:16s} {_first_line(suites[name])}".rstrip())
        return 0
    if not args.suite:
        print("error: --suite NAME is required (ssomotion eval --list shows them)", file=sys.stderr)
        return 2
    if args.suite not in suites:
        known = ", ".join(sorted(suites)) or "(none yet)"
        print(f"error: unknown suite {args.suite!r}; available: {known}", file=sys.stderr)
        return 2
    result = suites[args.suite](args)
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
        print(f"wrote {args.json}")
    summary = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
