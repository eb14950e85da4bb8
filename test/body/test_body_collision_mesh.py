"""Capsule proxy, mannequin meshes and the SMPL-X adapter."""

import numpy as np
import pytest
import torch
from body_helpers import write_synthetic_smplx

from ssomotion_ros.body.collision import body_points, capsule_table, penetration_depth
from ssomotion_ros.body.mannequin import MannequinMesh
from ssomotion_ros.body.skeleton import forward_kinematics, forward_kinematics_np


def test_body_points_numpy_torch_agree_and_lie_on_bones():
    p = torch.randn(3, 69, dtype=torch.float64) * 0.3
    j = forward_kinematics(p)
    pts_t, r_t = body_points(j, 5)
    pts_n, r_n = body_points(j.numpy(), 5)
    assert pts_t.shape == (3, 22 * 5, 3) and r_t.shape == (22 * 5,)
    np.testing.assert_allclose(pts_t.numpy(), pts_n, atol=1e-12)
    s, e, r = capsule_table()
    # the first and last point of capsule c are its start / end joints
    jn = j.numpy()
    for c in range(21):
        np.testing.assert_allclose(pts_n[:, 5 * c], jn[:, s[c]], atol=1e-12)
        if e[c] >= 0:
            np.testing.assert_allclose(pts_n[:, 5 * c + 4], jn[:, e[c]], atol=1e-12)
    assert np.all((r > 0.02) & (r < 0.15))


def test_body_points_gradient_and_penetration():
    p = (torch.randn(69, dtype=torch.float64) * 0.3).requires_grad_()
    pts, radii = body_points(forward_kinematics(p), 3)
    sdf = pts[:, 2]  # floor plane z = 0 as a signed distance
    depth = penetration_depth(sdf, radii)
    (depth.sum() + pts.sum()).backward()
    assert torch.isfinite(p.grad).all()
    np.testing.assert_allclose(
        penetration_depth(np.array([0.0, 1.0]), np.array([0.1, 0.1])), [0.1, 0.0]
    )
    with pytest.raises(ValueError):
        body_points(np.zeros((21, 3)), 3)


@pytest.mark.parametrize("kind", ["wooden", "convex"])
def test_mannequin_mesh_follows_fk(kind):
    m = MannequinMesh(kind)
    rng = np.random.default_rng(0)
    p = np.zeros(69)
    p[3:66] = rng.normal(0, 0.3, 63)
    p[0:3] = [0.1, -0.2, 1.3]
    p[66:69] = [1.0, -2.0, 0.05]
    v, f = m.mesh(p)
    assert v.dtype == np.float32 and v.shape[1] == 3 and f.max() < len(v)
    np.testing.assert_allclose(m.joints(p), forward_kinematics_np(p), atol=1e-4)
    # rest mesh stands on the floor, upright, around the pelvis
    v0, _ = m.mesh(np.zeros(69))
    assert abs(v0[:, 2].min()) < 0.01 and 1.6 < v0[:, 2].max() < 1.85
    # posed mesh is near its joints (every vertex within 0.35 m of some joint)
    j = forward_kinematics_np(p)
    d = np.linalg.norm(v[::50, None] - j[None], axis=-1).min(1)
    assert d.max() < 0.35
    with pytest.raises(ValueError):
        m.mesh(np.zeros((2, 69)))


def test_mannequin_decimation():
    m = MannequinMesh("convex", target_faces=1500)
    v, f = m.mesh(np.zeros(69))
    assert len(f) <= 1500 and f.max() < len(v)


def test_smplx_missing_files_message(tmp_path):
    from ssomotion_ros.body.smplx_adapter import SmplxBody

    with pytest.raises(FileNotFoundError, match=r"smplx/SMPLX_NEUTRAL\.npz.*smpl-x\.is\.tue"):
        SmplxBody(tmp_path)


def test_smplx_adapter_with_synthetic_model(tmp_path):
    from ssomotion_ros.body.smplx_adapter import SmplxBody

    write_synthetic_smplx(tmp_path)
    body = SmplxBody(tmp_path, device="cpu")
    p = torch.randn(2, 3, 69) * 0.4
    out = body(p)
    assert out["vertices"].shape == (2, 3, 10475, 3) and out["joints"].shape == (2, 3, 22, 3)
    assert out["faces"].shape == (20908, 3)
    j = forward_kinematics(p, body.skeleton)
    assert (out["joints"] - j).abs().max() < 1e-4
    # same rest joints as the mannequin-x calibration (up to the floor estimate)
    from ssomotion_ros.body.skeleton import default_skeleton

    np.testing.assert_allclose(body.skeleton.offsets[1:], default_skeleton().offsets[1:], atol=1e-5)


def test_smplx_rejects_wrong_npz(tmp_path):
    from ssomotion_ros.body.smplx_adapter import SmplxBody

    (tmp_path / "smplx").mkdir()
    np.savez(tmp_path / "smplx" / "SMPLX_NEUTRAL.npz", v_template=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="missing arrays"):
        SmplxBody(tmp_path)
