"""Subcommands of ``ssomotion``: one module per command.

Each module defines ``NAME`` (the subcommand), ``HELP`` (one line for ``--help``),
``configure(parser: argparse.ArgumentParser) -> None`` and
``run(args: argparse.Namespace) -> int`` (the exit code). :mod:`ssomotion_ros.cli.main`
discovers them, so adding a command means adding a module here and nothing else.
Modules must import heavy dependencies (torch, rclpy, open3d) inside ``run`` so that
``ssomotion --help`` stays fast.
"""
