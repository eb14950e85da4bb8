"""Training of the SSOMotion generator: stage 1 the motion prior, stage 2 the scene controller.

Data: clips of 69-d body parameters at 30 fps with per-frame action labels — the CMU
BVH folder (retargeted by ``ssomotion_ros.motion.datasets.load_cmu_dataset``) or a folder
of ``.npz`` files holding ``params (T, 69)`` and ``actions (T,)`` strings (the format
users convert AMASS/HUMANISE into with the dataset loaders). Clips are augmented
(left/right mirror, speed 0.8-1.25 by slerp resampling), cut into windows of
``window`` frames (``history`` known frames at the start), canonicalised into the
window frame (``representation.py``), and labelled with the majority action of their
new frames.

Stage 1 trains the prior (action-conditioned, history inpainting, classifier-free label
dropout). Stage 2 freezes the prior, copies it into the ControlNet branch and trains the
branch with direction hints and scene tri-planes of rooms of boxes placed collision-free
around each window (``scene_synth.BoxSceneSampler``).

Outputs in ``out``: ``checkpoint/`` (resumable: weights + optimiser state), ``model/``
(the final checkpoint without optimiser state), ``losses.csv``, ``loss_curve.png``.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ssomotion_ros.motion import representation as rep
from ssomotion_ros.motion.checkpoints import (
    load_checkpoint,
    load_train_state,
    read_config,
    save_checkpoint,
)
from ssomotion_ros.motion.config import (
    ACTIONS,
    DiffusionConfig,
    ModelConfig,
    MotionConfig,
    default_config,
    reference_config,
)
from ssomotion_ros.motion.diffusion import Batch, GaussianDiffusion
from ssomotion_ros.motion.model import SSOMotionDenoiser

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """How to train (the network/diffusion config is separate: ``MotionConfig``)."""

    #: Optimiser steps of stage 1 (motion prior).
    prior_steps: int = 3000
    #: Optimiser steps of stage 2 (scene controller); 0 skips stage 2.
    control_steps: int = 500
    #: Windows per batch in stage 1.
    batch_size: int = 64
    #: Windows per batch in stage 2 (each carries a synthetic scene).
    control_batch_size: int = 16
    #: AdamW learning rate of stage 1.
    lr: float = 3e-4
    #: AdamW learning rate of stage 2.
    control_lr: float = 1e-4
    #: AdamW weight decay.
    weight_decay: float = 1e-4
    #: Linear warm-up steps of the learning rate (stage 1; stage 2 uses a quarter).
    warmup: int = 200
    #: Gradient-norm clip.
    grad_clip: float = 1.0
    #: Stride in frames between consecutive training windows of a clip.
    stride: int = 3
    #: Add left/right mirrored copies of every clip.
    mirror: bool = True
    #: Playback-speed factors of the augmented copies (1.0 = original).
    speeds: tuple[float, ...] = (0.8, 1.0, 1.25)
    #: Fraction of stage-1 windows trained without history (first window of a rollout).
    no_history_prob: float = 0.1
    #: Clip names (file stems) held out from training (for the quality evaluation).
    holdout: tuple[str, ...] = ()
    #: Minimum share of a window's new frames that must carry its (non-idle) label.
    min_label_share: float = 0.3
    #: Scene source of stage 2: ``"boxes"`` (synthetic box rooms around each window),
    #: ``"rooms"`` (windows placed in generated rooms, tri-planes from the real SSO; see
    #: ``scene_data.py``) or ``"none"`` (direction only).
    scene_source: str = "boxes"
    #: Placements in the stage-2 pool of ``scene_source: rooms``.
    scene_pool_size: int = 512
    #: Generated rooms per prompt of ``scene_source: rooms``.
    rooms_per_prompt: int = 2
    #: Room prompts of ``scene_source: rooms`` (empty = ``scene_data.DEFAULT_PROMPTS``).
    scene_prompts: tuple[str, ...] = ()
    #: Wall-time cap of stage 1 in minutes (0 = none); the stage ends early when reached and
    #: the learning-rate schedule follows max(step share, time share).
    prior_max_minutes: float = 0.0
    #: Wall-time cap of stage 2 in minutes (0 = none).
    control_max_minutes: float = 0.0
    #: Sample windows with weight count(action)^-0.5 (rare actions more often).
    balance_actions: bool = True
    #: Log a CSV row every this many steps.
    log_every: int = 25
    #: Save a resumable checkpoint every this many steps.
    checkpoint_every: int = 250
    #: Start a new run from this checkpoint's weights and normalisation (fine-tuning; the
    #: network config must match). Stage 2 then re-copies the control branch from the prior.
    init_from: str | None = None
    #: Random seed.
    seed: int = 0
    #: torch CPU threads (0 = leave torch's default). One is best on a shared small CPU:
    #: with more threads than free cores, every op waits for descheduled threads.
    threads: int = 1
    #: torch device (``"auto"`` = cuda when available).
    device: str = "auto"

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown train fields {sorted(unknown)}; known: {sorted(known)}")
        d = dict(data)
        for k in ("speeds", "holdout", "scene_prompts"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass
class RunConfig:
    """A whole training run as read from a YAML file (``config/train_default.yaml``)."""

    #: Network and diffusion.
    motion: MotionConfig = field(default_factory=default_config)
    #: Optimisation and data.
    train: TrainConfig = field(default_factory=TrainConfig)


def load_run_config(path: str | Path) -> RunConfig:
    """Read a training YAML: ``size: default|reference``, optional ``model:`` and
    ``diffusion:`` overrides (ModelConfig/DiffusionConfig fields), ``train:`` (TrainConfig)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} not found")
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    size = doc.get("size", "default")
    if size not in ("default", "reference"):
        raise ValueError(f"{path}: size must be 'default' or 'reference', got {size!r}")
    base = default_config() if size == "default" else reference_config()
    model = ModelConfig.from_dict({**base.model.to_dict(), **(doc.get("model") or {})})
    diff = DiffusionConfig.from_dict({**base.diffusion.to_dict(), **(doc.get("diffusion") or {})})
    train = TrainConfig.from_dict(doc.get("train") or {})
    extra = set(doc) - {"size", "model", "diffusion", "train"}
    if extra:
        raise ValueError(f"{path}: unknown top-level keys {sorted(extra)}")
    return RunConfig(motion=MotionConfig(model=model, diffusion=diff), train=train)


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------


