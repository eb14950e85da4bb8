"""Language evaluation suite: ``ssomotion eval --suite language --json FILE``.

Runs the instruction set kept in ``ssomotion_ros/language/cases/`` (hand-written dev
cases, held-out paraphrases, and template-generated cases) through
:func:`parse_and_ground` on explicit scenes (``cases/scenes.yaml``) and reports
accuracy overall, per split and per category, plus grounding time per instruction.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import yaml

from ssomotion_ros.sso.types import Affordance, SceneInstance

log = logging.getLogger(__name__)

CASES_DIR = Path(__file__).resolve().parent / "cases"
#: Case files and the split each belongs to.
CASE_FILES: dict[str, str] = {
    "handwritten.yaml": "dev",
    "generated.jsonl": "generated",
    "heldout.yaml": "heldout",
    "heldout2.yaml": "heldout",
    "heldout3.yaml": "heldout",
    "heldout4.yaml": "heldout",
}
#: Default tolerance on free-target goal positions (metres) and facings (degrees).
GOAL_TOL_M = 0.25
FACING_TOL_DEG = 5.0


def build_scene(spec: list[dict]) -> tuple[list[SceneInstance], dict[str, int]]:
    """SceneInstances from a scene spec of ``scenes.yaml``.

    spec: list of {key, name, xy: [x, y] metres, size: [sx, sy, sz] metres (before yaw),
        yaw: degrees, seat: metres?, lie: metres?} in the map frame; boxes stand on z=0.
    Returns (instances, key -> instance_id). Instance ids are 1-based in spec order;
    ``seat``/``lie`` become "sit"/"lie" affordances at the box centre at that height,
    facing the object's yaw.
    """
    names = sorted({o["name"] for o in spec})
    instances: list[SceneInstance] = []
    keys: dict[str, int] = {}
    for idx, o in enumerate(spec):
        if o["key"] in keys:
            raise ValueError(f"duplicate instance key {o['key']!r} in scene spec")
        x, y = (float(v) for v in o["xy"])
        sx, sy, sz = (float(v) for v in o["size"])
        yaw = math.radians(float(o.get("yaw", 0.0)))
        c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
        hx, hy = (c * sx + s * sy) / 2.0, (s * sx + c * sy) / 2.0
        affs = []
        for kind, field_name in (("sit", "seat"), ("lie", "lie")):
            if field_name in o:
                affs.append(
                    Affordance(
                        kind=kind,
                        position=np.array([x, y, float(o[field_name])]),
                        facing=yaw,
                        extent=np.array([sx / 2.0, sy / 2.0]),
                    )
                )
        inst = SceneInstance(
            instance_id=idx + 1,
            label=names.index(o["name"]),
            name=o["name"],
            centroid=np.array([x, y, sz / 2.0]),
            bbox_min=np.array([x - hx, y - hy, 0.0]),
            bbox_max=np.array([x + hx, y + hy, sz]),
            yaw=yaw,
            affordances=affs,
        )
        instances.append(inst)
        keys[o["key"]] = inst.instance_id
    return instances, keys


def load_scenes(path: Path | None = None) -> dict[str, list[dict]]:
    return yaml.safe_load((path or CASES_DIR / "scenes.yaml").read_text())


def load_cases(cases_dir: Path | None = None) -> list[dict]:
    """All cases, each with its ``split`` ("dev", "generated" or "heldout")."""
    d = cases_dir or CASES_DIR
    out = []
    for fname, split in CASE_FILES.items():
        path = d / fname
        if fname.endswith(".jsonl"):
            items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            items = yaml.safe_load(path.read_text())
        for c in items:
            c = dict(c)
            c["split"] = split
            c["file"] = fname
            out.append(c)
    ids = [c["id"] for c in out]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate case ids in the instruction set")
    return out


def _angle_diff_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def check_case(case: dict, plan, keys: dict[str, int]) -> tuple[bool, str]:
    """(passed, why not) for one case's expectation against a Plan."""
    exp = case["expect"]
    if "reject" in exp:
        if plan.rejection is None:
            return False, f"expected rejection {exp['reject']}, got: {plan.describe()}"
        if plan.rejection.code != exp["reject"]:
            return (
                False,
                f"expected {exp['reject']}, got {plan.rejection.code}: {plan.rejection.reason}",
            )
        return True, ""
    if plan.rejection is not None:
        return False, f"rejected ({plan.rejection.code}): {plan.rejection.reason}"
    if exp.get("agent") != plan.agent:
        return False, f"agent {plan.agent!r} != expected {exp.get('agent')!r}"
    steps = exp["steps"]
    if len(steps) != len(plan.goals):
        return False, f"{len(plan.goals)} steps != expected {len(steps)}: {plan.describe()}"
    for k, (s, g) in enumerate(zip(steps, plan.goals)):
        if s["action"] != g.action:
            return False, f"step {k}: action {g.action} != {s['action']}"
        if "target" in s:
            want = None if s["target"] is None else keys[s["target"]]
            if want != g.target_id:
                return (
                    False,
                    f"step {k}: target {g.target_name}#{g.target_id} != {s['target']}#{want}",
                )
        if "goal" in s:
            tol = float(s.get("tol", GOAL_TOL_M))
            d = math.hypot(g.position[0] - s["goal"][0], g.position[1] - s["goal"][1])
            if d > tol:
                return False, f"step {k}: goal {g.position[:2].round(2).tolist()} is {d:.2f} m off"
        if "facing" in s:
            if g.facing is None:
                return False, f"step {k}: no facing, expected {s['facing']}"
            if _angle_diff_deg(math.degrees(g.facing), float(s["facing"])) > FACING_TOL_DEG:
                return False, f"step {k}: facing {math.degrees(g.facing):.1f} != {s['facing']}"
        if "duration" in s and (
            g.duration_s is None or abs(g.duration_s - float(s["duration"])) > 1e-6
        ):
            return False, f"step {k}: duration {g.duration_s} != {s['duration']}"
    return True, ""


