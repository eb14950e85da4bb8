"""BVH reader and CMU -> SMPL retargeting, on synthetic BVH text and the real CMU clips."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ssomotion_ros.body.skeleton import JOINT_GROUPS, forward_kinematics_np
from ssomotion_ros.motion.datasets import cmu
from ssomotion_ros.motion.datasets.bvh import parse_bvh, read_bvh

CMU_ROOT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "mocap" / "cmu"
needs_cmu = pytest.mark.skipif(
    not (CMU_ROOT / "INDEX.tsv").is_file(), reason=f"CMU data not found at {CMU_ROOT}"
)

TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Leg
  {
    OFFSET 0 -2 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 -3 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 0 0 0 0 0 0
1 2 3 90 0 0 0 0 30
"""


def test_parse_tiny_bvh_and_fk_by_hand():
    clip = parse_bvh(TINY)
    assert clip.names == ["Hips", "Leg"] and list(clip.parents) == [-1, 0]
    assert clip.fps == pytest.approx(2.0) and clip.num_frames == 2
    pos, rot = clip.global_transforms()
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 0, 3]])
    # frame 1: hips Rz(90): leg offset (0,-2,0) -> (2,0,0)
    np.testing.assert_allclose(pos[1, 1], [3, 2, 3], atol=1e-12)
    ref = (
        Rotation.from_euler("ZYX", [90, 0, 0], degrees=True).as_matrix()
        @ Rotation.from_euler("ZYX", [0, 0, 30], degrees=True).as_matrix()
    )
    np.testing.assert_allclose(rot[1, 1], ref, atol=1e-12)
    np.testing.assert_allclose(clip.end_sites[1], [0, -3, 0])


@pytest.mark.parametrize(
    "text, match",
    [
        ("hello", "not a BVH"),
        (TINY.replace("Frames: 2", "Frames: 3"), "expected 3 frames"),
        (TINY.replace("1 2 3 90", "1 2 x 90"), "not a number"),
        (
            TINY.replace(
                "Zrotation Yrotation Xrotation\n    End", "Zrot Yrotation Xrotation\n    End"
            ),
            "unknown channel",
        ),
        (TINY.replace("Frame Time: 0.5", "Frame Time: 0"), "Frame Time"),
        (TINY.split("MOTION")[0], "end of file"),
    ],
)
def test_bad_bvh_files(text, match):
    with pytest.raises(ValueError, match=match):
        parse_bvh(text)


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_bvh(tmp_path / "nope.bvh")


def test_non_cmu_skeleton_rejected():
    with pytest.raises(ValueError, match="not a CMU skeleton"):
        cmu.bvh_to_smpl(parse_bvh(TINY))


@needs_cmu
@pytest.mark.parametrize("name", ["08_01", "131_01"])  # 30 fps MotionBuilder names; 120 fps
def test_retarget_reproduces_bvh_positions_on_own_skeleton(name):
    """Tolerance: every joint within 1 mm except the neck/head group (CMU's two-bone neck
    collapses to one SMPL bone): within 20 mm max, 3 mm mean."""
    clip = read_bvh(CMU_ROOT / f"{name}.bvh")
    own = cmu.skeleton_from_bvh(clip)
    params, meta = cmu.bvh_to_smpl(clip, own, cmu.RetargetConfig(level_floor=False))
    assert params.dtype == np.float32 and params.shape[1] == 69
    assert meta["fps"] == 30.0
    n_src = clip.num_frames - int(meta["dropped_bind_frame"])
    expected = int(np.floor((n_src - 1) * 30 / clip.fps + 1e-3)) + 1
    assert len(params) == expected
    ti = np.round(meta["times"] * clip.fps).astype(int)
    ref = cmu.bvh_joint_positions_map(clip, cmu.ASF_UNIT_M)[ti]
    err = np.linalg.norm(forward_kinematics_np(params, own) - ref, axis=-1) * 1000
    body = [j for j in range(22) if j not in JOINT_GROUPS["head"]]
    assert err[:, body].max() < 1.0
    assert err[:, list(JOINT_GROUPS["head"])].max() < 20.0
    assert err[:, list(JOINT_GROUPS["head"])].mean() < 3.0


