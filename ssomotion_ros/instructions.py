"""Instruction intake, independent of ROS: addressing, validation and request ids.

The ROS nodes call these; grounding and planning live in :mod:`ssomotion_ros.language`
and :mod:`ssomotion_ros.motion`.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass

from ssomotion_ros.config_fields import doc_field

#: Agent names: a letter, then letters, digits, '_' or '-' (at most 32 characters).
AGENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,31}$")
_PREFIX_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_\-]{0,31})\s*:\s*(.*)$", re.S)


@dataclass
class InstructionConfig:
    """Parameters of instruction intake (mirrored as ROS parameters)."""

    max_text_length: int = doc_field(500, "Longest accepted instruction text, in characters.")
    default_agent: str = doc_field(
        "human_0", "Agent that receives instructions with no 'name: ' prefix and no agent_id."
    )
    frame_id: str = doc_field("map", "Frame of goals and statuses (REP-103).")
    instruction_topic: str = doc_field(
        "/ssomotion/instruction", "std_msgs/String instructions; text may start with 'name: '."
    )
    instruction_msg_topic: str = doc_field(
        "/ssomotion/instruction_msg", "ssomotion_ros/Instruction instructions."
    )
    status_topic: str = doc_field("/ssomotion/status", "ssomotion_ros/MotionStatus replies.")
    queue_depth: int = doc_field(
        256, "QoS history depth of the instruction and status topics (reliable)."
    )

    def __post_init__(self):
        if self.max_text_length < 1:
            raise ValueError(f"max_text_length must be >= 1, got {self.max_text_length}")
        if not AGENT_NAME_RE.match(self.default_agent):
            raise ValueError(
                f"default_agent {self.default_agent!r} is not a valid agent name "
                "(a letter, then letters, digits, '_' or '-')"
            )
        if self.queue_depth < 1:
            raise ValueError(f"queue_depth must be >= 1, got {self.queue_depth}")


@dataclass
class Request:
    """One instruction after intake."""

    request_id: str
    agent_id: str
    text: str
    #: Why it cannot be processed (empty text, too long, bad agent name); None if fine.
    problem: str | None = None


def split_addressee(text: str) -> tuple[str | None, str]:
    """Split an optional ``"name: "`` prefix off an instruction.

    >>> split_addressee("alice: walk to the door")
    ('alice', 'walk to the door')
    >>> split_addressee("walk to the door")
    (None, 'walk to the door')
    """
    m = _PREFIX_RE.match(text)
    if not m:
        return None, text.strip()
    return m.group(1), m.group(2).strip()


class RequestIntake:
    """Turns raw instructions into :class:`Request` objects with unique request ids.

    Thread-safe: ROS callbacks of several subscriptions may call :meth:`make`.
    """

    def __init__(self, config: InstructionConfig, id_prefix: str = "req"):
        self.config = config
        self.id_prefix = id_prefix
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next_id(self) -> str:
        with self._lock:
            return f"{self.id_prefix}-{next(self._counter)}"

    def make(self, text: str, agent_id: str = "", request_id: str = "") -> Request:
        """Validate one instruction. Never raises on bad input: sets ``problem``."""
        request_id = request_id.strip() or self.next_id()
        raw = text if isinstance(text, str) else ""
        if len(raw) > self.config.max_text_length:
            return Request(
                request_id,
                agent_id.strip() or split_addressee(raw[:40])[0] or self.config.default_agent,
                raw[:80] + "...",
                problem=(
                    f"instruction is too long ({len(raw)} characters; at most "
                    f"{self.config.max_text_length}): split it into shorter instructions"
                ),
            )
        prefix_agent, body = split_addressee(raw)
        agent = agent_id.strip() or prefix_agent or self.config.default_agent
        if agent_id.strip() and prefix_agent and prefix_agent != agent_id.strip():
            # The message field wins; keep the prefix in the text so nothing is lost.
            body = raw.strip()
        if not AGENT_NAME_RE.match(agent):
            return Request(
                request_id,
                agent,
                body,
                problem=(
                    f"agent name {agent!r} is not valid: use a letter, then letters, "
                    "digits, '_' or '-' (at most 32 characters)"
                ),
            )
        if not body:
            return Request(
                request_id,
                agent,
                body,
                problem="empty instruction: say what to do, e.g. 'walk to the sofa'",
            )
        return Request(request_id, agent, body)
