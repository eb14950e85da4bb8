"""Evaluation of synthesis in scenes: ``ssomotion eval --suite locomotion|interaction|all``.

Every method runs the same cases of the scenes library's benchmark suites
(:func:`ssomotion_ros.scenes.suites.build_suite`) through the same
:class:`~ssomotion_ros.synthesis.types.Synthesizer` protocol, and is measured with the
reference metric definitions of :mod:`ssomotion_ros.eval.metrics`:

- ``learned``: :class:`~ssomotion_ros.synthesis.learned.LearnedSynthesizer` with the
  shipped default checkpoint; N samples per case (``--samples``, default 3) sampled as
  one batch; best-of-N per metric (as the reference reports) and the mean over samples.
- ``baseline_copy``: the path-following copy baseline
  (:class:`~ssomotion_ros.synthesis.baseline.BaselineSynthesizer`); deterministic, so
  one sample (its best and mean coincide).
- ``reference``: the learned generator with the checkpoint given by ``--checkpoint`` (the
  reference-size model), when given.

Scene model: each case's generated room is fused into a
:class:`~ssomotion_ros.sso.scene.SceneModel` (as a mapper would), which the methods plan
and synthesize in. Metrics use the ground truth: an obstacle SDF of the room's solid
occupancy without floor/ceiling (:class:`~ssomotion_ros.synthesis.learned.ObstacleSDF`),
body points = the capsule axes of :func:`ssomotion_ros.body.collision.body_points` with
their radii subtracted (a point penetrates where the SDF is below its radius), walkable
floor = the SSO's floor cells at body radius 0, floor heights from the SSO.

Latency: for every case and method one extra single-agent stream is timed from the call
to its first window (planning included; one-off loading excluded by a warm-up), plus the
time to parse and ground the case's instruction on the fused scene
(``instruction_to_first_window_s``, the goal's figure).

Extra suite ``synthesis_quick``: one locomotion and one interaction case (used by tests).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Goals of issue 7 (on the suites, default checkpoint, CPU).
GOALS = {
    "success": (">=", 0.95),
    "contact": (">=", 0.95),
    "non_penetration": (">=", 0.98),
    "first_window_s": ("<=", 0.5),
}
LOCOMOTION_KEYS = (
    "success",
    "contact",
    "non_penetration",
    "non_penetration_feet",
    "foot_skating",
    "min_distance",
    "last_distance",
    "time_to_goal",
)
INTERACTION_KEYS = (
    "penetration_mean",
    "penetration_max",
    "goal_distance",
    "contact",
    "non_penetration",
    "foot_skating",
)


@dataclass
class EvalOptions:
    """Settings of one evaluation run."""

    #: samples per case for the learned methods (best-of-N).
    samples: int = 3
    #: seed of the learned samplers.
    seed: int = 0
    #: checkpoint of the ``learned`` method ('' = shipped default).
    learned_checkpoint: str = ""
    #: checkpoint of the ``reference`` method ('' = not run).
    reference_checkpoint: str = ""
    #: folder for per-case PNGs ('' = none).
    plots: str = ""
    #: torch device ('' = auto).
    device: str = ""
    #: keep only the first N cases of each suite (0 = all).
    limit: int = 0
    #: capsule points per bone for the penetration metrics.
    points_per_bone: int = 3
    #: run the baseline.
    baseline: bool = True
    #: show a progress bar.
    progress: bool = True
    #: extra LearnedConfig fields for the learned methods.
    learned_overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")


# ------------------------------------------------------------------ scene products
class _CaseScene:
    """SceneModel + ground-truth metric queries of one generated room (shared by cases)."""

    def __init__(self, scene, points_per_bone: int):
        from ssomotion_ros.body.collision import body_points
        from ssomotion_ros.eval.metrics import walkable_query
        from ssomotion_ros.synthesis.learned import ObstacleSDF
        from ssomotion_ros.synthesis.scene_source import scene_model_from_generated

        self.scene = scene
        self.model = scene_model_from_generated(scene)
        occ = scene.occupancy(0.04, solid=True)
        self.sdf = ObstacleSDF.from_semantic_occupancy(occ, skip_labels=_floor_ceiling_ids(scene))
        self.footprint_grid = self.sdf.grid < 0
        free, origin, res = self.model.walkable_grid(0.0)
        self.walkable = walkable_query(free, origin, res)
        self.ppb = points_per_bone
        _, self.radii = body_points(np.zeros((22, 3)), n_per_bone=points_per_bone)

    def body_points(self, joints: np.ndarray) -> np.ndarray:
        from ssomotion_ros.body.collision import body_points

        pts, _ = body_points(joints, n_per_bone=self.ppb)
        return pts

    def sdf_minus_radius(self, T: int):
        """SDF query for (T*P, 3) capsule axis points that subtracts each point's radius."""
        r = np.tile(self.radii, T)

        def q(pts):
            return self.sdf(pts) - r

        return q


