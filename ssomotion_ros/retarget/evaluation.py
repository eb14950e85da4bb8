"""``ssomotion eval --suite retarget --json FILE``: retarget real CMU motion onto
robots written by others and onto our generated avatar; ours vs the copy baseline.

Sources: CMU clips ``08_01`` (walk) and ``75_17`` (medium sit, with ``sit`` labels ->
seat contact), converted to our 22-joint body by
:func:`ssomotion_ros.motion.datasets.load_cmu_dataset`.

Targets (each skipped with a reason in the JSON when its package is absent):

- ``deepmimic``: pybullet's DeepMimic humanoid (``pybullet_data/humanoid/humanoid.urdf``,
  PyPI ``pybullet``; capsule geometry, spherical joints, y up) with
  ``config/retarget/deepmimic_humanoid.yaml``;
- ``g1``: Unitree G1 29-DoF (``example-robot-data``, PyPI; mesh collision geometry);
- ``talos``: PAL TALOS (``talos_reduced.urdf`` from ``example-robot-data``; limbs named
  ``leg_left_<n>_link`` / ``arm_left_<n>_link``, mapped by the geometric fallback);
- ``avatar``: the avatar URDF we generate from ``default_skeleton()``, with cartoon
  proportions (arms x1.25, shins x0.8) so that copying rotations is not trivially exact.

Result keys: ``robots.<name>.{ours,copy}.<metric>`` (nested), the same flattened as
``<name>.ours.<metric>``, and the means over robots as ``ours.<metric>`` /
``copy.<metric>``; ``improvement.<metric>`` is copy minus ours for lower-is-better metrics
and ours minus copy for ``contact_preservation`` (positive = ours better);
``ours_beats_copy_everywhere`` says whether every metric of every robot is strictly
better (a tie at zero violations counts as not better, and is listed in ``ties``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

__all__ = ["SUITES", "run_suite", "robot_sources", "CLIPS", "AVATAR_SCALE"]

log = logging.getLogger(__name__)

#: CMU clips used as sources: stem -> (first frame, end frame) at 30 fps (two 30-frame
#: windows each: walking; sitting down onto the stool and sitting).
CLIPS: dict[str, tuple[int, int]] = {"08_01": (0, 60), "75_17": (10, 70)}
#: Body-part bone scales of the evaluation avatar (cartoon proportions).
AVATAR_SCALE: dict[str, float] = {"shoulder": 1.25, "elbow": 1.25, "knee": 0.8}
METRICS = ("keypair_error", "contact_preservation", "self_penetration_frames",
           "joint_limit_violations")  # fmt: skip
HIGHER_BETTER = {"contact_preservation"}


def _config_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "config" / "retarget"


def robot_sources() -> dict[str, dict]:
    """{name: {"urdf": path or None, "override": path or None, "skip": reason or None}}."""
    out: dict[str, dict] = {}
    try:
        import pybullet_data

        p = Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf"
        out["deepmimic"] = {"urdf": p, "override": _config_dir() / "deepmimic_humanoid.yaml"}
    except ImportError:
        out["deepmimic"] = {"skip": "PyPI package 'pybullet' not installed"}
    try:
        import sysconfig

        import cmeel  # noqa: F401  (example-robot-data installs under cmeel.prefix)

        base = Path(sysconfig.get_paths()["purelib"]) / "cmeel.prefix" / "share"
        robots = base / "example-robot-data" / "robots"
        for name, rel in (
            ("g1", "g1_description/urdf/g1_29dof_rev_1_0.urdf"),
            ("talos", "talos_data/robots/talos_reduced.urdf"),
        ):
            p = robots / rel
            out[name] = {"urdf": p, "override": None} if p.is_file() else {
                "skip": f"example-robot-data URDF not found at {p}"}  # fmt: skip
    except ImportError:
        for name in ("g1", "talos"):
            out[name] = {"skip": "PyPI package 'example-robot-data' not installed"}
    out["avatar"] = {"urdf": None, "override": None}
    return out


def _load(name: str, spec: dict):
    from ssomotion_ros.retarget.avatar import avatar_urdf
    from ssomotion_ros.retarget.mapping import auto_map
    from ssomotion_ros.retarget.urdf import load_urdf, load_urdf_string

    if spec.get("urdf") is None:
        robot = load_urdf_string(avatar_urdf(name="ssomotion_avatar_cartoon", scale=AVATAR_SCALE))
    else:
        robot = load_urdf(spec["urdf"])
    return robot, auto_map(robot, spec.get("override"))


def run_suite(
    clips: dict[str, tuple[int, int]] | None = None,
    robots: tuple[str, ...] | None = None,
    iterations: int = 100,
    device=None,
    progress: bool = True,
) -> dict:
    """Run the evaluation (module doc) and return the JSON-ready dict."""
    from tqdm import tqdm

    from ssomotion_ros.motion.datasets.cmu import load_cmu_dataset
    from ssomotion_ros.retarget.core import RetargetConfig, Retargeter, prepare_source
    from ssomotion_ros.retarget.metrics import evaluate

    t_start = time.perf_counter()
    clips = dict(CLIPS if clips is None else clips)
    srcs = load_cmu_dataset(names=list(clips), progress=False, reverse_getups=False)
    for c in srcs:
        a, b = clips[c.name]
        c.params, c.actions = c.params[a:b], c.actions[a:b]
    if not srcs:
        raise FileNotFoundError(f"none of the CMU clips {clips} found (../shared/data/mocap/cmu)")
    specs = robot_sources()
    names = [n for n in (robots or tuple(specs)) if n in specs]
    cfg = RetargetConfig(
        iterations=iterations, copy_iterations=iterations, device=device, progress=False
    )
    result: dict = {
        "robots": {}, "clips": {c.name: list(clips[c.name]) for c in srcs}, "skipped": {},
    }  # fmt: skip
    jobs = [(n, c) for n in names if "skip" not in specs[n] for c in srcs]
    for n in names:
        if "skip" in specs[n]:
            result["skipped"][n] = specs[n]["skip"]
    bar = tqdm(total=len(jobs), desc="retarget eval", disable=not progress)
    per: dict[str, dict[str, list]] = {}
    loaded: dict[str, tuple] = {}
    for n, clip in jobs:
        if n not in loaded:
            robot, mapping = _load(n, specs[n])
            loaded[n] = (robot, mapping, Retargeter(robot, mapping, cfg))
            result["robots"][n] = {
                "urdf": str(specs[n]["urdf"]) if specs[n].get("urdf") else "generated avatar",
                "links": robot.num_links, "dofs": robot.num_dofs,
                "capsules": len(robot.capsules),
                "collision_pairs": int(len(loaded[n][2].col_pairs)),
                "leg_length_ratio": round(loaded[n][2].scale, 4),
                "mapping": mapping.pairs(),
            }  # fmt: skip
        _, _, rt = loaded[n]
        bar.set_postfix_str(f"{n} {clip.name}")
        src = prepare_source(clip.params, clip.actions, config=cfg)
        cp = rt.copy(src)
        ours = rt.retarget(src, init=cp)
        for method, res in (("copy", cp), ("ours", ours)):
            m = evaluate(rt, src, res)
            per.setdefault(n, {}).setdefault(method, []).append((src.num_frames, m))
        bar.update(1)
    bar.close()
    flat: dict = {}
    means: dict[str, dict[str, list]] = {"ours": {}, "copy": {}}
    wins, ties = [], []
    for n, methods in per.items():
        entry = result["robots"][n]
        for method, lst in methods.items():
            w = np.array([f for f, _ in lst], np.float64)
            agg = {}
            for key in lst[0][1]:
                vals = np.array([m[key] for _, m in lst], np.float64)
                if key in ("contact_events", "joint_limit_violation_count"):
                    agg[key] = int(vals.sum())
                elif key == "max_penetration_depth":
                    agg[key] = float(vals.max())
                else:  # frame-weighted mean over clips
                    agg[key] = round(float((vals * w).sum() / w.sum()), 5)
            agg["seconds"] = round(float(sum(m["seconds"] for _, m in lst)), 3)
            agg["frames"] = int(w.sum())
            entry[method] = agg
            for key in METRICS:
                flat[f"{n}.{method}.{key}"] = agg[key]
                means[method].setdefault(key, []).append(agg[key])
        imp = {}
        for key in METRICS:
            o, c = entry["ours"][key], entry["copy"][key]
            d = (o - c) if key in HIGHER_BETTER else (c - o)
            imp[key] = round(d, 5)
            (wins if d > 0 else ties if d == 0 else []).append(f"{n}.{key}")
            if d < 0:
                log.warning("retarget eval: ours worse than copy on %s %s", n, key)
        entry["improvement"] = imp
    result.update(flat)
    for method in ("ours", "copy"):
        for key, vals in means[method].items():
            result[f"{method}.{key}"] = round(float(np.mean(vals)), 5)
    for key in METRICS:
        if f"ours.{key}" in result:
            o, c = result[f"ours.{key}"], result[f"copy.{key}"]
            result[f"improvement.{key}"] = round((o - c) if key in HIGHER_BETTER else (c - o), 5)
    total = len(per) * len(METRICS)
    result["ours_beats_copy_everywhere"] = len(wins) == total
    result["wins"] = len(wins)
    result["comparisons"] = total
    result["ties"] = ties
    result["iterations"] = iterations
    result["device"] = str(loaded[next(iter(loaded))][2].device) if loaded else "none"
    result["seconds_total"] = round(time.perf_counter() - t_start, 2)
    return result


def _suite(args) -> dict:
    """Real motion onto robots written by others and our avatar: ours vs the copy baseline."""
    import torch

    torch.set_num_threads(1)  # shared CPUs: one thread is fastest under load
    return run_suite(device=getattr(args, "device", None))


SUITES = {"retarget": _suite}
