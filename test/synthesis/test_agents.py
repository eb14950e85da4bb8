"""Agent manager: statuses, queues, stop, several agents, playback, spawning."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ssomotion_ros.body.skeleton import forward_kinematics_np
from ssomotion_ros.synthesis.agents import (
    AgentConfig,
    AgentManager,
    Playback,
    Status,
    parse_spawn_poses,
)
from ssomotion_ros.synthesis.types import BodyState, MotionWindow

S = Status


class Recorder:
    """Collects status events; ``states(rid)`` gives one request's state sequence."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, ev):
        with self.lock:
            self.events.append((time.monotonic(), ev))

    def states(self, rid):
        with self.lock:
            return [e.state for _, e in self.events if e.request_id == rid]

    def last(self, rid):
        with self.lock:
            return [e for _, e in self.events if e.request_id == rid][-1]

    def time_of(self, rid, state):
        with self.lock:
            return next(t for t, e in self.events if e.request_id == rid and e.state == state)


class Clock:
    """Drives AgentManager.tick with a fast virtual clock (speed x real time)."""

    def __init__(self, mgr, speed=8.0):
        self.mgr, self.speed, self.t = mgr, speed, 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            self.t += self.speed / 30.0 * 0.5
            self.mgr.tick(self.t)
            time.sleep(1 / 60)

    def close(self):
        self.stop.set()
        self.thread.join(2)


@pytest.fixture
def manager(room, synth):
    made = []

    def make(realtime=False, speed=8.0, **cfg):
        rec = Recorder()
        windows = []
        mgr = AgentManager(
            lambda: room[0],
            synth,
            rec,
            on_window=windows.append,
            config=AgentConfig(realtime=realtime, **cfg),
        )
        clock = Clock(mgr, speed) if realtime else None
        made.append((mgr, clock))
        return mgr, rec, windows

    yield make
    for mgr, clock in made:
        if clock:
            clock.close()
        mgr.shutdown()


def test_status_sequence_and_rejections(manager):
    mgr, rec, windows = manager()
    mgr.submit("r1", "alice", "walk to the desk")
    mgr.submit("r2", "alice", "sit on the chair")
    mgr.submit("r3", "bob", "fly to the moon")
    mgr.submit("r4", "bob", "sit on the piano")
    mgr.submit("r5", "bob", "", problem="empty instruction")
    assert mgr.wait_idle(60)
    ok = [S.ACCEPTED, S.PLANNING, S.EXECUTING, S.SUCCEEDED]
    assert rec.states("r1") == ok and rec.states("r2") == ok
    assert rec.last("r1").goal.startswith("walk to desk #")
    assert "0.0" in rec.last("r2").reason  # pelvis ended 0.0x m from the goal
    assert rec.states("r3") == [S.REJECTED] and "didn't understand" in rec.last("r3").reason
    assert rec.states("r4") == [S.REJECTED] and "piano" in rec.last("r4").reason
    assert rec.states("r5") == [S.REJECTED] and rec.last("r5").reason == "empty instruction"
    # bob never got an accepted instruction, so he was never spawned
    assert mgr.agents() == ["alice"]
    assert mgr.agent("alice").state.posture == "sitting"
    # windows of one request are numbered continuously across its goals
    r2 = [w for w in windows if w.request_id == "r2"]
    assert [w.start_frame for w in r2] == list(np.cumsum([0] + [w.num_frames for w in r2[:-1]]))


def test_unreachable_goal_fails_with_reason(manager):
    mgr, rec, _ = manager()
    mgr.submit("r1", "alice", "walk 40 metres forward")
    assert mgr.wait_idle(30)
    assert rec.states("r1") == [S.ACCEPTED, S.PLANNING, S.FAILED]
    assert "off the map" in rec.last("r1").reason


def test_two_agents_at_once_with_playback(manager):
    mgr, rec, _ = manager(realtime=True, speed=4.0)
    mgr.submit("a1", "alice", "walk to the desk")
    mgr.submit("b1", "bob", "sit on the chair")
    assert mgr.wait_idle(60)
    assert rec.states("a1")[-1] == S.SUCCEEDED and rec.states("b1")[-1] == S.SUCCEEDED
    # both were executing at the same time
    assert rec.time_of("a1", S.EXECUTING) < rec.time_of("b1", S.SUCCEEDED)
    assert rec.time_of("b1", S.EXECUTING) < rec.time_of("a1", S.SUCCEEDED)
    # spawned apart, and playback showed the final frames
    a = mgr.agent("alice")
    frames = mgr.tick(1e9)
    assert np.allclose(frames["alice"].joints, forward_kinematics_np(a.state.params), atol=1e-5)
    assert frames["bob"].action == "sit" and not frames["bob"].playing
    assert len(frames["alice"].executed_path) > 5