_PARSER_WARM = False


def _instruction_seconds(cs: _CaseScene, case) -> float:
    """Seconds to parse and ground the case's instruction on the fused scene (the language
    layer's ``parse_and_ground``; the encoder is loaded by an untimed first call)."""
    global _PARSER_WARM
    from ssomotion_ros.language import parse_and_ground

    insts = cs.model.instances()
    state = tuple(float(v) for v in case.start)
    if not _PARSER_WARM:
        parse_and_ground(case.instruction, insts, state)
        _PARSER_WARM = True
    t0 = time.perf_counter()
    parse_and_ground(case.instruction, insts, state)
    return time.perf_counter() - t0


def _floor_ceiling_ids(scene) -> tuple[int, ...]:
    ids = []
    for name in ("floor", "ceiling"):
        try:
            ids.append(int(scene.labels.id_of(name)))
        except (KeyError, ValueError):
            pass
    return tuple(ids)


def _goal_of(case):
    from ssomotion_ros.language.goal import Goal

    if case.action == "walk":
        pos = np.r_[np.asarray(case.goal, np.float64)[:2], 0.0]
        return Goal("walk", None, None, pos, 0.2, None, np.zeros(3), 1.0, case.instruction)
    t = case.target
    return Goal(case.action, None, None, np.asarray(t.position, np.float64), 0.2,
                float(t.facing), np.zeros(3), 1.0, case.instruction)  # fmt: skip


def _metric_goal(case) -> np.ndarray:
    if case.action == "walk":
        return np.asarray(case.goal, np.float64)[:2]
    return np.asarray(case.target.position, np.float64)


# ------------------------------------------------------------------ one case
def _sample_metrics(cs: _CaseScene, joints: np.ndarray, case) -> tuple[dict, np.ndarray]:
    from ssomotion_ros.eval.metrics import penetrating_frames, trajectory_metrics

    T = len(joints)
    if T < 2:
        joints = np.concatenate([joints, joints])
        T = 2
    pts = cs.body_points(joints)
    q = cs.sdf_minus_radius(T)
    m = trajectory_metrics(
        joints,
        _metric_goal(case),
        floor_height=cs.model.floor_height,
        sdf=q,
        walkable=cs.walkable,
        body_points=pts,
        interaction=case.action != "walk",
    )
    pen = penetrating_frames(pts, sdf=q)
    return m, pen


def _collect(stream_steps, n: int) -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
    """Drain a batched stream: per agent (T, 22, 3) joints, final note, planned path."""
    parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    notes = [""] * n
    paths = [np.zeros((0, 2))] * n
    for step in stream_steps:
        for i, w in enumerate(step):
            if w is None:
                continue
            parts[i].append(w.joints)
            paths[i] = w.planned_path
            if w.final:
                notes[i] = w.note
    return [np.concatenate(p) if p else np.zeros((0, 22, 3)) for p in parts], notes, paths


