"""Scene outputs: mesh, occupancy, instances, PNG; scans agree with the mesh; SSO ingest."""

from __future__ import annotations

import numpy as np
import pytest

from ssomotion_ros.scenes.loaders import read_ply_labels
from ssomotion_ros.scenes.scene import SemanticOccupancy, generate_scene
from ssomotion_ros.scenes.sensors import (
    DepthCameraConfig,
    LidarConfig,
    Raycaster,
    depth_scan,
    lidar_scan,
    scans_from_npz,
    scans_to_npz,
    simulate_scans,
    survey_poses,
)

o3d = pytest.importorskip("open3d")


@pytest.fixture(scope="module")
def scene():
    return generate_scene("a living room with a sofa, an armchair, a coffee table and a plant", 4)


@pytest.fixture(scope="module")
def caster(scene):
    return Raycaster(scene)


def test_instances_and_mesh(scene, tmp_path):
    names = sorted(i.name for i in scene.instances)
    assert names[:4] == ["armchair", "coffee table", "door", "plant"]
    ids = [i.instance_id for i in scene.instances]
    assert len(set(ids)) == len(ids)
    m = scene.mesh()
    assert m.vertices.dtype == np.float32 and m.faces.max() < len(m.vertices)
    assert len(m.faces) < 5000  # modest meshes
    for inst in scene.instances:  # each instance's vertices lie in its bbox
        v = m.vertices[m.vertex_instance == inst.instance_id]
        assert len(v) and np.all(v >= inst.bbox_min - 1e-5) and np.all(v <= inst.bbox_max + 1e-5)
    scene.mesh().save_ply(tmp_path / "m.ply")
    ply = read_ply_labels(tmp_path / "m.ply")
    np.testing.assert_array_equal(ply.labels, m.vertex_label)
    np.testing.assert_array_equal(ply.instances, m.vertex_instance)
    np.testing.assert_array_equal(ply.faces, m.faces)


@pytest.mark.parametrize("solid", [False, True])
def test_occupancy_labels_follow_geometry(scene, tmp_path, solid):
    vs = 0.05
    occ = scene.occupancy(voxel_size=vs, solid=solid)
    c = occ.centers()
    assert len(np.unique(occ.indices, axis=0)) == len(occ.indices)
    assert np.all(occ.indices >= 0) and np.all(occ.indices < occ.shape)
    for inst in scene.instances:
        sel = occ.instance == inst.instance_id
        assert sel.any(), inst.name
        assert np.all(occ.label[sel] == inst.label)
        assert np.all(c[sel] >= inst.bbox_min - vs) and np.all(c[sel] <= inst.bbox_max + vs)
    floor = occ.label == scene.labels.id_of("floor")
    assert np.all(np.abs(c[floor, 2]) <= vs)
    occ.save_npz(tmp_path / "o.npz")
    back = SemanticOccupancy.load_npz(tmp_path / "o.npz")
    np.testing.assert_array_equal(back.indices, occ.indices)
    np.testing.assert_array_equal(back.label, occ.label)
    cocc = occ.to_compact_occ()
    assert cocc.rows.shape == (len(occ.indices), 8)
    assert np.all(cocc.rows[:, 7] > 0)  # label 0 means empty in the reference
    if solid:
        assert len(occ.indices) > len(scene.occupancy(voxel_size=vs).indices)
    with pytest.raises(ValueError, match="voxel_size"):
        scene.occupancy(voxel_size=0)


def _closest_face_labels(scene, pts):
    m = scene.mesh()
    rc = o3d.t.geometry.RaycastingScene()
    rc.add_triangles(o3d.core.Tensor(m.vertices), o3d.core.Tensor(m.faces.astype(np.uint32)))
    ans = rc.compute_closest_points(o3d.core.Tensor(pts.astype(np.float32)))
    pid = ans["primitive_ids"].numpy()
    d = np.linalg.norm(ans["points"].numpy() - pts, axis=1)
    return m.face_label[pid], m.face_instance[pid], d


