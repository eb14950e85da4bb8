"""The product end to end over real DDS: the demo graph with a generated room."""

from __future__ import annotations

import json

from ssomotion_ros.recording import read_bag


def test_bringup_graph_walks_a_human_to_an_object(start_bringup, ssomotion):
    b = start_bringup(ready="motion node ready")
    proc = ssomotion(
        "say",
        "walk to the bookshelf",
        "--agent",
        "alice",
        "--wait",
        "--timeout",
        "150",
        timeout=200,
    )
    out = proc.stdout
    assert "alice: ACCEPTED" in out and "walk to bookshelf" in out, out + proc.stderr
    assert "alice: EXECUTING" in out, out
    assert proc.returncode == 0 and "final: SUCCEEDED" in out, out + proc.stderr
    bad = ssomotion("say", "sit on the piano", "--agent", "dave", "--wait", "--timeout", "60")
    assert bad.returncode == 1 and "no 'piano' here" in bad.stdout, bad.stdout
    assert b.stop(timeout=40) == 0


def test_demo_headless_writes_its_outputs(ssomotion, tmp_path):
    out = tmp_path / "demo"
    proc = ssomotion(
        "demo", "--headless", "--out", str(out), "--agents", "1", "--no-pictures", timeout=400
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "metrics.json").read_text())
    finals = {r["agent"]: r["final"] for r in report["requests"]}
    assert finals == {"alice": "SUCCEEDED", "dave": "REJECTED"}
    alice = next(r for r in report["requests"] if r["agent"] == "alice")
    assert alice["frames"] > 30 and alice["min_goal_distance_m"] < 0.2
    topics = {t for t, _, _, _ in read_bag(out / "bag")}
    assert {"/ssomotion/status", "/ssomotion/motion", "/ssomotion/people"} <= topics
    assert "outputs in" in proc.stdout


def test_needed_classes_and_script_selection():
    import pytest

    from ssomotion_ros.ros.demo import DEFAULT_SCRIPT, _needed_classes, select_script

    names = ["floor", "chair", "dining table", "bed", "bookshelf", "sofa"]
    assert _needed_classes(DEFAULT_SCRIPT, names) == {"bookshelf", "chair", "bed"}
    script = [("a", "sit at the dining table", "SUCCEEDED"), ("b", "x", "REJECTED")]
    assert _needed_classes(script, names) == {"dining table"}
    assert [s[0] for s in select_script(DEFAULT_SCRIPT, 1)] == ["alice", "dave"]
    with pytest.raises(ValueError, match="agents must be 1-3"):
        select_script(DEFAULT_SCRIPT, 4)