def _acc(rows: list[dict]) -> float:
    return float(sum(r["passed"] for r in rows) / len(rows)) if rows else float("nan")


def run_language_suite(args=None, encoder=None) -> dict:
    """Instructions -> goals on 473 cases: accuracy per split and per category."""
    from ssomotion_ros.language.encoders import get_text_encoder
    from ssomotion_ros.language.instruction import parse_and_ground

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    encoder = encoder or get_text_encoder()
    scenes = {k: build_scene(v) for k, v in load_scenes().items()}
    cases = load_cases()
    # warm the encoder on every scene's label names (done once per scene in practice)
    for insts, _ in scenes.values():
        encoder.encode(sorted({i.name for i in insts}))
    rows = []
    times = []
    try:
        from tqdm import tqdm

        it = tqdm(cases, desc="language cases", leave=False)
    except ImportError:  # pragma: no cover
        it = cases
    for case in it:
        insts, keys = scenes[case["scene"]]
        ax, ay, ayaw = case.get("agent", [0.0, 0.0, 0.0])
        t0 = time.perf_counter()
        plan = parse_and_ground(case["text"], insts, (ax, ay, math.radians(ayaw)), encoder)
        times.append((time.perf_counter() - t0) * 1000.0)
        passed, why = check_case(case, plan, keys)
        rows.append(
            {
                "id": case["id"],
                "split": case["split"],
                "file": case["file"],
                "category": case["category"],
                "text": case["text"],
                "passed": passed,
                "why": why,
                "got": plan.describe(),
            }
        )
    per_cat = {}
    for cat in sorted({r["category"] for r in rows}):
        sub = [r for r in rows if r["category"] == cat]
        per_cat[cat] = {"accuracy": _acc(sub), "cases": len(sub)}
    dev = [r for r in rows if r["split"] != "heldout"]
    held = [r for r in rows if r["split"] == "heldout"]
    t = np.asarray(times)
    return {
        "accuracy": _acc(rows),
        "cases": len(rows),
        "dev_accuracy": _acc(dev),
        "dev_cases": len(dev),
        "handwritten_accuracy": _acc([r for r in rows if r["split"] == "dev"]),
        "generated_accuracy": _acc([r for r in rows if r["split"] == "generated"]),
        "heldout_accuracy": _acc(held),
        "heldout_cases": len(held),
        "per_file": {
            f: {
                "accuracy": _acc([r for r in rows if r["file"] == f]),
                "cases": sum(r["file"] == f for r in rows),
            }
            for f in CASE_FILES
        },  # fmt: skip
        "rejection_cases": sum(1 for c in cases if "reject" in c["expect"]),
        "per_category": per_cat,
        "ground_ms_mean": float(t.mean()),
        "ground_ms_p95": float(np.percentile(t, 95)),
        "ground_ms_max": float(t.max()),
        "encoder": encoder.name,
        "failures": [r for r in rows if not r["passed"]],
    }


SUITES = {"language": run_language_suite}
