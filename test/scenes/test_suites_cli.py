"""Benchmark suites and the ``ssomotion scene`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssomotion_ros.cli.main import main
from ssomotion_ros.scenes.suites import build_suite


@pytest.fixture(scope="module")
def interaction():
    return build_suite("interaction")


def test_interaction_suite(interaction):
    assert len(interaction) >= 10
    kinds = {c.scene.instance(c.target_instance).name for c in interaction}
    assert {"chair", "sofa", "bed", "stool", "bench"} <= kinds
    for c in interaction:
        assert c.action in ("sit", "lie")
        assert c.target is not None and c.target.kind == c.action
        inst = c.scene.instance(c.target_instance)
        assert any(a is c.target for a in inst.affordances)
        assert c.scene.free.is_reachable(c.start[:2]) and c.scene.free.is_reachable(c.goal)
        assert c.path_length > 0
        assert inst.name in c.instruction


def test_locomotion_suite_reachable_and_reproducible():
    a = build_suite("locomotion")
    assert len(a) >= 10
    for c in a:
        fs = c.scene.free
        assert c.action == "walk"
        assert fs.is_reachable(c.start[:2]) and fs.is_reachable(c.goal)
        assert not fs.occupied[tuple(fs.cell(c.goal))]  # goal on free floor
        assert c.path_length >= 2.0
        assert len(c.scene.spec.objects) >= 8  # cluttered
    b = build_suite("locomotion")
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]
    with pytest.raises(ValueError, match="available: locomotion, interaction"):
        build_suite("nope")


def test_cli_scene_writes_everything(tmp_path, capsys):
    out = tmp_path / "s"
    rc = main(["scene", "a bedroom with a bed and a nightstand", "--seed", "2", "--out", str(out),
               "--scans", "2"])  # fmt: skip
    assert rc == 0
    for name in ("scene.ply", "scene.yaml", "instances.json", "occupancy.npz", "compact_occ.npy",
                 "compact_occ_info.json", "layout.png", "scans_depth.npz", "scans_lidar.npz",
                 "scans/depth_0000.pcd", "scans/lidar_0001.pcd"):  # fmt: skip
        assert (out / name).is_file(), name
    from ssomotion_ros.scenes.loaders import load_compact_occ, read_pcd

    pcd = read_pcd(out / "scans" / "depth_0000.pcd")
    assert pcd.shape == (240, 320) and "label" in pcd.dtype.names
    occ = load_compact_occ(out / "compact_occ.npy")
    assert occ.rows.shape[1] == 8
    inst = json.loads((out / "instances.json").read_text())
    assert {i["name"] for i in inst} >= {"bed", "nightstand", "door"}
    # rebuilding from the spec gives the same instances
    rc = main(["scene", "--spec", str(out / "scene.yaml"), "--out", str(tmp_path / "t"),
               "--scans", "0"])  # fmt: skip
    assert rc == 0
    again = json.loads((tmp_path / "t" / "instances.json").read_text())
    assert [i["name"] for i in again] == [i["name"] for i in inst]
    np.testing.assert_allclose(
        [i["centroid"] for i in again], [i["centroid"] for i in inst], atol=1e-3
    )


def test_cli_errors(tmp_path, capsys):
    assert main(["scene", "a room with a dragon", "--out", str(tmp_path)]) == 2
    assert "unknown word 'dragon'" in capsys.readouterr().err
    assert main(["scene", "--out", str(tmp_path)]) == 2
    assert main(["scene", "--spec", str(tmp_path / "none.yaml"), "--out", str(tmp_path)]) == 2


def test_bench_scenes_smoke(capsys):
    assert main(["bench", "scenes", "--quick"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("pcd_read", "occupancy", "depth_scan"):
        assert out[key]["ours_s"] > 0 and out[key]["ratio_ours_over_open3d"] > 0
    assert out["occupancy"]["voxels"] > 1000
    assert set(out["layout_s"]) >= {"a kitchen"}
