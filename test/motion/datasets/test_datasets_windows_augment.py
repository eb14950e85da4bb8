"""Windows, augmentation, labels, AMASS / HUMANISE loaders (synthetic files)."""

import pickle
from dataclasses import dataclass

import numpy as np
import pytest

from ssomotion_ros.body.rotations import axis_angle_to_matrix_np, matrix_to_axis_angle_np
from ssomotion_ros.body.skeleton import (
    MIRROR_PERMUTATION,
    R_NATIVE_TO_MAP,
    default_skeleton,
    forward_kinematics_np,
)
from ssomotion_ros.motion.datasets import amass
from ssomotion_ros.motion.datasets.augment import (
    canonicalize,
    change_speed,
    heading,
    mirror,
    random_augment,
    resample,
    rotate_z,
)
from ssomotion_ros.motion.datasets.labels import ACTIONS, label_actions
from ssomotion_ros.motion.datasets.windows import make_windows, window_counts


def _motion(T=90, seed=0):
    """A smooth random motion: walking forward with wobbling joints."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 30.0
    p = np.zeros((T, 69))
    phase = rng.uniform(0, 2 * np.pi, 66)
    amp = rng.uniform(0.0, 0.4, 66)
    p[:, :66] = amp * np.sin(2 * np.pi * 1.0 * t[:, None] + phase)
    p[:, 2] += 0.3 * t  # slow turn
    p[:, 66] = 1.2 * t
    return p.astype(np.float32)


@dataclass
class _Clip:
    params: np.ndarray
    actions: np.ndarray


def test_mirror_twice_is_identity_and_reflects_joints():
    p = _motion()
    np.testing.assert_array_equal(mirror(mirror(p)), p)
    skel = default_skeleton(symmetric=True)
    j = forward_kinematics_np(p, skel)
    jm = forward_kinematics_np(mirror(p, skel), skel)
    np.testing.assert_allclose(jm, j[:, MIRROR_PERMUTATION] * [1, -1, 1], atol=1e-5)


def test_rotate_z_rotates_joints_about_origin():
    p = _motion()
    ang, o = 2.5, np.array([0.4, -1.0, 0.0])
    j = forward_kinematics_np(p)
    jr = forward_kinematics_np(rotate_z(p, ang, origin=(o[0], o[1])))
    c, s = np.cos(ang), np.sin(ang)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    np.testing.assert_allclose(jr, (j - o) @ rz.T + o, atol=1e-5)
    assert np.abs(np.diff(rotate_z(p, ang)[:, :3], axis=0)).max() < 0.5  # continuous


def test_canonicalize_and_heading():
    p = rotate_z(_motion(), 1.0)
    q, info = canonicalize(p, frame=4)
    assert abs(heading(q[4])) < 1e-5
    j = forward_kinematics_np(q)
    np.testing.assert_allclose(j[4, 0, :2], 0.0, atol=1e-5)
    np.testing.assert_allclose(j[:, 0, 2], forward_kinematics_np(p)[:, 0, 2], atol=1e-5)
    # undo
    back = rotate_z(q, info["yaw"])
    back[:, 66:68] += info["xy"]
    np.testing.assert_allclose(forward_kinematics_np(back), forward_kinematics_np(p), atol=1e-4)


def test_speed_change_and_resample():
    p = _motion(91)
    f = change_speed(p, 2.0)
    assert f.shape == (46, 69)
    np.testing.assert_allclose(
        forward_kinematics_np(f[10]), forward_kinematics_np(p[20]), atol=1e-5
    )
    h = change_speed(p, 0.5)
    # midpoints are slerp interpolations: joints between neighbours
    jm = forward_kinematics_np(h[1])
    j0, j1 = forward_kinematics_np(p[0]), forward_kinematics_np(p[1])
    assert np.abs(jm - 0.5 * (j0 + j1)).max() < 0.01
    np.testing.assert_allclose(resample(p, 30, 30), p, atol=1e-6)
    with pytest.raises(ValueError):
        change_speed(p, 0.0)


def test_random_augment_keeps_labels_aligned():
    p = _motion()
    acts = np.array(["walk"] * 45 + ["sit"] * 45)
    rng = np.random.default_rng(3)
    q, a = random_augment(p, rng, actions=acts)
    assert len(q) == len(a) and q.shape[1] == 69 and set(a) <= {"walk", "sit"}


def test_make_windows_shapes_labels_and_history():
    p = _motion(100)
    acts = np.array(["walk"] * 60 + ["sit"] * 40)
    w = make_windows([_Clip(p, acts)], length=30, history=5)
    n = (100 - 30) // 25 + 1
    assert w["params"].shape == (n, 30, 69) and w["params"].dtype == np.float32
    assert w["history_mask"].shape == (n, 30) and w["history_mask"][:, :5].all()
    assert not w["history_mask"][:, 5:].any()
    assert list(w["start"]) == [0, 25, 50][:n]
    assert [ACTIONS[i] for i in w["action"]] == ["walk", "walk", "sit"][:n]
    # canonical: pelvis above the origin and facing +x at the last history frame
    j = forward_kinematics_np(w["params"][:, 4])
    np.testing.assert_allclose(j[:, 0, :2], 0.0, atol=1e-5)
    assert np.abs(heading(w["params"][:, 4])).max() < 1e-5
    assert window_counts(w) == {"walk": 2, "sit": 1}
    only_sit = make_windows([_Clip(p, acts)], actions=["sit"], canonical=False)
    np.testing.assert_array_equal(only_sit["params"][0], p[50:80])
    with pytest.raises(ValueError, match="unknown actions"):
        make_windows([_Clip(p, acts)], actions=["dance"])
    with pytest.raises(ValueError):
        make_windows([_Clip(p, acts)], length=5, history=5)


def test_label_actions_synthetic_sit_down_and_up():
    """Stand still 1 s, sit down over 1 s (pelvis drops, thighs horizontal), sit 2 s, rise."""
    T = 150
    p = np.zeros((T, 69), np.float32)
    sit = np.zeros(T)
    sit[30:60] = np.linspace(0, 1, 30)
    sit[60:110] = 1
    sit[110:130] = np.linspace(1, 0, 20)
    # hips flex 90 deg (native x axis: thigh forward), knees -90 deg, pelvis down 0.45 m
    for hip in (0, 1):
        p[:, 3 + 3 * hip] = -np.pi / 2 * sit
    for knee in (3, 4):
        p[:, 3 + 3 * knee] = np.pi / 2 * sit
    p[:, 68] = -0.45 * sit
    a = label_actions(p, "sit_stand")
    assert set(a[:25]) == {"idle"}
    assert (a[35:110] == "sit").all()
    assert (a[112:128] == "stand_up").all()
    assert set(a[135:]) == {"idle"}


def _amass_like(T=40, seed=0):
    """World-frame SMPL-X params built from known map-frame params."""
    p = _motion(T, seed).astype(np.float64)
    skel = default_skeleton()
    r_world = axis_angle_to_matrix_np(p[:, :3]) @ R_NATIVE_TO_MAP
    go_world = matrix_to_axis_angle_np(r_world)
    trans = p[:, 66:69] + skel.offsets[0] - amass.smplx_rest_pelvis(None)
    return p, go_world, trans


def test_amass_npz_roundtrip(tmp_path):
    p, go, trans = _amass_like()
    poses = np.zeros((len(p), 165))
    poses[:, :3], poses[:, 3:66] = go, p[:, 3:66]
    f = tmp_path / "clip_poses.npz"
    np.savez(
        f,
        poses=poses,
        trans=trans,
        mocap_frame_rate=np.array(30.0),
        betas=np.zeros(16),
        gender=np.array("neutral"),
    )
    q, meta = amass.load_amass_npz(f, level_floor=False)  # neutral betas: leg ratio 1
    assert meta["leg_ratio"] == pytest.approx(1.0)
    np.testing.assert_allclose(forward_kinematics_np(q), forward_kinematics_np(p), atol=1e-4)
    lev, meta_l = amass.load_amass_npz(f)
    np.testing.assert_allclose(lev[:, 68] - q[:, 68], meta_l["floor_shift_m"], atol=1e-6)
    # a long-legged subject: the pelvis path is scaled down to the default skeleton's legs
    tall = tmp_path / "tall.npz"
    np.savez(tall, poses=poses, trans=trans, mocap_frame_rate=30.0, betas=np.r_[2.0, np.zeros(9)])
    qt, mt = amass.load_amass_npz(tall, level_floor=False)
    assert 0.8 < mt["leg_ratio"] < 0.98
    qt0, _ = amass.load_amass_npz(tall, level_floor=False, rescale=False)
    pel = forward_kinematics_np(qt)[:, 0]
    pel0 = forward_kinematics_np(qt0)[:, 0]
    np.testing.assert_allclose(pel, pel0 * mt["leg_ratio"], atol=1e-4)
    feet = forward_kinematics_np(lev)[:, [7, 8, 10, 11], 2]
    assert feet.min() > -0.05
    assert meta["model"] == "smplx"
    # 60 fps SMPL-H file -> resampled to 30 fps
    f2 = tmp_path / "h.npz"
    np.savez(f2, poses=np.zeros((61, 156)), trans=np.zeros((61, 3)), mocap_framerate=60.0)
    q2, meta2 = amass.load_amass_npz(f2)
    assert q2.shape == (31, 69) and meta2["model"] == "smplh"


def test_amass_bad_files(tmp_path):
    f = tmp_path / "bad.npz"
    np.savez(f, poses=np.zeros((5, 100)), trans=np.zeros((5, 3)), mocap_frame_rate=30.0)
    with pytest.raises(ValueError, match="165"):
        amass.load_amass_npz(f)
    np.savez(f, trans=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="poses"):
        amass.load_amass_npz(f)
    with pytest.raises(FileNotFoundError):
        amass.load_amass_npz(tmp_path / "none.npz")


def test_humanise_loader_and_safe_unpickling(tmp_path):
    p, go, trans = _amass_like(30, seed=1)
    motion = np.zeros((30, 159), np.float32)
    motion[:, 0:3], motion[:, 3:6], motion[:, 6:69] = trans, go, p[:, 3:66]
    (tmp_path / "motions").mkdir()
    with open(tmp_path / "motions" / "000000.pkl", "wb") as fh:
        pickle.dump((motion, np.zeros(10, np.float32)), fh)
    (tmp_path / "annotation.csv").write_text(
        "motion_id,scene_id,scene_trans_x,scene_trans_y,scene_trans_z,object_id,object_label,"
        "object_semantic_label,action,text\n"
        "000000,scene0000_00,-4.1,-4.2,-0.06,37,bed,4,lie,lie on the bed\n"
    )
    clips = amass.load_humanise(tmp_path)
    assert len(clips) == 1 and set(clips[0].actions) == {"lie"}
    np.testing.assert_allclose(
        forward_kinematics_np(clips[0].params), forward_kinematics_np(p), atol=1e-4
    )
    assert clips[0].meta["scene_trans"] == [-4.1, -4.2, -0.06]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "motions" / "000001.pkl", "wb") as fh:
        pickle.dump((Evil(), np.zeros(10)), fh)
    with pytest.raises(ValueError, match="refusing"):
        amass.load_humanise_motion(tmp_path / "motions" / "000001.pkl")


def test_label_walk_needs_motion_along_heading():
    T = 60
    fwd = np.zeros((T, 69), np.float32)
    fwd[:, 66] = np.arange(T) / 30.0 * 1.0  # 1 m/s along +x, facing +x
    back = fwd.copy()
    back[:, 66] *= -1.0  # backing up
    side = np.zeros((T, 69), np.float32)
    side[:, 67] = np.arange(T) / 30.0  # sidestep along +y
    assert set(label_actions(fwd, "walk")) == {"walk"}
    assert set(label_actions(back, "walk")) == {"idle"}
    assert set(label_actions(side, "walk")) == {"idle"}
    turned = rotate_z(fwd, 2.0)  # rotating the whole motion keeps it a walk
    assert set(label_actions(turned, "walk")) == {"walk"}


def test_export_amass_folder_and_cli(tmp_path, capsys):
    from ssomotion_ros.cli.commands import data as data_cmd
    from ssomotion_ros.motion.datasets.export import export_clips, load_source

    p, go, trans = _amass_like(60)
    poses = np.zeros((60, 165))
    poses[:, :3], poses[:, 3:66] = go, p[:, 3:66]
    (tmp_path / "amass" / "subj1").mkdir(parents=True)
    np.savez(
        tmp_path / "amass" / "subj1" / "walk_poses.npz",
        poses=poses,
        trans=trans,
        mocap_frame_rate=30.0,
    )
    clips = load_source("amass", tmp_path / "amass", progress=False)
    assert [c.name for c in clips] == ["subj1_walk_poses"] and len(clips[0].actions) == 60
    (path,) = export_clips(clips, tmp_path / "out")
    with np.load(path) as z:
        np.testing.assert_array_equal(z["params"], clips[0].params)
        assert z["actions"].shape == (60,)
    import argparse

    parser = argparse.ArgumentParser()
    data_cmd.configure(parser)
    args = parser.parse_args(
        [
            "--source",
            "amass",
            "--input",
            str(tmp_path / "amass"),
            "--out",
            str(tmp_path / "out2"),
            "--quiet",
        ]
    )
    assert data_cmd.run(args) == 0 and (tmp_path / "out2" / "subj1_walk_poses.npz").is_file()
    args = parser.parse_args(["--source", "humanise", "--input", str(tmp_path / "nope")])
    assert data_cmd.run(args) == 2
    assert "annotation.csv" in capsys.readouterr().err


def test_amass_convention_against_the_smplx_package(tmp_path):
    """Pose the (synthetic) SMPL-X model with smplx in a z-up world as AMASS files store it,
    convert with smplx_world_to_params, and compare our FK with smplx's joints."""
    import smplx
    import torch
    from body_helpers import write_synthetic_smplx

    path = write_synthetic_smplx(tmp_path)
    model = smplx.SMPLX(str(path), ext="npz", use_pca=False, num_betas=10)
    rng = np.random.default_rng(4)
    T = 6
    go = rng.normal(0, 0.6, (T, 3))
    go[:, 0] += np.pi / 2  # z-up world: a standing body has root ~ +90 deg about x
    body = rng.normal(0, 0.3, (T, 63))
    trans = rng.normal(0, 0.5, (T, 3))
    z = torch.zeros(T, 3)
    out = model(
        global_orient=torch.tensor(go, dtype=torch.float32),
        body_pose=torch.tensor(body, dtype=torch.float32),
        transl=torch.tensor(trans, dtype=torch.float32),
        betas=torch.zeros(T, 10),
        expression=torch.zeros(T, 10),
        jaw_pose=z,
        leye_pose=z,
        reye_pose=z,
        left_hand_pose=torch.zeros(T, 45),
        right_hand_pose=torch.zeros(T, 45),
    )
    ref = out.joints[:, :22].detach().numpy()
    params = amass.smplx_world_to_params(go, body, trans)
    np.testing.assert_allclose(forward_kinematics_np(params), ref, atol=1e-4)