@dataclass
class ClipData:
    """One clip. params: (T, 69) float32 map frame, 30 fps. actions: (T,) str labels."""

    name: str
    params: np.ndarray
    actions: np.ndarray


def load_clips(data_dir: str | Path, progress: bool = True) -> list[ClipData]:
    """Clips from a CMU BVH folder (with ``INDEX.tsv``) or a folder of ``.npz`` clips."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"training data folder {data_dir} does not exist")
    if (data_dir / "INDEX.tsv").is_file():
        from ssomotion_ros.motion.datasets.cmu import load_cmu_dataset

        return [
            ClipData(c.name, np.asarray(c.params, np.float32), np.asarray(c.actions))
            for c in load_cmu_dataset(data_dir, progress=progress)
        ]
    files = sorted(data_dir.glob("*.npz"))
    if not files:
        raise ValueError(
            f"{data_dir} holds neither a CMU INDEX.tsv nor .npz clips (keys params (T,69), "
            "actions (T,)); convert AMASS/HUMANISE with ssomotion_ros.motion.datasets first"
        )
    clips = []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            if "params" not in z or "actions" not in z:
                raise ValueError(f"{f}: needs arrays 'params' (T, 69) and 'actions' (T,)")
            p = np.asarray(z["params"], np.float32)
            a = np.asarray(z["actions"]).astype(str)
        if p.ndim != 2 or p.shape[1] != 69 or a.shape != (p.shape[0],):
            raise ValueError(
                f"{f}: params must be (T, 69) and actions (T,), got {p.shape}, {a.shape}"
            )
        clips.append(ClipData(f.stem, p, a))
    return clips


def mirror_params(params: np.ndarray) -> np.ndarray:
    """Left/right mirror (reflection y -> -y in the map frame) of (T, 69) parameters.

    body_pose (SMPL-X native frame): swap left/right joints and negate the y and z
    axis-angle components; global_orient (map frame): negate x and z; transl: negate y.
    """
    from ssomotion_ros.body.skeleton import MIRROR_PERMUTATION

    p = np.array(params, dtype=np.float32, copy=True)
    go = p[:, :3].copy()
    p[:, 0], p[:, 2] = -go[:, 0], -go[:, 2]
    body = params[:, 3:66].reshape(-1, 21, 3)
    perm = MIRROR_PERMUTATION[1:] - 1
    body = body[:, perm] * np.array([1.0, -1.0, -1.0], np.float32)
    p[:, 3:66] = body.reshape(-1, 63)
    p[:, 67] = -p[:, 67]
    return p


def resample_params(params: np.ndarray, factor: float) -> np.ndarray:
    """Play (T, 69) parameters ``factor`` times faster (slerp-like nlerp of every joint
    rotation, linear translation). Returns (round((T-1)/factor)+1, 69)."""
    from ssomotion_ros.body.rotations import axis_angle_to_quaternion, quaternion_to_axis_angle

    T = params.shape[0]
    n = int(round((T - 1) / factor)) + 1
    src = np.clip(np.arange(n) * factor, 0, T - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    w = torch.as_tensor((src - i0)[:, None, None], dtype=torch.float64)
    p = torch.as_tensor(params, dtype=torch.float64)
    q = axis_angle_to_quaternion(p[:, :66].reshape(T, 22, 3))
    q0, q1 = q[i0], q[i1]
    sign = torch.where((q0 * q1).sum(-1, keepdim=True) < 0, -1.0, 1.0)
    qi = (1 - w) * q0 + w * q1 * sign
    qi = qi / qi.norm(dim=-1, keepdim=True)
    aa = quaternion_to_axis_angle(qi).reshape(n, 66)
    tr = (1 - w[:, 0]) * p[i0, 66:] + w[:, 0] * p[i1, 66:]
    return torch.cat([aa, tr], -1).float().numpy()


def window_label(actions: np.ndarray, history: int, min_share: float) -> int:
    """Action index of a window (majority non-idle label of its new frames), or -1."""
    new = [a for a in actions[history:] if a in ACTIONS]
    if not new:
        return -1
    names, counts = np.unique(np.asarray(new), return_counts=True)
    k = int(np.argmax(counts))
    if counts[k] < min_share * (len(actions) - history):
        return -1
    return ACTIONS.index(str(names[k]))


@dataclass
class WindowSet:
    """Canonicalised training windows.

    feats: (N, T, 135) float32 features, window frame. actions: (N,) int64.
    direction: (N, 22, 3) float32 direction hints, window frame. clip: (N,) clip names.
    """

    feats: torch.Tensor
    actions: torch.Tensor
    direction: torch.Tensor
    clip: list[str]


def make_window_set(
    clips: list[ClipData], window: int, history: int, cfg: TrainConfig, progress: bool = True
) -> WindowSet:
    """Augment clips, cut windows, canonicalise them and compute their direction hints."""
    from tqdm import tqdm

    params, acts, names = [], [], []
    variants = []
    for c in clips:
        base = [c.params] + ([mirror_params(c.params)] if cfg.mirror else [])
        for b in base:
            for s in cfg.speeds:
                p = b if s == 1.0 else resample_params(b, s)
                src = np.clip(np.round(np.arange(len(p)) * s).astype(int), 0, len(c.actions) - 1)
                variants.append((c.name, p, c.actions[src]))
    for name, p, a in variants:
        for start in range(0, len(p) - window + 1, cfg.stride):
            lab = window_label(a[start : start + window], history, cfg.min_label_share)
            if lab < 0:
                continue
            params.append(p[start : start + window])
            acts.append(lab)
            names.append(name)
    if not params:
        raise ValueError(
            "no training windows: clips are shorter than the window or carry no walk/sit/"
            "stand_up/lie labels"
        )
    P = torch.as_tensor(np.stack(params), dtype=torch.float32)
    A = torch.as_tensor(acts, dtype=torch.long)
    feats, dirs = [], []
    for i in tqdm(range(0, len(P), 512), desc="windows", disable=not progress):
        chunk = P[i : i + 512]
        o, y = rep.window_frame(chunk)
        f = rep.params_to_features(chunk, o, y)
        j = rep.features_to_joints(f)
        feats.append(f)
        dirs.append(rep.direction_hint(j, A[i : i + 512]))
    return WindowSet(torch.cat(feats), A, torch.cat(dirs), names)


def _cached_window_set(
    out: Path, clips: list[ClipData], mcfg: MotionConfig, tcfg: TrainConfig, progress: bool
) -> WindowSet:
    """:func:`make_window_set`, cached in ``out/windows.safetensors`` (keyed by a hash of
    the clips and the settings that shape the windows), so a resumed run starts fast."""
    import hashlib
    import json

    from safetensors.torch import load_file, save_file

    h = hashlib.sha256()
    for c in clips:
        h.update(c.name.encode())
        h.update(np.ascontiguousarray(c.params).tobytes())
        h.update("|".join(map(str, c.actions)).encode())
    key = dict(
        window=mcfg.model.window,
        history=mcfg.model.history,
        stride=tcfg.stride,
        mirror=tcfg.mirror,
        speeds=list(tcfg.speeds),
        min_label_share=tcfg.min_label_share,
    )
    h.update(json.dumps(key, sort_keys=True).encode())
    digest = h.hexdigest()
    f = out / "windows.safetensors"
    if f.is_file():
        try:
            t = load_file(str(f))
            meta_ok = (out / "windows.json").read_text().strip() == digest
            if meta_ok:
                names = json.loads((out / "windows_clips.json").read_text())
                return WindowSet(t["feats"], t["actions"], t["direction"], names)
        except Exception as e:  # noqa: BLE001 - a bad cache is rebuilt
            log.warning("window cache unreadable (%s); rebuilding", e)
    ws = make_window_set(clips, mcfg.model.window, mcfg.model.history, tcfg, progress)
    save_file(
        {"feats": ws.feats.contiguous(), "actions": ws.actions, "direction": ws.direction},
        str(f),
    )
    (out / "windows_clips.json").write_text(json.dumps(ws.clip))
    (out / "windows.json").write_text(digest + "\n")
    return ws


# ---------------------------------------------------------------------------------------
# training loop
# ---------------------------------------------------------------------------------------


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def feature_stats(feats: torch.Tensor, min_std: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (floored) std per feature of (N, T, 135) features."""
    flat = feats.reshape(-1, feats.shape[-1]).double()
    return flat.mean(0).float(), flat.std(0).clamp_min(min_std).float()


