"""pip install of ssomotion_ros: the ROS-free core and the ``ssomotion`` command.

On a ROS install the package is built by colcon (CMakeLists.txt), which also generates
the messages; ./setup.sh does both for a plain machine. Version: keep equal to package.xml.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _data_files():
    out = {}
    for sub in ("config", "launch", "msg"):
        for f in sorted((HERE / sub).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                dest = str(Path("share/ssomotion_ros") / f.parent.relative_to(HERE))
                out.setdefault(dest, []).append(str(f.relative_to(HERE)))
    return sorted(out.items())


def _requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    reqs = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    return [r for r in reqs if r.split("=")[0] not in ("pytest", "ruff", "setuptools")]


setup(
    name="ssomotion_ros",
    version="0.1.0",
    description="Instructed full-body simulated humans in a robot's scanned world (ROS 2)",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ssomotion_ros", "ssomotion_ros.*"]),
    include_package_data=True,
    package_data={
        "ssomotion_ros": [
            "**/*.yaml",
            "**/*.csv",
            "**/*.json",
            "**/*.jsonl",
            "**/*.safetensors",
            "**/*.md",
        ]
    },
    data_files=_data_files(),
    install_requires=_requirements(),
    extras_require={
        "ros": [
            "ros-rclpy[fastrtps]",
            "ros-std-msgs",
            "ros-sensor-msgs",
            "ros-geometry-msgs",
            "ros-nav-msgs",
            "ros-visualization-msgs",
            "ros-std-srvs",
        ],
        "openclip": ["open_clip_torch"],
        "dev": ["pytest", "ruff"],
    },
    entry_points={"console_scripts": ["ssomotion = ssomotion_ros.cli.main:main"]},
)
