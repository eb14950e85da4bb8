"""ssomotion_ros.language: instruction text -> grounded goals (ROS-free).

Public API: :func:`parse_and_ground`, :class:`Goal`, :class:`Rejection`, :class:`Plan`,
:class:`GroundingConfig`, :class:`AgentState`, and the shared text encoder
(:func:`get_text_encoder`, :class:`TextEncoder`, :class:`TextEncoderConfig`).
"""

from ssomotion_ros.language.encoders import TextEncoder, TextEncoderConfig, get_text_encoder
from ssomotion_ros.language.goal import ACTIONS, REJECTION_CODES, Goal, Plan, Rejection
from ssomotion_ros.language.instruction import AgentState, GroundingConfig, parse_and_ground

__all__ = [
    "ACTIONS",
    "REJECTION_CODES",
    "AgentState",
    "Goal",
    "GroundingConfig",
    "Plan",
    "Rejection",
    "TextEncoder",
    "TextEncoderConfig",
    "get_text_encoder",
    "parse_and_ground",
]
