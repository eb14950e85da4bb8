"""One call for the training data that ships or is reachable here: CMU (+ DeepMimic)."""

from __future__ import annotations

import logging
from pathlib import Path

from ssomotion_ros.body.skeleton import Skeleton
from ssomotion_ros.motion.datasets.cmu import Clip, load_cmu_dataset

__all__ = ["load_default_clips"]

log = logging.getLogger(__name__)


def load_default_clips(
    cmu_root: str | Path | None = None,
    include_deepmimic: bool = True,
    skeleton: Skeleton | None = None,
    exclude: tuple[str, ...] = (),
    progress: bool = True,
) -> list[Clip]:
    """CMU clips (:func:`load_cmu_dataset`, with reversed get-ups) plus, when ``pybullet``
    is installed and ``include_deepmimic``, the DeepMimic walk/turn/get-up clips.

    exclude: clip names to leave out (e.g. held-out evaluation clips; a name also excludes
    its ``_reversed`` copy). Returns a list of 30 fps :class:`Clip` with per-frame actions."""
    clips = load_cmu_dataset(cmu_root, skeleton=skeleton, progress=progress)
    if include_deepmimic:
        try:
            from ssomotion_ros.motion.datasets.deepmimic import load_deepmimic_dataset

            clips += load_deepmimic_dataset(skeleton=skeleton)
        except ImportError as exc:
            log.info("DeepMimic clips skipped: %s", exc)
    drop = set(exclude) | {f"{n}_reversed" for n in exclude}
    return [c for c in clips if c.name not in drop]
