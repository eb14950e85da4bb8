"""The 'retarget' eval suite on a tiny budget (keys, ours vs copy on limits)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssomotion_ros.retarget.evaluation import METRICS, run_suite

CMU = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocap" / "cmu"


def test_suite_registered():
    from ssomotion_ros.cli.commands.eval import available_suites

    assert "retarget" in available_suites()


@pytest.mark.skipif(not (CMU / "INDEX.tsv").is_file(), reason="CMU data not in ../shared/data")
@pytest.mark.parametrize("dev", ["cpu", "cuda"])
def test_suite_tiny(dev):
    if dev == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.set_num_threads(1)
    r = run_suite(
        clips={"75_17": (20, 32)}, robots=("avatar",), iterations=8, device=dev, progress=False
    )
    assert r["device"].startswith(dev)
    assert r["clips"] == {"75_17": [20, 32]}
    for method in ("ours", "copy"):
        for m in METRICS:
            assert f"{method}.{m}" in r and f"avatar.{method}.{m}" in r
            assert m in r["robots"]["avatar"][method]
    assert r["robots"]["avatar"]["mapping"]["left_knee"].startswith("left_knee")
    assert r["robots"]["avatar"]["ours"]["frames"] == 12
    assert r["ours.joint_limit_violations"] == 0.0
    assert 0.0 <= r["ours.contact_preservation"] <= 1.0
    assert r["comparisons"] == len(METRICS)
