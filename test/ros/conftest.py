"""DDS test helpers: a bringup subprocess, and an in-process rclpy node that spins.

Every test here talks over real DDS on loopback, in the domain the top-level conftest
picked for this run. Discovery can take ~3 s: wait with timeouts, never fixed sleeps.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("ssomotion_ros.msg", reason="messages not built: run ./setup.sh")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from ros_helpers import REPO, SSOMOTION, Bringup  # noqa: E402

pytestmark = pytest.mark.dds


def run_ssomotion(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run ``ssomotion *args`` to completion (text output captured)."""
    return subprocess.run(
        [*SSOMOTION, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def ssomotion():
    """``ssomotion(*args)`` runs the ssomotion command in a subprocess and returns the
    CompletedProcess."""
    return run_ssomotion


@pytest.fixture
def start_bringup(tmp_path):
    """Factory: ``start_bringup(*args)`` starts ``ssomotion bringup *args`` and waits
    until it is ready; every started process is stopped (SIGTERM) after the test."""
    started: list[Bringup] = []

    def _start(*args: str, command: str = "bringup", ready: str = "bringup ready") -> Bringup:
        b = Bringup(command, *args, log_path=tmp_path / f"bringup{len(started)}.log")
        started.append(b)
        b.wait_for_log(ready)
        return b

    yield _start
    for b in started:
        b.stop()


class SpinningNode:
    """An rclpy node spun by a SingleThreadedExecutor in a background thread."""

    def __init__(self, name: str):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races end the spin
            pass

    def wait_for(self, predicate, timeout: float = 15.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture
def ros_node():
    """Factory for :class:`SpinningNode`; all are closed (executor first) after the test."""
    nodes: list[SpinningNode] = []

    def _make(name: str = "ssomotion_test") -> SpinningNode:
        n = SpinningNode(name)
        nodes.append(n)
        return n

    yield _make
    for n in nodes:
        n.close()
