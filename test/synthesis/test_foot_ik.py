"""Foot planting (synthesis/foot_ik.py): two-bone leg IK written back into SMPL-X params,
and stance planting on a synthetic sliding walk, checked with the real FK and the
reference contact metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssomotion_ros.body.skeleton import default_skeleton, forward_kinematics
from ssomotion_ros.eval.metrics import CONTACT_SPEED_THRESHOLD, contact_score, foot_speeds
from ssomotion_ros.synthesis.foot_ik import (
    LEGS,
    PlantState,
    knee_flexion,
    plant_feet,
    two_bone_ik,
)

torch.set_num_threads(1)


def _fk(params):
    """float64 joints (T, 22, 3) and global rotations (T, 22, 3, 3) of (T, 69) params."""
    j, g = forward_kinematics(torch.from_numpy(np.asarray(params, np.float64)), None, True)
    return j.numpy(), g.numpy()


def _random_poses(n, seed=0):
    rng = np.random.default_rng(seed)
    p = np.zeros((n, 69))
    p[:, :3] = rng.normal(0, 0.3, (n, 3))
    p[:, 3:66] = rng.normal(0, 0.15, (n, 63))
    p[:, 66:69] = rng.normal(0, 0.1, (n, 3))
    return p


@pytest.mark.parametrize("side", [0, 1])
def test_ik_reaches_reachable_targets_and_keeps_fk_consistent(side):
    p = _random_poses(40, seed=side)
    j, g = _fk(p)
    h, _, a, f = LEGS[side]
    rng = np.random.default_rng(10 + side)
    target = j[:, a] + rng.normal(0, 0.06, (len(p), 3))
    q, reach = two_bone_ik(p, side, target)
    ok = reach < 0.995
    assert ok.sum() >= 20, "the test should mostly draw reachable targets"
    # what a consumer sees: float32 params through the FK
    jq, gq = _fk(q.astype(np.float32))
    err = np.linalg.norm(jq[ok, a] - target[ok], axis=-1)
    assert err.max() < 1e-3
    # the foot keeps its world orientation; the hip, the pelvis and the rest do not move
    assert np.abs(gq[:, a] - g[:, a]).max() < 1e-5
    leg = {LEGS[side][1], a, f}
    others = [k for k in range(22) if k not in leg]
    assert np.abs(jq[:, others] - j[:, others]).max() < 1e-5
    assert np.abs(q[:, :3] - p[:, :3]).max() == 0 and np.abs(q[:, 66:] - p[:, 66:]).max() == 0
    # bone lengths are those of the skeleton (a rigid solution)
    k = LEGS[side][1]
    shin_q = np.linalg.norm(jq[:, a] - jq[:, k], axis=-1)
    assert np.allclose(shin_q, np.linalg.norm(j[:, a] - j[:, k], axis=-1), atol=1e-5)
    assert np.isfinite(q).all() and (knee_flexion(q, side) > -1e-6).all()
    # reach is |target - hip| / leg length
    la = np.linalg.norm(j[0, k] - j[0, h]) + np.linalg.norm(j[0, a] - j[0, k])
    assert np.allclose(reach, np.linalg.norm(target - j[:, h], axis=-1) / la, atol=1e-6)


def test_unreachable_target_gives_a_straight_leg_pointing_at_it():
    p = _random_poses(10, seed=3)
    j, _ = _fk(p)
    h, k, a, _ = LEGS[0]
    target = j[:, h] + np.array([0.3, -0.2, -2.0])
    q, reach = two_bone_ik(p, 0, target)
    assert np.isfinite(q).all() and (reach > 1.0).all()
    jq, _ = _fk(q)
    assert np.abs(knee_flexion(q, 0)).max() < 1e-4
    to_t = (target - jq[:, h]) / np.linalg.norm(target - jq[:, h], axis=-1, keepdims=True)
    leg = (jq[:, a] - jq[:, h]) / np.linalg.norm(jq[:, a] - jq[:, h], axis=-1, keepdims=True)
    assert (np.einsum("ij,ij->i", to_t, leg) > 1 - 1e-8).all()
    # a target on the hip itself: fully folded, still finite
    q2, _ = two_bone_ik(p, 0, j[:, h].copy())
    assert np.isfinite(q2).all()


def test_knee_never_bends_backwards_even_from_a_hyperextended_pose():
    p = _random_poses(30, seed=5)
    for jj in (4, 5):  # knees: rotate the shin forwards (hyperextension) in the native frame
        p[:, 3 * jj : 3 * jj + 3] = [-0.5, 0.0, 0.0]
    assert (knee_flexion(p, 0) < 0).all(), "setup: the input knees are hyperextended"
    j, _ = _fk(p)
    for side in (0, 1):
        a = LEGS[side][2]
        q, _ = two_bone_ik(p, side, j[:, a] + np.array([0.0, 0.0, 0.05]))
        assert (knee_flexion(q, side) > -1e-6).all()


def test_bad_input_raises():
    p = _random_poses(3)
    with pytest.raises(ValueError, match="ankle_target"):
        two_bone_ik(p, 0, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="side"):
        two_bone_ik(p, 2, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="69"):
        plant_feet(np.zeros((3, 68)), 0.0)
    with pytest.raises(ValueError, match="floor_z"):
        plant_feet(p, np.zeros(5))


def _sliding_walk(T=90, speed=0.6):
    """A body standing with slightly bent knees (feet flat on the floor z = 0) whose
    pelvis glides along +x at ``speed`` m/s with a little sway: both feet slide."""
    skel = default_skeleton()
    rest = skel.rest_joints().astype(np.float64)
    base = np.zeros((1, 69))
    base[0, 68] = -0.05  # pelvis 5 cm lower than the rest pose
    for side in (0, 1):
        a = LEGS[side][2]
        tgt = rest[a][None].copy()
        base, _ = two_bone_ik(base, side, tgt)  # knees bend, ankles back on the floor
    p = np.repeat(base, T, 0)
    t = np.arange(T) / 30.0
    p[:, 66] = speed * t
    p[:, 67] = 0.02 * np.sin(2 * np.pi * t)
    return p


def test_planting_stops_a_sliding_stance_and_keeps_the_pelvis_path():
    p = _sliding_walk()
    j0, _ = _fk(p)
    before = contact_score(j0, 0.0)
    # plant in windows of 25 frames with the state carried over, as the generator does
    st, outs = None, []
    for k in range(0, len(p), 25):
        o, st, info = plant_feet(p[k : k + 25], 0.0, st)
        outs.append(o)
        assert isinstance(st, PlantState)
    q = np.concatenate(outs)
    assert q.shape == p.shape and np.isfinite(q).all()
    j1, _ = _fk(q.astype(np.float32))
    # the pelvis path (and the whole pelvis pose) is unchanged
    assert np.abs(j1[:, 0] - j0[:, 0]).max() < 1e-5
    assert np.abs(q[:, :3] - p[:, :3]).max() == 0 and np.abs(q[:, 66:] - p[:, 66:]).max() == 0
    # the stance foot is still: the slowest foot is below the contact speed threshold
    vmin = foot_speeds(j1).min(1)
    assert np.median(vmin) < 1e-3
    assert (vmin < CONTACT_SPEED_THRESHOLD).mean() > 0.9
    after = contact_score(j1, 0.0)
    assert before < 0.7 < 0.95 < after, (before, after)
    for side in (0, 1):
        assert (knee_flexion(q, side) > -1e-6).all()
    # feet stay near the floor: the lowest foot joint within 5 cm of it
    lowest = j1[:, [7, 8, 10, 11], 2].min(1)
    assert np.abs(lowest).max() < 0.05
    # the body really walks: each foot got planted at several places
    for side in (0, 1):
        a = LEGS[side][2]
        still = np.linalg.norm(np.diff(j1[:, a], axis=0), axis=-1) * 30 < 1e-3
        xs = np.round(j1[1:][still, a, 0], 2)
        assert len(np.unique(xs)) >= 3, xs


def test_planting_a_standing_body_keeps_it_standing():
    p = _sliding_walk(T=40, speed=0.0)
    p[:, 67] = 0.0
    q, st, info = plant_feet(p, 0.0)
    j0, _ = _fk(p)
    j1, _ = _fk(q)
    assert np.abs(j1 - j0).max() < 1e-4
    assert info["releases"]["stretch"] == 0 and st.pinned.all()
