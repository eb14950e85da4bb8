"""Shared fixtures of the synthesis tests: one generated bedroom fused into a SceneModel,
the baseline synthesizer on the real CMU clips (skips when the shared data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

CMU = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocap" / "cmu"
PROMPT = "a bedroom with a bed, a desk and a chair"


@pytest.fixture(scope="session")
def room():
    """(SceneModel, generated Scene) of :data:`PROMPT`, seed 0."""
    import torch

    from ssomotion_ros.synthesis.scene_source import scene_model_from_prompt

    torch.set_num_threads(1)
    return scene_model_from_prompt(PROMPT, seed=0)


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """The baseline on the real clips (clip cache in a temporary folder)."""
    if not (CMU / "INDEX.tsv").is_file():
        pytest.skip(f"CMU mocap data not found at {CMU} (see ../shared/data/README.md)")
    from ssomotion_ros.synthesis.baseline import BaselineConfig, BaselineSynthesizer

    cfg = BaselineConfig(cache_dir=str(tmp_path_factory.mktemp("clips")))
    return BaselineSynthesizer(cfg)
