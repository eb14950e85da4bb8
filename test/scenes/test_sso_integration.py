"""Simulated scans fused by the SSO: labels follow the mesh, instances match ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from ssomotion_ros.scenes.labels import DEFAULT_LABELS_CSV
from ssomotion_ros.scenes.scene import generate_scene
from ssomotion_ros.scenes.sensors import DepthCameraConfig, simulate_scans, survey_poses

torch = pytest.importorskip("torch")
o3d = pytest.importorskip("open3d")


@pytest.mark.parametrize("layout, seed", [("label", 0), ("rgb", 2), ("label", 3)])
def test_fused_scans_reproduce_the_scene(layout, seed):
    from ssomotion_ros.sso.scene import SceneModel
    from ssomotion_ros.sso.vocabulary import Vocabulary

    torch.set_num_threads(1)
    scene = generate_scene("a living room with a sofa, an armchair and a coffee table", seed)
    poses = survey_poses(scene, num=10, step=0.4, rng=np.random.default_rng(0))
    cam = DepthCameraConfig(width=160, height=120)
    scans = simulate_scans(scene, poses, "depth", layout, seed=1, depth_config=cam)
    model = SceneModel(vocabulary=Vocabulary.from_csv(DEFAULT_LABELS_CSV))
    for s in scans:
        model.fuse(s.points, stamp=s.stamp)
    snap = model.snapshot()
    centres = (snap.coords.cpu().numpy() + 0.5) * snap.voxel_size
    labels = snap.labels.cpu().numpy().reshape(len(centres), -1)[:, 0]
    # reference: the label of the mesh triangle closest to each fused voxel centre
    m = scene.mesh()
    rc = o3d.t.geometry.RaycastingScene()
    rc.add_triangles(o3d.core.Tensor(m.vertices), o3d.core.Tensor(m.faces.astype(np.uint32)))
    ans = rc.compute_closest_points(o3d.core.Tensor(centres.astype(np.float32)))
    ref = m.face_label[ans["primitive_ids"].numpy()]
    assert np.mean(ref == labels) > 0.95
    fused = model.instances()
    seen: dict[int, int] = {}  # instance id -> points observed by the survey
    if layout != "label":  # same seed, same rays: the label layout says who was seen
        scans = simulate_scans(scene, poses, "depth", "label", seed=1, depth_config=cam)
    for s in scans:
        ids, counts = np.unique(s.points["instance"][s.valid()], return_counts=True)
        for i, c in zip(ids.tolist(), counts.tolist()):
            seen[i] = seen.get(i, 0) + c
    checked = 0
    for gt in scene.instances:
        if gt.name in ("door", "window") or seen.get(gt.instance_id, 0) < 500:
            continue  # partial coverage: objects the survey never saw are not expected
        checked += 1
        match = [f for f in fused if f.name == gt.name]
        assert match, f"{gt.name} not found in the fused map"
        # partial views shift a centroid, but it stays on the object's footprint, and the
        # fused bounds stay inside the true bounds (plus ~3 voxels: quantisation, noise and
        # the SSO clustering boundary)
        lo, hi = gt.bbox_min - 0.15, gt.bbox_max + 0.15
        best = min(match, key=lambda f: np.linalg.norm(f.centroid[:2] - gt.centroid[:2]))
        assert np.all(best.centroid[:2] >= lo[:2]) and np.all(best.centroid[:2] <= hi[:2]), gt.name
        assert np.all(best.bbox_min[:2] >= lo[:2]) and np.all(best.bbox_max[:2] <= hi[:2]), gt.name
    assert checked >= 2