@needs_cmu
def test_retarget_default_skeleton_bone_directions_and_floor():
    clip = read_bvh(CMU_ROOT / "75_18.bvh")
    params, meta = cmu.bvh_to_smpl(clip)
    assert meta["dropped_bind_frame"] and 0.045 < meta["scale_m_per_unit"] < 0.06
    j = forward_kinematics_np(params)
    ti = np.round(meta["times"] * clip.fps).astype(int)
    ref = cmu.bvh_joint_positions_map(clip, 1.0)[ti]
    # limb segments: knee->ankle, elbow->wrist, shoulder->elbow, hip->knee
    for a, b in [(4, 7), (5, 8), (18, 20), (19, 21), (16, 18), (1, 4), (2, 5)]:
        u = j[:, b] - j[:, a]
        v = ref[:, b] - ref[:, a]
        cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.1
    # upright at the start (standing), feet on the floor, pelvis ~ standing height
    assert 0.85 < j[0, 0, 2] < 1.02
    assert abs(np.percentile(np.minimum(j[:, 10, 2], j[:, 11, 2]), 5) - 0.018) < 0.03
    # z is up: the head is above the pelvis in every frame of this sit/stand clip
    assert np.all(j[:, 15, 2] > j[:, 0, 2])


@needs_cmu
def test_resampling_120_to_30_fps_matches_source_frames():
    clip = read_bvh(CMU_ROOT / "131_01.bvh")
    params, meta = cmu.bvh_to_smpl(clip)
    assert clip.fps == pytest.approx(120, rel=1e-3)
    np.testing.assert_allclose(np.diff(meta["times"]), 1 / 30, atol=1e-6)
    assert len(params) == len(meta["times"])
    # the global orientation track is continuous (unwrapped)
    assert np.abs(np.diff(params[:, :3], axis=0)).max() < 0.5


@needs_cmu
def test_load_cmu_dataset_labels():
    clips = cmu.load_cmu_dataset(CMU_ROOT, names=["08_01", "75_20", "139_16"], progress=False)
    by = {c.name: c for c in clips}
    assert set(by) == {"08_01", "75_20", "139_16", "139_16_reversed"}
    assert set(by["08_01"].actions) == {"walk"}
    a = by["75_20"].actions
    # order of events in 'low sit': ... sit ... stand_up ...
    first_sit = np.flatnonzero(a == "sit")[0]
    first_up = np.flatnonzero(a == "stand_up")[0]
    assert first_sit < first_up and (a == "sit").sum() > 30 and (a == "stand_up").sum() > 10
    g = by["139_16"].actions
    assert g[0] == "lie" and "stand_up" in set(g)
    r = by["139_16_reversed"]
    np.testing.assert_array_equal(r.params, by["139_16"].params[::-1])
    assert "stand_up" not in set(r.actions) and (r.actions == "lie").sum() > 60
    seated = by["75_20"].meta["posture"] == "seated"
    assert seated.sum() > 30 and (a[seated] == "sit").mean() > 0.7  # the rest: leaning to rise
    np.testing.assert_array_equal(r.meta["posture"], by["139_16"].meta["posture"][::-1])
    for c in clips:
        assert c.params.dtype == np.float32 and len(c.actions) == len(c.params) and c.fps == 30


def test_load_cmu_dataset_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="INDEX.tsv"):
        cmu.load_cmu_dataset(tmp_path)


@needs_cmu
def test_knee_euler_flips_do_not_change_the_output():
    """An equivalent Euler triple (z+180, 180-y, x+180) on the knee channels (the
    conversion artefact) gives the same rotation, so the same parameters; a genuine one-frame
    spike is detected and repaired."""
    import copy

    clip = read_bvh(CMU_ROOT / "08_01.bvh")
    ref, _ = cmu.bvh_to_smpl(clip)
    flipped = copy.deepcopy(clip)
    a, _ = clip._channel_slices()[clip.index("LeftLeg")]
    z, y, x = (flipped.frames[20:30, a + k].copy() for k in range(3))
    flipped.frames[20:30, a : a + 3] = np.stack([z + 180, 180 - y, x + 180], 1)
    out, meta = cmu.bvh_to_smpl(flipped)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert meta["repaired_frames"] == []

    spiky = copy.deepcopy(clip)
    spiky.frames[40, a + 2] += 150.0  # one frame with the knee bent by an extra 150 degrees
    out2, meta2 = cmu.bvh_to_smpl(spiky)
    assert 40 in meta2["repaired_frames"]
    knee = 3 + 3 * (4 - 1)  # body_pose of left_knee
    t = 39  # output frame of source frame 40 (the bind frame is dropped)
    assert np.abs(out2[t, knee : knee + 3] - ref[t, knee : knee + 3]).max() < 0.15
