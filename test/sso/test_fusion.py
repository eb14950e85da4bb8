import logging

import numpy as np
import pytest
import torch

from ssomotion_ros.sso.config import FusionConfig
from ssomotion_ros.sso.fusion import VoxelMap, pack_keys, unpack_keys
from ssomotion_ros.sso.ingest import make_cloud


def reference_fusion(points, labels, rgb, vs):
    """Plain numpy/dict reference: per voxel count, majority label + share, mean rgb."""
    vox = np.floor(points / vs).astype(np.int64)
    out = {}
    for v, lab, col in zip(map(tuple, vox), labels, rgb):
        d = out.setdefault(v, {"n": 0, "labels": [], "rgb": []})
        d["n"] += 1
        if lab >= 0:
            d["labels"].append(lab)
        d["rgb"].append(col)
    for d in out.values():
        if d["labels"]:
            vals, cnt = np.unique(d["labels"], return_counts=True)
            d["label"] = int(vals[np.argmax(cnt)])
            d["share"] = cnt.max() / cnt.sum()
            d["tie"] = (cnt == cnt.max()).sum() > 1
        else:
            d["label"], d["share"], d["tie"] = -1, 0.0, False
        d["mean_rgb"] = np.round(np.mean(d["rgb"], axis=0))
    return out


def _snap_dict(m):
    s = m.snapshot()
    return {
        tuple(c): (int(lab), float(sh), r.tolist(), float(ev))
        for c, lab, sh, r, ev in zip(
            s.coords.cpu().numpy(),
            s.labels.cpu().numpy(),
            s.share.cpu().numpy(),
            s.rgb.cpu().numpy(),
            s.evidence.cpu().numpy(),
        )
    }


def _random_cloud(n=400, seed=0, labels=4):
    rng = np.random.default_rng(seed)
    p = rng.uniform(-1.0, 1.0, (n, 3)).astype(np.float32)
    lab = rng.integers(-1, labels, n)
    rgb = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    return p, lab, rgb


def test_fusion_matches_numpy_reference(device):
    p, lab, rgb = _random_cloud()
    m = VoxelMap(FusionConfig(voxel_size=0.5, label_slots=8, device=device))
    assert m.fuse(make_cloud(p, lab, rgb), stamp=3.0) == len(p)
    ref = reference_fusion(p, lab, rgb, 0.5)
    got = _snap_dict(m)
    assert set(got) == set(ref)
    for v, d in ref.items():
        glab, gshare, grgb, gev = got[v]
        assert gev == d["n"]
        assert np.allclose(grgb, d["mean_rgb"], atol=1)
        if not d["tie"]:
            assert glab == d["label"]
            assert gshare == pytest.approx(d["share"], abs=1e-6)


def test_incremental_and_chunked_equal_one_shot():
    p, lab, rgb = _random_cloud(600, seed=1)
    one = VoxelMap(FusionConfig(voxel_size=0.25, label_slots=8))
    one.fuse(make_cloud(p, lab, rgb))
    inc = VoxelMap(FusionConfig(voxel_size=0.25, label_slots=8))
    for s in range(0, 600, 150):
        inc.fuse(make_cloud(p[s : s + 150], lab[s : s + 150], rgb[s : s + 150]))
    chk = VoxelMap(FusionConfig(voxel_size=0.25, label_slots=8, chunk_points=7))
    chk.fuse(make_cloud(p, lab, rgb))
    a, b, c = _snap_dict(one), _snap_dict(inc), _snap_dict(chk)
    assert set(a) == set(b) == set(c)
    for k in a:
        assert a[k][3] == b[k][3] == c[k][3]  # evidence
        assert np.allclose(a[k][2], b[k][2], atol=1) and np.allclose(a[k][2], c[k][2], atol=1)
    keys = inc.keys.cpu().numpy()
    assert (np.diff(keys) > 0).all()


def test_label_slots_keep_the_majority():
    # one voxel: label 9 seen 20 times, five other labels 3 times each, K = 2 slots
    labs = [9] * 20 + [1, 2, 3, 4, 5] * 3
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labs))
    m = VoxelMap(FusionConfig(voxel_size=1.0, label_slots=2))
    for i in order:  # one point per fusion: worst case for the slots
        m.fuse(make_cloud(np.array([[0.5, 0.5, 0.5]]), labels=[labs[i]]))
    s = m.snapshot()
    assert s.labels.tolist() == [9]
    assert 0 < float(s.share[0]) <= 1


def test_transform_and_instances():
    m = VoxelMap(FusionConfig(voxel_size=1.0))
    tf = np.eye(4)
    tf[:3, 3] = [10, 0, 0]
    m.fuse(make_cloud(np.array([[0.5, 0.5, 0.5]] * 3), [1, 1, 1], instance=[4, 4, 7]), transform=tf)
    s = m.snapshot()
    assert s.coords.tolist() == [[10, 0, 0]] and s.instance.tolist() == [4]


