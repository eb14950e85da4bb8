"""The SSOMotion denoiser network (kept apart from the schedule and sampler, as in MDM).

Structure (sizes from :class:`~ssomotion_ros.motion.config.ModelConfig`, ``d`` = latent):

* **Motion prior** (MDM-style): every frame's noisy features, the known (history)
  frames' clean features and a known-flag are projected to ``d``; a condition token
  (timestep embedding + action embedding) is prepended; positional encoding; a
  transformer encoder; a linear head predicts the clean features ``x0``.
* **ControlNet branch**: a trainable copy of the input projection and the encoder
  layers. Its input tokens are the prior's plus the hint tokens; after each layer its
  output enters the prior's stream through a zero-initialised linear layer, so at
  initialisation the prior's output is unchanged.
* **Direction-hint block**: an MLP from the (22, 3) direction hint to a ``d`` vector.
* **Scene-hint block**: the 5 tri-plane maps go through shared 2-D CNNs (one for the
  16-channel semantic features, one for depth + mask, one for colour) into 8 scene
  tokens whose first half is semantics, next quarter depth, last quarter colour. The
  control branch's frame tokens plus the direction embedding query the tokens frame by
  frame with multi-head cross-attention; the result is added to the control input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ssomotion_ros.motion.config import NUM_JOINTS, ModelConfig

NUM_MAPS = 5


@dataclass
class SceneInput:
    """Tri-plane tensors the scene branch reads (a subset of ``sso.types.TriPlanes``).

    depth: (B, 5, S, S) float32, metres (0 where ``mask`` is False).
    rgb: (B, 5, 3, S, S) float32 in [0, 1].
    semantic: (B, 5, F, S, S) float32 (F = ``ModelConfig.semantic_dim``).
    mask: (B, 5, S, S) bool or float.
    """

    depth: torch.Tensor
    rgb: torch.Tensor
    semantic: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def from_triplanes(cls, tp) -> SceneInput:
        """Take the tensors of a ``ssomotion_ros.sso.types.TriPlanes`` (or anything alike)."""
        return cls(depth=tp.depth, rgb=tp.rgb, semantic=tp.semantic, mask=tp.mask)

    def to(self, device) -> SceneInput:
        return SceneInput(*(t.to(device) for t in (self.depth, self.rgb, self.semantic, self.mask)))

    def index(self, idx) -> SceneInput:
        return SceneInput(self.depth[idx], self.rgb[idx], self.semantic[idx], self.mask[idx])

    def repeat(self, n: int) -> SceneInput:
        """Repeat the batch ``n`` times (for classifier-free guidance)."""
        return SceneInput(
            *(
                t.repeat((n,) + (1,) * (t.ndim - 1))
                for t in (self.depth, self.rgb, self.semantic, self.mask)
            )
        )


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding. t: (B,) diffusion steps (int or float). Returns (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SceneEncoder(nn.Module):
    """5 tri-plane maps -> ``num_scene_tokens`` tokens of size ``latent_dim``.

    Each token concatenates a semantic part (d/2), a depth part (d/4) and a colour part
    (d/4). One CNN per modality is shared by the five maps.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.scene_cnn_channels
        d = cfg.latent_dim
        self.n_tok = cfg.num_scene_tokens

        def cnn(cin: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, c, 5, stride=4, padding=2),
                nn.SiLU(),
                nn.Conv2d(c, c, 3, stride=2, padding=1),
                nn.SiLU(),
                nn.Conv2d(c, c, 3, stride=2, padding=1),
                nn.SiLU(),
                nn.AdaptiveAvgPool2d(2),
                nn.Flatten(),
            )

        self.sem_cnn = cnn(cfg.semantic_dim + 1)
        self.depth_cnn = cnn(2)
        self.rgb_cnn = cnn(4)
        flat = NUM_MAPS * c * 4
        self.sem_proj = nn.Linear(flat, self.n_tok * d // 2)
        self.depth_proj = nn.Linear(flat, self.n_tok * d // 4)
        self.rgb_proj = nn.Linear(flat, self.n_tok * d // 4)
        self.token_pos = nn.Parameter(torch.zeros(self.n_tok, d))

    def forward(self, scene: SceneInput) -> torch.Tensor:
        """Returns (B, num_scene_tokens, latent_dim)."""
        self._check(scene)
        B = scene.depth.shape[0]
        S = scene.depth.shape[-1]
        m = scene.mask.to(scene.depth.dtype).reshape(B * NUM_MAPS, 1, S, S)
        depth = scene.depth.reshape(B * NUM_MAPS, 1, S, S)
        rgb = scene.rgb.reshape(B * NUM_MAPS, 3, S, S)
        sem = scene.semantic.reshape(B * NUM_MAPS, -1, S, S)
        fs = self.sem_cnn(torch.cat([sem, m], 1)).reshape(B, -1)
        fd = self.depth_cnn(torch.cat([depth, m], 1)).reshape(B, -1)
        fc = self.rgb_cnn(torch.cat([rgb, m], 1)).reshape(B, -1)
        n = self.n_tok
        tok = torch.cat(
            [
                self.sem_proj(fs).reshape(B, n, -1),
                self.depth_proj(fd).reshape(B, n, -1),
                self.rgb_proj(fc).reshape(B, n, -1),
            ],
            dim=-1,
        )
        return tok + self.token_pos

    def _check(self, scene: SceneInput) -> None:
        B = scene.depth.shape[0]
        if scene.depth.ndim != 4 or scene.depth.shape[1] != NUM_MAPS:
            raise ValueError(f"scene depth must be (B, 5, S, S), got {tuple(scene.depth.shape)}")
        S = scene.depth.shape[-1]
        want = {
            "depth": (B, NUM_MAPS, S, S),
            "rgb": (B, NUM_MAPS, 3, S, S),
            "semantic": (B, NUM_MAPS, self.cfg.semantic_dim, S, S),
            "mask": (B, NUM_MAPS, S, S),
        }
        for name, shape in want.items():
            got = tuple(getattr(scene, name).shape)
            if got != shape:
                raise ValueError(
                    f"scene {name} must be {shape} (TriPlanes layout, F={self.cfg.semantic_dim}), "
                    f"got {got}"
                )


class SSOMotionDenoiser(nn.Module):
    """Predicts clean motion features ``x0`` from noisy ones (see the module docstring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.latent_dim
        D = cfg.feature_dim
        in_dim = 2 * D + 1
        self.input_proj = nn.Linear(in_dim, d)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.action_emb = nn.Embedding(cfg.num_actions + 1, d)  # last = null label
        self.pos_emb = nn.Parameter(torch.randn(cfg.window + 1, d) * 0.02)
        self.layers = nn.ModuleList(self._make_layer() for _ in range(cfg.num_layers))
        self.out_norm = nn.LayerNorm(d)
        self.output = nn.Linear(d, D)
        # feature normalisation statistics (set from the training data; saved with weights)
        self.register_buffer("feat_mean", torch.zeros(D))
        self.register_buffer("feat_std", torch.ones(D))
        self.control_enabled = cfg.use_control
        if cfg.use_control:
            self.ctrl_input_proj = nn.Linear(in_dim, d)
            self.ctrl_layers = nn.ModuleList(self._make_layer() for _ in range(cfg.num_layers))
            self.zero_links = nn.ModuleList(nn.Linear(d, d) for _ in range(cfg.num_layers))
            for lin in self.zero_links:
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
            self.direction_mlp = nn.Sequential(
                nn.Linear(NUM_JOINTS * 3 + 1, d), nn.SiLU(), nn.Linear(d, d)
            )
            if cfg.use_scene:
                self.scene_encoder = SceneEncoder(cfg)
                self.scene_attn = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True)
                self.scene_norm = nn.LayerNorm(d)

    def _make_layer(self) -> nn.TransformerEncoderLayer:
        c = self.cfg
        return nn.TransformerEncoderLayer(
            c.latent_dim, c.num_heads, c.ff_dim, c.dropout, activation="gelu", batch_first=True
        )

    # -- parameter groups --------------------------------------------------------------

    def prior_parameters(self) -> list[nn.Parameter]:
        """Parameters of the motion prior (stage 1)."""
        mods = [self.input_proj, self.time_mlp, self.action_emb, self.layers, self.out_norm]
        mods.append(self.output)
        return [p for m in mods for p in m.parameters()] + [self.pos_emb]

    def control_parameters(self) -> list[nn.Parameter]:
        """Parameters of the ControlNet branch, direction and scene blocks (stage 2)."""
        prior = {id(p) for p in self.prior_parameters()}
        return [p for p in self.parameters() if id(p) not in prior]

    @torch.no_grad()
    def init_control_from_prior(self) -> None:
        """Copy the prior's input projection and layers into the control branch (stage 2 start)
        and re-zero the links, so the combined output equals the prior's."""
        if not self.cfg.use_control:
            raise ValueError("this model has no control branch (use_control=False)")
        self.ctrl_input_proj.load_state_dict(self.input_proj.state_dict())
        for src, dst in zip(self.layers, self.ctrl_layers):
            dst.load_state_dict(src.state_dict())
        for lin in self.zero_links:
            lin.weight.zero_()
            lin.bias.zero_()

    # -- forward -----------------------------------------------------------------------

    def encode_scene(self, scene: SceneInput | None) -> torch.Tensor | None:
        """Scene tokens (B, num_scene_tokens, d), or None. Cache them across sampler steps."""
        if scene is None or not (self.cfg.use_control and self.cfg.use_scene):
            return None
        return self.scene_encoder(scene)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        action: torch.Tensor,
        known: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
        direction: torch.Tensor | None = None,
        scene_tokens: torch.Tensor | None = None,
        control_scale: float = 1.0,
    ) -> torch.Tensor:
        """Predict clean normalised features.

        x_t: (B, T, 135) noisy normalised features at step ``t``. t: (B,) int64 steps.
        action: (B,) int64, index into ACTIONS; ``num_actions`` = null label.
        known: (B, T, 135) clean normalised features of the known frames (others ignored).
        known_mask: (B, T) bool, True on known (history) frames.
        direction: (B, 22, 3) direction hint (window frame, length <= 1) or None.
        scene_tokens: (B, K, d) from :meth:`encode_scene` or None.
        control_scale: multiplies the control branch's contribution.
        Returns (B, T, 135) predicted clean normalised features.
        """
        B, T, D = x_t.shape
        if D != self.cfg.feature_dim or T > self.cfg.window:
            raise ValueError(
                f"x_t must be (B, T<={self.cfg.window}, {self.cfg.feature_dim}), "
                f"got {tuple(x_t.shape)}"
            )
        if known is None or known_mask is None:
            known = torch.zeros_like(x_t)
            known_mask = torch.zeros(B, T, dtype=torch.bool, device=x_t.device)
        m = known_mask.to(x_t.dtype)[..., None]
        inp = torch.cat([x_t, known * m, m], dim=-1)
        cond = self.time_mlp(timestep_embedding(t, self.cfg.latent_dim)) + self.action_emb(action)
        pos = self.pos_emb[: T + 1]
        h = torch.cat([cond[:, None], self.input_proj(inp)], dim=1) + pos

        use_ctrl = self.control_enabled and (direction is not None or scene_tokens is not None)
        if use_ctrl:
            c = torch.cat([cond[:, None], self.ctrl_input_proj(inp)], dim=1) + pos
            hint = torch.zeros_like(c)
            if direction is not None:
                if direction.shape != (B, NUM_JOINTS, 3):
                    raise ValueError(
                        f"direction must be (B, {NUM_JOINTS}, 3), got {tuple(direction.shape)}"
                    )
                flag = torch.ones(B, 1, dtype=x_t.dtype, device=x_t.device)
                dir_emb = self.direction_mlp(torch.cat([direction.reshape(B, -1), flag], -1))
            else:
                dir_emb = self.direction_mlp(
                    torch.zeros(B, NUM_JOINTS * 3 + 1, dtype=x_t.dtype, device=x_t.device)
                )
            hint = hint + dir_emb[:, None]
            if scene_tokens is not None and self.cfg.use_scene:
                q = self.scene_norm(c[:, 1:] + dir_emb[:, None])
                att, _ = self.scene_attn(q, scene_tokens, scene_tokens, need_weights=False)
                hint = torch.cat([hint[:, :1], hint[:, 1:] + att], dim=1)
            c = c + hint
            for layer, ctrl, link in zip(self.layers, self.ctrl_layers, self.zero_links):
                c = ctrl(c)
                h = layer(h) + control_scale * link(c)
        else:
            for layer in self.layers:
                h = layer(h)
        return self.output(self.out_norm(h[:, 1:]))

    # -- normalisation -----------------------------------------------------------------

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., 135) features -> normalised features."""
        return (feats - self.feat_mean) / self.feat_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """(..., 135) normalised features -> features."""
        return x * self.feat_std + self.feat_mean


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
