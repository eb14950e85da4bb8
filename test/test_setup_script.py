"""setup.sh is idempotent: a second run on a set-up tree changes nothing and is fast."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_rerun_changes_nothing():
    if not (REPO / ".venv" / ".ssomotion" / "build").is_file():
        pytest.skip("tree not set up with ./setup.sh")
    env = {k: v for k, v in os.environ.items() if k != "ROS_DISTRO"}
    # The first run brings the tree up to date (it may rebuild after a change) ...
    first = subprocess.run(
        ["bash", "setup.sh"], cwd=REPO, capture_output=True, text=True, env=env, timeout=600
    )
    assert first.returncode == 0, first.stdout + first.stderr
    before = {p.name: p.read_text() for p in sorted((REPO / ".venv" / ".ssomotion").iterdir())}
    # ... the second must find everything in place.
    out = subprocess.run(
        ["bash", "setup.sh"], cwd=REPO, capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for line in (
        "dependencies already installed",
        "already installed (editable)",
        "messages already built",
    ):
        assert line in out.stdout, out.stdout
    after = {p.name: p.read_text() for p in sorted((REPO / ".venv" / ".ssomotion").iterdir())}
    assert after == before


def test_unknown_option_is_refused():
    out = subprocess.run(
        ["bash", "setup.sh", "--bogus"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2 and "unknown option --bogus" in out.stderr
