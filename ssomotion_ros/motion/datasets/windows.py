"""Fixed-length training windows (30 frames with 5 history frames) from labelled clips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ssomotion_ros.body.skeleton import Skeleton
from ssomotion_ros.motion.datasets.augment import canonicalize
from ssomotion_ros.motion.datasets.labels import ACTION_TO_ID, ACTIONS

__all__ = ["make_windows", "window_counts"]


def make_windows(
    clips: Sequence,
    length: int = 30,
    history: int = 5,
    stride: int | None = None,
    canonical: bool = True,
    actions: Sequence[str] | None = None,
    skeleton: Skeleton | None = None,
) -> dict[str, np.ndarray]:
    """Cut clips into overlapping windows.

    clips: objects with ``params`` (T, 69) float32 and ``actions`` (T,) str (e.g.
        :class:`~ssomotion_ros.motion.datasets.cmu.Clip`); clips shorter than ``length``
        are skipped.
    length: frames per window (30 = 1 s at 30 fps). history: leading frames that come from
        the previous window at synthesis time (inpainted, not generated), 0 <= history <
        length. stride: frame step between window starts (default ``length - history``, the
        autoregressive step).
    canonical: express each window in the body frame of its last history frame (frame
        ``max(history - 1, 0)``: pelvis above the origin, facing +x; heights unchanged).
    actions: keep only windows whose label is in this list (default: all of ``ACTIONS``).

    Returns a dict of arrays: ``params`` (N, length, 69) float32; ``action`` (N,) int64 id
    into ``ACTIONS`` (majority label of the frames after the history); ``history_mask``
    (N, length) bool (True on history frames); ``clip_index`` (N,) int64; ``start`` (N,)
    int64 first frame in the clip; ``yaw`` (N,) float32 and ``xy`` (N, 2) float32 removed
    by canonicalisation (zeros when ``canonical`` is False); ``action_names`` (A,) str.
    """
    if length < 1 or not 0 <= history < length:
        raise ValueError(f"need length >= 1 and 0 <= history < length, got {length}, {history}")
    step = stride if stride is not None else length - history
    if step < 1:
        raise ValueError(f"stride must be >= 1, got {step}")
    keep = set(actions) if actions is not None else set(ACTIONS)
    unknown = keep - set(ACTIONS)
    if unknown:
        raise ValueError(f"unknown actions {sorted(unknown)}; known: {ACTIONS}")
    out_p, out_a, out_c, out_s = [], [], [], []
    for ci, clip in enumerate(clips):
        p = np.asarray(clip.params, dtype=np.float32)
        acts = np.asarray(clip.actions)
        if p.ndim != 2 or p.shape[1] != 69 or len(acts) != len(p):
            raise ValueError(
                f"clip {ci}: params must be (T, 69) and actions (T,), got {p.shape}, {acts.shape}"
            )
        for s in range(0, len(p) - length + 1, step):
            seg = acts[s + history : s + length]
            names, counts = np.unique(seg, return_counts=True)
            label = str(names[np.argmax(counts)])
            if label not in keep:
                continue
            out_p.append(p[s : s + length])
            out_a.append(ACTION_TO_ID[label])
            out_c.append(ci)
            out_s.append(s)
    n = len(out_p)
    params = np.stack(out_p) if n else np.zeros((0, length, 69), np.float32)
    yaw = np.zeros(n, np.float32)
    xy = np.zeros((n, 2), np.float32)
    if canonical and n:
        params, info = canonicalize(params, frame=max(history - 1, 0), skeleton=skeleton)
        yaw, xy = info["yaw"].astype(np.float32), info["xy"].astype(np.float32)
    mask = np.zeros((n, length), dtype=bool)
    mask[:, :history] = True
    return {
        "params": params.astype(np.float32),
        "action": np.asarray(out_a, dtype=np.int64),
        "history_mask": mask,
        "clip_index": np.asarray(out_c, dtype=np.int64),
        "start": np.asarray(out_s, dtype=np.int64),
        "yaw": yaw,
        "xy": xy,
        "action_names": np.asarray(ACTIONS),
    }


def window_counts(windows: dict[str, np.ndarray]) -> dict[str, int]:
    """Number of windows per action name."""
    ids, counts = np.unique(windows["action"], return_counts=True)
    return {ACTIONS[int(i)]: int(c) for i, c in zip(ids, counts)}