def test_decay_fades_unseen_voxels():
    cfg = FusionConfig(voxel_size=1.0, decay_half_life=1.0, occupied_threshold=0.5)
    m = VoxelMap(cfg)
    m.fuse(make_cloud(np.array([[0.5, 0.5, 0.5], [5.5, 0.5, 0.5]]), [1, 2]), stamp=100.0)
    assert len(m.snapshot()) == 2
    m.fuse(make_cloud(np.array([[5.5, 0.5, 0.5]]), [2]), stamp=110.0)
    s = m.snapshot()
    assert s.coords.tolist() == [[5, 0, 0]]
    assert float(s.evidence[0]) == pytest.approx(1 + 0.5**10, rel=1e-4)
    assert len(m) == 2  # still stored, only not occupied


def test_max_voxels_evicts_weakest():
    m = VoxelMap(FusionConfig(voxel_size=1.0, max_voxels=3))
    pts = []
    for i in range(6):
        pts += [[i + 0.5, 0.5, 0.5]] * (i + 1)  # voxel i hit i+1 times
    m.fuse(make_cloud(np.array(pts), [1] * len(pts)))
    assert len(m) == 3
    assert sorted(m.snapshot().coords[:, 0].tolist()) == [3, 4, 5]
    assert m.nbytes <= 3 * m.bytes_per_voxel


def test_bad_input_keeps_map():
    m = VoxelMap(FusionConfig(voxel_size=1.0))
    m.fuse(make_cloud(np.array([[0.5, 0.5, 0.5]]), [1]))
    v, n = m.version, len(m)
    with pytest.raises(ValueError, match="transform"):
        m.fuse(make_cloud(np.array([[3.5, 0.5, 0.5]]), [1]), transform=np.eye(3))
    with pytest.raises(ValueError, match="stamp"):
        m.fuse(make_cloud(np.array([[3.5, 0.5, 0.5]]), [1]), stamp=float("nan"))
    assert m.version == v and len(m) == n
    assert m.fuse(make_cloud(np.zeros((0, 3)))) == 0 and len(m) == n


def test_out_of_range_points_dropped(caplog):
    m = VoxelMap(FusionConfig(voxel_size=0.04))
    with caplog.at_level(logging.WARNING):
        m.fuse(make_cloud(np.array([[0.1, 0, 0], [1e6, 0, 0]]), [1, 1]))
    assert len(m) == 1 and "outside" in caplog.text


def test_key_packing_roundtrip():
    c = torch.tensor([[0, 0, 0], [-5, 7, -1048576], [1048575, -1048576, 3]])
    k = pack_keys(c)
    assert torch.equal(unpack_keys(k), c.to(torch.int32))
    assert (torch.sort(k).values == pack_keys(c[np.lexsort(c.numpy().T[::-1])])).all()


def test_ten_million_points_warns_and_keeps_map(caplog):
    m = VoxelMap(FusionConfig(voxel_size=0.1))
    m.fuse(make_cloud(np.array([[5.05, 5.05, 5.05]]), [3]))
    n = 10_000_001
    rng = np.random.default_rng(0)
    pts = rng.random((n, 3), dtype=np.float32)
    pts[:, 2] *= 0.2
    cloud = make_cloud(pts, np.ones(n, np.int64))
    with caplog.at_level(logging.WARNING):
        assert m.fuse(cloud) == n
    assert "very large cloud" in caplog.text
    s = m.snapshot()
    assert [50, 50, 50] in s.coords.tolist()  # what was fused before is still there
    assert len(s) == 10 * 10 * 2 + 1


def test_sparse_and_huge_extents_use_sort_and_split_paths():
    # far-apart points: the sort path (bounding box too big for a histogram)
    m = VoxelMap(FusionConfig(voxel_size=0.04))
    m.fuse(make_cloud(np.array([[0.01, 0.01, 0.01], [100.0, 100.0, 100.0]]), [1, 2]))
    assert sorted(m.snapshot().labels.tolist()) == [1, 2]
    # a box of 2^21 voxels per axis does not fit one linear index: split along x
    big = np.array(
        [[-41000, -41000, -41000], [41000, 41000, 41000], [-41000, 41000, 0], [5, 5, 5]],
        dtype=np.float64,
    )
    m = VoxelMap(FusionConfig(voxel_size=0.04))
    assert m.fuse(make_cloud(big, [1, 2, 3, 4])) == 4
    s = m.snapshot()
    assert len(s) == 4 and sorted(s.labels.tolist()) == [1, 2, 3, 4]
    assert (np.diff(m.keys.numpy()) > 0).all()


def test_labels_and_instances_voted_together():
    # one voxel: (label 5, inst 1) x3, (5, 2) x2, (6, 1) x4 -> label 5 (5/9), instance 1 (7)
    labs = [5, 5, 5, 5, 5, 6, 6, 6, 6]
    inst = [1, 1, 1, 2, 2, 1, 1, 1, 1]
    pts = np.full((9, 3), 0.5)
    m = VoxelMap(FusionConfig(voxel_size=1.0))
    m.fuse(make_cloud(np.r_[pts, [[3.5, 0.5, 0.5]]], labs + [-1], instance=inst + [-1]))
    s = m.snapshot()
    assert s.labels.tolist() == [5, -1] and s.instance.tolist() == [1, -1]
    assert float(s.share[0]) == pytest.approx(5 / 9)