def _run_method(method: str, syn, case, cs: _CaseScene, samples: int) -> dict:
    from ssomotion_ros.synthesis.types import BodyState, SynthesisError

    goal = _goal_of(case)
    state = BodyState(*[float(v) for v in case.start])
    out: dict = {"samples": [], "notes": [], "error": ""}
    # latency: one single-agent stream, call -> first window (planning included)
    t0 = time.perf_counter()
    try:
        it = syn.stream(goal, cs.model, state)
        next(iter(it))
        out["first_window_s"] = time.perf_counter() - t0
        if hasattr(it, "close"):
            it.close()
    except SynthesisError as e:
        out["error"] = str(e)
        out["first_window_s"] = math.nan
        return out
    if hasattr(syn, "stream_batch"):
        steps = syn.stream_batch([goal] * samples, cs.model, [state] * samples)
        joints, notes, paths = _collect(steps, samples)
    else:
        joints, notes, paths = _collect(([w] for w in syn.stream(goal, cs.model, state)), 1)
    out["notes"] = notes
    out["planned_path"] = paths[0]
    out["joints"] = joints
    for j in joints:
        m, pen = _sample_metrics(cs, j, case)
        m["frames"] = float(len(j))
        out["samples"].append(m)
        out.setdefault("penetrating", []).append(pen)
    return out


# ------------------------------------------------------------------ suites
def _methods(opts: EvalOptions) -> dict:
    from ssomotion_ros.synthesis.learned import LearnedConfig, LearnedSynthesizer

    methods = {}
    cfg = LearnedConfig(checkpoint=opts.learned_checkpoint, device=opts.device, seed=opts.seed,
                        **opts.learned_overrides)  # fmt: skip
    methods["learned"] = LearnedSynthesizer(cfg)
    if opts.baseline:
        from ssomotion_ros.synthesis.baseline import BaselineSynthesizer

        methods["baseline_copy"] = BaselineSynthesizer()
    if opts.reference_checkpoint:
        rcfg = LearnedConfig(checkpoint=opts.reference_checkpoint, device=opts.device,
                             seed=opts.seed, **opts.learned_overrides)  # fmt: skip
        methods["reference"] = LearnedSynthesizer(rcfg)
    return methods


