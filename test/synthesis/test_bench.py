"""``ssomotion bench synthesis`` smoke test (one room)."""

from ssomotion_ros.cli.commands.bench import available


def test_bench_synthesis_quick(synth):
    assert "synthesis" in available()
    from ssomotion_ros.synthesis.bench import run_benchmark

    r = run_benchmark(quick=True, progress=False)
    assert r["instructions"] >= 3 and r["failed"] == 0
    assert 0 < r["first_window_s_median"] <= r["peer_whole_motion_s_median"]
    assert r["ratio_whole_over_first_median"] >= 1.0
    assert r["success_rate"] == 1.0 and r["realtime_factor_median"] > 1.0
    assert {row["action"] for row in r["rows"]} == {"walk", "sit", "lie"}
