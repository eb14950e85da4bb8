"""Retargeting: URDF loading, FK, mapping, optimisation, limits, errors."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ssomotion_ros.body.skeleton import JOINT_NAMES, default_skeleton
from ssomotion_ros.retarget.avatar import avatar_urdf, write_avatar_urdf
from ssomotion_ros.retarget.core import RetargetConfig, Retargeter, prepare_source
from ssomotion_ros.retarget.kinematics import RobotKinematics, segment_distance
from ssomotion_ros.retarget.mapping import auto_map, side_of, tokens
from ssomotion_ros.retarget.metrics import evaluate, keypair_distances
from ssomotion_ros.retarget.urdf import load_urdf, load_urdf_string

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
G1 = (
    Path(sysconfig.get_paths()["purelib"]) / "cmeel.prefix" / "share" / "example-robot-data"
    / "robots" / "g1_description" / "urdf" / "g1_29dof_rev_1_0.urdf"
)  # fmt: skip


def _deepmimic() -> Path | None:
    try:
        import pybullet_data
    except ImportError:
        return None
    p = Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf"
    return p if p.is_file() else None


TINY = """<robot name="tiny">
  <link name="base"><collision><geometry><sphere radius="0.1"/></geometry></collision></link>
  <link name="a"><collision><origin xyz="0 0 0.2" rpy="0 0 0"/>
    <geometry><capsule length="0.4" radius="0.05"/></geometry></collision></link>
  <link name="b"><collision><geometry><box size="0.4 0.1 0.2"/></geometry></collision></link>
  <link name="c"/><link name="d"/><link name="e"/>
  <joint name="j1" type="revolute"><parent link="base"/><child link="a"/>
    <origin xyz="0.1 0 0" rpy="0.1 0.2 0.3"/><axis xyz="0 1 1"/>
    <limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
  <joint name="j2" type="prismatic"><parent link="a"/><child link="b"/>
    <origin xyz="0 0 0.4" rpy="0 0 0"/><axis xyz="1 0 0"/>
    <limit lower="0" upper="0.3" effort="1" velocity="1"/></joint>
  <joint name="j3" type="spherical"><parent link="b"/><child link="c"/>
    <origin xyz="0 0.2 0" rpy="0.3 0 0"/></joint>
  <joint name="j4" type="continuous"><parent link="c"/><child link="d"/>
    <origin xyz="0.1 0 0" rpy="0 0 0"/><axis xyz="0 0 1"/></joint>
  <joint name="j5" type="fixed"><parent link="d"/><child link="e"/>
    <origin xyz="0 0 0.1" rpy="0 0.5 0"/></joint>
