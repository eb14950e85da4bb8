"""Simulated scans fused by the SSO: labels follow the mesh, instances match ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from ssomotion_ros.scenes.labels import DEFAULT_LABELS_CSV
from ssomotion_ros.scenes.scene import generate_scene
from ssomotion_ros.scenes.sensors import DepthCameraConfig, simulate_scans, survey_poses

torch = pytest.importorskip("torch")
o3d = pytest.importorskip("open3d")


@pytest.mark.parametrize("layout", ["label", "rgb"])
def test_fused_scans_reproduce_the_scene(layout):
    from ssomotion_ros.sso.scene import SceneModel
    from ssomotion_ros.sso.vocabulary import Vocabulary

    torch.set_num_threads(1)
    scene = generate_scene("a living room with a sofa, an armchair and a coffee table", 2)
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
    for gt in scene.instances:
        if gt.name in ("door", "window"):
            continue
        match = [f for f in fused if f.name == gt.name]
        assert match, f"{gt.name} not found in the fused map"
        d = min(np.linalg.norm(f.centroid[:2] - gt.centroid[:2]) for f in match)
        assert d < 0.2, f"{gt.name}: fused centroid {d:.2f} m from the ground truth"
