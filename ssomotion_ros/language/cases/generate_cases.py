"""Generate the templated part of the language instruction set (``generated.jsonl``).

Templates x scenes: every expected answer is computed here from the scene geometry
with the documented rules (distances from the agent's (x, y); ties within the margins
below are ambiguous), independently of the parser. Deterministic (fixed seed).

Run: ``python -m ssomotion_ros.language.cases.generate_cases`` (rewrites the file).
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
#: Two candidates whose agent distances differ by less than this are a tie (metres).
SUPERLATIVE_MARGIN = 0.1
#: Two candidates whose distances to a reference differ by less than this tie (metres).
RELATION_MARGIN = 0.3
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth"]
ABSENT = ["piano", "guitar", "bathtub", "car", "elephant", "fireplace", "aquarium", "bicycle"]
NAMES = ["alice", "bob", "carol", "dave", "erin"]
WALK_VERBS = ["walk to", "go to", "head to", "move to", "walk over to", "go over to"]
CONNECTORS = [", then", " and then", ". after that,", ", after that", " then", ","]
NUMBERS = [("one", 1.0), ("two", 2.0), ("three", 3.0), ("1.5", 1.5), ("four", 4.0), ("2", 2.0)]
DIRS = {"forward": (1, 0), "back": (-1, 0), "to your left": (0, 1), "to your right": (0, -1)}


def _dist(a, b) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _pick(items: list, key, largest: bool, margin: float):
    """The key of the best item, or None when the runner-up is within ``margin``."""
    ordered = sorted(items, key=lambda it: key(it), reverse=largest)
    if len(ordered) > 1 and abs(key(ordered[0]) - key(ordered[1])) < margin:
        return None
    return ordered[0]["key"]


def _case(cid, text, scene, cat, expect, agent=(0.0, 0.0, 0.0)) -> dict:
    return {
        "id": cid,
        "text": text,
        "scene": scene,
        "agent": list(agent),
        "category": cat,
        "expect": expect,
    }


def _steps(*steps) -> dict:
    return {"steps": list(steps)}


def generate(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    scenes = yaml.safe_load((HERE / "scenes.yaml").read_text())
    out: list[dict] = []
    n = [0]

    def add(*args, **kw):
        n[0] += 1
        out.append(_case(f"g{n[0]:03d}", *args, **kw))

    origin = (0.0, 0.0)
    for scene, insts in sorted(scenes.items()):
        by_name = defaultdict(list)
        for inst in insts:
            by_name[inst["name"]].append(inst)
        unique = [v[0] for v in by_name.values() if len(v) == 1]
        multi = {k: v for k, v in by_name.items() if len(v) > 1}
        # walk to every uniquely named object
        for i, inst in enumerate(unique):
            verb = WALK_VERBS[(i + len(scene)) % len(WALK_VERBS)]
            add(
                f"{verb} the {inst['name']}",
                scene,
                "action",
                _steps({"action": "walk", "target": inst["key"]}),
            )
        # sit / lie on unique objects, or impossible
        for inst in unique:
            if "seat" in inst:
                add(
                    f"sit on the {inst['name']}",
                    scene,
                    "action",
                    _steps({"action": "sit", "target": inst["key"]}),
                )
            if "lie" in inst:
                add(
                    f"lie on the {inst['name']}",
                    scene,
                    "action",
                    _steps({"action": "lie", "target": inst["key"]}),
                )
        no_seat = [i for i in unique if "seat" not in i and i["size"][2] < 1.3]
        for inst in rng.sample(no_seat, min(2, len(no_seat))):
            add(f"sit on the {inst['name']}", scene, "reject_impossible", {"reject": "impossible"})
        # multi-instance classes: ambiguity, superlatives, ordinals, relations
        for name, group in sorted(multi.items()):
            add(f"walk to the {name}", scene, "reject_ambiguous", {"reject": "ambiguous"})
            for word, largest in (("nearest", False), ("farthest", True)):
                best = _pick(group, lambda it: _dist(it["xy"], origin), largest, SUPERLATIVE_MARGIN)
                exp = (
                    {"reject": "ambiguous"}
                    if best is None
                    else _steps({"action": "walk", "target": best})
                )
                cat = "reject_ambiguous" if best is None else "superlative"
                add(f"go to the {word} {name}", scene, cat, exp)
            ordered = sorted(group, key=lambda it: _dist(it["xy"], origin))
            for k in range(len(group) + 1):
                text = f"walk to the {ORDINALS[k]} {name}"
                if k == len(group):
                    add(text, scene, "reject_out_of_range", {"reject": "out_of_range"})
                    continue
                d = [_dist(it["xy"], origin) for it in ordered]
                tie = (k > 0 and d[k] - d[k - 1] < SUPERLATIVE_MARGIN) or (
                    k + 1 < len(d) and d[k + 1] - d[k] < SUPERLATIVE_MARGIN
                )
                exp = (
                    {"reject": "ambiguous"}
                    if tie
                    else _steps({"action": "walk", "target": ordered[k]["key"]})
                )
                add(text, scene, "reject_ambiguous" if tie else "ordinal", exp)
            refs = [u for u in unique if u["name"] not in (name,)]
            for ref in rng.sample(refs, min(3, len(refs))):
                best = _pick(
                    group, lambda it, ref=ref: _dist(it["xy"], ref["xy"]), False, RELATION_MARGIN
                )
                exp = (
                    {"reject": "ambiguous"}
                    if best is None
                    else _steps({"action": "walk", "target": best})
                )
                add(
                    f"go to the {name} next to the {ref['name']}",
                    scene,
                    "reject_ambiguous" if best is None else "relation",
                    exp,
                )
        # unknown objects
        for noun in rng.sample(ABSENT, 2):
            add(f"walk to the {noun}", scene, "reject_unknown", {"reject": "unknown_target"})
        # sequences: walk to A then sit on a seat B; walk to a seat and sit down
        seats = [u for u in unique if "seat" in u]
        for _ in range(2):
            if not seats:
                break
            a = rng.choice(unique)
            b = rng.choice(seats)
            conn = rng.choice(CONNECTORS)
            add(
                f"walk to the {a['name']}{conn} sit on the {b['name']}",
                scene,
                "sequence",
                _steps(
                    {"action": "walk", "target": a["key"]}, {"action": "sit", "target": b["key"]}
                ),
            )
        if seats:
            b = rng.choice(seats)
            add(
                f"go to the {b['name']} and sit down",
                scene,
                "sequence",
                _steps(
                    {"action": "walk", "target": b["key"]}, {"action": "sit", "target": b["key"]}
                ),
            )
        # addressing
        a = rng.choice(unique)
        who = rng.choice(NAMES)
        add(
            f"{who}: go to the {a['name']}",
            scene,
            "addressing",
            {"agent": who, "steps": [{"action": "walk", "target": a["key"]}]},
        )
        # turn towards an object from a random heading
        a = rng.choice(unique)
        yaw = rng.choice([0.0, 90.0, -90.0, 180.0])
        facing = math.degrees(math.atan2(a["xy"][1], a["xy"][0]))
        add(
            f"turn towards the {a['name']}",
            scene,
            "turn",
            _steps({"action": "turn", "target": a["key"], "facing": round(facing, 2)}),
            agent=(0.0, 0.0, yaw),
        )

    # free targets: number x direction x heading (scene-independent; use 'hall')
    combos = [(nw, nv, d, y) for nw, nv in NUMBERS for d in DIRS for y in (0.0, 90.0, -135.0)]
    for nw, nv, d, yaw in rng.sample(combos, 24):
        fx, fy = DIRS[d]
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        gx, gy = 1.0 + nv * (c * fx - s * fy), -1.0 + nv * (s * fx + c * fy)
        unit = "metre" if nv == 1.0 else rng.choice(["metres", "meters", "m"])
        text = rng.choice([f"walk {nw} {unit} {d}", f"move {nw} {unit} {d}", f"go {d} {nw} {unit}"])
        add(
            text,
            "hall",
            "free_target",
            _steps({"action": "walk", "target": None, "goal": [round(gx, 3), round(gy, 3)]}),
            agent=(1.0, -1.0, yaw),
        )
    # turns
    for word, delta in (("left", 90.0), ("right", -90.0), ("around", 180.0)):
        for yaw in (0.0, 90.0, -45.0):
            f = (yaw + delta + 180.0) % 360.0 - 180.0
            add(
                f"turn {word}",
                "living",
                "turn",
                _steps({"action": "turn", "facing": f}),
                agent=(0.0, 0.0, yaw),
            )
    # waits
    for words, secs in (("3", 3), ("ten", 10), ("two", 2), ("1.5", 1.5), ("twenty", 20)):
        add(f"wait {words} seconds", "office", "wait", _steps({"action": "wait", "duration": secs}))
    add("wait for one minute", "office", "wait", _steps({"action": "wait", "duration": 60}))
    # stop
    for text in ("stop", "stop now", "bob: stop"):
        exp = _steps({"action": "stop"})
        if text.startswith("bob"):
            exp["agent"] = "bob"
        add(text, "kitchen", "stop", exp)
    return out


def main() -> None:
    cases = generate()
    path = HERE / "generated.jsonl"
    with path.open("w") as f:
        for c in cases:
            f.write(json.dumps(c, sort_keys=True) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
