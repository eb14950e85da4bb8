"""ros2 launch ssomotion_ros demo.launch.py [prompt:=TEXT] [agents:=N] [rviz:=BOOL] ...

Builds the launch description from the same graph spec as ``ssomotion bringup``
(``config/demo.yaml``): one Node action per graph node, with its parameters and
remappings, plus the demo's scripted instructions (``demo_driver``) and RViz. Each node
runs as its own process here (``lib/ssomotion_ros/<executable>``), so the motion node
fuses the mapper's input clouds itself (``cloud_topic``, its embedded mapper) instead of
sharing the mapper's SceneModel as it does in one process. Needs a ROS 2 install with ``launch``/
``launch_ros`` (not on PyPI); without one, ``ssomotion demo`` / ``ssomotion bringup``
start the same graph in one process.

Arguments: graph (spec file), prompt (room to generate; "" = the graph's), agents
(scripted humans 0-3; 0 = no script), rviz (true|false), use_sim_time (true|false).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ssomotion_ros.graph_spec import load_graph

SHARE = get_package_share_directory("ssomotion_ros")
DEFAULT_GRAPH = os.path.join(SHARE, "config", "demo.yaml")
RVIZ_CONFIG = os.path.join(SHARE, "config", "demo.rviz")


def _nodes(context):
    graph = load_graph(LaunchConfiguration("graph").perform(context))
    use_sim_time = LaunchConfiguration("use_sim_time").perform(context).lower() == "true"
    prompt = LaunchConfiguration("prompt").perform(context)
    agents = int(LaunchConfiguration("agents").perform(context))
    mapper = {}
    actions = []
    for spec in graph.nodes:
        params = dict(spec.parameters)
        if spec.plugin.endswith(":SceneNode") and prompt:
            params["prompt"] = prompt
        if spec.plugin.endswith(":MapperNode"):
            mapper = params
        params["use_sim_time"] = use_sim_time
        actions.append((spec, params))
    out = []
    for spec, params in actions:
        if spec.plugin.endswith(":MotionNode") and mapper:
            # Separate processes share no SceneModel: the motion node fuses the same
            # clouds with its embedded mapper (which publishes nothing itself).
            params.setdefault("cloud_topic", mapper.get("cloud_topic", "/semantic_pointcloud"))
            for key in ("vocabulary_path", "voxel_size", "layout"):
                if key in mapper:
                    params.setdefault(f"mapper.{key}", mapper[key])
            params.setdefault("mapper.publish_rate", 0.0)
        out.append(
            Node(
                package="ssomotion_ros",
                executable=spec.executable,
                name=spec.name,
                parameters=[params],
                remappings=list(spec.remappings.items()),
                output="screen",
            )
        )
    if agents > 0:
        out.append(
            Node(
                package="ssomotion_ros",
                executable="demo_driver",
                name="ssomotion_demo",
                parameters=[{"agents": agents, "use_sim_time": use_sim_time}],
                output="screen",
            )
        )
    return out


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "graph", default_value=DEFAULT_GRAPH, description="graph spec YAML"
            ),
            DeclareLaunchArgument(
                "prompt", default_value="", description="room to generate ('' = the graph's)"
            ),
            DeclareLaunchArgument(
                "agents", default_value="3", description="scripted humans (0-3; 0 = no script)"
            ),
            DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
            DeclareLaunchArgument(
                "rviz", default_value="true", description="start rviz2 with config/demo.rviz"
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
