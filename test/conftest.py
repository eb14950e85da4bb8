"""Test-wide settings: DDS isolated to this test run, on loopback only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# One DDS domain per test run (several runs may share the machine), localhost only.
# Set at import time so every subprocess and in-process rclpy context inherits it.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 200))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Shared test helpers: a module named ``<area>_helpers.py`` in any test folder is
# importable by name from every test (tests run with --import-mode=importlib).
for _helper in sorted(Path(__file__).parent.rglob("*_helpers.py")):
    if str(_helper.parent) not in sys.path:
        sys.path.insert(0, str(_helper.parent))
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def _devices() -> list[str]:
    devs = ["cpu"]
    try:
        import torch

        if torch.cuda.is_available():
            devs.append("cuda")
    except ImportError:
        pass
    return devs


@pytest.fixture(params=["cpu", "cuda"])
def device(request) -> str:
    """Torch device to test on; the CUDA case is skipped where there is no GPU."""
    if request.param not in _devices():
        pytest.skip("CUDA is not available on this machine")
    return request.param