def test_depth_scan_labels_agree_with_mesh(scene, caster):
    cfg = DepthCameraConfig(width=80, height=60, noise_scale=0.0, dropout=0.0)
    pose = scene.start_pose()
    s = depth_scan(caster, pose, cfg)
    assert s.points.shape == (60, 80)
    assert s.kind == "depth"
    v = s.valid()
    assert v.mean() > 0.8
    assert np.all(s.points["label"][~v] == 0)
    p = s.points[v]
    pts = np.stack([p["x"], p["y"], p["z"]], 1).astype(np.float64)
    lab, inst, d = _closest_face_labels(scene, pts)
    assert d.max() < 1e-3
    # a point on an edge may be closest to the neighbouring face: allow a sliver
    assert np.mean(lab == p["label"]) > 0.99
    assert np.mean(inst == p["instance"]) > 0.99
    # depth along the optical axis is within range and the camera is at the pose
    T = s.sensor_pose
    np.testing.assert_allclose(T[:2, 3], pose[:2])
    depth = (pts - T[:3, 3]) @ T[:3, 0]
    assert depth.min() >= cfg.min_range - 1e-4 and depth.max() <= cfg.max_range + 1e-4


def test_noise_dropouts_and_lidar(scene, caster):
    pose = scene.start_pose()
    clean = depth_scan(caster, pose, DepthCameraConfig(noise_scale=0, dropout=0))
    noisy = depth_scan(caster, pose, DepthCameraConfig(dropout=0.2), rng=np.random.default_rng(1))
    assert noisy.valid().sum() < 0.9 * clean.valid().sum()
    both = clean.valid() & noisy.valid()
    dz = noisy.points["x"][both] - clean.points["x"][both]
    assert 1e-4 < np.std(dz) < 0.05
    cfg = LidarConfig(rings=8, azimuth_samples=360, range_sigma=0.0, dropout=0.0)
    s = lidar_scan(caster, pose, cfg)
    assert s.points.ndim == 1 and s.valid().all()
    assert set(np.unique(s.points["ring"])) <= set(range(8))
    p = s.points
    pts = np.stack([p["x"], p["y"], p["z"]], 1).astype(np.float64)
    lab, _, d = _closest_face_labels(scene, pts)
    assert d.max() < 1e-3 and np.mean(lab == p["label"]) > 0.99
    rng = np.linalg.norm(pts - s.sensor_pose[:3, 3], axis=1)
    assert rng.min() >= cfg.min_range
    with pytest.raises(ValueError, match="pose must be"):
        lidar_scan(caster, np.zeros(2))
    no_ring = lidar_scan(caster, pose, LidarConfig(rings=4, azimuth_samples=90, ring_field=False))
    assert "ring" not in no_ring.points.dtype.names


def test_rgb_layout_decodes_through_sso_palette(scene, caster, tmp_path):
    from ssomotion_ros.scenes.labels import DEFAULT_LABELS_CSV
    from ssomotion_ros.sso.ingest import ingest_cloud
    from ssomotion_ros.sso.vocabulary import Vocabulary

    cfg = DepthCameraConfig(width=64, height=48)
    pose = scene.start_pose()
    a = depth_scan(caster, pose, cfg, "label", np.random.default_rng(3))
    b = depth_scan(caster, pose, cfg, "rgb", np.random.default_rng(3))
    assert b.points.dtype.names == ("x", "y", "z", "rgb")
    voc = Vocabulary.from_csv(DEFAULT_LABELS_CSV)
    ca = ingest_cloud(a.points)
    cb = ingest_cloud(b.points, palette=voc)
    assert ca.layout.startswith("label") and cb.layout.startswith("palette")
    np.testing.assert_array_equal(ca.labels, cb.labels)
    assert np.all(ca.instance >= 0)


def test_survey_and_npz_round_trip(scene, tmp_path):
    poses = survey_poses(scene, num=5, rng=np.random.default_rng(0))
    assert poses.shape == (5, 3)
    assert scene.free.is_reachable(poses[:, :2]).all()
    scans = simulate_scans(scene, poses, sensor="lidar", seed=1, rate=4.0)
    assert [s.stamp for s in scans] == [0, 0.25, 0.5, 0.75, 1.0]
    scans_to_npz(scans, tmp_path / "s.npz")
    back = scans_from_npz(tmp_path / "s.npz")
    assert len(back) == 5 and back[2].kind == "lidar"
    np.testing.assert_array_equal(back[2].points, scans[2].points)
    np.testing.assert_array_equal(back[2].sensor_pose, scans[2].sensor_pose)
    again = simulate_scans(scene, poses, sensor="lidar", seed=1, rate=4.0)
    np.testing.assert_array_equal(again[3].points, scans[3].points)  # seeded
    with pytest.raises(ValueError, match="sensor must be"):
        simulate_scans(scene, poses, sensor="sonar")


def test_png(scene, tmp_path):
    scene.save_png(tmp_path / "a.png", path_xy=np.array([[0.5, 0.5], [1.0, 1.5]]))
    data = (tmp_path / "a.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
