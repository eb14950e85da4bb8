"""``ssomotion bench synthesis``: how fast the path-following baseline streams motion.

For walk / sit / lie instructions in generated rooms it measures, per instruction:
instruction text -> grounded goal -> first streamed window (what a node can show), and
-> the whole motion (what a non-streaming synthesizer would deliver first: the peer).
Also the real-time factor (seconds of motion made per second of computing) and, as a
sanity check, the baseline's reference metrics (success radius 0.2 m for walks, contact
score, pelvis distance to the seat / bed for sit / lie).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

ROOMS = (
    ("a bedroom with a bed, a desk and a chair", 0),
    ("a living room with a sofa, two armchairs, a coffee table and a tv", 1),
    ("an office with two desks, two chairs and a bookshelf", 2),
)


def _instructions(model) -> list[str]:
    names = [i.name for i in model.instances()]
    furniture = [n for n in names if n not in ("door", "window", "wall", "floor", "ceiling")]
    out = [f"walk to the farthest {n.replace('_', ' ')}" for n in furniture[:2]]
    for cls in ("chair", "armchair", "sofa"):
        if cls in names:
            out.append(f"sit on the nearest {cls}")
            break
    for cls in ("bed", "sofa"):
        if cls in names:
            out.append(f"lie on the nearest {cls}")
            break
    return out


def run_benchmark(quick: bool = False, progress: bool = True) -> dict:
    """Run the measurements; returns the figures (see the module docstring)."""
    import torch
    from tqdm import tqdm

    from ssomotion_ros.eval.metrics import contact_score
    from ssomotion_ros.language import get_text_encoder, parse_and_ground
    from ssomotion_ros.synthesis.baseline import BaselineSynthesizer
    from ssomotion_ros.synthesis.scene_source import scene_model_from_prompt
    from ssomotion_ros.synthesis.types import BodyState, SynthesisError

    torch.set_num_threads(1)
    enc = get_text_encoder()
    synth = BaselineSynthesizer()
    t0 = time.perf_counter()
    _ = synth.library
    library_s = time.perf_counter() - t0
    rows = []
    rooms = ROOMS[:1] if quick else ROOMS
    for prompt, seed in tqdm(rooms, desc="rooms", disable=not progress):
        model, scene = scene_model_from_prompt(prompt, seed)
        synth.grid(model)  # the map's grid is built once per map version, not per request
        parse_and_ground("walk to the door", model.instances(), scene.start_pose(), enc)
        for text in _instructions(model):
            start = BodyState(*scene.start_pose())
            t0 = time.perf_counter()
            plan = parse_and_ground(text, model.instances(), start, enc)
            if not plan.ok:
                rows.append({"room": prompt, "text": text, "error": plan.describe()})
                continue
            goal = plan.goals[0]
            try:
                stream = synth.stream(goal, model, start)
                first = next(stream)
                t_first = time.perf_counter() - t0
                wins = [first, *stream]
            except SynthesisError as exc:
                rows.append({"room": prompt, "text": text, "error": str(exc)})
                continue
            t_all = time.perf_counter() - t0
            joints = np.concatenate([w.joints for w in wins])
            frames = len(joints)
            d = float(np.hypot(*(joints[-1, 0, :2] - goal.position[:2])))
            rows.append(
                {
                    "room": prompt,
                    "text": text,
                    "action": goal.action,
                    "frames": frames,
                    "motion_s": frames / 30.0,
                    "first_window_s": t_first,
                    "whole_motion_s": t_all,
                    "realtime_factor": (frames / 30.0) / max(t_all, 1e-9),
                    "final_goal_distance_m": d,
                    "success": bool(d < 0.2),
                    "contact": float(contact_score(joints)) if goal.action == "walk" else None,
                }
            )
    ok = [r for r in rows if "error" not in r]
    firsts = [r["first_window_s"] for r in ok]
    wholes = [r["whole_motion_s"] for r in ok]
    walks = [r for r in ok if r["action"] == "walk"]
    return {
        "benchmark": "synthesis",
        "synthesizer": "baseline (CMU clips along planned paths)",
        "library_load_s": library_s,
        "instructions": len(rows),
        "failed": len(rows) - len(ok),
        "first_window_s_median": statistics.median(firsts) if firsts else None,
        "first_window_s_max": max(firsts) if firsts else None,
        "peer_whole_motion_s_median": statistics.median(wholes) if wholes else None,
        "ratio_whole_over_first_median": (
            statistics.median([w / f for w, f in zip(wholes, firsts)]) if firsts else None
        ),
        "realtime_factor_median": (
            statistics.median([r["realtime_factor"] for r in ok]) if ok else None
        ),
        "success_rate": sum(r["success"] for r in ok) / len(ok) if ok else None,
        "walk_contact_mean": (float(np.mean([r["contact"] for r in walks])) if walks else None),
        "rows": rows,
    }


def _bench(args) -> dict:
    return run_benchmark(quick=bool(getattr(args, "quick", False)))


BENCHMARKS = {"synthesis": _bench}
