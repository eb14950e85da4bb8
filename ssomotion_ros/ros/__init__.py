"""The ROS 2 layer: parameters -> config dataclasses, message <-> array conversions,
thin nodes that call the core, and the in-process bringup. Only this subpackage
imports rclpy and message packages."""
