"""The scan stream behind the scene node (ROS-free)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssomotion_ros.scenes.stream import ScanStream, SceneStreamConfig, load_scan_file

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scans" / "kinect_tabletop"


def _drain(stream: ScanStream, n: int, timeout: float = 30.0):
    out = []
    stream.start()
    try:
        while len(out) < n:
            item = stream.get(timeout=timeout)
            assert item is not None, (
                f"stream produced {len(out)} of {n} clouds (error {stream.error})"
            )
            out.append(item)
    finally:
        stream.stop()
    return out


def test_generated_stream_is_seeded_and_bounded():
    cfg = SceneStreamConfig(prompt="a bedroom with a bed", sensor="lidar", lidar_rings=4,
                            num_poses=3, max_clouds=4, prefetch=1)  # fmt: skip
    a = _drain(ScanStream(cfg), 4)
    assert [i.index for i in a] == [0, 1, 2, 3]
    assert "ring" in a[0].points.dtype.names and "label" in a[0].points.dtype.names
    # the survey loops: cloud 3 is taken from pose 0 again
    np.testing.assert_allclose(a[3].sensor_pose, a[0].sensor_pose)
    b = _drain(ScanStream(cfg), 4)
    np.testing.assert_array_equal(a[2].points, b[2].points)
    s = ScanStream(cfg)
    s.start()
    assert _count_after_stop(s) <= 4


def _count_after_stop(s: ScanStream) -> int:
    import time

    time.sleep(1.0)
    s.stop()
    n = 0
    while s.get() is not None:
        n += 1
    return n


def test_spec_file_and_rgb_layout(tmp_path):
    from ssomotion_ros.scenes.layout import generate_spec

    generate_spec("a room with a bench", seed=1).save(tmp_path / "s.yaml")
    cfg = SceneStreamConfig(spec_file=str(tmp_path / "s.yaml"), layout="rgb", depth_width=40,
                            depth_height=30, max_clouds=1)  # fmt: skip
    (item,) = _drain(ScanStream(cfg), 1)
    assert item.points.shape == (30, 40) and item.points.dtype.names == ("x", "y", "z", "rgb")


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real scans not found at {DATA}")
def test_replay_real_pcd_folder():
    clouds = load_scan_file(DATA)
    assert len(clouds) == 2 and clouds[0][0].shape == (480, 640)
    np.testing.assert_allclose(clouds[0][1], np.eye(4))  # VIEWPOINT 0 0 0 1 0 0 0
    items = _drain(ScanStream(SceneStreamConfig(scan_file=str(DATA), max_clouds=3)), 3)
    assert items[2].source == items[0].source


def test_bad_configs(tmp_path):
    with pytest.raises(ValueError, match="sensor must be"):
        SceneStreamConfig(sensor="sonar")
    with pytest.raises(ValueError, match="rate must be"):
        SceneStreamConfig(rate=0)
    with pytest.raises(ValueError, match="unknown word"):
        ScanStream(SceneStreamConfig(prompt="a room with a dragon"))
    with pytest.raises(FileNotFoundError):
        ScanStream(SceneStreamConfig(scan_file=str(tmp_path / "none.pcd")))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unsupported scan file"):
        load_scan_file(tmp_path / "x.txt")
