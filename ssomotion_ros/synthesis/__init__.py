"""Motion synthesis in scenes (ROS-free): the synthesizer contract, the path-following
baseline, and the agent manager that runs simulated humans (see ``docs/synthesis.md``)."""

from ssomotion_ros.synthesis.types import (
    FPS,
    BodyState,
    MotionWindow,
    SynthesisCancelled,
    SynthesisError,
    Synthesizer,
    end_state,
)

__all__ = [
    "FPS",
    "BodyState",
    "MotionWindow",
    "SynthesisCancelled",
    "SynthesisError",
    "Synthesizer",
    "end_state",
]
