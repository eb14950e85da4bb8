"""FK, rotations and skeleton of ssomotion_ros.body."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ssomotion_ros.body import rotations as rot
from ssomotion_ros.body.skeleton import (
    JOINT_NAMES,
    MIRROR_PERMUTATION,
    PARENTS,
    default_skeleton,
    forward_kinematics,
    forward_kinematics_np,
    join_params,
    split_params,
)


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device(request.param)


def _rand_aa(n, max_angle=3.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(
        torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1
    )
    return axis * torch.rand(n, 1, generator=g, dtype=torch.float64) * max_angle


def test_rotation_conversions_match_scipy():
    aa = _rand_aa(500)
    m = rot.axis_angle_to_matrix(aa)
    ref = Rotation.from_rotvec(aa.numpy()).as_matrix()
    np.testing.assert_allclose(m.numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_axis_angle(m).numpy(), aa.numpy(), atol=1e-9)
    q = rot.matrix_to_quaternion(m).numpy()
    q_ref = Rotation.from_matrix(ref).as_quat()[:, [3, 0, 1, 2]]
    q_ref *= np.sign(q_ref[:, :1])
    np.testing.assert_allclose(q, q_ref, atol=1e-9)
    np.testing.assert_allclose(
        rot.rotation_6d_to_matrix(rot.matrix_to_rotation_6d(m)).numpy(), ref, atol=1e-12
    )
    np.testing.assert_allclose(rot.axis_angle_to_quaternion(aa).numpy(), q_ref, atol=1e-9)


def test_rotation_180_degrees_and_zero_gradient():
    aa = torch.tensor([[np.pi, 0, 0], [0, 0, np.pi - 1e-7]], dtype=torch.float64)
    back = rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa))
    np.testing.assert_allclose(np.abs(back.numpy()), np.abs(aa.numpy()), atol=1e-6)
    x = torch.zeros(3, 3, requires_grad=True)
    rot.axis_angle_to_matrix(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_rotation_bad_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        rot.axis_angle_to_matrix(torch.zeros(4, 2))


def test_skeleton_tables():
    assert len(JOINT_NAMES) == 22 and PARENTS.shape == (22,)
    assert all(PARENTS[j] < j for j in range(1, 22))
    assert all(MIRROR_PERMUTATION[MIRROR_PERMUTATION] == np.arange(22))
    skel = default_skeleton()
    rest = skel.rest_joints()
    # upright, facing +x, left = +y, floor at 0, plausible SMPL-X proportions
    assert 0.9 < skel.pelvis_height < 1.0
    assert rest[JOINT_NAMES.index("head"), 2] > 1.5
    assert rest[JOINT_NAMES.index("left_wrist"), 1] > 0.6
    assert rest[JOINT_NAMES.index("right_wrist"), 1] < -0.6
    assert rest[JOINT_NAMES.index("left_foot"), 0] > rest[JOINT_NAMES.index("left_ankle"), 0]
    assert 0.0 <= rest[:, 2].min() < 0.03
    thigh = np.linalg.norm(rest[4] - rest[1])
    assert 0.35 < thigh < 0.42


def test_fk_rest_and_shapes(device):
    skel = default_skeleton()
    p = torch.zeros(2, 3, 69, device=device)
    j, r = forward_kinematics(p, skel, return_rotations=True)
    assert j.shape == (2, 3, 22, 3) and r.shape == (2, 3, 22, 3, 3)
    np.testing.assert_allclose(j[1, 2].cpu().numpy(), skel.rest_joints(), atol=1e-6)
    assert torch.allclose(r, torch.eye(3, device=device).expand_as(r))


def test_fk_elbow_bend_90_degrees_hand_computed():
    skel = default_skeleton()
    rest = skel.rest_joints().astype(np.float64)
    le, lw = JOINT_NAMES.index("left_elbow"), JOINT_NAMES.index("left_wrist")
    p = np.zeros(69)
    # body_pose is SMPL-X native (x left, y up, z fwd): +90 deg about native y (up)
    p[3 + 3 * (le - 1) : 3 + 3 * le] = [0.0, np.pi / 2, 0.0]
    j = forward_kinematics_np(p, skel)
    # native y = map z: the forearm turns +90 deg about map z (yaw)
    forearm = rest[lw] - rest[le]
    rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(j[lw], rest[le] + rz @ forearm, atol=1e-6)
    np.testing.assert_allclose(j[:lw], rest[:lw], atol=1e-6)  # nothing else moves
    # the forearm, along +y (left) at rest, now points backwards (-x)
    d = (j[lw] - j[le]) / np.linalg.norm(j[lw] - j[le])
    assert d[0] < -0.98


def test_fk_global_orient_yaw_and_translation():
    skel = default_skeleton()
    rest = skel.rest_joints().astype(np.float64)
    p = np.zeros(69)
    p[2] = np.pi / 2  # yaw +90 deg: body faces +y
    p[66:69] = [1.0, 2.0, -0.3]
    j = forward_kinematics_np(p, skel)
    pelvis = skel.offsets[0] + p[66:69]
    rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(j, (rest - rest[0]) @ rz.T + pelvis, atol=1e-5)


def test_fk_matches_numpy_reference_random_pose():
    """Reference: plain per-joint FK with scipy rotations and the documented conjugation."""
    skel = default_skeleton()
    rng = np.random.default_rng(1)
    p = rng.normal(0, 0.5, 69)
    c = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0.0]])
    mats = Rotation.from_rotvec(p[:66].reshape(22, 3)).as_matrix()
    g = [mats[0]]
    pos = [skel.offsets[0] + p[66:]]
    for j in range(1, 22):
        par = PARENTS[j]
        g.append(g[par] @ c @ mats[j] @ c.T)
        pos.append(pos[par] + g[par] @ skel.offsets[j])
    np.testing.assert_allclose(forward_kinematics_np(p, skel), np.array(pos), atol=1e-5)


def test_fk_differentiable_and_batched_consistent():
    p = (torch.randn(5, 69, dtype=torch.float64) * 0.3).requires_grad_()
    j = forward_kinematics(p)
    j[:, 20].sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    single = forward_kinematics(p[3].detach())
    assert torch.allclose(single, j[3].detach(), atol=1e-10)
    assert torch.autograd.gradcheck(
        lambda x: forward_kinematics(x), (p[:1].detach().clone().requires_grad_(),)
    )


def test_fk_errors_and_param_helpers():
    with pytest.raises(ValueError, match="69"):
        forward_kinematics(torch.zeros(3, 68))
    with pytest.raises(ValueError, match="NaN"):
        forward_kinematics(torch.full((69,), float("nan")))
    p = torch.randn(4, 69)
    go, bp, tr = split_params(p)
    assert bp.shape == (4, 21, 3)
    assert torch.equal(join_params(go, bp, tr), p)
    assert np.array_equal(join_params(*split_params(p.numpy())), p.numpy())


def test_symmetric_skeleton_and_betas():
    s = default_skeleton(symmetric=True).rest_joints()
    np.testing.assert_allclose(s[MIRROR_PERMUTATION] * [1, -1, 1], s, atol=1e-6)
    tall = default_skeleton(betas=np.array([-2.0] + [0.0] * 9))
    short = default_skeleton(betas=np.array([2.0] + [0.0] * 9))
    assert tall.pelvis_height != pytest.approx(short.pelvis_height, abs=1e-3)
    with pytest.raises(ValueError, match="betas"):
        default_skeleton(betas=np.zeros(3))


def test_mannequin_public_api_fallback_agrees_with_calibration_table():
    from ssomotion_ros.body import skeleton as sk

    b = np.array([1.5, -1.0, 0.5, 0, 0, 0, 0, 0, 0, 0.2])
    j_fast, sole_fast = sk._rest_native_cached(tuple(b))
    j_pub, sole_pub = sk._rest_native_public(b)
    np.testing.assert_allclose(j_pub, j_fast, atol=1e-6)
    assert abs(sole_pub - sole_fast) < 1e-6
    joints, sole = sk.smplx_rest_native(np.r_[b, np.zeros(6)])  # 16 betas: first 10 used
    np.testing.assert_allclose(joints, j_fast)
