"""Agent manager (ROS-free): simulated humans that take instructions and move.

One :class:`AgentManager` per process runs every agent:

- :meth:`AgentManager.submit` never blocks: it puts the instruction on an intake queue.
  A dispatcher thread grounds it (:func:`ssomotion_ros.language.parse_and_ground`
  against the scene's instances and the agent's expected position) and answers
  ACCEPTED (with the goal text) or REJECTED (with the reason).
- Agents spawn on their first instruction, at a given pose or at a free pose of the
  walkable grid away from the other agents. Each agent has a queue and a worker
  thread: PLANNING -> EXECUTING (first window made) -> SUCCEEDED / FAILED (with the
  planner's reason) / CANCELLED. An instruction whose plan is "stop" cancels the agent's
  running and queued requests (they report CANCELLED) and itself goes ACCEPTED ->
  SUCCEEDED.
- **Playback**: windows stream into a per-agent :class:`Playback`; whoever owns the
  clock (the ROS node's 30 Hz timer on the node clock) calls :meth:`AgentManager.tick`
  with the current time and gets each agent's current frame. A request succeeds once
  its last frame has been *played*, so statuses match what RViz shows. With
  ``realtime=False`` frames count as played as soon as they are made (offline use,
  evaluation, tests).

Status values equal ``ssomotion_ros/MotionStatus`` constants (see :class:`Status`).
"""

from __future__ import annotations

import enum
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ssomotion_ros.config_fields import doc_field
from ssomotion_ros.synthesis.types import (
    FPS,
    BodyState,
    MotionWindow,
    SynthesisCancelled,
    SynthesisError,
    end_state,
)

log = logging.getLogger(__name__)

NO_SCENE = "no scene received yet"


class Status(enum.IntEnum):
    """Request states (same numbers as ``MotionStatus``)."""

    ACCEPTED = 0
    REJECTED = 1
    PLANNING = 2
    EXECUTING = 3
    SUCCEEDED = 4
    FAILED = 5
    CANCELLED = 6


