"""Configuration dataclasses of the SSOMotion denoiser and its diffusion process.

Two named sizes are provided: :func:`reference_config` (the SSOMotion paper's network:
8 layers, latent 512, 4 heads, feed-forward 1024) and :func:`default_config` (a compact
network that meets the CPU speed goal of ``ssomotion bench motion`` and is what the
shipped checkpoint uses).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

#: Action labels the generator is conditioned on, in embedding-index order. The index
#: ``len(ACTIONS)`` is the "no action" (null) label used for classifier-free guidance.
ACTIONS: tuple[str, ...] = ("walk", "sit", "stand_up", "lie")

#: Number of body joints of the hint/metric skeleton.
NUM_JOINTS = 22

#: Size of one frame of the body parameters: global_orient 3 + body_pose 63 + transl 3.
PARAM_DIM = 69

#: Size of one frame of the internal motion features (see ``representation.py``):
#: root translation 3 + root 6-D rotation 6 + 21 body joints x 6-D rotation.
FEATURE_DIM = 3 + 6 + 21 * 6


@dataclass
class ModelConfig:
    """Size and inputs of the denoiser network (``model.SSOMotionDenoiser``)."""

    #: Transformer encoder layers of the motion prior (the ControlNet copy has as many).
    num_layers: int = 4
    #: Width of every token (the latent size).
    latent_dim: int = 128
    #: Attention heads of the encoder layers and of the scene query.
    num_heads: int = 4
    #: Hidden size of the feed-forward block of each encoder layer.
    ff_dim: int = 256
    #: Dropout inside the encoder layers while training.
    dropout: float = 0.1
    #: Frames per window (30 = one second at 30 fps).
    window: int = 30
    #: History frames at the start of each window carried over from the previous one.
    history: int = 5
    #: Size of one frame of motion features (must equal ``FEATURE_DIM``).
    feature_dim: int = FEATURE_DIM
    #: Number of action labels (the null label is one more).
    num_actions: int = len(ACTIONS)
    #: Whether the ControlNet branch (direction + scene hints) is built.
    use_control: bool = True
    #: Whether the scene-hint block (tri-plane CNN + frame-wise cross-attention) is built.
    use_scene: bool = True
    #: Channels of the reduced semantic feature per tri-plane pixel (TriPlanes.semantic F).
    semantic_dim: int = 16
    #: Number of scene tokens (each: 1/2 semantics, 1/4 depth, 1/4 colour).
    num_scene_tokens: int = 8
    #: Channels of the shared 2-D CNN that reads each tri-plane map.
    scene_cnn_channels: int = 16
    #: Side S of the square tri-plane images the network expects (101 for 0.04 m voxels).
    triplane_size: int = 101

    def __post_init__(self) -> None:
        if self.latent_dim % self.num_heads:
            raise ValueError(
                f"latent_dim {self.latent_dim} must be divisible by num_heads {self.num_heads}"
            )
        if self.latent_dim % 4:
            raise ValueError(f"latent_dim {self.latent_dim} must be divisible by 4 (scene tokens)")
        if not 0 <= self.history < self.window:
            raise ValueError(f"history {self.history} must be in [0, window={self.window})")
        if self.feature_dim != FEATURE_DIM:
            raise ValueError(f"feature_dim must be {FEATURE_DIM}, got {self.feature_dim}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown ModelConfig fields {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)


@dataclass
class DiffusionConfig:
    """Noise schedule, loss weights and sampler settings (``diffusion.GaussianDiffusion``)."""

    #: Number of training diffusion steps of the cosine schedule.
    num_steps: int = 1000
    #: Offset ``s`` of the cosine schedule (Nichol & Dhariwal 2021).
    cosine_s: float = 0.008
    #: Weight of the x0 reconstruction term of the training loss.
    w_recon: float = 1.0
    #: Weight of the velocity term (frame-to-frame differences of the features).
    w_velocity: float = 1.0
    #: Weight of the joint-position term (forward kinematics; 0 disables it).
    w_joints: float = 1.0
    #: Windows per batch that get the joint and foot terms (forward kinematics is the
    #: costly part of a CPU training step); 0 = all.
    fk_subset: int = 8
    #: Weight of the foot-velocity term on frames where the foot is in ground contact.
    w_foot: float = 0.5
    #: Probability of dropping the action label while training (classifier-free guidance).
    cond_drop_prob: float = 0.1
    #: DDIM sampling steps (few-step sampler).
    sample_steps: int = 8
    #: DDIM eta (0 = deterministic).
    eta: float = 0.0
    #: Classifier-free guidance scale on the action label (1 = no guidance, one pass).
    guidance_scale: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown DiffusionConfig fields {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)


@dataclass
class MotionConfig:
    """Everything needed to rebuild a trained generator: network and diffusion."""

    #: Network size and inputs.
    model: ModelConfig = field(default_factory=ModelConfig)
    #: Schedule, loss and sampler.
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "diffusion": self.diffusion.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> MotionConfig:
        return cls(
            model=ModelConfig.from_dict(dict(data.get("model", {}))),
            diffusion=DiffusionConfig.from_dict(dict(data.get("diffusion", {}))),
        )


def default_config() -> MotionConfig:
    """The compact size used by the shipped checkpoint (meets the CPU speed goal)."""
    return MotionConfig(model=ModelConfig(num_layers=4, latent_dim=128, num_heads=4, ff_dim=256))


def reference_config() -> MotionConfig:
    """The SSOMotion reference size: 8 layers, latent 512, 4 heads, feed-forward 1024."""
    return MotionConfig(model=ModelConfig(num_layers=8, latent_dim=512, num_heads=4, ff_dim=1024))
