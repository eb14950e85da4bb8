"""Fixtures for the language tests: one shared offline encoder and the case scenes."""

from __future__ import annotations

import math

import pytest

from ssomotion_ros.language.encoders import get_text_encoder
from ssomotion_ros.language.evaluation import build_scene, load_scenes


@pytest.fixture(scope="session")
def encoder():
    return get_text_encoder()


@pytest.fixture(scope="session")
def scenes():
    """scene name -> (instances, key -> instance_id), from cases/scenes.yaml."""
    return {k: build_scene(v) for k, v in load_scenes().items()}


@pytest.fixture
def run(encoder, scenes):
    """run(text, scene, x=0, y=0, yaw_deg=0) -> Plan."""
    from ssomotion_ros.language.instruction import parse_and_ground

    def _run(text, scene="living", x=0.0, y=0.0, yaw_deg=0.0):
        insts, _ = scenes[scene]
        return parse_and_ground(text, insts, (x, y, math.radians(yaw_deg)), encoder)

    return _run


@pytest.fixture
def key(scenes):
    """key(scene, instance_key) -> instance_id."""
    return lambda scene, k: scenes[scene][1][k]
