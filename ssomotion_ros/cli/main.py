"""Entry point of the ``ssomotion`` command: discovers the subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ssomotion_ros import __version__

#: Packages whose modules are subcommands. The ROS ones live in the ROS layer (the core
#: imports nothing from it); they are found by name and import rclpy only when run.
COMMAND_PACKAGES = ("ssomotion_ros.cli.commands", "ssomotion_ros.ros.commands")


def _load_commands() -> list:
    mods = []
    for pkg_name in COMMAND_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_"):
                continue
            mods.append(importlib.import_module(f"{pkg_name}.{info.name}"))
    names = set()
    for mod in mods:
        for attr in ("NAME", "HELP", "configure", "run"):
            if not hasattr(mod, attr):
                raise RuntimeError(f"command module {mod.__name__} lacks {attr}")
        if mod.NAME in names:
            raise RuntimeError(f"two command modules define {mod.NAME!r}")
        names.add(mod.NAME)
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
        rc = int(args._run(args) or 0)
    except KeyboardInterrupt:
        rc = 130
    if argv is None and getattr(args, "fast_exit", False):
        # Commands that ran nodes have shut them down cleanly by now; the interpreter's
        # own teardown (torch, the text model) can take 5-13 s more, so skip it.
        import logging
        import os

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
