"""Contracts of motion synthesis: what a synthesizer streams and how it is called.

Frames and units: map frame (REP-103: x forward, y left, z up), metres, radians; body
parameters follow :mod:`ssomotion_ros.body.skeleton` (69-d SMPL-X body parameters).

A :class:`Synthesizer` turns one grounded :class:`~ssomotion_ros.language.goal.Goal`
into a stream of :class:`MotionWindow` objects (30 frames each by default), yielded as
soon as each is made, so a node can play the first frames while later ones are still
being generated. The path-following baseline (:mod:`ssomotion_ros.synthesis.baseline`)
and the learned generator implement the same protocol.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ssomotion_ros.body.skeleton import NUM_JOINTS, PARAM_DIM

#: Frames per second of every synthesized motion.
FPS = 30.0
#: Postures an agent can be in between goals.
POSTURES: tuple[str, ...] = ("standing", "sitting", "lying")


class SynthesisError(RuntimeError):
    """A goal cannot be executed (no path, no free standing point, ...).

    The message is the human-readable reason (the planner's when it comes from the
    planner); the agent manager reports it as the FAILED status's reason.
    """


class SynthesisCancelled(RuntimeError):
    """Raised by a synthesizer that notices its cancel event between windows."""


@dataclass
class BodyState:
    """Where an agent is and how it stands, between two goals (map frame).

    x, y: metres, pelvis projected on the floor. yaw: radians, heading of the body.
    posture: one of :data:`POSTURES`.
    params: (69,) float32 body parameters of the last frame, or None for a fresh
        agent (then a standing rest pose at (x, y, yaw) is assumed).
    stand_xy: (2,) metres, for ``sitting`` / ``lying``: the free standing point the agent
        sat or lay down from (where standing up returns to); None otherwise.

    Has ``x``, ``y``, ``yaw`` attributes, so it can be passed as ``agent_state`` to
    :func:`ssomotion_ros.language.parse_and_ground`.
    """

    x: float
    y: float
    yaw: float
    posture: str = "standing"
    params: np.ndarray | None = None
    stand_xy: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("x", "y", "yaw"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ValueError(f"BodyState.{name} must be finite, got {v}")
            setattr(self, name, v)
        if self.posture not in POSTURES:
            raise ValueError(f"posture must be one of {POSTURES}, got {self.posture!r}")
        if self.stand_xy is not None:
            self.stand_xy = np.asarray(self.stand_xy, np.float64).reshape(2)
        if self.params is not None:
            p = np.asarray(self.params, np.float32).reshape(-1)
            if p.shape != (PARAM_DIM,) or not np.all(np.isfinite(p)):
                raise ValueError(
                    f"BodyState.params must be ({PARAM_DIM},) finite body parameters, "
                    f"got shape {np.shape(self.params)}"
                )
            self.params = p

    @property
    def xy(self) -> np.ndarray:
        """(2,) float64 metres, map frame."""
        return np.array([self.x, self.y], np.float64)


@dataclass
class MotionWindow:
    """A chunk of synthesized motion for one agent (map frame, 30 fps).

    agent_id: agent name. request_id: the instruction's id.
    actions: (T,) per-frame action label (walk, sit, stand_up, lie, turn, idle).
    start_frame: index of the first frame within the request's motion.
    params: (T, 69) float32 SMPL-X body parameters [global_orient | body_pose | transl]
        (axis-angle radians, metres; :mod:`ssomotion_ros.body.skeleton` conventions).
    joints: (T, 22, 3) float32 joint positions, metres, map frame
        (:data:`~ssomotion_ros.body.skeleton.JOINT_NAMES` order).
    root_poses: (T, 7) float32 pelvis pose per frame: x, y, z (metres) and quaternion
        qx, qy, qz, qw of the pelvis orientation (map frame, REP-103 body axes: x
        forward, y left, z up).
    planned_path: (K, 2) float64 metres, map frame, the path this window follows
        ((0, 2) when the goal needs none); the same array for every window of a goal.
    fps: frames per second. goal_index: index of the goal within the request's plan.
    final: True on the last window of a goal.
    posture: the agent's posture at the end of the window (one of :data:`POSTURES`).
    stand_xy: (2,) metres: while sitting/lying, the standing point to return to; else None.
    note: human-readable remark on the window (e.g. "reached the goal").
    """

    agent_id: str
    request_id: str
    actions: np.ndarray
    start_frame: int
    params: np.ndarray
    joints: np.ndarray
    root_poses: np.ndarray
    planned_path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    fps: float = FPS
    goal_index: int = 0
    final: bool = False
    posture: str = "standing"
    stand_xy: np.ndarray | None = None
    note: str = ""

    def __post_init__(self) -> None:
        self.params = np.ascontiguousarray(self.params, dtype=np.float32)
        self.joints = np.ascontiguousarray(self.joints, dtype=np.float32)
        self.root_poses = np.ascontiguousarray(self.root_poses, dtype=np.float32)
        self.actions = np.asarray(self.actions).astype(str)
        self.planned_path = np.asarray(self.planned_path, np.float64).reshape(-1, 2)
        t = self.params.shape[0] if self.params.ndim == 2 else -1
        if self.params.shape != (t, PARAM_DIM) or t < 1:
            raise ValueError(
                f"params must be (T, {PARAM_DIM}) with T >= 1, got {self.params.shape}"
            )
        if self.joints.shape != (t, NUM_JOINTS, 3):
            raise ValueError(f"joints must be ({t}, {NUM_JOINTS}, 3), got {self.joints.shape}")
        if self.root_poses.shape != (t, 7):
            raise ValueError(f"root_poses must be ({t}, 7), got {self.root_poses.shape}")
        if self.actions.shape != (t,):
            raise ValueError(f"actions must be ({t},), got {self.actions.shape}")
        if self.start_frame < 0:
            raise ValueError(f"start_frame must be >= 0, got {self.start_frame}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.posture not in POSTURES:
            raise ValueError(f"posture must be one of {POSTURES}, got {self.posture!r}")

    @property
    def num_frames(self) -> int:
        return int(self.params.shape[0])

    @property
    def end_frame(self) -> int:
        """One past the last frame's index within the request."""
        return self.start_frame + self.num_frames

    @property
    def pelvis(self) -> np.ndarray:
        """(T, 3) float32 pelvis positions, metres, map frame."""
        return self.joints[:, 0]


