"""Helpers shared by the synthesis tests (importable by name, see test/conftest.py)."""


def instance(room, name):
    """The first instance called ``name`` of the (SceneModel, Scene) fixture ``room``."""
    model, _ = room
    return next(i for i in model.instances() if i.name == name)


def write_tiny_checkpoint(path):
    """Save a tiny untrained SSOMotion denoiser as a real checkpoint in ``path`` (it drives
    the generator's state machine in tests; its motion quality is meaningless)."""
    import torch
    from motion_helpers import tiny_model_config

    from ssomotion_ros.motion.checkpoints import save_checkpoint
    from ssomotion_ros.motion.config import DiffusionConfig, MotionConfig
    from ssomotion_ros.motion.model import SSOMotionDenoiser

    torch.manual_seed(0)
    cfg = MotionConfig(
        model=tiny_model_config(num_layers=1, num_heads=2, ff_dim=32, triplane_size=101),
        diffusion=DiffusionConfig(num_steps=100, sample_steps=2),
    )
    save_checkpoint(path, SSOMotionDenoiser(cfg.model), cfg)
    return path
