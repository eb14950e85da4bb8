"""Reference metrics against hand-computed values on tiny synthetic trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssomotion_ros.eval import metrics as M

FPS = 30.0


def body(T: int, pelvis_xy=(0.0, 0.0), foot_height=0.0) -> np.ndarray:
    """(T, 22, 3) static body: pelvis at 0.9 m, all other joints 0.5 m up, feet at
    ``foot_height``, everything above ``pelvis_xy``."""
    j = np.zeros((T, 22, 3))
    j[:, :, :2] = pelvis_xy
    j[:, :, 2] = 0.5
    j[:, 0, 2] = 0.9
    j[:, M.FOOT_JOINTS, 2] = foot_height
    return j


def translate(j: np.ndarray, velocity_xy, joints=None) -> np.ndarray:
    """Move ``joints`` (default: all) at a constant xy velocity (m/s)."""
    out = j.copy()
    t = np.arange(len(j))[:, None] / FPS
    idx = slice(None) if joints is None else list(joints)
    out[:, idx, :2] += (t * np.asarray(velocity_xy))[:, None, :]
    return out


def test_foot_joint_indices_are_ankles_and_feet():
    assert M.FOOT_JOINTS == (7, 8, 10, 11)


def test_contact_static_feet_at_10cm():
    j = body(10, foot_height=0.1)
    assert M.contact_score(j) == pytest.approx(math.exp(-0.05), rel=1e-12)
    np.testing.assert_allclose(M.contact_score(j, per_frame=True), np.full(9, math.exp(-0.05)))


def test_contact_planted_feet_while_walking_is_perfect():
    # Body moves at 1 m/s; left ankle + left foot stay planted on the floor.
    j = translate(body(31), (1.0, 0.0))
    j[:, [7, 10], 0] = 0.0
    assert M.contact_score(j) == pytest.approx(1.0)
    # All feet slide along with the body at 1 m/s: exp(-(1 - 0.075)).
    j = translate(body(31), (1.0, 0.0))
    assert M.contact_score(j) == pytest.approx(math.exp(-0.925), rel=1e-9)
    # Speed exactly below the threshold costs nothing: 0.07 m/s.
    j = translate(body(31), (0.07, 0.0))
    assert M.contact_score(j) == pytest.approx(1.0)


def test_contact_uses_abs_of_lowest_foot_and_floor_height():
    j = body(5)
    j[:, 7, 2] = -0.2  # left ankle 20 cm below the floor
    assert M.contact_score(j) == pytest.approx(math.exp(-0.15), rel=1e-12)
    # Per-frame floor: frame t floor at 0.01 * t, feet at 0 -> heights -0.01 t.
    j = body(11)
    floor = 0.02 * np.arange(11)
    h = np.abs(-floor[1:])
    ref = np.exp(-np.maximum(h - 0.05, 0)).mean()
    assert M.contact_score(j, floor_height=floor) == pytest.approx(ref, rel=1e-12)
    # Floor at 1 m and feet at 1.1 m == feet at 0.1 m on the ground floor.
    j = body(4, foot_height=1.1)
    assert M.contact_score(j, floor_height=1.0) == pytest.approx(math.exp(-0.05))
    # A floor-height query evaluated under each foot: a 1 m step at x >= 0.5.
    j = body(4, foot_height=1.1)
    j[:, [7, 10], 0] = 1.0  # left foot on the step -> 0.1 m above it
    j[:, [8, 11], 0] = 0.0  # right foot 1.1 m above the ground floor

    def step_floor(xy):
        return np.where(xy[:, 0] >= 0.5, 1.0, 0.0)

    np.testing.assert_allclose(M.foot_heights(j, step_floor)[0], [0.1, 1.1, 0.1, 1.1])
    assert M.contact_score(j, floor_height=step_floor) == pytest.approx(math.exp(-0.05))


def test_contact_matches_reference_loop_on_random_motion():
    rng = np.random.default_rng(0)
    j = rng.normal(scale=0.1, size=(20, 22, 3)).cumsum(axis=0)
    ref = []
    for t in range(1, 20):
        v = min(np.linalg.norm(j[t, k] - j[t - 1, k]) * FPS for k in (7, 8, 10, 11))
        h = min(j[t, k, 2] for k in (7, 8, 10, 11))
        ref.append(math.exp(-max(v - 0.075, 0)) * math.exp(-max(abs(h) - 0.05, 0)))
    assert M.contact_score(j) == pytest.approx(np.mean(ref), rel=1e-12)
    assert M.contact_score(torch.from_numpy(j).float()) == pytest.approx(np.mean(ref), rel=1e-5)


def test_foot_skating():
    # Feet on the floor sliding at 1 m/s -> 1 m/s of skating.
    j = translate(body(31), (0.6, 0.8))
    assert M.foot_skating(j) == pytest.approx(1.0)
    # Left foot planted on the floor, right foot swinging 0.2 m up: no skating.
    j = translate(body(31), (1.0, 0.0))
    j[:, [7, 10], 0] = 0.0
    j[:, [8, 11], 2] = 0.2
    assert M.foot_skating(j) == pytest.approx(0.0)
    # Vertical motion is not skating: feet bobbing up and down in place.
    j = body(31)
    j[:, M.FOOT_JOINTS, 2] = 0.02 * (np.arange(31) % 2)[:, None]
    assert M.foot_skating(j) == pytest.approx(0.0)
    # No foot ever in contact -> NaN.
    assert math.isnan(M.foot_skating(body(5, foot_height=0.3)))


def test_goal_metrics_and_time_to_goal():
    j = translate(body(91), (1.0, 0.0))  # pelvis from x = 0 to 3 m in 3 s
    goal = np.array([2.0, 0.1])
    out = M.goal_metrics(j, goal)
    assert out["success"] == 1.0
    assert out["min_distance"] == pytest.approx(0.1)
    assert out["last_distance"] == pytest.approx(math.hypot(1.0, 0.1))
    # First frame with sqrt((x - 2)^2 + 0.01) < 0.2: x > 2 - sqrt(0.03) -> frame 55.
    assert out["time_to_goal"] == pytest.approx(55 / 30)
    # Pelvis trajectory given directly, goal with a z (ignored for locomotion).
    out2 = M.goal_metrics(j[:, 0, :], [2.0, 0.1, 5.0])
    assert out2 == pytest.approx(out)
    miss = M.goal_metrics(j, [2.0, 0.3])
    assert miss["success"] == 0.0 and miss["min_distance"] == pytest.approx(0.3)
    assert math.isnan(miss["time_to_goal"])
    assert M.time_to_goal(j, [0.0, 0.0]) == 0.0


def test_goal_distance_sit_uses_3d_pelvis():
    j = translate(body(31), (1.0, 0.0))  # pelvis at z = 0.9
    assert M.goal_distance(j, [0.5, 0.0, 0.45]) == pytest.approx(0.45)
    assert M.goal_distance(j, [0.5, 0.0]) == pytest.approx(0.0)


def sphere_sdf(centre, radius):
    c = np.asarray(centre, float)

    def sdf(p):
        return np.linalg.norm(p - c, axis=1) - radius

    return sdf


def test_non_penetration_body_sdf_and_occupancy():
    # One point per frame moving along x from 0 to 2.9 m through a 0.5 m sphere at x=1.5.
    x = np.arange(30) * 0.1
    pts = np.stack([x, np.zeros(30), np.full(30, 0.5)], axis=1)[:, None, :]
    sdf = sphere_sdf([1.5, 0.0, 0.5], 0.5)
    inside = np.abs(x - 1.5) < 0.5  # frames 11..19 -> 9 frames
    assert inside.sum() == 9
    assert M.non_penetration_body(pts, sdf=sdf) == pytest.approx(21 / 30)
    np.testing.assert_array_equal(M.penetrating_frames(pts, sdf=sdf), inside)
    # A tolerance of 0.15 m forgives shallow contact: |x - 1.5| < 0.35 -> 7 frames.
    assert M.non_penetration_body(pts, sdf=sdf, tolerance=0.15) == pytest.approx(23 / 30)

    def occupied(p):
        return sdf(p) < 0

    assert M.non_penetration_body(pts, occupied=occupied) == pytest.approx(21 / 30)
    # Several points per frame: one bad point spoils the frame.
    two = np.concatenate([pts, pts + [0.0, 5.0, 0.0]], axis=1)
    assert M.non_penetration_body(two, sdf=sdf) == pytest.approx(21 / 30)
    with pytest.raises(ValueError, match="exactly one"):
        M.non_penetration_body(pts)


def test_non_penetration_feet_on_walkable_grid():
    free = np.ones((20, 40), dtype=bool)  # 0.1 m cells, x in [0, 4], y in [0, 2]
    free[:, 15:20] = False  # a rug-sized obstacle footprint at x in [1.5, 2.0)
    walk = M.walkable_query(free, (0.0, 0.0), 0.1)
    np.testing.assert_array_equal(
        walk(np.array([[1.45, 1.0], [1.55, 1.0], [2.05, 1.0], [5.0, 1.0]])),
        [True, False, True, False],
    )
    j = translate(body(31, pelvis_xy=(0.05, 1.0)), (1.0, 0.0))  # x = 0.05 + t
    x = 0.05 + np.arange(31) / FPS
    bad = (x >= 1.5) & (x < 2.0)
    assert M.non_penetration_feet(j, walk) == pytest.approx(1 - bad.mean())
    # Feet lifted 0.3 m above the floor while crossing are not checked with a
    # contact height.
    jj = j.copy()
    jj[np.ix_(bad, M.FOOT_JOINTS, [2])] = 0.3
    assert M.non_penetration_feet(jj, walk, contact_height=0.05) == pytest.approx(1.0)


def test_interaction_penetration_sums_negative_sdf():
    pts = np.array(
        [
            [[0.0, 0.0, 0.1], [0.0, 0.0, -0.02]],
            [[0.0, 0.0, -0.05], [1.0, 0.0, -0.05]],
            [[0.0, 0.0, 0.3], [1.0, 0.0, 0.2]],
        ]
    )

    def floor_sdf(p):
        return p[:, 2]

    out = M.interaction_penetration(pts, floor_sdf)
    assert out["penetration_mean"] == pytest.approx((0.02 + 0.10 + 0.0) / 3)
    assert out["penetration_max"] == pytest.approx(0.10)


def test_voxel_sdf_query_is_exact_for_linear_fields():
    res = 0.1
    origin = np.array([1.0, -1.0, 0.0])
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in (10, 12, 8)], indexing="ij"), -1)
    centres = origin + (idx + 0.5) * res
    grid = centres @ np.array([0.5, -1.0, 2.0]) + 0.3
    q = M.voxel_sdf_query(grid, origin, res, outside=9.0)
    pts = np.array([[1.23, -0.71, 0.33], [1.5, -0.5, 0.5], [0.0, 0.0, 0.0]])
    ref = pts @ np.array([0.5, -1.0, 2.0]) + 0.3
    np.testing.assert_allclose(q(pts)[:2], ref[:2], atol=1e-12)
    assert q(pts)[2] == 9.0


def test_trajectory_metrics_and_aggregation():
    j = translate(body(61), (1.0, 0.0))
    j[:, [7, 10], 0] = 0.0  # one planted foot
    loco = M.trajectory_metrics(j, [1.5, 0.0], sdf=sphere_sdf([10.0, 0, 0], 1.0))
    assert loco["success"] == 1.0 and loco["contact"] == pytest.approx(1.0)
    assert loco["non_penetration"] == 1.0
    inter = M.trajectory_metrics(j, [1.0, 0.0, 0.45], sdf=lambda p: p[:, 2] - 0.2, interaction=True)
    # Feet joints at z = 0 are 0.2 m under the "floor" at 0.2: 4 * 0.2 per frame.
    assert inter["penetration_mean"] == pytest.approx(0.8)
    assert inter["goal_distance"] == pytest.approx(0.45)
    assert "success" not in inter

    samples = [
        {"success": 1.0, "contact": 0.9, "min_distance": 0.15, "foot_skating": 0.3},
        {"success": 0.0, "contact": 0.97, "min_distance": 0.5, "foot_skating": math.nan},
        {"success": 1.0, "contact": 0.8, "min_distance": 0.05, "foot_skating": 0.1},
    ]
    agg = M.aggregate_samples(samples)
    assert agg["best"] == pytest.approx(
        {"success": 1.0, "contact": 0.97, "min_distance": 0.05, "foot_skating": 0.1}
    )
    assert agg["mean"]["success"] == pytest.approx(2 / 3)
    assert agg["mean"]["contact"] == pytest.approx(0.89)
    assert agg["mean"]["foot_skating"] == pytest.approx(0.2)  # NaN ignored
    suite = M.aggregate_suite([samples, [{"success": 0.0, "contact": 0.5}]])
    assert suite["best"]["success"] == pytest.approx(0.5)
    assert suite["best"]["contact"] == pytest.approx((0.97 + 0.5) / 2)
    assert suite["mean"]["success"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert M.best_of_n([0.2, 0.1], higher_is_better=False) == 0.1
    assert math.isnan(M.best_of_n([math.nan], True))


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        M.contact_score(np.zeros((10, 5, 3)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        M.contact_score(np.zeros((1, 22, 3)))
    with pytest.raises(ValueError, match="floor_height"):
        M.contact_score(np.zeros((5, 22, 3)), floor_height=np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        M.contact_score(np.full((5, 22, 3), np.nan))
    with pytest.raises(ValueError, match="goal"):
        M.goal_metrics(np.zeros((5, 22, 3)), [1.0])
    with pytest.raises(ValueError, match="one value per query point"):
        M.non_penetration_body(np.zeros((3, 2, 3)), sdf=lambda p: np.zeros(1))
    with pytest.raises(ValueError, match="at least one"):
        M.aggregate_samples([])


def test_scene_queries_may_return_torch_tensors():
    # SceneModel.signed_distance returns a float32 torch tensor; metrics accept it.
    def torch_sdf(p):
        return torch.as_tensor(p[:, 2] - 0.1, dtype=torch.float32)

    pts = torch.tensor([[[0.0, 0.0, 0.5]], [[0.0, 0.0, 0.0]]])
    assert M.non_penetration_body(pts, sdf=torch_sdf) == pytest.approx(0.5)
    out = M.interaction_penetration(pts, torch_sdf)
    assert out["penetration_max"] == pytest.approx(0.1, rel=1e-6)
