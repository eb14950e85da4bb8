"""Saving and loading motion-generator checkpoints without ever unpickling.

A checkpoint is a directory::

    config.json          format tag, MotionConfig, SHA-256 of each weight file, metadata
    model.safetensors    network weights (incl. feature normalisation) + ``extra/*`` tensors
    train_state.pt       (optional, training only) optimiser state, loaded weights_only=True

Loading checks the format tag, the checksum of every weight file, the tensor names and
shapes against the configured network, and raises :class:`CheckpointError` (a
``ValueError``) with a message saying what is wrong and what to do. Files are read with
``safetensors`` (no code execution) and training state with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ssomotion_ros.motion.config import MotionConfig

log = logging.getLogger(__name__)

FORMAT = "ssomotion-motion-checkpoint"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAIN_STATE = "train_state.pt"
EXTRA_PREFIX = "extra/"

#: The checkpoint shipped inside the package.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, tampered with or does not fit the network."""


@dataclass
class LoadedCheckpoint:
    """What :func:`load_checkpoint` returns.

    model: the denoiser in eval mode on the requested device.
    config: its MotionConfig. extras: named tensors saved alongside (e.g. seed poses).
    metadata: free-form JSON metadata (training steps, data, ...). path: the directory.
    """

    model: torch.nn.Module
    config: MotionConfig
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    path: Path | None = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    config: MotionConfig,
    extras: dict[str, torch.Tensor] | None = None,
    metadata: dict | None = None,
    train_state: dict | None = None,
) -> Path:
    """Write a checkpoint directory (created if needed; files replaced atomically).

    extras: named tensors stored with the weights (names without '/' prefix clashes).
    train_state: optional dict of tensors/numbers (optimiser state, step) for resuming.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for k, v in (extras or {}).items():
        tensors[EXTRA_PREFIX + k] = v.detach().cpu().clone().contiguous()
    tmp = path / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    tmp.replace(path / WEIGHTS)
    hashes = {WEIGHTS: _sha256(path / WEIGHTS)}
    if train_state is not None:
        tmp = path / (TRAIN_STATE + ".tmp")
        torch.save(train_state, tmp)
        tmp.replace(path / TRAIN_STATE)
        hashes[TRAIN_STATE] = _sha256(path / TRAIN_STATE)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "sha256": hashes,
        "metadata": metadata or {},
    }
    tmp = path / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(path / CONFIG)
    log.info("saved checkpoint %s", path)
    return path


def read_config(path: str | Path) -> tuple[MotionConfig, dict]:
    """Read and validate ``config.json`` of a checkpoint -> (MotionConfig, full JSON doc)."""
    path = Path(path)
    cfg_file = path / CONFIG
    if not cfg_file.is_file():
        raise CheckpointError(
            f"{path} is not a motion checkpoint: {CONFIG} is missing (a checkpoint is a "
            f"directory written by 'ssomotion train' holding {CONFIG} and {WEIGHTS})"
        )
    try:
        doc = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{cfg_file} is not valid JSON ({e}); the checkpoint is damaged"
        ) from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_file} does not declare format {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise CheckpointError(
            f"{cfg_file} has checkpoint version {doc.get('version')!r}; this build reads {VERSION}"
        )
    try:
        cfg = MotionConfig.from_dict(doc["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{cfg_file}: bad config section ({e})") from e
    return cfg, doc


def _verify(path: Path, name: str, doc: dict) -> None:
    f = path / name
    if not f.is_file():
        raise CheckpointError(f"checkpoint {path} lacks {name}")
    want = doc.get("sha256", {}).get(name)
    if not want:
        raise CheckpointError(f"{path / CONFIG} has no checksum for {name}; refusing to load it")
    got = _sha256(f)
    if got != want:
        raise CheckpointError(
            f"{f} does not match the SHA-256 recorded in {CONFIG} (got {got[:12]}..., "
            f"expected {want[:12]}...): the file was modified or damaged. Restore it from the "
            "package or retrain; it was not loaded."
        )


def load_checkpoint(
    path: str | Path | None = None, device: str | torch.device | None = None
) -> LoadedCheckpoint:
    """Load a checkpoint directory (default: the shipped one) onto ``device``.

    Raises :class:`CheckpointError` on any problem (nothing is unpickled).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ssomotion_ros.motion.model import SSOMotionDenoiser

    path = Path(path) if path is not None else DEFAULT_CHECKPOINT
    cfg, doc = read_config(path)
    _verify(path, WEIGHTS, doc)
    try:
        tensors = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path / WEIGHTS} is not a readable safetensors file ({e})") from e
    extras = {k[len(EXTRA_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    state = {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
    model = SSOMotionDenoiser(cfg.model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{path / WEIGHTS} does not fit the configured network: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]} (config.json and weights disagree)"
        )
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise CheckpointError(
                f"{path / WEIGHTS}: tensor {k} has shape {tuple(v.shape)}, the network "
                f"expects {tuple(own[k].shape)}"
            )
    model.load_state_dict(state)
    dev = torch.device(device) if device is not None else default_device()
    model.to(dev).eval()
    return LoadedCheckpoint(
        model=model, config=cfg, extras=extras, metadata=doc.get("metadata", {}), path=path
    )


def load_train_state(path: str | Path) -> dict | None:
    """The training state saved with a checkpoint (None if absent), verified and loaded
    with ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not (path / TRAIN_STATE).is_file():
        return None
    _, doc = read_config(path)
    _verify(path, TRAIN_STATE, doc)
    try:
        return torch.load(path / TRAIN_STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal/corruption
        raise CheckpointError(f"{path / TRAIN_STATE} could not be loaded safely ({e})") from e


def default_device() -> torch.device:
    """``cuda`` when available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
