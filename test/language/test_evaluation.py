"""The language instruction set and its evaluation suite."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np

from ssomotion_ros.language.cases.generate_cases import generate
from ssomotion_ros.language.evaluation import (
    CASES_DIR,
    build_scene,
    check_case,
    load_cases,
    run_language_suite,
)
from ssomotion_ros.language.goal import Goal, Plan, Rejection

CONSTRUCTS = {
    "action", "paraphrase", "ordinal", "superlative", "relation", "free_target", "sequence",
    "addressing", "stop", "wait", "turn", "reject_unknown", "reject_ambiguous",
    "reject_impossible", "reject_empty", "reject_not_understood", "reject_out_of_range",
}  # fmt: skip


def test_case_set_size_and_coverage():
    cases = load_cases()
    assert len(cases) >= 150
    cats = Counter(c["category"] for c in cases)
    assert CONSTRUCTS <= set(cats), CONSTRUCTS - set(cats)
    assert Counter(c["split"] for c in cases)["heldout"] >= 30


def test_generated_file_is_reproducible():
    lines = (CASES_DIR / "generated.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == json.loads(json.dumps(generate()))


def test_build_scene_geometry():
    spec = [
        {"key": "a", "name": "sofa", "xy": [1, 2], "size": [2.0, 1.0, 0.8], "yaw": 90,
         "seat": 0.45, "lie": 0.45},
        {"key": "b", "name": "lamp", "xy": [0, 0], "size": [0.2, 0.2, 1.5]},
    ]  # fmt: skip
    insts, keys = build_scene(spec)
    assert keys == {"a": 1, "b": 2}
    a = insts[0]
    # rotated by 90 deg: x extent 1.0, y extent 2.0
    np.testing.assert_allclose(a.bbox_min, [0.5, 1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(a.bbox_max, [1.5, 3.0, 0.8], atol=1e-9)
    assert [f.kind for f in a.affordances] == ["sit", "lie"]
    assert a.affordances[0].facing == math.pi / 2
    assert insts[1].affordances == []


def test_check_case_grades():
    plan = Plan(
        text="x", goals=[Goal("walk", 3, "door", np.zeros(3), 0.2, 0.0, np.zeros(3), 1, "x")]
    )
    keys = {"door": 3, "sofa": 4}
    assert check_case({"expect": {"steps": [{"action": "walk", "target": "door"}]}}, plan, keys)[0]
    assert not check_case(
        {"expect": {"steps": [{"action": "walk", "target": "sofa"}]}}, plan, keys
    )[0]
    assert not check_case({"expect": {"reject": "ambiguous"}}, plan, keys)[0]
    rej = Plan(text="x", rejection=Rejection("ambiguous", "2 chairs match"))
    assert check_case({"expect": {"reject": "ambiguous"}}, rej, keys)[0]
    assert not check_case({"expect": {"reject": "impossible"}}, rej, keys)[0]


def test_suite_meets_goal(encoder):
    r = run_language_suite(encoder=encoder)
    assert r["cases"] >= 150
    assert r["accuracy"] >= 0.95, [f["id"] + ": " + f["why"] for f in r["failures"]]
    assert set(r["per_category"]) >= CONSTRUCTS
    assert 0.0 <= r["heldout_accuracy"] <= 1.0 and r["heldout_cases"] >= 30
    assert r["ground_ms_p95"] > 0.0  # speed is checked by `ssomotion bench language`