@runtime_checkable
class Synthesizer(Protocol):
    """Anything that turns a goal into streamed motion windows.

    ``stream(goal, scene, agent_state, cancel=None, agent_id="", request_id="")``

    goal: a grounded :class:`~ssomotion_ros.language.goal.Goal` (walk, sit, lie,
        stand_up, turn or wait; "stop" is handled by the caller).
    scene: the :class:`~ssomotion_ros.sso.scene.SceneModel` (``walkable_grid``,
        ``instances``, ``floor_height``).
    agent_state: the :class:`BodyState` the motion starts from.
    cancel: a ``threading.Event``; when set the stream stops between windows (it may
        raise :class:`SynthesisCancelled` or simply end).

    Yields :class:`MotionWindow` objects in order with ``start_frame`` counting from 0
    (the caller re-bases frames across the goals of a plan); the last one has
    ``final=True``. Raises :class:`SynthesisError` with a human-readable reason when the
    goal cannot be executed (before the first window when it is known up front).
    :func:`end_state` gives the agent's :class:`BodyState` after any window.
    """

    def stream(
        self,
        goal,
        scene,
        agent_state: BodyState,
        cancel: threading.Event | None = None,
        agent_id: str = "",
        request_id: str = "",
    ) -> Iterator[MotionWindow]: ...


def heading_of(params: np.ndarray) -> float:
    """Yaw (radians, map frame) the body faces for one frame's (69,) parameters: the
    pelvis forward axis (+x at rest) projected on the floor; for a lying body whose
    forward axis points up, the pelvis-up axis projected (head direction) is used."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_rotvec(np.asarray(params, np.float64)[:3])
    fwd = rot.apply([1.0, 0.0, 0.0])
    if math.hypot(fwd[0], fwd[1]) < 0.3:
        fwd = rot.apply([0.0, 0.0, 1.0])
    return math.atan2(fwd[1], fwd[0])


def end_state(window: MotionWindow) -> BodyState:
    """The :class:`BodyState` after the last frame of ``window``."""
    p = window.params[-1]
    pel = window.joints[-1, 0]
    return BodyState(
        float(pel[0]),
        float(pel[1]),
        heading_of(p),
        posture=window.posture,
        params=p.copy(),
        stand_xy=None if window.posture == "standing" else window.stand_xy,
    )


def target_instance(scene, target_id):
    """The scene instance with ``instance_id == target_id`` (None when ``target_id`` is
    None, no instance has it, or the scene cannot list instances — planning then goes on
    without the instance's affordances)."""
    if target_id is None:
        return None
    try:
        for inst in scene.instances():
            if inst.instance_id == target_id:
                return inst
    except Exception as exc:  # noqa: BLE001 - a scene without instances still plans
        logging.getLogger(__name__).debug("scene has no instances: %s", exc)
    return None
