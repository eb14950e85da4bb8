"""The synthesis evaluation harness on its quick suite (one locomotion and one interaction
case): documented JSON keys, methods side by side, goals, plots, CLI registration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthesis_helpers import write_tiny_checkpoint

CMU = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocap" / "cmu"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"))


def test_suites_are_registered_with_the_cli():
    from ssomotion_ros.cli.commands.eval import available_suites

    suites = available_suites()
    for name in ("locomotion", "interaction", "all", "synthesis_quick"):
        assert name in suites


def test_unknown_suite_and_bad_options():
    from ssomotion_ros.eval.synthesis_eval import EvalOptions, run_suite

    with pytest.raises(ValueError, match="samples"):
        EvalOptions(samples=0)
    with pytest.raises(ValueError, match="unknown synthesis suite"):
        run_suite("nope", EvalOptions())


def test_quick_suite_json(tiny_checkpoint, tmp_path):
    if not (CMU / "INDEX.tsv").is_file():
        pytest.skip(f"CMU mocap data not found at {CMU} (the baseline's clips)")
    from ssomotion_ros.eval.synthesis_eval import EvalOptions, run_suite

    opts = EvalOptions(
        samples=2,
        learned_checkpoint=str(tiny_checkpoint),
        reference_checkpoint=str(tiny_checkpoint),
        plots=str(tmp_path / "plots"),
        device="cpu",
        progress=False,
        learned_overrides={"time_budget_s": 2.0, "interaction_windows": 1},
    )
    r = run_suite("synthesis_quick", opts)
    json.dumps(r, allow_nan=False)  # JSON-safe (NaN -> null)
    # documented top-level keys
    for k in ("success", "contact", "non_penetration"):
        assert k in r and (r[k] is None or 0.0 <= r[k] <= 1.0)
    for k in ("penetration_mean", "penetration_max", "goal_distance", "first_window_s"):
        assert k in r
    assert r["samples"] == 2 and r["suite"] == "synthesis_quick"
    methods = {"learned", "baseline_copy", "reference"}
    loco = r["locomotion"]
    assert set(loco["methods"]) == methods
    rows = loco["methods"]["learned"]["per_scene"]
    assert len(rows) == 1 and rows[0]["case"] == "locomotion/000"
    assert {"success", "contact", "non_penetration"} <= set(rows[0]["best"])
    assert set(rows[0]["mean"]) >= set(rows[0]["best"])
    assert len(rows[0]["notes"]) == 2  # one per sample
    assert loco["methods"]["baseline_copy"]["samples"] == 1
    inter = r["interaction"]["methods"]["baseline_copy"]
    assert {"penetration_mean", "penetration_max", "goal_distance"} <= set(inter["best"])
    # the baseline reaches its seat: goal distance is the seated pelvis height above the seat
    assert inter["best"]["goal_distance"] < 0.3
    # side by side
    for key in ("success", "contact", "non_penetration"):
        assert set(r["table"]["locomotion"][key]) == methods
    assert set(r["table"]["interaction"]["penetration_mean"]) == methods
    # goals as pass/fail per method
    assert set(r["goals"]) == methods
    g = r["goals"]["learned"]
    assert isinstance(g["success >= 0.95"], bool)
    assert "sit/lie penetration_mean < baseline_copy" in g
    key = "instruction_to_first_window_s <= 0.5 (max over cases)"
    assert r["goals"]["baseline_copy"][key] in (True, False)
    assert r["instruction_to_first_window_s"] >= r["first_window_s"] > 0
    assert rows[0]["instruction_s"] > 0
    # baseline's best-of-1 equals its mean
    b = loco["methods"]["baseline_copy"]
    assert b["best"]["contact"] == pytest.approx(b["mean"]["contact"])
    # one top-down PNG per case
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == ["interaction_000.png", "locomotion_000.png"]
    assert (tmp_path / "plots" / pngs[0]).stat().st_size > 5000


def test_plot_case_marks_penetrating_frames(tmp_path):
    from ssomotion_ros.eval.plots import obstacle_footprint, plot_case

    occ = np.zeros((20, 20, 5), bool)
    occ[8:12, 8:12, :3] = True
    fp = obstacle_footprint(occ)
    assert fp.shape == (20, 20) and fp.sum() == 16
    tr = np.stack([np.linspace(0, 2, 30), np.full(30, 1.0)], 1)
    pen = (tr[:, 0] > 0.8) & (tr[:, 0] < 1.2)
    out = plot_case(tmp_path / "a.png", fp, (0, 0), 0.1, {"learned": [tr]}, {"learned": [pen]},
                    planned_path=tr, start=tr[0], goal=tr[-1], title="t")  # fmt: skip
    assert out.is_file() and out.stat().st_size > 2000
    with pytest.raises(ValueError, match="X, Y"):
        obstacle_footprint(np.zeros((3, 3)))
