"""Entry point of the ``ssomotion`` command: discovers the subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ssomotion_ros import __version__
from ssomotion_ros.cli import commands


def _load_commands() -> list:
    mods = []
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        for attr in ("NAME", "HELP", "configure", "run"):
            if not hasattr(mod, attr):
                raise RuntimeError(f"command module {mod.__name__} lacks {attr}")
        mods.append(mod)
    return sorted(mods, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssomotion",
        description=(
            "Instructed, full-body simulated humans in a robot's scanned world. "
            "Run 'ssomotion COMMAND --help' for the options of a command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ssomotion {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, ros_args = parser.parse_known_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if ros_args and not getattr(args, "accepts_ros_args", False):
        parser.error(f"unrecognized arguments: {' '.join(ros_args)}")
    args.ros_args = ros_args
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
