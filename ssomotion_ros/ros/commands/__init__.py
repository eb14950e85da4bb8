"""``ssomotion`` subcommands that run ROS nodes or talk over DDS (bringup, demo, say).

Same protocol as :mod:`ssomotion_ros.cli.commands`; kept here so the core CLI package
imports nothing from the ROS layer. They import rclpy only inside ``run``.
"""
