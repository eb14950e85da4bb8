"""The node graph, defined once in a YAML file (default ``config/demo.yaml``).

Both ``launch/demo.launch.py`` (ROS installs) and ``ssomotion bringup`` (one process,
no ``ros2 launch`` needed) read it. Format::

    nodes:
      - name: ssomotion_instruction          # ROS node name (unique)
        executable: instruction_node         # lib/ssomotion_ros/<executable>
        plugin: ssomotion_ros.ros.instruction_node:InstructionNode
        parameters: {max_text_length: 500}   # ROS parameters of this node
        remappings: {/from: /to}             # topic remappings of this node

No ROS import here: the launch file and tests read it without rclpy.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class NodeSpec:
    """One node of the graph."""

    name: str
    executable: str
    plugin: str
    parameters: dict = field(default_factory=dict)
    remappings: dict = field(default_factory=dict)


@dataclass
class GraphSpec:
    """The whole graph: nodes in start order, and where it was read from."""

    nodes: list[NodeSpec]
    source: Path | None = None

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in graph {self.source}")

    def params_file_dict(self) -> dict:
        """The parameters as a ROS params file (``{node: {ros__parameters: ...}}``)."""
        return {n.name: {"ros__parameters": dict(n.parameters)} for n in self.nodes}


def share_dir() -> Path:
    """Folder holding ``config/`` and ``launch/``: the source tree, else the install."""
    src = Path(__file__).resolve().parent.parent
    if (src / "config").is_dir() and (src / "package.xml").is_file():
        return src
    installed = Path(sys.prefix) / "share" / "ssomotion_ros"
    if installed.is_dir():
        return installed
    env = os.environ.get("AMENT_PREFIX_PATH", "")
    for prefix in env.split(os.pathsep):
        cand = Path(prefix) / "share" / "ssomotion_ros"
        if prefix and cand.is_dir():
            return cand
    raise FileNotFoundError(
        "cannot find the ssomotion_ros share folder (config/, launch/); "
        "run ./setup.sh or install the package"
    )


def default_graph_path() -> Path:
    return share_dir() / "config" / "demo.yaml"


def load_graph(path: str | os.PathLike | None = None) -> GraphSpec:
    """Read and validate a graph spec. Raises ValueError naming what is wrong."""
    path = Path(path) if path else default_graph_path()
    if not path.is_file():
        raise ValueError(f"graph file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"graph file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise ValueError(f"graph file {path} needs a top-level 'nodes:' list")
    nodes: list[NodeSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["nodes"]):
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: nodes[{i}] must be a mapping")
        unknown = set(raw) - {"name", "executable", "plugin", "parameters", "remappings"}
        if unknown:
            raise ValueError(f"{path}: nodes[{i}] has unknown keys {sorted(unknown)}")
        for key in ("name", "executable", "plugin"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise ValueError(f"{path}: nodes[{i}] needs a string '{key}'")
        if not _NAME_RE.match(raw["name"]):
            raise ValueError(f"{path}: node name {raw['name']!r} is not a valid ROS name")
        if raw["name"] in seen:
            raise ValueError(f"{path}: node name {raw['name']!r} appears twice")
        if ":" not in raw["plugin"]:
            raise ValueError(f"{path}: plugin {raw['plugin']!r} must be 'module:Class'")
        seen.add(raw["name"])
        params = raw.get("parameters") or {}
        remaps = raw.get("remappings") or {}
        if not isinstance(params, dict) or not isinstance(remaps, dict):
            raise ValueError(f"{path}: nodes[{i}] parameters/remappings must be mappings")
        nodes.append(
            NodeSpec(raw["name"], raw["executable"], raw["plugin"], dict(params), dict(remaps))
        )
    if not nodes:
        raise ValueError(f"graph file {path} has no nodes")
    return GraphSpec(nodes, path)