def evaluate_cases(cases: list, opts: EvalOptions, label: str = "") -> dict:
    """Run every method on ``cases`` (SuiteCase list) and aggregate.

    Returns ``{"methods": {name: {"best", "mean", "first_window_s", "failures",
    "per_scene": [...]}}, "cases": len}``.
    """
    from tqdm import tqdm

    from ssomotion_ros.eval.metrics import aggregate_samples, aggregate_suite

    methods = _methods(opts)
    scenes: dict[int, _CaseScene] = {}
    per_method: dict[str, dict] = {
        m: {"per_scene": [], "queries": [], "latency": [], "failures": []} for m in methods
    }
    bar = tqdm(total=len(cases) * len(methods), desc=f"eval {label}".strip(),
               disable=not opts.progress)  # fmt: skip
    for case in cases:
        key = id(case.scene)
        if key not in scenes:
            scenes[key] = _CaseScene(case.scene, opts.points_per_bone)
        cs = scenes[key]
        instr_s = _instruction_seconds(cs, case)
        plot_trajs, plot_pen, planned = {}, {}, None
        for name, syn in methods.items():
            if hasattr(syn, "prepare"):
                syn.prepare(cs.model)
            n = opts.samples if name != "baseline_copy" else 1
            res = _run_method(name, syn, case, cs, n)
            pm = per_method[name]
            row = {"case": case.name, "instruction": case.instruction, "action": case.action}
            if res["error"]:
                row["error"] = res["error"]
                pm["failures"].append({"case": case.name, "reason": res["error"]})
                # a failed goal counts as a failed sample for the goal metrics
                fail = {"success": 0.0} if case.action == "walk" else {}
                pm["queries"].append([fail] if fail else [])
            else:
                agg = aggregate_samples(res["samples"])
                row.update({"best": agg["best"], "mean": agg["mean"], "notes": res["notes"]})
                row["first_window_s"] = res["first_window_s"]
                row["instruction_s"] = instr_s
                row["instruction_to_first_window_s"] = instr_s + res["first_window_s"]
                pm["queries"].append(res["samples"])
                pm["latency"].append(res["first_window_s"])
                pm.setdefault("latency_total", []).append(instr_s + res["first_window_s"])
                plot_trajs[name] = [j[:, 0] for j in res["joints"]]
                plot_pen[name] = res["penetrating"]
                if planned is None and len(res["planned_path"]):
                    planned = res["planned_path"]
            pm["per_scene"].append(row)
            bar.update(1)
        if opts.plots:
            from ssomotion_ros.eval.plots import plot_case

            o = cs.sdf.origin
            plot_case(
                Path(opts.plots) / f"{case.name.replace('/', '_')}.png",
                cs.footprint_grid[:, :, int(0.1 / cs.sdf.resolution) :].any(2),
                o[:2],
                cs.sdf.resolution,
                plot_trajs,
                plot_pen,
                planned,
                case.start[:2],
                _metric_goal(case)[:2],
                title=f"{case.name}: {case.instruction}",
            )
    bar.close()
    out: dict = {"cases": len(cases), "methods": {}}
    for name, pm in per_method.items():
        queries = [q for q in pm["queries"] if q]
        agg = aggregate_suite(queries) if queries else {"best": {}, "mean": {}}
        lat = np.asarray(pm["latency"], np.float64)
        tot = np.asarray(pm.get("latency_total", []), np.float64)
        out["methods"][name] = {
            "best": agg["best"],
            "mean": agg["mean"],
            "samples": opts.samples if name != "baseline_copy" else 1,
            "first_window_s": {
                "mean": float(np.nanmean(lat)) if len(lat) else math.nan,
                "max": float(np.nanmax(lat)) if len(lat) else math.nan,
                "median": float(np.nanmedian(lat)) if len(lat) else math.nan,
            },
            "instruction_to_first_window_s": {
                "mean": float(np.nanmean(tot)) if len(tot) else math.nan,
                "max": float(np.nanmax(tot)) if len(tot) else math.nan,
                "median": float(np.nanmedian(tot)) if len(tot) else math.nan,
            },
            "failures": pm["failures"],
            "per_scene": pm["per_scene"],
        }
    return out


def _side_by_side(res: dict, keys) -> dict:
    return {k: {m: v["best"].get(k, math.nan) for m, v in res["methods"].items()} for k in keys}


def _goals(loco: dict | None, inter: dict | None) -> dict:
    """Pass/fail of the issue's goals per method (best-of-N numbers)."""
    out: dict = {}
    src = loco or inter
    for m in src["methods"]:
        g: dict = {}
        if loco is not None:
            b = loco["methods"][m]["best"]
            for k in ("success", "contact", "non_penetration"):
                op, thr = GOALS[k]
                v = b.get(k, math.nan)
                g[f"{k} {op} {thr}"] = bool(v >= thr) if np.isfinite(v) else False
        lat = [
            r["methods"][m]["instruction_to_first_window_s"]["max"]
            for r in (loco, inter)
            if r is not None
        ]
        g["instruction_to_first_window_s <= 0.5 (max over cases)"] = bool(np.nanmax(lat) <= 0.5)
        if inter is not None and "baseline_copy" in inter["methods"] and m != "baseline_copy":
            mine = inter["methods"][m]["best"].get("penetration_mean", math.nan)
            base = inter["methods"]["baseline_copy"]["best"].get("penetration_mean", math.nan)
            g["sit/lie penetration_mean < baseline_copy"] = bool(mine < base)
        out[m] = g
    return out


