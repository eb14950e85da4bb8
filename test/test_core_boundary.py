"""The core (everything outside ssomotion_ros/ros/) imports no ROS package."""

import ast
import sys
from pathlib import Path

ROS_MODULES = {
    "rclpy",
    "rcl_interfaces",
    "std_msgs",
    "sensor_msgs",
    "geometry_msgs",
    "nav_msgs",
    "visualization_msgs",
    "builtin_interfaces",
    "std_srvs",
    "tf2_ros",
    "tf2_msgs",
    "launch",
    "launch_ros",
    "ament_index_python",
    "rosidl_runtime_py",
}
PKG = Path(__file__).resolve().parents[1] / "ssomotion_ros"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_violations() -> list[str]:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "ros":
            continue
        for name in _imports(path):
            top = name.split(".")[0]
            if (
                top in ROS_MODULES
                or name.startswith("ssomotion_ros.msg")
                or name.startswith("ssomotion_ros.ros")
            ):
                bad.append(f"{rel}: imports {name}")
    return bad


def test_core_imports_no_ros():
    assert core_violations() == []


def test_the_check_catches_a_violation(tmp_path, monkeypatch):
    fake = tmp_path / "ssomotion_ros"
    (fake / "sso").mkdir(parents=True)
    (fake / "sso" / "leak.py").write_text("from rclpy.node import Node\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake)
    assert core_violations() == ["sso/leak.py: imports rclpy.node"]
