import json

from ssomotion_ros.cli.main import main


def test_bench_sso_quick(tmp_path):
    out = tmp_path / "sso.json"
    assert main(["bench", "sso", "--quick", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["quick"] is True
    assert r["fusion"]["points"] > 50_000 and r["fusion"]["points_per_s"] > 0
    assert set(r["triplane"]["ms_per_agent"]) == {"1", "16"}
    assert r["memory"]["bytes_per_voxel"] > 0 and 0 < r["memory"]["sparse_vs_dense_ratio"] < 1
    if r["fusion"]["speedup_vs_open3d"] is not None:
        assert r["fusion"]["open3d_seconds"] > 0