def _clean(x):
    """JSON-safe: NaN/inf -> None, numpy -> python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def run_suite(name: str, opts: EvalOptions) -> dict:
    """Run ``locomotion``, ``interaction``, ``all`` or ``synthesis_quick``; JSON-safe dict.

    Top level: the learned model's best-of-N headline numbers (locomotion: ``success``,
    ``contact``, ``non_penetration``; interaction: ``penetration_mean``,
    ``penetration_max``, ``goal_distance``), ``table`` (every method side by side),
    ``goals`` (pass/fail per method), ``locomotion`` / ``interaction`` (full results with
    per-scene tables), and run facts.
    """
    from ssomotion_ros.scenes.suites import build_suite

    t0 = time.perf_counter()
    parts = {
        "locomotion": ["locomotion"],
        "interaction": ["interaction"],
        "all": ["locomotion", "interaction"],
        "synthesis_quick": ["locomotion", "interaction"],
    }
    if name not in parts:
        raise ValueError(f"unknown synthesis suite {name!r}; use one of {', '.join(parts)}")
    limit = 1 if name == "synthesis_quick" else opts.limit
    results: dict = {}
    for part in parts[name]:
        cases = build_suite(part)
        if limit:
            cases = cases[:limit]
        results[part] = evaluate_cases(cases, opts, part)
    loco, inter = results.get("locomotion"), results.get("interaction")
    out: dict = {"suite": name, "samples": opts.samples, "seed": opts.seed}
    table: dict = {}
    if loco is not None:
        lb = loco["methods"]["learned"]["best"]
        for k in ("success", "contact", "non_penetration"):
            out[k] = lb.get(k, math.nan)
        table["locomotion"] = _side_by_side(loco, LOCOMOTION_KEYS)
        out["locomotion"] = loco
    if inter is not None:
        ib = inter["methods"]["learned"]["best"]
        for k in ("penetration_mean", "penetration_max", "goal_distance"):
            out[k] = ib.get(k, math.nan)
        table["interaction"] = _side_by_side(inter, INTERACTION_KEYS)
        out["interaction"] = inter
    lat = {}
    for m in (loco or inter)["methods"]:
        v = [r["methods"][m]["first_window_s"]["max"] for r in (loco, inter) if r is not None]
        lat[m] = float(np.nanmax(v)) if np.isfinite(v).any() else math.nan
    table["first_window_s_max"] = lat
    out["first_window_s"] = lat.get("learned", math.nan)
    tot = {}
    for m in (loco or inter)["methods"]:
        v = [
            r["methods"][m]["instruction_to_first_window_s"]["max"]
            for r in (loco, inter)
            if r is not None
        ]
        tot[m] = float(np.nanmax(v)) if np.isfinite(v).any() else math.nan
    table["instruction_to_first_window_s_max"] = tot
    out["instruction_to_first_window_s"] = tot.get("learned", math.nan)
    out["table"] = table
    out["goals"] = _goals(loco, inter)
    out["checkpoints"] = {
        "learned": opts.learned_checkpoint or "default",
        "reference": opts.reference_checkpoint or None,
    }
    out["wall_s"] = time.perf_counter() - t0
    return _clean(out)


def _options(args) -> EvalOptions:
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    ck = getattr(args, "checkpoint", None)
    plots = getattr(args, "plots", None)
    return EvalOptions(
        samples=getattr(args, "samples", None) or 3,
        seed=getattr(args, "seed", 0) or 0,
        reference_checkpoint=str(ck) if ck else "",
        plots=str(plots) if plots else "",
        device=getattr(args, "device", None) or "",
        limit=2 if getattr(args, "quick", False) else 0,
    )


_SUITE_DOCS = {
    "locomotion": "Walks through the 12 locomotion scenes: success, contact, non-penetration.",
    "interaction": "Sit / lie on the 18 interaction scenes: penetration, goal distance.",
    "all": "locomotion and interaction in one run.",
    "synthesis_quick": "One locomotion and one interaction case (about a minute).",
}


def _suite(name):
    def fn(args) -> dict:
        return run_suite(name, _options(args))

    fn.__doc__ = _SUITE_DOCS[name]
    return fn


#: Suites for ``ssomotion eval`` (see :data:`ssomotion_ros.cli.commands.eval.PROVIDERS`).
SUITES = {
    "locomotion": _suite("locomotion"),
    "interaction": _suite("interaction"),
    "all": _suite("all"),
    "synthesis_quick": _suite("synthesis_quick"),
}
