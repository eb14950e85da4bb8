"""Fixtures of the SSO tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """Each test runs on the CPU and, when present, on CUDA."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return request.param


@pytest.fixture(scope="session")
def kinect_dir() -> Path:
    d = (DATA / "scans" / "kinect_tabletop").resolve()
    if not d.is_dir():
        pytest.skip(f"real scan data not found at {d}")
    return d