def test_stop_cancels_running_and_queued(manager):
    mgr, rec, _ = manager(realtime=True, speed=1.0)
    mgr.submit("r1", "alice", "walk to the desk")
    mgr.submit("r2", "alice", "sit on the chair")
    deadline = time.monotonic() + 20
    while S.EXECUTING not in rec.states("r1") and time.monotonic() < deadline:
        time.sleep(0.02)
    mgr.submit("r3", "alice", "stop")
    assert mgr.wait_idle(30)
    assert rec.states("r1") == [S.ACCEPTED, S.PLANNING, S.EXECUTING, S.CANCELLED]
    assert rec.states("r2") == [S.ACCEPTED, S.CANCELLED]
    assert rec.last("r2").reason == "stopped by r3"
    assert rec.states("r3") == [S.ACCEPTED, S.SUCCEEDED]
    assert "cancelled 2" in rec.last("r3").reason
    # the agent stays where playback left it and takes new instructions
    mgr.submit("r4", "alice", "turn left")
    assert mgr.wait_idle(30)
    assert rec.states("r4")[-1] == S.SUCCEEDED


def test_flood_every_instruction_gets_a_final_status(manager):
    mgr, rec, _ = manager(max_queue=4)
    texts = ["walk to the desk", "sit on the banana", "", "turn left", "x" * 10]
    t0 = time.perf_counter()
    for k in range(200):
        mgr.submit(f"f{k}", f"agent{k % 3}", texts[k % len(texts)])
    assert time.perf_counter() - t0 < 0.5  # submit never blocks
    assert mgr.wait_idle(90)
    finals = {S.REJECTED, S.SUCCEEDED, S.FAILED, S.CANCELLED}
    for k in range(200):
        st = rec.states(f"f{k}")
        assert st and st[-1] in finals and sum(s in finals for s in st) == 1, (k, st)
    assert any("queued" in rec.last(f"f{k}").reason for k in range(200))


def test_spawn_free_pose_and_given_pose(manager, synth, room):
    mgr, _, _ = manager()
    mgr.spawn_poses = parse_spawn_poses("carol=2.0,2.5,1.57")
    a = mgr.spawn("alice")
    b = mgr.spawn("bob")
    c = mgr.spawn("carol")
    grid = synth.grid(room[0])
    assert grid.is_free(np.array([a.state.xy, b.state.xy])).all()
    assert np.hypot(*(a.state.xy - b.state.xy)) >= 1.0
    assert (c.state.x, c.state.y) == (2.0, 2.5)
    assert mgr.spawn("alice") is a
    with pytest.raises(ValueError, match="name=x,y"):
        parse_spawn_poses("dave=1,two")
    assert parse_spawn_poses("a=1,2; b=3,4,0.5") == {"a": (1.0, 2.0, 0.0), "b": (3.0, 4.0, 0.5)}


def test_no_scene_rejects(synth):
    rec = Recorder()
    mgr = AgentManager(lambda: None, synth, rec, config=AgentConfig(realtime=False))
    try:
        mgr.submit("r1", "alice", "walk to the desk")
        assert mgr.wait_idle(10)
        assert rec.states("r1") == [S.REJECTED] and rec.last("r1").reason == "no scene received yet"
    finally:
        mgr.shutdown()


def _window(rid, start, n, x0=0.0):
    p = np.zeros((n, 69), np.float32)
    p[:, 66] = x0 + 0.03 * np.arange(n)
    return MotionWindow(
        "a", rid, ["walk"] * n, start, p, forward_kinematics_np(p), np.zeros((n, 7))
    )


def test_playback_clock():
    pb = Playback("a", BodyState(0, 0, 0, params=np.zeros(69)), fps=30.0, max_catch_up=100)
    assert not pb.advance(0.0).playing
    pb.push(_window("r", 0, 30))
    f = pb.advance(10.0)  # first frame plays at the first tick
    assert f.frame == 0 and f.playing
    f = pb.advance(10.0 + 9.5 / 30)  # 9.5 frame periods later: frames 1..9 are due
    assert f.frame == 9
    assert f.velocity[0] == pytest.approx(0.9, abs=1e-3)  # 0.03 m per frame at 30 fps
    f = pb.advance(20.0)  # far later: plays what is there, never beyond
    assert f.frame == 29 and pb.played("r") == 30
    f = pb.advance(21.0)  # starved: holds the last frame
    assert f.frame == 29 and not f.playing
    pb.push(_window("r", 30, 30, x0=0.9))
    assert pb.advance(30.0).frame == 30  # resumes at the next window's first frame
    assert pb.advance(30.0 + 1.0 / 30).frame == 31
    assert pb.advance(5.0).frame == 32  # the clock jumped back (sim time): play on
    assert pb.advance(5.0 + 1.0 / 30).frame == 33
    cancel = threading.Event()
    assert not pb.wait_played("r", 60, cancel, timeout=0.05)
    assert pb.drop("r") == 26 and pb.pending() == 0


