"""Shared helpers of the motion tests (tiny configs and synthetic motion)."""

from __future__ import annotations

import numpy as np
import torch

from ssomotion_ros.motion.config import DiffusionConfig, ModelConfig, MotionConfig
from ssomotion_ros.motion.model import SceneInput

# The tests use tiny tensors: on the shared 2-core machine one thread avoids barrier stalls.
torch.set_num_threads(1)


def tiny_model_config(**kw) -> ModelConfig:
    base = dict(
        num_layers=2,
        latent_dim=32,
        num_heads=4,
        ff_dim=64,
        dropout=0.0,
        scene_cnn_channels=4,
        triplane_size=33,
    )
    base.update(kw)
    return ModelConfig(**base)


def tiny_config(**kw) -> MotionConfig:
    return MotionConfig(model=tiny_model_config(**kw), diffusion=DiffusionConfig(num_steps=100))


def random_scene(batch: int, size: int = 33, feat: int = 16, seed: int = 0) -> SceneInput:
    g = torch.Generator().manual_seed(seed)
    return SceneInput(
        depth=torch.rand(batch, 5, size, size, generator=g),
        rgb=torch.rand(batch, 5, 3, size, size, generator=g),
        semantic=torch.randn(batch, 5, feat, size, size, generator=g),
        mask=torch.rand(batch, 5, size, size, generator=g) > 0.5,
    )


def walking_params(T: int, yaw: float = 0.0, speed: float = 1.2, seed: int = 0) -> np.ndarray:
    """(T, 69) a synthetic walk: legs swing, pelvis moves along ``yaw`` at ``speed`` m/s."""
    r = np.random.default_rng(seed)
    t = np.arange(T) / 30.0
    ph = 2 * np.pi * t + r.uniform(0, 2 * np.pi)
    p = np.zeros((T, 69), np.float32)
    p[:, 3] = 0.4 * np.sin(ph)  # left hip (native x: flexion)
    p[:, 6] = -0.4 * np.sin(ph)  # right hip
    p[:, 12] = 0.4 * (1 + np.sin(ph))  # left knee
    p[:, 15] = 0.4 * (1 - np.sin(ph))  # right knee
    p[:, 2] = yaw
    p[:, 66] = np.cos(yaw) * speed * t
    p[:, 67] = np.sin(yaw) * speed * t
    return p


def random_params(B: int, T: int, seed: int = 0, scale: float = 0.4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(B, T, 69, generator=g) * scale
    p[..., 66:] = torch.randn(B, T, 3, generator=g)
    return p
