"""What the language layer hands to the motion layer: goals, rejections and plans.

All positions are in the map frame (REP-103: x forward, y left, z up), metres; angles
are yaw in radians about +z, in (-pi, pi].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Actions a :class:`Goal` can carry (the generator knows walk, sit, stand_up and lie;
#: turn, wait and stop are executed by the motion node without the generator's label).
ACTIONS: tuple[str, ...] = ("walk", "sit", "lie", "stand_up", "turn", "wait", "stop")

#: Codes a :class:`Rejection` can carry.
REJECTION_CODES: tuple[str, ...] = (
    "empty",  # nothing to do: empty text (or only an address such as "alice:")
    "not_understood",  # no supported action could be read from the text
    "unknown_target",  # the named object class is not in the scene
    "no_match",  # the class exists but no instance satisfies the spatial relation
    "ambiguous",  # several instances match within the margins
    "out_of_range",  # an ordinal beyond the number of instances ("the fifth chair")
    "impossible",  # the action cannot be done with that object (sit on a table)
)


def _deg(rad: float) -> float:
    return math.degrees(rad)


@dataclass
class Goal:
    """One step of a plan, grounded in the scene.

    action: one of :data:`ACTIONS`.
    target_id: ``SceneInstance.instance_id`` of the object the step is about (the seat,
        the object walked to, the object turned towards), or None for free targets.
    target_name: that instance's class name, or None.
    position: (3,) float64, metres, map frame. walk: the floor point to reach; sit/lie:
        the affordance point (seat centre at seat height, lying surface centre); other
        actions: the agent's position at the start of the step (z = 0, floor).
    radius: metres; the step succeeds when the pelvis xy is within this of ``position``.
    facing: yaw (radians, map frame) the body should face at the end, or None when the
        motion layer may choose (free walks, between two objects).
    direction_hint: (3,) float64, map frame: the pelvis displacement from the step's
        start to its end, normalised to length 1 when longer than 1 (DESIGN.md: walk =
        pelvis end - start; sit/stand/lie use the pelvis row here, the motion layer
        derives the per-joint hints from the body). Zeros for turn, wait and stop.
    confidence: in [0, 1]; encoder similarity of the noun phrase to the class name
        times how clearly the selection won (1 for free targets and untargeted steps).
    span: the part of the instruction this step was read from.
    duration_s: seconds, for ``wait`` only (None otherwise).
    """

    action: str
    target_id: int | None
    target_name: str | None
    position: np.ndarray
    radius: float
    facing: float | None
    direction_hint: np.ndarray
    confidence: float
    span: str
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; use one of {ACTIONS}")
        self.position = np.asarray(self.position, dtype=np.float64).reshape(3)
        self.direction_hint = np.asarray(self.direction_hint, dtype=np.float64).reshape(3)

    def describe(self) -> str:
        """One human-readable line (used in MotionStatus's goal text)."""
        x, y, z = (float(v) for v in self.position)
        target = f" {self.target_name} #{self.target_id}" if self.target_id is not None else ""
        face = f", facing {_deg(self.facing):.0f} deg" if self.facing is not None else ""
        if self.action == "walk":
            where = (
                f"walk to{target} at ({x:.2f}, {y:.2f})"
                if target
                else (f"walk to ({x:.2f}, {y:.2f})")
            )
            return f"{where}{face}"
        if self.action in ("sit", "lie"):
            verb = "sit on" if self.action == "sit" else "lie on"
            return f"{verb}{target} at ({x:.2f}, {y:.2f}, {z:.2f}){face}"
        if self.action == "turn":
            towards = f" towards{target}" if target else ""
            return f"turn{towards} to {_deg(self.facing or 0.0):.0f} deg"
        if self.action == "wait":
            return f"wait {self.duration_s:g} s"
        if self.action == "stand_up":
            return "stand up"
        return "stop"

    def to_dict(self) -> dict:
        """JSON-friendly form (lists instead of arrays)."""
        return {
            "action": self.action,
            "target_id": self.target_id,
            "target_name": self.target_name,
            "position": [float(v) for v in self.position],
            "radius": float(self.radius),
            "facing": None if self.facing is None else float(self.facing),
            "direction_hint": [float(v) for v in self.direction_hint],
            "confidence": float(self.confidence),
            "span": self.span,
            "duration_s": self.duration_s,
        }


@dataclass
class Rejection:
    """Why an instruction cannot be executed, phrased so a person can fix it.

    code: one of :data:`REJECTION_CODES`.
    reason: the sentence to show, e.g. ``"no 'piano' here; nearest matches: sofa, desk"``
        or ``"3 chairs match - say which: the nearest chair, ..."``.
    span: the part of the instruction that failed.
    candidates: suggestions (class names for unknown targets, disambiguating phrases for
        ambiguity, usable objects for impossible actions).
    candidate_ids: instance ids behind ``candidates`` where they name instances.
    step: index of the failing clause in the sequence (0-based).
    """

    code: str
    reason: str
    span: str = ""
    candidates: list[str] = field(default_factory=list)
    candidate_ids: list[int] = field(default_factory=list)
    step: int = 0

    def __post_init__(self) -> None:
        if self.code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {self.code!r}; use {REJECTION_CODES}")

    def describe(self) -> str:
        return self.reason

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "reason": self.reason,
            "span": self.span,
            "candidates": list(self.candidates),
            "candidate_ids": [int(i) for i in self.candidate_ids],
            "step": self.step,
        }


@dataclass
class Plan:
    """The result of :func:`ssomotion_ros.language.parse_and_ground`.

    text: the instruction as given.
    agent: the addressed agent ("alice: ..." or "Alice, ..."), lower-cased, or None
        (then the Instruction message's agent_id decides).
    goals: the steps in order (empty when rejected).
    rejection: None when every step grounded; otherwise why not (goals is then empty:
        a plan is executed whole or not at all).
    """

    text: str
    agent: str | None = None
    goals: list[Goal] = field(default_factory=list)
    rejection: Rejection | None = None

    @property
    def ok(self) -> bool:
        return self.rejection is None and bool(self.goals)

    def describe(self) -> str:
        who = f"{self.agent}: " if self.agent else ""
        if self.rejection is not None:
            return f"{who}rejected: {self.rejection.reason}"
        return who + "; then ".join(g.describe() for g in self.goals)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "agent": self.agent,
            "goals": [g.to_dict() for g in self.goals],
            "rejection": None if self.rejection is None else self.rejection.to_dict(),
        }
