"""The learned generator: streaming, transitions, failures with the planner's reason,
batching, the obstacle SDF (numpy reference), config validation.

A tiny untrained network (saved as a real checkpoint in a temporary folder) drives the
state machine; the walk -> sit -> stand_up sequence starts at the approach pose so it
completes whatever the network's quality. With the shipped default checkpoint present, a
full walk to a goal across the room is checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from synthesis_helpers import write_tiny_checkpoint

from ssomotion_ros.body.skeleton import forward_kinematics_np
from ssomotion_ros.eval.metrics import contact_score
from ssomotion_ros.language.goal import Goal
from ssomotion_ros.synthesis.learned import LearnedConfig, LearnedSynthesizer, ObstacleSDF
from ssomotion_ros.synthesis.types import (
    BodyState,
    MotionWindow,
    SynthesisError,
    end_state,
    heading_of,
)


def _goal(action, position, facing=None, target_id=None):
    return Goal(action, target_id, None, np.asarray(position, float), 0.2, facing,
                np.zeros(3), 1.0, action)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"))


@pytest.fixture(scope="module")
def learned(tiny_checkpoint, synth):
    cfg = LearnedConfig(checkpoint=str(tiny_checkpoint), device="cpu", time_budget_s=3.0,
                        interaction_windows=2)  # fmt: skip
    return LearnedSynthesizer(cfg, library=synth.library)


def _free_start(model, synth):
    """A free floor point of the room (pelvis xy) and the grid."""
    grid = synth.grid(model)
    free = np.argwhere(grid.free)
    i = len(free) // 2
    return grid.cell_center(tuple(free[i])), grid


def test_stream_yields_first_window_before_the_rest(room, learned, synth):
    model, _ = room
    learned.prepare(model)
    start, grid = _free_start(model, synth)
    free = np.argwhere(grid.free)
    far = max((grid.cell_center(tuple(c)) for c in free[:: max(1, len(free) // 50)]),
              key=lambda p: np.linalg.norm(p - start))  # fmt: skip
    calls = []
    diff = learned.sampler.diffusion
    orig = diff.sample

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    diff.sample = counting
    try:
        it = learned.stream(_goal("walk", [far[0], far[1], 0.0]), model, BodyState(*start, 0.0))
        assert not calls, "planning must not sample windows before the iterator is used"
        w0 = next(it)
        assert len(calls) == 1, "the first window must be yielded after one network window"
        assert isinstance(w0, MotionWindow) and w0.start_frame == 0 and not w0.final
        # a walk window's new frames, played walk_time_scale times faster
        per_window = learned.sampler.window - learned.sampler.history
        assert w0.num_frames == int(per_window / learned.config.walk_time_scale)
        assert w0.params.shape == (w0.num_frames, 69) and w0.joints.shape[1:] == (22, 3)
        assert set(w0.actions) == {"walk"} and w0.fps == 30.0
        assert len(w0.planned_path) >= 2
        rest = list(it)
    finally:
        diff.sample = orig
    assert len(calls) == 1 + len(rest) and rest and rest[-1].final
    frames = [w0.start_frame] + [w.start_frame for w in rest]
    ends = [w0.end_frame] + [w.end_frame for w in rest]
    assert frames[1:] == ends[:-1], "windows must be contiguous"
    # the time budget (3 s) bounds the motion and the last window says why it stopped
    assert ends[-1] <= 3.0 * 30 + learned.sampler.window
    assert "time budget" in rest[-1].note or "pelvis ended" in rest[-1].note


def test_walk_sit_stand_up_sequence_completes(room, learned, synth):
    from ssomotion_ros.motion.planning import approach_pose

    model, _ = room
    grid = synth.grid(model)
    seat = next(i for i in model.instances() if i.name == "chair")
    aff = next(a for a in seat.affordances if a.kind == "sit")
    ap = approach_pose(aff, grid, None, "sit")
    assert ap.reachable, ap.reason
    state = BodyState(float(ap.stand_pose[0]), float(ap.stand_pose[1]), float(ap.stand_pose[2]))
    sit = list(learned.stream(_goal("sit", aff.position, aff.facing), model, state))
    acts = np.concatenate([w.actions for w in sit])
    assert acts[0] == "walk" and acts[-1] == "sit"
    k = int(np.argmax(acts == "sit"))
    # walk, then (face_before_transition) a turn in place to the approach facing, then sit
    kt = int(np.argmax(acts != "walk"))
    assert np.all(acts[:kt] == "walk") and np.all(acts[kt:k] == "turn")
    assert np.all(acts[k:] == "sit")
    if k > kt:  # the turn ends at the approach pose's facing
        yaw_end = heading_of(np.concatenate([w.params for w in sit])[k - 1])
        assert abs(math.remainder(yaw_end - float(ap.stand_pose[2]), 2 * math.pi)) < 0.05
    assert sit[-1].final and sit[-1].posture == "sitting"
    assert sit[-1].stand_xy is not None
    seated = end_state(sit[-1])
    # the settle step ends the pelvis at most max_settle short of the seated target
    assert seated.posture == "sitting"
    up = list(learned.stream(_goal("stand_up", [seated.x, seated.y, 0.0]), model, seated))
    assert set(np.concatenate([w.actions for w in up])) == {"stand_up"}
    assert up[-1].final and up[-1].posture == "standing" and up[-1].stand_xy is None


def test_unreachable_goal_fails_with_the_planners_reason(room, learned, synth):
    model, _ = room
    start, grid = _free_start(model, synth)
    goal = np.array([50.0, 50.0])
    reason = learned.planner.plan(grid, start, goal).reason
    assert "off the map" in reason
    with pytest.raises(SynthesisError) as e:
        learned.stream(_goal("walk", [50.0, 50.0, 0.0]), model, BodyState(*start, 0.0))
    assert str(e.value) == reason


def test_batched_agents_step_together(room, learned, synth):
    model, _ = room
    start, grid = _free_start(model, synth)
    goals = [_goal("wait", [0, 0, 0]), _goal("walk", [start[0] + 0.1, start[1], 0.0])]
    goals[0].duration_s = 0.5
    states = [BodyState(*start, 0.0), BodyState(*start, 1.0)]
    steps = list(learned.stream_batch(goals, model, states, agent_ids=["a", "b"]))
    assert all(len(s) == 2 for s in steps)
    first = steps[0]
    assert first[0].agent_id == "a" and first[0].final and set(first[0].actions) == {"idle"}
    assert first[0].num_frames == 15
    assert all(s[0] is None for s in steps[1:])
    assert steps[-1][1] is not None and steps[-1][1].final
    with pytest.raises(ValueError, match="equal length"):
        learned.stream_batch(goals, model, states[:1])


def test_bad_agent_state_and_config():
    with pytest.raises(ValueError, match="walk_speed"):
        LearnedConfig(walk_speed=0.0)
    with pytest.raises(ValueError, match="path_keeping"):
        LearnedConfig(path_keeping=2.0)
    with pytest.raises(ValueError, match="guidance_start"):
        LearnedConfig(guidance_start=1.0)
    with pytest.raises(ValueError, match="plant_max_stretch"):
        LearnedConfig(plant_max_stretch=1.5)
    with pytest.raises(ValueError, match="plant_blend_frames"):
        LearnedConfig(plant_blend_frames=0)
    with pytest.raises(ValueError, match="hysteresis"):
        LearnedConfig(plant_enter_height=0.1, plant_exit_height=0.05)
    syn = LearnedSynthesizer(LearnedConfig())
    with pytest.raises(ValueError, match="BodyState"):
        syn.stream(_goal("walk", [1, 1, 0]), None, (1.0, 2.0, 0.0))


def test_obstacle_sdf_matches_numpy_reference():
    occ = np.zeros((9, 9, 9), bool)
    occ[4, 4, 4] = True  # one voxel of 0.1 m at [0.4, 0.5]^3
    sdf = ObstacleSDF.from_occupancy(occ, origin=np.zeros(3), resolution=0.1)
    centres = (np.argwhere(np.ones_like(occ)) + 0.5) * 0.1
    ref = np.linalg.norm(centres - 0.45, axis=1) - 0.05  # centre distance minus half a voxel
    ref[np.all(np.isclose(centres, 0.45), axis=1)] = -0.05
    got = sdf(centres)
    assert np.allclose(got, ref, atol=1e-6)
    # torch query: same values at voxel centres, trilinear between, differentiable
    pts = torch.tensor(centres[::7], dtype=torch.float32, requires_grad=True)
    t = sdf.torch_query(pts)
    assert torch.allclose(t.double(), torch.as_tensor(ref[::7]), atol=1e-5)
    t.sum().backward()
    assert pts.grad is not None and torch.isfinite(pts.grad).all()
    mid = np.array([[0.3, 0.45, 0.45]])  # between centres 0.25 and 0.35 along x
    expect = 0.5 * (sdf(np.array([[0.25, 0.45, 0.45]])) + sdf(np.array([[0.35, 0.45, 0.45]])))
    assert np.isclose(sdf(mid)[0], expect[0], atol=1e-6)
    assert np.isclose(float(sdf.torch_query(torch.tensor(mid, dtype=torch.float32))), expect[0],
                      atol=1e-5)  # fmt: skip
    # off the grid: free
    assert sdf(np.array([[5.0, 5.0, 5.0]]))[0] == sdf.outside
    with pytest.raises(ValueError, match="X, Y, Z"):
        ObstacleSDF.from_occupancy(np.zeros((3, 3)), np.zeros(3), 0.1)


def test_obstacle_sdf_of_scene_model_ignores_the_floor(room):
    model, _ = room
    sdf = ObstacleSDF.from_scene_model(model)
    free, origin, res = model.walkable_grid(0.4)
    ij = np.argwhere(free)[len(np.argwhere(free)) // 2]
    xy = origin + (ij[::-1] + 0.5) * res
    fz = float(model.floor_height(xy[None])[0])
    # just above the floor in open space: positive (the floor is not an obstacle)
    assert sdf(np.array([[xy[0], xy[1], fz + 0.05]]))[0] > 0.2
    # inside a piece of furniture (its column is filled down to the floor): negative
    bed = next(i for i in model.instances() if i.name == "bed")
    c = np.asarray(bed.centroid, float)
    assert sdf(np.array([[c[0], c[1], fz + 0.2]]))[0] < 0


def _has_default_checkpoint() -> bool:
    from ssomotion_ros.motion.checkpoints import DEFAULT_CHECKPOINT

    return (DEFAULT_CHECKPOINT / "config.json").is_file()


@pytest.mark.skipif(not _has_default_checkpoint(), reason="no shipped default checkpoint yet")
def test_default_checkpoint_walks_to_a_goal(room, synth):
    model, _ = room
    syn = LearnedSynthesizer(LearnedConfig(device="cpu"), library=synth.library)
    syn.prepare(model)
    start, grid = _free_start(model, synth)
    free = np.argwhere(grid.free)
    cands = [grid.cell_center(tuple(c)) for c in free[:: max(1, len(free) // 60)]]
    goal = next(p for p in cands if 1.5 < np.linalg.norm(p - start) < 2.5)
    wins = list(syn.stream(_goal("walk", [goal[0], goal[1], 0.0]), model, BodyState(*start, 0.0)))
    pel = np.concatenate([w.pelvis for w in wins])
    assert np.min(np.linalg.norm(pel[:, :2] - goal, axis=1)) < 0.2, wins[-1].note
    assert math.isfinite(syn.last_first_window_s)
    # foot planting: params and joints agree, the stance foot holds (reference contact score)
    params = np.concatenate([w.params for w in wins])
    joints = np.concatenate([w.joints for w in wins])
    assert np.abs(forward_kinematics_np(params) - joints).max() < 1e-5
    assert "a foot planted in" in wins[-1].note
    floor = np.nan_to_num(model.floor_height(joints[:, 0, :2].astype(np.float64)))
    assert contact_score(joints, floor) > 0.9


def test_grid_is_the_planning_grid(room, learned):
    model, _ = room
    g = learned.grid(model)
    free, origin, res = model.walkable_grid(learned.config.clearance_radius)
    assert np.array_equal(g.free, free) and np.allclose(g.origin_xy, origin) and g.resolution == res
    assert learned.grid(model) is g  # cached per scene version


def test_refine_target_bends_joints_out_of_the_chair_with_the_pelvis_held(room, learned):
    from ssomotion_ros.body.collision import body_points
    from ssomotion_ros.synthesis.learned import _place

    model, _ = room
    chair = next(i for i in model.instances() if i.name == "chair")
    aff = next(a for a in chair.affordances if a.kind == "sit")
    lib = learned.library
    pos = np.array([aff.position[0], aff.position[1], float(aff.position[2]) + 0.1])
    tgt = _place(lib.sit[lib.sit_seated], float(aff.facing), pos)
    _, sdf = learned._scene_products(model)

    def pen_and_joints(p):
        j = forward_kinematics_np(p[None].astype(np.float32))[0].astype(np.float64)
        pts, r = body_points(j, n_per_bone=2)
        return float(np.maximum(r - sdf(pts), 0).sum()), j

    pen0, j0 = pen_and_joints(tgt)
    assert pen0 > 0.05  # the mocap pose placed on this chair penetrates it
    out = learned._refine_target(tgt, model, seated=True)
    pen1, j1 = pen_and_joints(out)
    assert np.isfinite(out).all() and out.shape == (69,)
    assert pen1 < 0.8 * pen0
    np.testing.assert_allclose(j1[0], j0[0], atol=1e-5)  # the pelvis stays on the seat
    np.testing.assert_array_equal(out[:3], tgt[:3])
    np.testing.assert_array_equal(out[66:], tgt[66:])
    floor = float(model.floor_height(j1[None, 0, :2])[0])
    assert j1[[7, 8, 10, 11], 2].min() > floor - 0.02  # feet not pushed into the floor
    with pytest.raises(ValueError, match="refine_pose_cost"):
        LearnedConfig(refine_pose_cost=-1.0)


def test_time_scale_resamples_a_walk_window():
    from ssomotion_ros.synthesis.learned import _time_scale

    rng = np.random.default_rng(0)
    T = 24
    prev = np.zeros(69)
    new = np.zeros((T, 69))
    new[:, 66] = np.arange(1, T + 1) * 0.02  # 0.6 m/s along x
    new[:, 3 + 3 * 3] = np.linspace(0.01, 0.5, T)  # a knee bending about x
    new[:, 4:7] += rng.normal(0, 1e-3, (T, 3))
    same = _time_scale(prev, new, 1.0)
    np.testing.assert_allclose(same, new, atol=1e-9)
    fast = _time_scale(prev, new, 1.5)
    assert fast.shape == (16, 69) and np.isfinite(fast).all()
    np.testing.assert_allclose(fast[:, 66], np.arange(1, 17) * 1.5 * 0.02, atol=1e-9)
    np.testing.assert_allclose(fast[-1], new[-1], atol=1e-9)  # 16 * 1.5 = 24: the last frame
    # frame 1 of the fast track lies halfway between new[0] and new[1] (t = 1.5)
    mid = 0.5 * (new[0, 12] + new[1, 12])
    assert abs(fast[0, 12] - mid) < 1e-6
    with pytest.raises(ValueError, match="walk_time_scale"):
        LearnedConfig(walk_time_scale=10.0)