#: Which training window seeds a rollout of each action: the one whose first frame has the
#: highest ("high"), median or lowest ("low") pelvis — sit and lie start standing,
#: stand_up from a typical (seated) pose, walk from a typical pose.
SEED_RULE = {"walk": "median", "sit": "high", "stand_up": "median", "lie": "high"}


def seed_poses(ws: WindowSet, history: int) -> dict[str, torch.Tensor]:
    """Per action, the history frames of one real training window (window frame) that a
    rollout can start from: ``seed/<action>`` (history, 135), chosen by :data:`SEED_RULE`."""
    out = {}
    for i, a in enumerate(ACTIONS):
        idx = torch.nonzero(ws.actions == i).flatten()
        if len(idx):
            order = idx[torch.argsort(ws.feats[idx, 0, 2])]  # by first-frame pelvis height
            rule = SEED_RULE.get(a, "median")
            k = (
                order[-1]
                if rule == "high"
                else order[0]
                if rule == "low"
                else order[len(order) // 2]
            )
            out[f"seed/{a}"] = ws.feats[k, :history].clone()
    return out


def reduction_extras(reduction) -> dict[str, torch.Tensor]:
    """Checkpoint extras of the semantic reduction the scene branch was trained with:
    ``semantic_reduction.weight`` (F, D) and ``.bias`` (F,). ``LinearReduction.from_file``
    finds them in ``model.safetensors`` (keys containing "reduction")."""
    return {
        "semantic_reduction.weight": torch.as_tensor(np.asarray(reduction.weight, np.float32)),
        "semantic_reduction.bias": torch.as_tensor(np.asarray(reduction.bias, np.float32)),
    }


def _stage2_pool(out: Path, ws: WindowSet, mcfg, tcfg: TrainConfig, extras: dict, progress):
    """The ``rooms`` stage-2 pool (cached in ``out/stage2_pool.safetensors``); adds the
    semantic reduction used for its features to ``extras``."""
    from ssomotion_ros.motion.scene_data import DEFAULT_PROMPTS, Stage2Pool, build_stage2_pool
    from ssomotion_ros.motion.scene_synth import _default_tables

    reduction = _default_tables(mcfg.model.semantic_dim)[2]
    if reduction is not None:
        extras.update(reduction_extras(reduction))
    f = out / "stage2_pool.safetensors"
    if f.is_file():
        try:
            pool = Stage2Pool.load(f)
            if int(pool.window.max()) < len(ws.feats):
                return pool
        except Exception as e:  # noqa: BLE001 - a bad cache is rebuilt
            log.warning("stage-2 pool cache unreadable (%s); rebuilding", e)
    pool = build_stage2_pool(
        ws.feats,
        ws.actions,
        tcfg.scene_pool_size,
        prompts=tcfg.scene_prompts or DEFAULT_PROMPTS,
        rooms_per_prompt=tcfg.rooms_per_prompt,
        reduction=reduction,
        seed=tcfg.seed,
        progress=progress,
    )
    pool.save(f)
    return pool


def _lr(step: int, base: float, warmup: int, progress: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10 % over ``progress``
    (the share of the stage done, 0..1)."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0))))


def plot_losses(csv_path: Path, png_path: Path) -> None:
    """PNG of the loss columns of ``losses.csv`` against the global step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for stage in ("prior", "control"):
        rs = [r for r in rows if r["stage"] == stage]
        if rs:
            ax.plot(
                [int(r["global_step"]) for r in rs], [float(r["loss"]) for r in rs], label=stage
            )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("SSOMotion training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


CSV_FIELDS = [
    "stage", "step", "global_step", "loss", "recon", "velocity", "joints", "foot", "lr", "wall_s",
]  # fmt: skip


def train(
    run: RunConfig,
    data: str | Path | list[ClipData],
    out: str | Path,
    progress: bool = True,
    max_wall_s: float | None = None,
) -> dict:
    """Train (or resume) a generator. Returns a summary dict (steps, wall time, losses).

    data: a data folder (see :func:`load_clips`) or loaded clips. out: output folder.
    max_wall_s: stop early (saving a resumable checkpoint) after this much wall time.
    """
    from tqdm import tqdm

    tcfg = run.train
    mcfg = run.motion
    if tcfg.scene_source not in ("boxes", "rooms", "none"):
        raise ValueError(
            f"scene_source must be 'boxes', 'rooms' or 'none', got {tcfg.scene_source!r}"
        )
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    torch.manual_seed(tcfg.seed)
    rng = np.random.default_rng(tcfg.seed)
    dev = _device(tcfg.device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ck_dir = out / "checkpoint"
    csv_path = out / "losses.csv"
    t_start = time.perf_counter()

    clips = load_clips(data, progress) if not isinstance(data, list) else data
    train_clips = [c for c in clips if c.name not in set(tcfg.holdout)]
    if not train_clips:
        raise ValueError("every clip is held out; nothing to train on")
    ws = _cached_window_set(out, train_clips, mcfg, tcfg, progress)
    log.info("training windows: %d from %d clips", len(ws.feats), len(train_clips))

    model = SSOMotionDenoiser(mcfg.model).to(dev)
    diffusion = GaussianDiffusion(mcfg.diffusion)
    stage, step, wall_before = "prior", 0, 0.0
    opt_state = None
    if (ck_dir / "config.json").is_file():
        saved_cfg, _ = read_config(ck_dir)
        if saved_cfg.to_dict() != mcfg.to_dict():
            raise ValueError(
                f"{ck_dir} was trained with a different model/diffusion config; use a new --out"
            )
        loaded = load_checkpoint(ck_dir, device=dev)
        model.load_state_dict(loaded.model.state_dict())
        st = load_train_state(ck_dir)
        if st is not None:
            stage, step = str(loaded.metadata.get("stage", "prior")), int(st["step"])
            wall_before = float(loaded.metadata.get("wall_s", 0.0))
            opt_state = st["optimizer"]
        log.info("resuming %s at stage %s step %d", ck_dir, stage, step)
    elif tcfg.init_from:
        init = load_checkpoint(tcfg.init_from, device=dev)
        if init.config.model.to_dict() != mcfg.model.to_dict():
            raise ValueError(
                f"init_from {tcfg.init_from}: its network config differs from this run's"
            )
        model.load_state_dict(init.model.state_dict())
        log.info("initialised from %s", tcfg.init_from)
        if csv_path.exists():
            csv_path.unlink()
    else:
        mean, std = feature_stats(ws.feats)
        model.feat_mean.copy_(mean.to(dev))
        model.feat_std.copy_(std.to(dev))
        if csv_path.exists():
            csv_path.unlink()
    extras = seed_poses(ws, mcfg.model.history)
    feats_n = model.normalize(ws.feats.to(dev))
    dirs = ws.direction.to(dev)
    acts = ws.actions.to(dev)
    N, T = feats_n.shape[:2]
    H = mcfg.model.history
    counts = torch.bincount(ws.actions, minlength=len(ACTIONS)).double().clamp_min(1)
    w = counts[ws.actions] ** (-0.5) if tcfg.balance_actions else torch.ones(N, dtype=torch.float64)
    probs = (w / w.sum()).numpy()

    sampler = None
    pool = None
    stages = [("prior", tcfg.prior_steps)]
    if tcfg.control_steps > 0 and mcfg.model.use_control:
        stages.append(("control", tcfg.control_steps))
    new_file = not csv_path.exists()
    fh = open(csv_path, "a", newline="")
    writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
    if new_file:
        writer.writeheader()
    summary: dict = {"windows": int(N), "clips": [c.name for c in train_clips], "stages": {}}
    stopped_early = False
    offset = 0
    try:
        for si, (name, total) in enumerate(stages):
            if [s for s, _ in stages].index(stage) > si:
                offset += total
                continue  # finished before the resume
            if name != stage:
                stage, step, opt_state = name, 0, None
            if name == "prior":
                params = model.prior_parameters()
                for p in model.control_parameters():
                    p.requires_grad_(False)
                bs, lr = tcfg.batch_size, tcfg.lr
            else:
                if step == 0:
                    model.init_control_from_prior()
                for p in model.prior_parameters():
                    p.requires_grad_(False)
                params = model.control_parameters()
                for p in params:
                    p.requires_grad_(True)
                bs, lr = tcfg.control_batch_size, tcfg.control_lr
                if tcfg.scene_source == "boxes" and mcfg.model.use_scene and sampler is None:
                    from ssomotion_ros.motion.scene_synth import BoxSceneSampler

                    sampler = BoxSceneSampler(mcfg.model.semantic_dim, seed=tcfg.seed)
                    if sampler.reduction is not None:
                        extras.update(reduction_extras(sampler.reduction))
                if tcfg.scene_source == "rooms" and mcfg.model.use_scene and pool is None:
                    pool = _stage2_pool(out, ws, mcfg, tcfg, extras, progress)
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=tcfg.weight_decay)
            if opt_state is not None:
                opt.load_state_dict(opt_state)
                opt_state = None
            model.train()
            cap = 60.0 * (tcfg.prior_max_minutes if name == "prior" else tcfg.control_max_minutes)
            t_stage = time.perf_counter()
            bar = tqdm(total=total, initial=step, desc=f"stage {name}", disable=not progress)
            last: dict = {}
            while step < total:
                idx = torch.as_tensor(rng.choice(N, bs, p=probs), device=dev)
                km = torch.zeros(bs, T, dtype=torch.bool, device=dev)
                km[:, :H] = True
                if name == "prior":
                    drop = torch.as_tensor(rng.random(bs) < tcfg.no_history_prob, device=dev)
                    km[drop] = False
                x0 = feats_n[idx]
                batch = Batch(x0=x0, action=acts[idx], known_mask=km)
                if name == "control":
                    batch.direction = dirs[idx]
                    if pool is not None:
                        rows = torch.as_tensor(rng.integers(0, len(pool), bs))
                        idx = pool.window[rows].to(dev)
                        batch = Batch(x0=feats_n[idx], action=acts[idx], known_mask=km)
                        batch.direction = dirs[idx]
                        batch.scene = pool.batch(rows).to(dev)
                    elif sampler is not None:
                        j = rep.features_to_joints(ws.feats[idx.cpu()])
                        batch.scene = sampler(
                            j.numpy(), acts[idx].cpu().numpy(), mcfg.model.triplane_size
                        ).to(dev)
                share = step / total
                if cap > 0:
                    share = max(share, (time.perf_counter() - t_stage) / cap)
                for g in opt.param_groups:
                    warm = tcfg.warmup if name == "prior" else max(1, tcfg.warmup // 4)
                    g["lr"] = float(_lr(step, lr, warm, share))

                def fk(f):
                    return rep.features_to_joints(f)

                terms = diffusion.training_loss(model, batch, fk, control_only=(name == "control"))
                opt.zero_grad(set_to_none=True)
                terms["loss"].backward()
                torch.nn.utils.clip_grad_norm_(params, tcfg.grad_clip)
                opt.step()
                step += 1
                bar.update(1)
                last = {k: float(v.detach()) for k, v in terms.items()}
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                wall = wall_before + time.perf_counter() - t_start
                if step % tcfg.log_every == 0 or step == total:
                    writer.writerow(
                        {
                            "stage": name,
                            "step": step,
                            "global_step": offset + step,
                            **{k: f"{last.get(k, float('nan')):.6g}" for k in CSV_FIELDS[3:8]},
                            "lr": f"{opt.param_groups[0]['lr']:.3g}",
                            "wall_s": f"{wall:.1f}",
                        }
                    )
                    fh.flush()
                timeout = max_wall_s is not None and wall > max_wall_s
                stage_over = cap > 0 and time.perf_counter() - t_stage > cap
                if stage_over and not timeout:
                    log.info("stage %s reached its %.1f min cap at step %d", name, cap / 60, step)
                    total = step
                if step % tcfg.checkpoint_every == 0 or step == total or timeout:
                    meta = {"stage": name, "step": step, "wall_s": wall}
                    save_checkpoint(
                        ck_dir,
                        model,
                        mcfg,
                        extras,
                        meta,
                        {"step": step, "optimizer": opt.state_dict()},
                    )
                if timeout:
                    stopped_early = True
                    break
            bar.close()
            summary["stages"][name] = {"steps": step, "final": last}
            offset += total
            if stopped_early:
                break
    finally:
        fh.close()
    wall = wall_before + time.perf_counter() - t_start
    plot_losses(csv_path, out / "loss_curve.png")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    meta = {
        "stage": stage,
        "wall_s": round(wall, 1),
        "windows": int(N),
        "train_clips": [c.name for c in train_clips],
        "holdout": list(tcfg.holdout),
        "train_config": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(tcfg).items()
        },
        "stages": summary["stages"],
        "complete": not stopped_early,
    }
    if not stopped_early:
        save_checkpoint(out / "model", model, mcfg, extras, meta)
    summary.update(wall_s=round(wall, 1), complete=not stopped_early, out=str(out))
    return summary
