"""ros2 launch ssomotion_ros demo.launch.py [graph:=FILE] [use_sim_time:=BOOL] [rviz:=BOOL]

Builds the launch description from the same graph spec as ``ssomotion bringup``
(``config/demo.yaml``): one Node action per graph node, with its parameters and
remappings. Each node runs as its own process here (``lib/ssomotion_ros/<executable>``).
Needs a ROS 2 install with ``launch``/``launch_ros`` (not on PyPI); without one, use
``ssomotion bringup``, which starts the same graph in one process.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from ssomotion_ros.graph_spec import load_graph

SHARE = get_package_share_directory("ssomotion_ros")
DEFAULT_GRAPH = os.path.join(SHARE, "config", "demo.yaml")
RVIZ_CONFIG = os.path.join(SHARE, "config", "demo.rviz")


def _nodes(context):
    graph = load_graph(LaunchConfiguration("graph").perform(context))
    use_sim_time = LaunchConfiguration("use_sim_time").perform(context).lower() == "true"
    actions = []
    for spec in graph.nodes:
        params = dict(spec.parameters)
        params["use_sim_time"] = use_sim_time
        actions.append(
            Node(
                package="ssomotion_ros",
                executable=spec.executable,
                name=spec.name,
                parameters=[params],
                remappings=list(spec.remappings.items()),
                output="screen",
            )
        )
    return actions


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "graph",
                default_value=DEFAULT_GRAPH,
                description="graph spec YAML (nodes, parameters, remappings)",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="use /clock instead of the wall clock",
            ),
            DeclareLaunchArgument(
                "rviz", default_value="false", description="also start rviz2 with config/demo.rviz"
            ),
            OpaqueFunction(function=_nodes),
            Node(
                package="rviz2",
                executable="rviz2",
                arguments=["-d", RVIZ_CONFIG],
                condition=IfCondition(LaunchConfiguration("rviz")),
                output="screen",
            ),
        ]
    )