FINAL_STATES = frozenset({Status.REJECTED, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


@dataclass
class StatusEvent:
    """One status report: what happened to a request (``goal`` empty before grounding)."""

    request_id: str
    agent_id: str
    state: Status
    reason: str = ""
    goal: str = ""
    text: str = ""


@dataclass
class AgentConfig:
    """Parameters of the agent manager (mirrored as ROS parameters by the motion node)."""

    max_agents: int = doc_field(16, "Most agents at once; instructions for more are rejected.")
    max_queue: int = doc_field(32, "Most queued requests per agent; more are rejected.")
    realtime: bool = doc_field(
        True, "Requests finish when their frames have been played by tick() (False: when made)."
    )
    spawn_clearance: float = doc_field(0.35, "Spawned agents keep this far from obstacles, m.")
    spawn_separation: float = doc_field(1.0, "Spawned agents keep this far from each other, m.")
    max_catch_up_frames: int = doc_field(
        15, "A late tick skips at most this many frames (the rest play slower)."
    )
    map_wait_s: float = doc_field(
        15.0, "Planning failed while the map is still being built: retry for this long, s."
    )
    map_probe_s: float = doc_field(
        1.0, "A map whose version does not change for this long is static: fail at once, s."
    )
    max_replans: int = doc_field(
        5, "Re-plans of one request when the map changes under a walk; then it fails."
    )

    def __post_init__(self) -> None:
        if self.max_agents < 1:
            raise ValueError(f"max_agents must be >= 1, got {self.max_agents}")
        if self.max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {self.max_queue}")
        if self.spawn_clearance < 0 or self.spawn_separation < 0:
            raise ValueError("spawn_clearance and spawn_separation must be >= 0 metres")
        if self.map_wait_s < 0 or self.map_probe_s < 0:
            raise ValueError("map_wait_s and map_probe_s must be >= 0 seconds")
        if self.max_replans < 0:
            raise ValueError(f"max_replans must be >= 0, got {self.max_replans}")
        if self.max_catch_up_frames < 1:
            raise ValueError(f"max_catch_up_frames must be >= 1, got {self.max_catch_up_frames}")


def parse_spawn_poses(text: str) -> dict[str, tuple[float, float, float]]:
    """``"alice=1.0,2.0,0.0; bob=3,1,1.57"`` -> {name: (x, y, yaw)} (metres, radians).

    Raises ValueError naming the bad entry.
    """
    out: dict[str, tuple[float, float, float]] = {}
    for part in (p.strip() for p in text.replace("\n", ";").split(";")):
        if not part:
            continue
        name, sep, vals = part.partition("=")
        try:
            nums = [float(v) for v in vals.split(",")]
        except ValueError:
            nums = []
        if (
            not sep
            or not name.strip()
            or len(nums) not in (2, 3)
            or not all(map(math.isfinite, nums))
        ):
            raise ValueError(
                f"bad spawn pose {part!r}: write 'name=x,y[,yaw]' (metres, radians), "
                "entries separated by ';'"
            )
        out[name.strip()] = (nums[0], nums[1], nums[2] if len(nums) == 3 else 0.0)
    return out


# ------------------------------------------------------------------ playback
@dataclass
class PlaybackFrame:
    """What an agent shows now.

    params: (69,) float32 body parameters; joints: (22, 3) float32 metres, map frame.
    velocity: (3,) float32 pelvis velocity, m/s, map frame (z = 0).
    action: the frame's action label. request_id / text: the request being played ("" when
    idle). frame: index within that request. planned_path: (K, 2) metres, map frame.
    executed_path: (E, 2) metres, pelvis xy played so far for that request.
    playing: False when the agent holds its last pose.
    """

    agent_id: str
    params: np.ndarray
    joints: np.ndarray
    velocity: np.ndarray
    action: str = "idle"
    request_id: str = ""
    text: str = ""
    frame: int = 0
    planned_path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    executed_path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    playing: bool = False


class Playback:
    """Frames of one agent waiting to be shown, played at ``fps`` on an external clock.

    push() adds windows (from the worker thread); advance(now) (from the clock owner)
    moves the cursor: one frame per ``1/fps`` seconds of ``now``; when the buffer runs dry
    the clock waits for the next window instead of skipping it. Thread-safe.
    """

    def __init__(self, agent_id: str, first: BodyState, fps: float = FPS, max_catch_up: int = 15):
        from ssomotion_ros.body.skeleton import forward_kinematics_np

        self.agent_id = agent_id
        self.fps = fps
        self.max_catch_up = max_catch_up
        self._lock = threading.Condition()
        self._frames: deque = deque()  # (request_id, frame, params, joints, action)
        p = np.asarray(first.params, np.float32)
        self._current = PlaybackFrame(
            agent_id, p, forward_kinematics_np(p), np.zeros(3, np.float32)
        )
        self._next_due: float | None = None
        self._played: dict[str, int] = {}  # request id -> frames played
        self._texts: dict[str, str] = {}
        self._paths: dict[str, np.ndarray] = {}
        self._executed: list[np.ndarray] = []

    def push(self, window: MotionWindow, text: str = "") -> None:
        with self._lock:
            rid = window.request_id
            self._texts[rid] = text
            self._paths[rid] = window.planned_path
            for k in range(window.num_frames):
                self._frames.append(
                    (
                        rid,
                        window.start_frame + k,
                        window.params[k],
                        window.joints[k],
                        window.actions[k],
                    )
                )
            self._lock.notify_all()

    def mark_all_played(self) -> None:
        """Offline mode: everything pushed counts as played (the last frame is shown)."""
        with self._lock:
            while self._frames:
                self._show(self._frames.popleft(), 1.0 / self.fps)
            self._lock.notify_all()

    def _show(self, item, dt: float) -> None:
        rid, k, params, joints, action = item
        prev = self._current.joints[0]
        vel = (joints[0] - prev) / dt if self._current.request_id == rid else np.zeros(3)
        vel = np.asarray(vel, np.float32)
        vel[2] = 0.0
        if self._current.request_id != rid:
            self._executed = []
        xy = joints[0, :2].astype(np.float64)
        if not self._executed or np.hypot(*(xy - self._executed[-1])) > 0.05:
            self._executed.append(xy)
        self._current = PlaybackFrame(
            self.agent_id,
            params,
            joints,
            vel,
            str(action),
            rid,
            self._texts.get(rid, ""),
            int(k),
            self._paths.get(rid, np.zeros((0, 2))),
            np.asarray(self._executed),
            True,
        )
        self._played[rid] = max(self._played.get(rid, 0), int(k) + 1)

    def advance(self, now: float) -> PlaybackFrame:
        """Play the frames due at time ``now`` (seconds, any monotonic clock); returns the
        frame to show."""
        dt = 1.0 / self.fps
        with self._lock:
            if not self._frames:
                self._next_due = None
                if self._current.playing:
                    self._current.playing = False
                    self._current.velocity = np.zeros(3, np.float32)
                return self._current
            if self._next_due is None or now < self._next_due - 1.0:
                self._next_due = now  # first frame, or the clock jumped back (sim time)
            n = 0
            while self._frames and self._next_due <= now and n < self.max_catch_up:
                self._show(self._frames.popleft(), dt)
                self._next_due += dt
                n += 1
            if self._next_due < now - dt:  # too late: play slower rather than skip
                self._next_due = now
            self._lock.notify_all()
            return self._current

    @property
    def current(self) -> PlaybackFrame:
        with self._lock:
            return self._current

    def played(self, request_id: str) -> int:
        with self._lock:
            return self._played.get(request_id, 0)

    def wait_played(self, request_id: str, frames: int, cancel: threading.Event, timeout=None):
        """Block until ``frames`` frames of the request were played or ``cancel`` is set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._played.get(request_id, 0) < frames and not cancel.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(0.05 if left is None else min(0.05, left))
            return self._played.get(request_id, 0) >= frames

    def drop(self, request_id: str | None = None) -> int:
        """Forget unplayed frames (of one request, or all); returns how many."""
        with self._lock:
            keep = deque(f for f in self._frames if request_id is not None and f[0] != request_id)
            n = len(self._frames) - len(keep)
            self._frames = keep
            self._lock.notify_all()
            return n

    def pending(self) -> int:
        with self._lock:
            return len(self._frames)


# ------------------------------------------------------------------ agents
@dataclass
class _Request:
    request_id: str
    agent_id: str
    text: str
    goals: list
    goal_text: str
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = ""


class Agent:
    """One simulated human: its state, queue, worker thread and playback."""

    def __init__(self, manager: AgentManager, agent_id: str, state: BodyState):
        self.manager = manager
        self.agent_id = agent_id
        self.state = state  # at the end of everything synthesized so far
        self.queue: deque[_Request] = deque()
        self.running: _Request | None = None
        self.lock = threading.Condition()
        self.playback = Playback(agent_id, state, max_catch_up=manager.config.max_catch_up_frames)
        self.windows = 0
        self._thread = threading.Thread(target=self._work, name=f"agent-{agent_id}", daemon=True)
        self._thread.start()

    def expected_state(self) -> BodyState:
        """Where the agent will be when its queued work is done (for grounding)."""
        with self.lock:
            reqs = ([self.running] if self.running else []) + list(self.queue)
            st = self.state
        for req in reversed(reqs):
            for g in reversed(req.goals):
                if g.action in ("walk", "sit", "lie"):
                    yaw = st.yaw if g.facing is None else float(g.facing)
                    return BodyState(float(g.position[0]), float(g.position[1]), yaw)
        return st

    def enqueue(self, req: _Request, on_accept: Callable[[], None]) -> bool:
        """Queue ``req`` unless the queue is full; ``on_accept`` runs first (so ACCEPTED
        always precedes the worker's PLANNING)."""
        with self.lock:
            if len(self.queue) >= self.manager.config.max_queue:
                return False
            on_accept()
            self.queue.append(req)
            self.lock.notify_all()
            return True

    def cancel_all(self, reason: str) -> list[_Request]:
        """Cancel the running and queued requests; returns the queued ones removed."""
        with self.lock:
            dropped = list(self.queue)
            self.queue.clear()
            running = self.running
        if running is not None:
            running.cancel_reason = reason
            running.cancel.set()
            self.playback.drop(running.request_id)
        for r in dropped:
            r.cancel_reason = reason
            r.cancel.set()
        return dropped

    def busy(self) -> bool:
        with self.lock:
            return self.running is not None or bool(self.queue)

    def _work(self) -> None:
        m = self.manager
        while not m._stop.is_set():
            with self.lock:
                while not self.queue and not m._stop.is_set():
                    self.lock.wait(0.1)
                if m._stop.is_set():
                    return
                req = self.queue.popleft()
                self.running = req
            try:
                self._execute(req)
            except Exception as exc:  # noqa: BLE001 - a bad request must not kill the agent
                log.exception("agent %s: request %s crashed", self.agent_id, req.request_id)
                m._emit(req, Status.FAILED, f"internal error: {exc}")
            finally:
                with self.lock:
                    self.running = None
                    self.lock.notify_all()

    def _execute(self, req: _Request) -> None:
        m = self.manager
        if req.cancel.is_set():
            m._emit(req, Status.CANCELLED, req.cancel_reason or "cancelled")
            return
        m._emit(req, Status.PLANNING)
        scene = m.scene()
        if scene is None:
            m._emit(req, Status.FAILED, NO_SCENE)
            return
        frame0 = 0
        executing = False
        notes: dict[int, str] = {}
        spans: list[tuple[int, int, int, np.ndarray]] = []  # goal, first, end, path
        first_goal = 0
        replans = 0
        try:
            while True:
                for gi in range(first_goal, len(req.goals)):
                    stream = self._stream_waiting_for_map(req, req.goals[gi], scene)
                    last = None
                    start = frame0
                    for w in stream:
                        w.start_frame += frame0
                        w.goal_index = gi
                        if not executing:
                            executing = True
                            m._emit(req, Status.EXECUTING)
                        self.playback.push(w, req.text)
                        self.windows += 1
                        if m.on_window is not None:
                            try:
                                m.on_window(w)
                            except Exception:  # noqa: BLE001
                                log.exception("on_window callback failed")
                        if not m.config.realtime:
                            self.playback.mark_all_played()
                        last = w
                        if req.cancel.is_set():
                            raise SynthesisCancelled("cancelled")
                    if last is None:
                        continue
                    frame0 = last.end_frame
                    spans.append((gi, start, frame0, last.planned_path))
                    self.state = end_state(last)
                    notes[gi] = last.note
                blocked = self._play_and_watch(req, frame0, spans, scene)
                if blocked is None:
                    break
                first_goal, why = blocked
                replans += 1
                if replans > m.config.max_replans:
                    raise SynthesisError(f"{why}; gave up after {m.config.max_replans} re-plans")
                log.info("agent %s: %s: re-planning", self.agent_id, why)
                m._emit(req, Status.EXECUTING, f"re-planning: {why}")
                self.playback.drop(req.request_id)
                self._state_from_playback()
                frame0 = max(self.playback.played(req.request_id), spans[0][1] if spans else 0)
                spans = [s for s in spans if s[0] < first_goal]
        except SynthesisCancelled:
            self._settle_after_cancel(req)
            m._emit(req, Status.CANCELLED, req.cancel_reason or "cancelled")
            return
        except SynthesisError as exc:
            if req.cancel.is_set():
                self._settle_after_cancel(req)
                m._emit(req, Status.CANCELLED, req.cancel_reason or "cancelled")
            else:
                self._settle_after_cancel(req)
                m._emit(req, Status.FAILED, str(exc))
            return
        done = [notes[k] for k in sorted(notes) if notes[k]]
        if replans:
            done.append(f"re-planned {replans} time(s) as the map changed")
        m._emit(req, Status.SUCCEEDED, "; ".join(done))

    def _stream_waiting_for_map(self, req: _Request, goal, scene):
        """Start the synthesizer's stream. When planning fails while a mapper is still
        changing the map (its version changes within ``map_probe_s``), wait for the next
        map version and try again, up to ``map_wait_s``; a static map fails at once."""
        m = self.manager
        cfg = m.config
        deadline = time.monotonic() + cfg.map_wait_s
        announced = False
        while True:
            try:
                return m.synthesizer.stream(
                    goal, scene, self.state, req.cancel, self.agent_id, req.request_id
                )
            except SynthesisError as exc:
                version = getattr(scene, "version", None)
                if cfg.map_wait_s <= 0 or version is None:
                    raise
                probe_end = time.monotonic() + cfg.map_probe_s
                changed = False
                while time.monotonic() < min(deadline, probe_end):
                    if req.cancel.is_set():
                        raise SynthesisCancelled("cancelled") from exc
                    if getattr(scene, "version", None) != version:
                        changed = True
                        break
                    time.sleep(0.05)
                if not changed:
                    if announced:
                        raise SynthesisError(
                            f"{exc} (after waiting {cfg.map_wait_s:g} s for the map)"
                        ) from exc
                    raise
                if not announced:
                    announced = True
                    m._emit(req, Status.PLANNING, f"waiting for the map: {exc}")

    def _play_and_watch(self, req: _Request, total: int, spans, scene):
        """Wait until ``total`` frames of the request were played. Meanwhile, when the map
        changes (``scene.version``) while the body walks, check the rest of its planned
        path on the new map; return (goal index, why) when it is blocked, else None."""
        m = self.manager
        if not m.config.realtime:
            return None
        version = getattr(scene, "version", None)
        grid_fn = getattr(m.synthesizer, "grid", None)
        while True:
            if self.playback.wait_played(req.request_id, total, req.cancel, timeout=0.2):
                return None
            if req.cancel.is_set():
                raise SynthesisCancelled("cancelled")
            v = getattr(scene, "version", None)
            if v == version or grid_fn is None:
                continue
            version = v
            cur = self.playback.current
            if cur.request_id != req.request_id or cur.action != "walk":
                continue
            span = next((s for s in spans if s[1] <= cur.frame < s[2]), None)
            if span is None or len(span[3]) < 2:
                continue
            gi, _, _, path = span
            grid = grid_fn(scene)
            k = int(np.argmin(np.linalg.norm(path - cur.joints[0, :2], axis=1)))
            rest = path[k:]
            free = grid.is_free(rest)
            seg_free = grid.polyline_free(rest) if len(rest) > 1 else np.ones(0, bool)
            if free.all() and seg_free.all():
                continue
            bad = int(np.argmin(free)) if not free.all() else int(np.argmin(seg_free))
            x, y = rest[bad]
            return gi, f"the map changed: the path is blocked near ({x:.2f}, {y:.2f})"

    def _state_from_playback(self) -> None:
        """The agent's state becomes the frame playback shows now."""
        from ssomotion_ros.synthesis.types import heading_of

        cur = self.playback.current
        p = np.asarray(cur.params, np.float32)
        pel = cur.joints[0]
        self.state = BodyState(float(pel[0]), float(pel[1]), heading_of(p), "standing", p)

    def _settle_after_cancel(self, req: _Request) -> None:
        """After a stop the body stays where playback left it."""
        self.playback.drop(req.request_id)
        cur = self.playback.current
        p = np.asarray(cur.params, np.float32)
        pel = cur.joints[0]
        from ssomotion_ros.synthesis.types import heading_of

        posture = {"sit": "sitting", "lie": "lying"}.get(cur.action, "standing")
        if posture != "standing" and self.state.posture == posture:
            stand_xy = self.state.stand_xy
        else:
            stand_xy, posture = None, "standing"
        self.state = BodyState(float(pel[0]), float(pel[1]), heading_of(p), posture, p, stand_xy)


class AgentManager:
    """Runs every agent of a process (see the module docstring).

    scene_provider: callable returning the current SceneModel (or None before any scene).
    synthesizer: a :class:`~ssomotion_ros.synthesis.types.Synthesizer`.
    on_status: called with every :class:`StatusEvent` (from manager threads).
    on_window: optional, called with every :class:`MotionWindow` as it is made.
    config: :class:`AgentConfig`. spawn_poses: {agent: (x, y, yaw)} given spawn poses.
    encoder: text encoder for grounding (default: the process-wide one).
    """

    def __init__(
        self,
        scene_provider: Callable[[], object],
        synthesizer,
        on_status: Callable[[StatusEvent], None],
        on_window: Callable[[MotionWindow], None] | None = None,
        config: AgentConfig | None = None,
        spawn_poses: dict | None = None,
        encoder=None,
    ):
        self.scene = scene_provider
        self.synthesizer = synthesizer
        self.on_status = on_status
        self.on_window = on_window
        self.config = config or AgentConfig()
        self.spawn_poses = dict(spawn_poses or {})
        self.encoder = encoder
        self._agents: dict[str, Agent] = {}
        self._agents_lock = threading.Lock()
        self._intake: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._pending = 0
        self._pending_lock = threading.Condition()
        self._dispatcher = threading.Thread(target=self._dispatch, name="agent-intake", daemon=True)
        self._dispatcher.start()

    # -------------------------------------------------------------- public API
    def submit(self, request_id: str, agent_id: str, text: str, problem: str | None = None) -> None:
        """Queue one instruction (never blocks). ``problem``: a reason to reject it
        without grounding (from :class:`~ssomotion_ros.instructions.RequestIntake`)."""
        with self._pending_lock:
            self._pending += 1
        self._intake.put((request_id, agent_id, text, problem))

    def agents(self) -> list[str]:
        with self._agents_lock:
            return sorted(self._agents)

    def agent(self, agent_id: str) -> Agent | None:
        with self._agents_lock:
            return self._agents.get(agent_id)

    def spawn(self, agent_id: str, pose=None) -> Agent:
        """Create an agent at ``pose`` (x, y, yaw) or at a free pose; returns it (an
        existing agent is returned unchanged). Raises ValueError when there is no scene,
        no free floor, or too many agents."""
        with self._agents_lock:
            if agent_id in self._agents:
                return self._agents[agent_id]
            if len(self._agents) >= self.config.max_agents:
                raise ValueError(
                    f"too many agents ({len(self._agents)}; max_agents={self.config.max_agents})"
                )
            others = [a.state.xy for a in self._agents.values()]
            pose = pose if pose is not None else self.spawn_poses.get(agent_id)
            if pose is None:
                pose = self._free_pose(others)
            x, y, yaw = (float(v) for v in pose)
            from ssomotion_ros.synthesis.baseline import rest_params

            fz = 0.0
            scene = self.scene()
            if scene is not None and hasattr(scene, "floor_height"):
                z = float(np.asarray(scene.floor_height(np.array([[x, y]]))).reshape(-1)[0])
                fz = z if math.isfinite(z) else 0.0
            idle = getattr(getattr(self.synthesizer, "library", None), "idle", None)
            state = BodyState(x, y, yaw, params=rest_params(x, y, yaw, fz, idle))
            agent = Agent(self, agent_id, state)
            self._agents[agent_id] = agent
            log.info("spawned agent %s at (%.2f, %.2f, yaw %.2f)", agent_id, x, y, yaw)
            return agent

    def tick(self, now: float) -> dict[str, PlaybackFrame]:
        """Advance every agent's playback to time ``now`` (seconds); returns the frame
        each agent shows. Call it at the playback rate (30 Hz) from the clock owner."""
        with self._agents_lock:
            agents = list(self._agents.values())
        return {a.agent_id: a.playback.advance(now) for a in agents}

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every submitted instruction reached a final state (tests, CLI)."""
        deadline = time.monotonic() + timeout
        with self._pending_lock:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._pending_lock.wait(min(left, 0.1))
        return True

    def warm_up(self) -> None:
        """Load the text encoder and the synthesizer's data now (call off the executor)."""
        from ssomotion_ros.language import get_text_encoder

        if self.encoder is None:
            self.encoder = get_text_encoder()
        lib = getattr(self.synthesizer, "library", None)
        del lib

    def shutdown(self, timeout: float = 2.0) -> None:
        """Cancel everything and stop the threads."""
        self._stop.set()
        with self._agents_lock:
            agents = list(self._agents.values())
        for a in agents:
            a.cancel_all("shutting down")
        self._dispatcher.join(timeout)
        for a in agents:
            a._thread.join(timeout)

    # -------------------------------------------------------------- internals
    def _emit(self, req, state: Status, reason: str = "", goal: str | None = None) -> None:
        ev = StatusEvent(
            req.request_id,
            req.agent_id,
            Status(state),
            reason,
            req.goal_text if goal is None else goal,
            req.text,
        )
        try:
            self.on_status(ev)
        except Exception:  # noqa: BLE001 - a broken callback must not stop the agents
            log.exception("on_status callback failed")
        if state in FINAL_STATES:
            with self._pending_lock:
                self._pending -= 1
                self._pending_lock.notify_all()

    def _free_pose(self, others: list[np.ndarray]) -> tuple[float, float, float]:
        from scipy import ndimage

        scene = self.scene()
        if scene is None:
            raise ValueError(NO_SCENE)
        grid_fn = getattr(self.synthesizer, "grid", None)
        if grid_fn is not None:
            grid = grid_fn(scene)
            free, origin, res = grid.free, grid.origin_xy, grid.resolution
        else:
            free, origin, res = scene.walkable_grid(0.25)
        free = np.asarray(free, bool)
        if not free.any():
            raise ValueError("the scene has no walkable floor to spawn an agent on")
        lab, n = ndimage.label(free)
        sizes = ndimage.sum(free, lab, index=np.arange(1, n + 1))
        main = lab == (1 + int(np.argmax(sizes)))
        clearance = ndimage.distance_transform_edt(main) * res
        ij = np.argwhere(main)
        xy = origin + (ij[:, ::-1] + 0.5) * res
        cl = clearance[ij[:, 0], ij[:, 1]]
        score = np.minimum(cl, self.config.spawn_clearance + 0.5)
        if others:
            d = np.min(np.linalg.norm(xy[:, None] - np.asarray(others)[None], axis=2), axis=1)
            score = score + np.minimum(d, 3.0 * self.config.spawn_separation)
            score[d < self.config.spawn_separation] -= 100.0
        score[cl < self.config.spawn_clearance] -= 10.0
        k = int(np.argmax(score))
        centre = xy.mean(0)
        yaw = math.atan2(centre[1] - xy[k, 1], centre[0] - xy[k, 0])
        if np.hypot(*(centre - xy[k])) < 0.3:
            yaw = 0.0
        return float(xy[k, 0]), float(xy[k, 1]), yaw

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._intake.get(timeout=0.1)
            except queue.Empty:
                continue
            request_id, agent_id, text, problem = item
            req = _Request(request_id, agent_id, text, [], "")
            try:
                self._intake_one(req, problem)
            except Exception as exc:  # noqa: BLE001 - every instruction gets a status
                log.exception("instruction %r failed", text[:80])
                self._emit(req, Status.REJECTED, f"internal error: {exc}")

    def _intake_one(self, req: _Request, problem: str | None) -> None:
        from ssomotion_ros.language import parse_and_ground

        if problem:
            self._emit(req, Status.REJECTED, problem)
            return
        scene = self.scene()
        if scene is None or (callable(getattr(scene, "is_empty", None)) and scene.is_empty()):
            self._emit(req, Status.REJECTED, NO_SCENE)
            return
        agent = self.agent(req.agent_id)
        spawn_pose = None
        if agent is None:
            # the agent appears once its first instruction is accepted
            with self._agents_lock:
                full = len(self._agents) >= self.config.max_agents
                others = [a.state.xy for a in self._agents.values()]
            if full:
                self._emit(
                    req,
                    Status.REJECTED,
                    f"cannot add agent {req.agent_id!r}: too many agents "
                    f"(max_agents={self.config.max_agents})",
                )
                return
            try:
                spawn_pose = self.spawn_poses.get(req.agent_id) or self._free_pose(others)
            except ValueError as exc:
                self._emit(req, Status.REJECTED, f"cannot add agent {req.agent_id!r}: {exc}")
                return
            expected = BodyState(*spawn_pose)
        else:
            expected = agent.expected_state()
        if self.encoder is None:
            from ssomotion_ros.language import get_text_encoder

            self.encoder = get_text_encoder()
        plan = parse_and_ground(req.text, scene.instances(), expected, self.encoder)
        if not plan.ok:
            reason = plan.rejection.reason if plan.rejection else "nothing to do"
            self._emit(req, Status.REJECTED, reason)
            return
        if agent is None:
            try:
                agent = self.spawn(req.agent_id, spawn_pose)
            except ValueError as exc:
                self._emit(req, Status.REJECTED, f"cannot add agent {req.agent_id!r}: {exc}")
                return
        goals = list(plan.goals)
        stops = [i for i, g in enumerate(goals) if g.action == "stop"]
        if stops:
            k = stops[-1]
            goals = goals[k + 1 :]
            if not goals:
                req.goal_text = "stop"
                self._emit(req, Status.ACCEPTED)
                cancelled = self._cancel_agent(agent, f"stopped by {req.request_id}")
                self._emit(req, Status.SUCCEEDED, f"stopped; cancelled {cancelled} request(s)")
                return
            self._cancel_agent(agent, f"stopped by {req.request_id}")
        req.goals = goals
        req.goal_text = "; then ".join(g.describe() for g in goals)
        if not agent.enqueue(req, lambda: self._emit(req, Status.ACCEPTED)):
            self._emit(
                req,
                Status.REJECTED,
                f"agent {req.agent_id} already has {self.config.max_queue} requests queued: "
                "wait, or say 'stop'",
            )

    def _cancel_agent(self, agent: Agent, reason: str) -> int:
        with agent.lock:
            running = agent.running
        dropped = agent.cancel_all(reason)
        for r in dropped:
            self._emit(r, Status.CANCELLED, reason)
        if running is not None:  # let the worker report CANCELLED before we go on
            deadline = time.monotonic() + 5.0
            with agent.lock:
                while agent.running is running and time.monotonic() < deadline:
                    agent.lock.wait(0.05)
        return len(dropped) + (1 if running is not None else 0)
