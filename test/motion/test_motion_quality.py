"""Quality metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from ssomotion_ros.motion.quality import (
    FOOT_JOINTS,
    bone_length_consistency,
    foot_skating,
    jerk,
    motion_metrics,
)

REST = np.zeros(4)


def test_foot_skating_sliding_and_lifted():
    j = np.zeros((11, 22, 3))
    j[..., 2] = 1.0  # every joint high up ...
    for f in FOOT_JOINTS:
        j[:, f, 2] = 0.0  # ... but the feet, on the floor,
        j[:, f, 0] = np.arange(11) * 0.01  # sliding 0.01 m per frame = 0.3 m/s
    r = foot_skating(j, fps=30, rest_heights=REST, contact_tol=0.03)
    assert r["contact_frames"] == 40
    assert r["skate_speed"] == pytest.approx(0.3)
    assert r["skate_ratio"] == 1.0
    j[:, list(FOOT_JOINTS), 2] = 0.5  # lifted: no contact, no skating
    r = foot_skating(j, fps=30, rest_heights=REST)
    assert r == {"skate_speed": 0.0, "skate_ratio": 0.0, "contact_frames": 0}


def test_foot_skating_planted_feet():
    j = np.zeros((5, 22, 3))
    r = foot_skating(j, rest_heights=REST)
    assert r["skate_speed"] == 0.0 and r["contact_frames"] == 16


def test_jerk_of_a_cubic():
    t = np.arange(10) / 30.0
    j = np.zeros((10, 22, 3))
    j[..., 0] = (t**3)[:, None]  # x = t^3: third derivative 6 m/s^3 everywhere
    assert jerk(j, fps=30) == pytest.approx(6.0, rel=1e-6)
    j[..., 0] = (2 * t**2)[:, None]  # quadratic: no jerk
    assert jerk(j, fps=30) == pytest.approx(0.0, abs=1e-8)


def test_bone_length_consistency_by_hand():
    parents = np.array([-1, 0])
    j = np.zeros((2, 2, 3))
    j[0, 1] = [1.0, 0, 0]
    j[1, 1] = [0, 2.0, 0]  # bone length 1 then 2: std 0.5
    assert bone_length_consistency(
        np.pad(j, ((0, 0), (0, 20), (0, 0))), np.r_[parents, [0] * 20]
    ) == pytest.approx(0.5 / 21)
    from ssomotion_ros.body.skeleton import forward_kinematics_np

    p = np.random.default_rng(0).normal(0, 0.3, (6, 69))
    assert bone_length_consistency(forward_kinematics_np(p)) < 1e-5  # rigid by FK


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="22"):
        jerk(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match="frames"):
        jerk(np.zeros((3, 22, 3)))
    m = motion_metrics(np.zeros((6, 22, 3)))
    assert set(m) >= {"skate_speed", "jerk", "bone_length_std"}


def test_seam_steps_by_hand():
    from ssomotion_ros.motion.quality import seam_steps

    j = np.zeros((60, 22, 3))
    j[:, :, 0] = np.arange(60)[:, None] * 0.01  # 1 cm per frame
    j[5:, :, 0] += 0.2  # a 20 cm jump between frame 4 and 5 (the first seam)
    j[30:, :, 0] += 0.2  # and at the second seam (29 -> 30)
    j[55:, :, 0] += 0.2  # and the third (54 -> 55)
    r = seam_steps(j, history=5, window=30)
    assert r["seam_step"] == pytest.approx(0.21)
    assert r["step_elsewhere"] == pytest.approx(0.01)
