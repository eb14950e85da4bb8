"""Convert any supported source into a folder of ``.npz`` clips (the training data format).

Each file ``<out>/<name>.npz`` holds ``params`` (T, 69) float32 (map frame, 30 fps),
``actions`` (T,) str, ``fps``, ``name``, ``category`` — what ``ssomotion train --data DIR``
reads. Sources: ``cmu`` (BVH folder with INDEX.tsv), ``deepmimic`` (pybullet wheel),
``default`` (both), ``amass`` (folder searched recursively for AMASS ``.npz``; frames
labelled by posture segmentation), ``humanise`` (re-formatted release folder).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ssomotion_ros.motion.datasets.cmu import Clip

__all__ = ["SOURCES", "load_source", "export_clips", "clip_stats"]

log = logging.getLogger(__name__)

SOURCES = ("cmu", "deepmimic", "default", "amass", "humanise")


def _load_amass_folder(root: Path, progress: bool) -> list[Clip]:
    from tqdm import tqdm

    from ssomotion_ros.motion.datasets.amass import load_amass_npz
    from ssomotion_ros.motion.datasets.labels import label_actions

    files = sorted(p for p in root.rglob("*.npz") if not p.name.endswith("shape.npz"))
    if not files:
        raise FileNotFoundError(f"no AMASS .npz files under {root}")
    clips = []
    for f in tqdm(files, desc="AMASS files", disable=not progress):
        try:
            params, meta = load_amass_npz(f)
        except ValueError as exc:
            log.warning("skipped %s: %s", f, exc)
            continue
        if len(params) < 2:
            continue
        name = "_".join(f.relative_to(root).with_suffix("").parts)
        clips.append(Clip(name, params, label_actions(params, ""), 30.0, "amass", "", meta))
    return clips


def load_source(source: str, path: str | Path | None = None, progress: bool = True) -> list[Clip]:
    """Clips of one source (see the module docstring). ``path`` is required for amass and
    humanise, optional (defaults) for cmu and default, ignored for deepmimic."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")
    if source == "cmu":
        from ssomotion_ros.motion.datasets.cmu import load_cmu_dataset

        return load_cmu_dataset(path, progress=progress)
    if source == "deepmimic":
        from ssomotion_ros.motion.datasets.deepmimic import load_deepmimic_dataset

        return load_deepmimic_dataset()
    if source == "default":
        from ssomotion_ros.motion.datasets.sources import load_default_clips

        return load_default_clips(path, progress=progress)
    if path is None:
        raise ValueError(f"source {source!r} needs an input folder")
    if source == "amass":
        return _load_amass_folder(Path(path), progress)
    from ssomotion_ros.motion.datasets.amass import load_humanise

    return load_humanise(path)


def export_clips(clips: list[Clip], out_dir: str | Path) -> list[Path]:
    """Write each clip to ``out_dir/<name>.npz``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in clips:
        p = out / f"{c.name}.npz"
        np.savez_compressed(
            p,
            params=np.asarray(c.params, np.float32),
            actions=np.asarray(c.actions).astype("<U8"),
            fps=np.float32(c.fps),
            name=np.array(c.name),
            category=np.array(c.category),
        )
        paths.append(p)
    return paths


def clip_stats(clips: list[Clip]) -> dict:
    """Clips, frames and 30-frame windows (stride 25) per action."""
    from ssomotion_ros.motion.datasets.windows import make_windows, window_counts

    frames: dict[str, int] = {}
    for c in clips:
        for n, k in zip(*np.unique(np.asarray(c.actions), return_counts=True)):
            frames[str(n)] = frames.get(str(n), 0) + int(k)
    return {
        "clips": len(clips),
        "frames_per_action": frames,
        "windows_per_action": window_counts(make_windows(clips)) if clips else {},
    }