def test_config_errors():
    with pytest.raises(ValueError, match="max_agents"):
        AgentConfig(max_agents=0)
    with pytest.raises(ValueError, match="max_queue"):
        AgentConfig(max_queue=0)


def test_replans_when_the_map_blocks_the_path(synth):
    """An obstacle fused onto the path ahead of a walking agent: it re-plans around it."""
    from ssomotion_ros.sso.scene import SceneModel
    from ssomotion_ros.sso.synthetic import Box, SyntheticRoom, room_cloud

    scene = SceneModel()
    scene.fuse(room_cloud(SyntheticRoom(size=(6.0, 5.0, 2.8)), num_points=60_000))
    rec = Recorder()
    mgr = AgentManager(
        lambda: scene,
        synth,
        rec,
        config=AgentConfig(realtime=True),
        spawn_poses={"alice": (1.0, 2.5, 0.0)},
    )
    clock = Clock(mgr, speed=2.0)
    try:
        mgr.submit("r1", "alice", "walk 4 metres forward")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            f = mgr.tick(clock.t).get("alice")
            if f is not None and f.request_id == "r1" and f.joints[0, 0] > 1.5:
                break
            time.sleep(0.02)
        box = Box((2.9, 1.9, 0.0), (3.3, 3.1, 1.0), 3, 20)  # a cabinet across the path
        scene.fuse(room_cloud(SyntheticRoom(size=(6.0, 5.0, 2.8), boxes=[box]), 60_000,
                              walls=False))  # fmt: skip
        assert mgr.wait_idle(60)
        states = rec.states("r1")
        assert states[:3] == [S.ACCEPTED, S.PLANNING, S.EXECUTING] and states[-1] == S.SUCCEEDED
        replan = [e for _, e in rec.events if "re-planning" in e.reason]
        assert replan and "blocked near" in replan[0].reason
        assert "re-planned 1 time" in rec.last("r1").reason
        a = mgr.agent("alice")
        assert np.hypot(a.state.x - 5.0, a.state.y - 2.5) < 0.2
        # the executed path goes around the cabinet (0.25 m clearance, minus sway)
        path = mgr.tick(clock.t)["alice"].executed_path
        inside = (
            (path[:, 0] > 2.9 - 0.15) & (path[:, 0] < 3.3 + 0.15)
            & (path[:, 1] > 1.9 - 0.15) & (path[:, 1] < 3.1 + 0.15)
        )  # fmt: skip
        assert not inside.any()
    finally:
        clock.close()
        mgr.shutdown()


def test_waits_for_a_map_that_is_still_being_built(synth):
    """The goal is not mapped yet; while the mapper keeps fusing, planning is retried."""
    from ssomotion_ros.sso.scene import SceneModel
    from ssomotion_ros.sso.synthetic import SyntheticRoom, room_cloud

    scene = SceneModel()
    half = room_cloud(SyntheticRoom(size=(3.0, 5.0, 2.8)), num_points=30_000, walls=False)
    full = room_cloud(SyntheticRoom(size=(6.0, 5.0, 2.8)), num_points=60_000)
    scene.fuse(half)
    stop = threading.Event()

    rec = Recorder()

    def mapper():  # fuses every 0.2 s; the far half appears once the agent waits for it
        while not stop.wait(0.2):
            waiting = any(e.state == S.PLANNING and e.reason for _, e in rec.events)
            scene.fuse(full if waiting else half)

    mgr = AgentManager(
        lambda: scene, synth, rec, config=AgentConfig(realtime=False),
        spawn_poses={"alice": (1.0, 2.5, 0.0)},
    )  # fmt: skip
    t = threading.Thread(target=mapper, daemon=True)
    t.start()
    try:
        mgr.submit("r1", "alice", "walk 4 metres forward")
        assert mgr.wait_idle(30)
        states = rec.states("r1")
        assert states == [S.ACCEPTED, S.PLANNING, S.PLANNING, S.EXECUTING, S.SUCCEEDED], states
        waiting = [e for _, e in rec.events if e.state == S.PLANNING and e.reason]
        assert waiting[0].reason.startswith("waiting for the map:")
        assert np.hypot(mgr.agent("alice").state.x - 5.0, mgr.agent("alice").state.y - 2.5) < 0.2
        # a static map fails at once (after the 1 s probe), with the planner's reason
        stop.set()
        t.join(2)
        t0 = time.monotonic()
        mgr.submit("r2", "alice", "walk 5 metres forward")
        assert mgr.wait_idle(30)
        assert rec.states("r2")[-1] == S.FAILED and "off the map" in rec.last("r2").reason
        assert time.monotonic() - t0 < 5
    finally:
        stop.set()
        mgr.shutdown()
