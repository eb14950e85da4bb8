"""Evaluation of the CMU -> SMPL retargeting and of the data set it yields.

``ssomotion eval --suite cmu_retarget --json FILE`` (provider listed in the CLI's eval
``PROVIDERS``). For every CMU clip it measures:

- ``self_mm``: retarget to the clip's own skeleton (:func:`skeleton_from_bvh`), FK, and
  compare with the BVH's own joint positions (metres via the ASF unit, z up) at the
  resampled 30 fps times: mean / max millimetres per joint group. This checks the whole
  chain (BVH FK, rest alignment, local rotations, axis-angle, resampling, our FK).
- ``bone_deg``: retarget to the default SMPL-X skeleton and compare each bone direction
  with the matching CMU segment direction: mean / max degrees per joint group (bones whose
  CMU segment has zero length are skipped). Positions cannot match here: the CMU and SMPL-X
  proportions differ (e.g. CMU's spine is shorter).
- frames and windows per action label (30-frame windows, 5 history frames).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ssomotion_ros.body.skeleton import JOINT_GROUPS, JOINT_NAMES, PARENTS, forward_kinematics_np

__all__ = ["retarget_report", "SUITES"]

log = logging.getLogger(__name__)


def _group_stats(err: np.ndarray) -> dict[str, list[float]]:
    """err (T, 22) -> {group: [mean, max]} rounded; NaN entries ignored."""
    out = {}
    for g, idx in JOINT_GROUPS.items():
        e = err[:, list(idx)]
        e = e[np.isfinite(e)]
        if e.size:
            out[g] = [round(float(e.mean()), 3), round(float(e.max()), 3)]
    return out


def retarget_report(root=None, stride: int = 25) -> dict:
    """Retarget every clip under ``root`` (default CMU folder) and measure it (see module doc).

    Returns a JSON-serialisable dict: ``clips`` (list of per-clip dicts), ``self_mm_all`` and
    ``bone_deg_all`` ({group: [mean, max]} over all frames), ``frames_per_action``,
    ``windows_per_action`` (at ``stride``), ``windows_per_action_stride5``, timings."""
    import csv
    from pathlib import Path

    from ssomotion_ros.motion.datasets import cmu
    from ssomotion_ros.motion.datasets.bvh import read_bvh
    from ssomotion_ros.motion.datasets.labels import label_actions
    from ssomotion_ros.motion.datasets.windows import make_windows, window_counts

    root = Path(root) if root is not None else cmu.default_cmu_root()
    with open(root / "INDEX.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    clips_out, self_all, bone_all, clips = [], [], [], []
    t_total = 0.0
    for row in rows:
        bvh = read_bvh(root / row["file"])
        t0 = time.perf_counter()
        params, meta = cmu.bvh_to_smpl(bvh)
        t_total += time.perf_counter() - t0
        ti = np.round(meta["times"] * bvh.fps).astype(int)
        # (1) own skeleton, positions
        own = cmu.skeleton_from_bvh(bvh)
        p_own, _ = cmu.bvh_to_smpl(bvh, own, cmu.RetargetConfig(level_floor=False))
        ref = cmu.bvh_joint_positions_map(bvh, cmu.ASF_UNIT_M)[ti]
        j_own = forward_kinematics_np(p_own, own)
        err_mm = np.linalg.norm(j_own - ref, axis=-1) * 1000.0
        # (2) default skeleton, bone directions
        j_def = forward_kinematics_np(params)
        ref_d = cmu.bvh_joint_positions_map(bvh, 1.0)[ti]
        ang = np.full((len(ti), 22), np.nan)
        for j in range(1, 22):
            a = j_def[:, j] - j_def[:, PARENTS[j]]
            b = ref_d[:, j] - ref_d[:, PARENTS[j]]
            nb = np.linalg.norm(b, axis=-1)
            if np.median(nb) < 1e-6:
                continue  # zero-length CMU segment
            cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * nb + 1e-12)
            ang[:, j] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        self_all.append(err_mm)
        bone_all.append(ang)
        actions = label_actions(params, row["category"], fps=30.0)
        clips.append(cmu.Clip(name=Path(row["file"]).stem, params=params, actions=actions,
                              category=row["category"]))  # fmt: skip
        names, counts = np.unique(actions, return_counts=True)
        clips_out.append({
            "clip": Path(row["file"]).stem, "category": row["category"],
            "source_fps": meta["source_fps"], "frames_30fps": int(len(params)),
            "scale_m_per_unit": round(meta["scale_m_per_unit"], 5),
            "floor_shift_m": round(meta["floor_shift_m"], 4),
            "dropped_bind_frame": meta["dropped_bind_frame"],
            "repaired_frames": len(meta["repaired_frames"]),
            "self_mm": _group_stats(err_mm), "bone_deg": _group_stats(ang),
            "frames_per_action": {str(n): int(c) for n, c in zip(names, counts)},
        })  # fmt: skip
    frames: dict[str, int] = {}
    for c in clips:
        for n, k in zip(*np.unique(c.actions, return_counts=True)):
            frames[str(n)] = frames.get(str(n), 0) + int(k)
    # the loader also adds reversed getups (lie-down); count those windows too
    full = cmu.load_cmu_dataset(root, progress=False)
    extra = {}
    try:
        from ssomotion_ros.motion.datasets.deepmimic import load_deepmimic_dataset

        dm_clips = load_deepmimic_dataset()
        extra["deepmimic_windows_per_action"] = window_counts(make_windows(dm_clips, stride=stride))
        extra["deepmimic_windows_per_action_stride5"] = window_counts(
            make_windows(dm_clips, stride=5)
        )
    except ImportError as exc:  # optional pybullet
        extra["deepmimic"] = f"skipped: {exc}"
    return {
        **extra,
        "clips": clips_out,
        "self_mm_all": _group_stats(np.concatenate(self_all)),
        "bone_deg_all": _group_stats(np.concatenate(bone_all)),
        "frames_per_action": frames,
        "windows_per_action": window_counts(make_windows(clips, stride=stride)),
        "windows_per_action_with_reversed_getups": window_counts(make_windows(full, stride=stride)),
        "windows_per_action_stride5_with_reversed_getups": window_counts(
            make_windows(full, stride=5)
        ),
        "window_stride": stride,
        "retarget_seconds_total": round(t_total, 3),
        "joint_groups": {g: [JOINT_NAMES[i] for i in idx] for g, idx in JOINT_GROUPS.items()},
    }


def _suite_retarget(args) -> dict:
    """CMU BVH clips on our 22-joint body: per-clip fit errors, frames and windows per action."""
    return retarget_report()


SUITES = {"cmu_retarget": _suite_retarget}