</robot>"""


def _ref_fk(m, q, r0, p0):
    rot, pos = [None] * m.num_links, [None] * m.num_links
    rot[0], pos[0] = r0, p0
    for j in m.joints:
        t = np.zeros(3)
        rj = np.eye(3)
        if j.type in ("revolute", "continuous"):
            rj = Rotation.from_rotvec(j.axis * q[j.dof_start]).as_matrix()
        elif j.type == "spherical":
            rj = Rotation.from_rotvec(q[j.dof_start : j.dof_start + 3]).as_matrix()
        elif j.type == "prismatic":
            t = j.axis * q[j.dof_start]
        o = j.origin
        rot[j.child] = rot[j.parent] @ o[:3, :3] @ rj
        pos[j.child] = pos[j.parent] + rot[j.parent] @ (o[:3, 3] + o[:3, :3] @ t)
    return np.array(rot), np.array(pos)


def test_tiny_urdf_parse_capsules_and_fk_reference():
    m = load_urdf_string(TINY)
    assert m.dof_names == ["j1", "j2", "j3/x", "j3/y", "j3/z", "j4"]
    assert m.lower[0] == -1 and m.upper[1] == 0.3 and np.isinf(m.lower[5])
    kinds = sorted((m.link_names[c.link], c.source) for c in m.capsules)
    assert kinds == [("a", "capsule"), ("b", "box"), ("b", "box"), ("base", "sphere")]
    cap = next(c for c in m.capsules if c.source == "capsule")
    np.testing.assert_allclose(cap.a, [0, 0, 0.0])  # 0.2 -/+ 0.2 along z
    np.testing.assert_allclose(cap.b, [0, 0, 0.4])
    # box 0.4 x 0.1 x 0.2: two capsules of radius 0.05 along x, side by side along z
    boxes = [c for c in m.capsules if c.source == "box"]
    for c in boxes:
        assert c.radius == pytest.approx(0.05)
        np.testing.assert_allclose(sorted([c.a[0], c.b[0]]), [-0.15, 0.15])
    np.testing.assert_allclose(sorted(c.a[2] for c in boxes), [-0.05, 0.05])
    kin = RobotKinematics(m, dtype=torch.float64)
    rng = np.random.default_rng(0)
    q = rng.normal(size=(4, m.num_dofs))
    r0 = Rotation.random(4, random_state=2).as_matrix()
    p0 = rng.normal(size=(4, 3))
    rot, pos = kin.link_poses(torch.tensor(q), torch.tensor(r0), torch.tensor(p0))
    for i in range(4):
        rr, pr = _ref_fk(m, q[i], r0[i], p0[i])
        np.testing.assert_allclose(rot[i].numpy(), rr, atol=1e-12)
        np.testing.assert_allclose(pos[i].numpy(), pr, atol=1e-12)
    with pytest.raises(ValueError, match="expected"):
        kin.link_poses(torch.zeros(4, 3), torch.tensor(r0), torch.tensor(p0))


def test_segment_distance_vs_brute_force():
    g = torch.Generator().manual_seed(0)
    p1, q1, p2, q2 = (torch.randn(300, 3, generator=g, dtype=torch.float64) for _ in range(4))
    q1[:60] = p1[:60]  # point vs segment
    q2[30:90] = p2[30:90]  # and point vs point
    s = torch.linspace(0, 1, 1001, dtype=torch.float64)
    a = p1[:, None] + (q1 - p1)[:, None] * s[None, :, None]
    b = p2[:, None] + (q2 - p2)[:, None] * s[None, :, None]
    brute = torch.cdist(a, b).amin((-1, -2))
    d = segment_distance(p1, q1, p2, q2)
    assert (d <= brute + 1e-9).all()
    assert (brute - d).max() < 2e-3


def test_bad_urdfs_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="URDF file not found"):
        load_urdf(tmp_path / "nope.urdf")
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot name='x'><link name='a'></robot")
    with pytest.raises(ValueError, match="malformed URDF XML"):
        load_urdf(bad)
    with pytest.raises(ValueError, match="not a URDF"):
        load_urdf_string("<sdf><model/></sdf>")
    with pytest.raises(ValueError, match="no <joint>"):
        load_urdf_string("<robot name='x'><link name='a'/></robot>")
    with pytest.raises(ValueError, match="type 'planar'"):
        load_urdf_string(
            "<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='planar'>"
            "<parent link='a'/><child link='b'/></joint></robot>"
        )
    with pytest.raises(ValueError, match="unknown link"):
        load_urdf_string(
            "<robot name='x'><link name='a'/><joint name='j' type='revolute'>"
            "<parent link='a'/><child link='zz'/><axis xyz='1 0 0'/></joint></robot>"
        )
    # parses, but nothing can be mapped
    m = load_urdf_string(TINY)
    with pytest.raises(ValueError, match="could not map human joints"):
        auto_map(m)
    with pytest.raises(ValueError, match="no link 'nope'"):
        auto_map(load_urdf_string(avatar_urdf()), {"joints": {"head": "nope"}})


def test_tokens_and_sides():
    assert tokens("LeftUpLeg") == ["left", "up", "leg"]
    assert side_of("l_hip_pitch") == "left" and side_of("R_elbow") == "right"
    assert side_of("LeftForeArm") == "left" and side_of("rhip") == "right"
    assert side_of("torso_link") is None and side_of("left_right") is None


def test_avatar_maps_onto_itself_exactly(tmp_path):
    path = write_avatar_urdf(tmp_path / "avatar.urdf")
    m = load_urdf(path)
    mp = auto_map(m)
    assert len(mp.points) == 22
    assert mp.pairs()["left_knee"].startswith("left_knee")
    np.testing.assert_allclose(mp.align, np.eye(3))
    rot, pos = m.rest_link_poses()
    rest = default_skeleton().rest_joints()
    for n, kp in mp.points.items():
        got = pos[kp.link] + rot[kp.link] @ kp.offset
        np.testing.assert_allclose(got, rest[JOINT_NAMES.index(n)] - rest[0], atol=1e-5)


def _synthetic_motion(t=24) -> np.ndarray:
    """Smooth everyday motion standing in place: arm swings, the left leg swinging."""
    ph = np.linspace(0, np.pi, t)
    p = np.zeros((t, 69), np.float32)
    bp = p[:, 3:66].reshape(t, 21, 3)
    j = {n: i - 1 for i, n in enumerate(JOINT_NAMES)}
    bp[:, j["left_shoulder"], 2] = -1.1 + 0.3 * np.sin(ph)  # arms down-ish (native z)
    bp[:, j["right_shoulder"], 2] = 1.1 - 0.3 * np.sin(ph)
    bp[:, j["left_elbow"], 1] = -0.4 * np.sin(ph)
    bp[:, j["left_hip"], 0] = -0.25 * np.sin(ph)
    bp[:, j["left_knee"], 0] = 0.4 * np.sin(ph)
    return p


def test_identity_avatar_retargets_with_near_zero_error():
    robot = load_urdf_string(avatar_urdf())
    mp = auto_map(robot)
    cfg = RetargetConfig(iterations=60, copy_iterations=150, progress=False, device="cpu")
    rt = Retargeter(robot, mp, cfg)
    assert rt.scale == pytest.approx(1.0, abs=1e-5)
    src = prepare_source(_synthetic_motion(), config=cfg)
    ours = rt.retarget(src)
    human = src.joints[:, rt.key_human]
    shift = rt.key_rest[rt.key_index["pelvis"]] - default_skeleton().rest_joints()[0]
    err = np.linalg.norm(ours.keypoints - (human + shift), axis=-1)
    assert err.mean() < 0.003, err.mean(0)  # measured 1.2 mm (max 14 mm: lift-off frames)
    m = evaluate(rt, src, ours)
    assert m["keypair_error"] < 0.005
    assert m["joint_limit_violations"] == 0.0
    assert m["self_penetration_frames"] == 0.0


def test_joint_limits_are_never_exceeded():
    robot = load_urdf_string(avatar_urdf())
    mp = auto_map(robot)
    cfg = RetargetConfig(iterations=40, copy_iterations=80, progress=False, device="cpu")
    rt = Retargeter(robot, mp, cfg)
    p = _synthetic_motion(16)
    bp = p[:, 3:66].reshape(16, 21, 3)
    bp[:, JOINT_NAMES.index("left_knee") - 1, 0] = -1.0  # knee bent backwards: beyond limits
    bp[:, JOINT_NAMES.index("right_elbow") - 1, 1] = -3.0  # elbow over-bent
    src = prepare_source(p, config=cfg)
    cp = rt.copy(src)
    assert evaluate(rt, src, cp)["joint_limit_violation_count"] > 0  # the copy ignores limits
    ours = rt.retarget(src, init=cp)
    assert np.all(ours.q >= robot.lower) and np.all(ours.q <= robot.upper)
    # and the reparametrisation alone keeps any theta inside
    theta = torch.randn(1000, robot.num_dofs) * 50
    q = rt._q(theta, True).double().numpy()
    lim = robot.limited()
    assert np.all(q[:, lim] >= robot.lower[lim] - 1e-6)
    assert np.all(q[:, lim] <= robot.upper[lim] + 1e-6)


def test_prepare_source_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., 69\)"):
        prepare_source(np.zeros((10, 68)))
    with pytest.raises(ValueError, match="T >= 2"):
        prepare_source(np.zeros((1, 69)))
    with pytest.raises(ValueError, match="actions"):
        prepare_source(np.zeros((5, 69)), actions=np.array(["sit"] * 4))


def test_keypair_distances_reference():
    pts = np.array([[[0, 0, 0], [3, 4, 0], [0, 0, 1]]], float)
    d = keypair_distances(pts, np.array([[0, 1], [0, 2]]), 2.0)
    np.testing.assert_allclose(d, [[2.5, 0.5]])
    with pytest.raises(ValueError):
        keypair_distances(pts[0], np.array([[0, 1]]), 1.0)


@pytest.mark.skipif(_deepmimic() is None, reason="PyPI package pybullet not installed")
def test_automap_deepmimic_humanoid():
    m = load_urdf(_deepmimic())
    assert sum(c.source == "capsule" for c in m.capsules) == 8
    assert any(j.type == "spherical" for j in m.joints)
    mp = auto_map(m, REPO / "config" / "retarget" / "deepmimic_humanoid.yaml")
    expected = {
        "pelvis": "root", "spine3": "chest", "neck": "neck", "head": "neck",
        **{f"{s}_{p}": f"{s}_{p}" for s in ("left", "right")
           for p in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")},
    }  # fmt: skip
    assert mp.pairs() == expected
    np.testing.assert_allclose(mp.align, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    # without the override the axes are found from geometry all the same
    np.testing.assert_allclose(auto_map(m).align, mp.align)
    # load_target finds the shipped override by the URDF's file name
    from ssomotion_ros.retarget import find_override

    assert find_override(_deepmimic()).name == "deepmimic_humanoid.yaml"
    assert find_override(G1) is None


@pytest.mark.skipif(not G1.is_file(), reason="PyPI package example-robot-data not installed")
def test_automap_unitree_g1():
    m = load_urdf(G1)
    assert m.num_dofs == 29
    mp = auto_map(m)
    pairs = mp.pairs()
    for s in ("left", "right"):
        assert pairs[f"{s}_hip"] == f"{s}_hip_pitch_link"
        assert pairs[f"{s}_knee"] == f"{s}_knee_link"
        assert pairs[f"{s}_ankle"] == f"{s}_ankle_pitch_link"
        assert pairs[f"{s}_shoulder"] == f"{s}_shoulder_pitch_link"
        assert pairs[f"{s}_elbow"] == f"{s}_elbow_link"
        assert pairs[f"{s}_wrist"] == f"{s}_wrist_roll_link"
    assert pairs["pelvis"] == "pelvis" and pairs["spine3"] == "torso_link"
    assert pairs["head"] == "head_link"
    assert np.linalg.norm(mp.points["head"].offset) > 0.2  # geometry centre, not the waist
    np.testing.assert_allclose(mp.align, np.eye(3))


@pytest.mark.skipif(not G1.is_file(), reason="PyPI package example-robot-data not installed")
def test_automap_talos_by_limb_geometry():
    m = load_urdf(G1.parents[2] / "talos_data" / "robots" / "talos_reduced.urdf")
    pairs = auto_map(m).pairs()
    for s in ("left", "right"):
        assert pairs[f"{s}_hip"] == f"leg_{s}_1_link"
        assert pairs[f"{s}_knee"] == f"leg_{s}_4_link"
        assert pairs[f"{s}_ankle"] == f"leg_{s}_5_link"
        assert pairs[f"{s}_shoulder"] == f"arm_{s}_1_link"
        assert pairs[f"{s}_elbow"] == f"arm_{s}_4_link"
    assert pairs["spine3"] == "torso_2_link"  # the link carrying the arms
