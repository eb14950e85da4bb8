"""Path-following baseline on the real CMU clips in a generated, fused room."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from synthesis_helpers import instance

from ssomotion_ros.eval.metrics import contact_score
from ssomotion_ros.language import Goal
from ssomotion_ros.synthesis import baseline as baseline_mod
from ssomotion_ros.synthesis.baseline import (
    BaselineConfig,
    _distance_profile,
    extract_gait_cycle,
    load_library,
)
from ssomotion_ros.synthesis.types import (
    BodyState,
    SynthesisCancelled,
    SynthesisError,
    Synthesizer,
    end_state,
)


def _goal(action, position, target=None, facing=None, radius=0.2):
    tid = None if target is None else target.instance_id
    name = None if target is None else target.name
    return Goal(
        action, tid, name, np.asarray(position, float), radius, facing, np.zeros(3), 1.0, ""
    )


def _run(synth, goal, room, state):
    return list(synth.stream(goal, room[0], state, agent_id="a", request_id="r"))


def test_protocol_and_library(synth):
    assert isinstance(synth, Synthesizer)
    lib = synth.library
    # a gait cycle of a normal walk: about 1 s, 1-1.6 m per cycle, closes on itself
    assert 25 <= len(lib.walk_cycle) <= 50 and 0.9 < lib.stride < 1.7
    assert 0.6 < lib.walk_speed < 1.6
    # the sit clip goes from standing (pelvis ~0.95 m) to seated (much lower)
    z = lib.sit[:, 68]
    assert z[0] - z[lib.sit_seated] > 0.3
    # lie: the last frame is lying (pelvis low)
    assert lib.lie[0, 68] - lib.lie[lib.lie_down, 68] > 0.5
    # second load comes from the process cache (same object)
    assert load_library(synth.config) is lib


def test_gait_cycle_reference():
    """A synthetic 'walk': feet alternate along +x with a period of 20 frames."""
    t = np.arange(80)
    params = np.zeros((80, 69))
    params[:, 66] = 0.05 * t  # 1.5 m/s
    # swing the hips: left hip flexes forward and back (rotation about native x = body left)
    params[:, 3] = 0.4 * np.sin(2 * np.pi * t / 20)
    params[:, 6] = -0.4 * np.sin(2 * np.pi * t / 20)
    cycle, stride, (a, b) = extract_gait_cycle(params)
    assert b - a == 20 and len(cycle) == 20
    assert stride == pytest.approx(1.0, abs=1e-6)  # 20 frames x 0.05 m
    # canonical: pelvis x residual is 0 for constant speed
    assert np.allclose(cycle[:, 66], cycle[0, 66], atol=1e-6)
    with pytest.raises(ValueError, match="straight walk"):
        extract_gait_cycle(np.zeros((40, 69)))


def test_distance_profile():
    s = _distance_profile(3.0, 1.0, 0.5, 30.0)
    assert s[0] == 0 and s[-1] == pytest.approx(3.0)
    v = np.diff(s) * 30
    assert v.max() <= 1.0 + 1e-6 and np.all(v >= -1e-9)
    # 2 m cruising at 1 m/s + 0.5 m speeding up and 0.5 m slowing down at 0.5 m/s mean
    assert len(s) / 30 == pytest.approx(2.0 + 1.0 + 1.0, abs=0.05)
    short = _distance_profile(0.2, 1.0, 0.5, 30.0)
    assert short[-1] == pytest.approx(0.2) and np.all(np.diff(short) >= 0)


def test_walk_streams_and_reaches_goal(synth, room, monkeypatch):
    model, scene = room
    start = BodyState(*scene.start_pose())
    desk = instance(room, "desk")
    goal_xy = desk.affordances[-1].position[:2]
    goal = _goal("walk", [goal_xy[0], goal_xy[1], 0.0], desk)
    assert synth.library is not None  # clips loaded before counting
    made = []
    real_fk = baseline_mod.forward_kinematics_np

    def counting_fk(p, *a, **k):  # every window's joints come from one FK call
        made.append(len(p))
        return real_fk(p, *a, **k)

    monkeypatch.setattr(baseline_mod, "forward_kinematics_np", counting_fk)
    stream = synth.stream(goal, model, start, agent_id="alice", request_id="r1")
    t0 = time.perf_counter()
    wins = [next(stream)]
    t_first = time.perf_counter() - t0
    # streamed: when the first window arrives, the later ones do not exist yet
    assert made == [30]
    wins += list(stream)
    t_all = time.perf_counter() - t0
    assert len(wins) >= 3 and len(made) == len(wins)
    assert t_first < t_all
    assert [w.start_frame for w in wins] == [30 * k for k in range(len(wins))]
    assert all(w.num_frames == 30 for w in wins[:-1]) and wins[-1].final
    assert not any(w.final for w in wins[:-1])
    joints = np.concatenate([w.joints for w in wins])
    pel = joints[:, 0]
    assert np.hypot(*(pel[-1, :2] - goal_xy)) < 0.2
    assert "0.0" in wins[-1].note  # "pelvis ended 0.0x m from the goal"
    # the pelvis follows the planned path (sway only) and stays on walkable floor
    path = wins[0].planned_path
    d = np.min(np.linalg.norm(pel[:, None, :2] - path[None], axis=2), axis=1)
    assert d.max() < 0.1
    # the path hugs the 0.25 m clearance margin at corners; the swaying pelvis stays
    # clear of obstacles by 0.15 m everywhere
    from ssomotion_ros.motion.planning import WalkableGrid

    grid = WalkableGrid.coerce(model.walkable_grid(0.15))
    assert np.mean(grid.is_free(pel[:, :2])) > 0.98
    # real gait: feet are planted (reference contact score), pelvis at walking height
    assert contact_score(joints) > 0.85
    assert 0.85 < np.median(pel[:, 2]) < 1.05
    # speed: the clip's own, ramped
    v = np.linalg.norm(np.diff(pel[:, :2], axis=0), axis=1) * 30
    assert np.median(v) == pytest.approx(synth.library.walk_speed, rel=0.25)
    # the root poses are the pelvis + a unit quaternion
    rp = np.concatenate([w.root_poses for w in wins])
    assert np.allclose(rp[:, :3], pel, atol=1e-5)
    assert np.allclose(np.linalg.norm(rp[:, 3:], axis=1), 1.0, atol=1e-5)
    st = end_state(wins[-1])
    assert st.posture == "standing" and np.hypot(st.x - goal_xy[0], st.y - goal_xy[1]) < 0.2


def test_sit_stand_lie(synth, room):
    model, scene = room
    chair = instance(room, "chair")
    seat = next(a for a in chair.affordances if a.kind == "sit")
    st = BodyState(*scene.start_pose())
    wins = _run(synth, _goal("sit", seat.position, chair, seat.facing, 0.15), room, st)
    acts = np.concatenate([w.actions for w in wins])
    assert "walk" in acts and acts[-1] == "sit"
    pel = wins[-1].joints[-1, 0]
    assert np.hypot(*(pel[:2] - seat.position[:2])) < 0.15
    assert pel[2] == pytest.approx(seat.position[2] + 0.1, abs=0.05)
    st = end_state(wins[-1])
    assert st.posture == "sitting" and st.stand_xy is not None
    # stand up: back on the floor where the agent stood before sitting
    wins = _run(synth, _goal("stand_up", [st.x, st.y, 0]), room, st)
    st2 = end_state(wins[-1])
    assert st2.posture == "standing"
    assert np.hypot(*(st2.xy - st.stand_xy)) < 0.1
    assert wins[-1].joints[-1, 0, 2] > 0.85
    # lie on the bed, starting while seated: stands up first
    bed = instance(room, "bed")
    lie = next(a for a in bed.affordances if a.kind == "lie")
    wins = _run(synth, _goal("lie", lie.position, bed, lie.facing, 0.15), room, st)
    acts = list(np.concatenate([w.actions for w in wins]))
    assert acts[0] == "stand_up" and "walk" in acts and acts[-1] == "lie"
    last = wins[-1].joints[-1]
    assert np.hypot(*(last[0, :2] - lie.position[:2])) < 0.15
    assert last[0, 2] == pytest.approx(lie.position[2] + 0.12, abs=0.05)
    # lying: head and pelvis at about the same height, body along the bed
    assert abs(last[15, 2] - last[0, 2]) < 0.3
    assert end_state(wins[-1]).posture == "lying"


def test_turn_and_wait(synth, room):
    model, scene = room
    st = BodyState(2.0, 2.0, 0.0)
    wins = _run(synth, _goal("turn", [2, 2, 0], facing=np.pi / 2), room, st)
    assert end_state(wins[-1]).yaw == pytest.approx(np.pi / 2, abs=0.02)
    g = Goal("wait", None, None, np.zeros(3), 0.2, None, np.zeros(3), 1.0, "", duration_s=2.0)
    wins = _run(synth, g, room, st)
    assert sum(w.num_frames for w in wins) == 60


def test_unreachable_goal_fails_with_planner_reason(synth, room):
    _, scene = room
    st = BodyState(*scene.start_pose())
    with pytest.raises(SynthesisError, match="off the map"):
        _run(synth, _goal("walk", [40.0, 1.0, 0.0]), room, st)


def test_cancel_stops_between_windows(synth, room):
    model, scene = room
    cancel = threading.Event()
    goal = _goal("walk", [*instance(room, "desk").affordances[-1].position[:2], 0.0])
    stream = synth.stream(goal, model, BodyState(*scene.start_pose()), cancel)
    next(stream)
    cancel.set()
    with pytest.raises(SynthesisCancelled):
        next(stream)


def test_bad_input(synth, room):
    with pytest.raises(ValueError, match="BodyState"):
        synth.stream(_goal("walk", [1, 1, 0]), room[0], (1.0, 1.0, 0.0))
    with pytest.raises(ValueError, match="window"):
        BaselineConfig(window=1)
