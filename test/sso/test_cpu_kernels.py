"""The compiled CPU fusion path (numba) gives exactly what the torch path gives."""

import logging

import numpy as np
import pytest
import torch

from ssomotion_ros.sso import cpu_kernels
from ssomotion_ros.sso.config import FusionConfig
from ssomotion_ros.sso.fusion import VoxelMap, _slot_update
from ssomotion_ros.sso.ingest import make_cloud

pytestmark = pytest.mark.skipif(
    not cpu_kernels.available(), reason=f"numba missing: {cpu_kernels.unavailable_reason()}"
)


def _cloud(n, seed, labels=6, instances=5, rgb=True, spread=0.6):
    rng = np.random.default_rng(seed)
    p = rng.uniform(-spread, spread, (n, 3)).astype(np.float32)
    lab = rng.integers(-1, labels, n)
    inst = rng.integers(-1, instances, n) if instances else None
    col = rng.integers(0, 256, (n, 3)).astype(np.uint8) if rgb else None
    return make_cloud(p, lab, col, instance=inst)


def _random_pairs(rng, m: int, n: int, values: int, wmax: int):
    """Unique (row, value) pairs sorted by row then value from ``n`` random draws over
    ``m`` rows and ``values`` values, with integer weights in [1, wmax) (ties on
    purpose): (rows int64, vals int64, w float32)."""
    pairs = sorted(
        {(int(r), int(v)) for r, v in zip(rng.integers(0, m, n), rng.integers(0, values, n))}
    )
    rows = np.array([p[0] for p in pairs], np.int64)
    vals = np.array([p[1] for p in pairs], np.int64)
    return rows, vals, rng.integers(1, wmax, len(pairs)).astype(np.float32)


def _maps(**cfg):
    t = VoxelMap(FusionConfig(device="cpu", cpu_kernel="torch", **cfg))
    c = VoxelMap(FusionConfig(device="cpu", cpu_kernel="compiled", **cfg))
    assert t._grouper is None and c._grouper is not None
    return t, c


def _assert_same(a: VoxelMap, b: VoxelMap):
    sa, sb = a.state_dict(), b.state_dict()
    assert len(a) == len(b) > 0
    for f in sa:
        x, y = np.asarray(sa[f]), np.asarray(sb[f])
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-5, err_msg=f)
        else:
            np.testing.assert_array_equal(x, y, err_msg=f)


@pytest.mark.parametrize("rgb", [True, False])
def test_compiled_fusion_equals_torch_over_many_clouds(rgb):
    # voxels of 0.1 m in a 1.2 m cube with 6 labels: most voxels see several labels and
    # instances per cloud (mixed voxels) and more than 4 labels over the clouds (slot
    # replacement)
    t, c = _maps(voxel_size=0.1)
    for k in range(6):
        cl = _cloud(3000, seed=k, rgb=rgb, spread=0.6 + 0.1 * k)  # the map grows
        for m in (t, c):
            assert m.fuse(cl, stamp=float(k)) == 3000
        _assert_same(t, c)
    st, sc = t.snapshot(), c.snapshot()
    assert torch.equal(st.labels, sc.labels) and torch.equal(st.instance, sc.instance)


def test_compiled_with_decay_ignore_labels_and_no_instances():
    t, c = _maps(voxel_size=0.1, decay_half_life=2.0, ignore_labels=(0, 3))
    for k in range(4):
        cl = _cloud(2000, seed=10 + k, instances=0)
        for m in (t, c):
            m.fuse(cl, stamp=1.5 * k)
    _assert_same(t, c)
    assert (t.state_dict()["inst_ids"] == -1).all()


def test_compiled_with_transform():
    # a quarter turn and an integer translation are exact in float32 and float64
    tf = np.eye(4)
    tf[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    tf[:3, 3] = [2.0, -1.0, 0.5]
    t, c = _maps(voxel_size=0.125)
    cl = _cloud(4000, seed=3)
    for m in (t, c):
        m.fuse(cl, stamp=0.0, transform=tf)
    _assert_same(t, c)


def test_fallbacks_to_torch_path(caplog):
    # points outside the coordinate range, and a huge sparse bounding box
    t, c = _maps(voxel_size=0.04)
    p = np.array([[0, 0, 0], [1e6, 0, 0], [0.01, 0.01, 0.01]], np.float32)
    far = np.array([[0, 0, 0], [300.0, 200.0, 50.0], [0.05, 0, 0]], np.float32)
    with caplog.at_level(logging.WARNING):
        for m in (t, c):
            m.fuse(make_cloud(p, np.array([1, 2, 1])), stamp=0.0)
            m.fuse(make_cloud(far, np.array([4, 4, 4])), stamp=1.0)
    assert "outside the map's coordinate range" in caplog.text
    _assert_same(t, c)
    assert len(c) == 3  # (0,0,0) twice, (1,0,0) and the far voxel


def test_slot_kernel_equals_torch_slot_update():
    rng = np.random.default_rng(7)
    for trial in range(30):
        m, k = 40, 3
        ids = rng.integers(-1, 6, (m, k)).astype(np.int32)
        ids = np.sort(ids, axis=1)[:, ::-1].copy()  # empty slots (-1) form a suffix
        for r in range(m):  # distinct values per row
            seen = set()
            for j in range(k):
                if ids[r, j] in seen:
                    ids[r, j] = -1
                seen.add(ids[r, j])
            ids[r] = np.concatenate([ids[r][ids[r] >= 0], ids[r][ids[r] < 0]])
        cnts = np.where(ids >= 0, rng.integers(1, 4, (m, k)), 0).astype(np.float32)
        rows, vals, w = _random_pairs(rng, m, 90, 9, 4)
        ti, tc = torch.from_numpy(ids.copy()), torch.from_numpy(cnts.copy())
        _slot_update(ti, tc, torch.from_numpy(rows), torch.from_numpy(vals), torch.from_numpy(w))
        ci, cc = ids.copy(), cnts.copy()
        votes = np.zeros(m, np.float32)
        cpu_kernels.update_slots(ci, cc, rows, vals, w, votes=votes)
        np.testing.assert_array_equal(ti.numpy(), ci, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(tc.numpy(), cc, err_msg=f"trial {trial}")
        np.testing.assert_allclose(votes, np.bincount(rows, w, minlength=m))


def test_bad_cpu_kernel_value():
    with pytest.raises(ValueError, match="cpu_kernel"):
        VoxelMap(FusionConfig(device="cpu", cpu_kernel="fast"))


def test_group_refuses_what_needs_the_torch_path():
    g = cpu_kernels.DenseGrouper(max_cells=100)
    z = np.zeros(2, np.int64)
    # a box of 11^3 cells > max_cells
    assert g.group(np.array([[0, 0, 0], [1, 1, 1]], np.float32), 0.1, z, z, None) is None
    # non-finite points; outside the coordinate range; (label, instance) codes > 31 bits
    nan = np.array([[0, 0, 0], [np.nan, 0, 0]], np.float32)
    assert g.group(nan, 0.1, z, z, None) is None
    far = np.array([[0, 0, 0], [0.05, 0, 0]], np.float32)
    assert g.group(far, 0.1, z, z, None, coord_max=-1) is None
    big = np.array([0, 1 << 40], np.int64)
    assert g.group(far, 0.1, z, big, None) is None
    assert g.group(far, 0.1, z, z, None) is not None
    with pytest.raises(ValueError, match="threads"):
        VoxelMap(FusionConfig(device="cpu", cpu_threads=-1))


def _dense_cloud(n, seed, labels, instances):
    """Points in a 1 m cube with voxels of 0.25 m: every voxel sees several labels and
    instances (and three or more (label, instance) codes: the exact-vote path)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
    lab = rng.integers(-2, labels, n)  # -2: any negative label means none
    inst = rng.integers(-1, instances, n)
    col = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    return make_cloud(p, lab, col, instance=inst)


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_compiled_slices_and_exact_votes_equal_torch(parts, monkeypatch):
    # every cloud is split into `parts` slices whose records are added per voxel; the
    # voxels mix labels heavily (exact votes) or lightly (two codes: inline votes)
    monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN_POINTS", 0)
    t, c = _maps(voxel_size=0.25)
    c._grouper.parts = parts
    for k, (labels, instances) in enumerate([(6, 5), (2, 0), (1, 2), (1, 0), (40, 30)]):
        cl = _dense_cloud(700 + 300 * k, seed=20 + k, labels=labels, instances=instances)
        for m in (t, c):
            m.fuse(cl, stamp=float(k))
        _assert_same(t, c)
    # a light mix: most voxels carry one code, some two
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, (5000, 3)).astype(np.float32)
    lab = (p[:, 0] > 0.5).astype(np.int64) + (p[:, 1] > 0.52)
    for m in (t, c):
        m.fuse(make_cloud(p, lab, instance=lab * 10), stamp=9.0)
    _assert_same(t, c)


def test_compiled_with_non_finite_points_and_huge_ids(caplog):
    t, c = _maps(voxel_size=0.1)
    cl = _cloud(2000, seed=4)
    cl.points[5] = np.nan  # a SemanticCloud built by hand may hold them
    big = make_cloud(cl.points[10:20].copy(), np.arange(10), instance=np.arange(10) << 40)
    with caplog.at_level(logging.WARNING):
        for m in (t, c):
            m.fuse(cl, stamp=0.0)
            m.fuse(big, stamp=1.0)
    _assert_same(t, c)


@pytest.mark.parametrize("kernel", ["torch", "compiled"])
def test_side_table_gives_the_same_map(kernel):
    # a tiny side-table threshold exercises routing, compaction and queries with pending
    # side rows; the result must equal a map that inserts every voxel into the main table
    small = dict(voxel_size=0.1, decay_half_life=5.0, delta_min_rows=8, delta_fraction=1.0)
    a = VoxelMap(FusionConfig(device="cpu", cpu_kernel=kernel, **small))
    b = VoxelMap(FusionConfig(device="cpu", cpu_kernel=kernel, voxel_size=0.1, decay_half_life=5.0))
    saw_side = False
    for k in range(8):
        cl = _cloud(1500, seed=20 + k, spread=0.5 + 0.04 * k)  # grows: new voxels each time
        for m in (a, b):
            m.fuse(cl, stamp=float(k))
        saw_side |= a._delta.keys.shape[0] > 0
        assert len(a) == len(b)
        assert a.nbytes == b.nbytes
        if k % 3 == 2:  # a query in between compacts the side table
            sa, sb = a.snapshot(), b.snapshot()
            assert torch.equal(sa.keys, sb.keys) and torch.equal(sa.labels, sb.labels)
            assert a._delta.keys.shape[0] == 0
    assert saw_side
    _assert_same(a, b)


def test_side_table_with_eviction_and_reload(tmp_path):
    cfg = dict(voxel_size=0.1, delta_min_rows=4, delta_fraction=0.01, max_voxels=300)
    a = VoxelMap(FusionConfig(device="cpu", **cfg))
    b = VoxelMap(FusionConfig(device="cpu", voxel_size=0.1, max_voxels=300))
    for k in range(5):
        cl = _cloud(800, seed=40 + k, spread=0.4 + 0.2 * k)
        for m in (a, b):
            m.fuse(cl, stamp=float(k))
    assert len(a) == len(b) == 300
    _assert_same(a, b)
    c = VoxelMap(FusionConfig(device="cpu", **cfg))
    c.load_state_dict(a.state_dict())
    _assert_same(a, c)


def test_fill_of_empty_slots_equals_the_general_update():
    rng = np.random.default_rng(11)
    m, k = 50, 3
    rows, vals, w = _random_pairs(rng, m, 200, 9, 4)
    assert np.bincount(rows).max() > k  # some rows need the space-saving update
    out = []
    for fast in (False, True):
        ids, cnts = np.full((m, k), -1, np.int32), np.zeros((m, k), np.float32)
        votes = np.zeros(m, np.float32)
        cpu_kernels.update_slots(ids, cnts, rows, vals, w, votes=votes, all_empty=fast)
        out.append((ids, cnts, votes))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", ["flat", "line", "sparse"])
def test_compiled_on_degenerate_boxes(shape, monkeypatch):
    # one z layer (a 2-D laser scan), one x-y line, and a few far-apart clusters: the
    # per-voxel walk steps across long runs of empty cells
    monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN_POINTS", 0)
    rng = np.random.default_rng(5)
    n = 4000
    p = rng.uniform(0, 4, (n, 3)).astype(np.float32)
    if shape == "flat":
        p[:, 2] = 0.5
    elif shape == "line":
        p[:, 1] = 1.0
        p[:, 2] = 0.3
    else:  # clusters 3 m apart along y: the walk jumps over many rows at once
        p = rng.uniform(0, 0.2, (n, 3)).astype(np.float32)
        p[:, 1] += rng.integers(0, 4, n) * 3.0
    t, c = _maps(voxel_size=0.05)
    c._grouper.parts = 3
    cl = make_cloud(p, rng.integers(0, 3, n), instance=rng.integers(-1, 2, n))
    assert c._grouper.group(cl.points, 0.05, cl.labels, cl.instance, None) is not None
    for m in (t, c):
        m.fuse(cl, stamp=0.0)
    _assert_same(t, c)


def test_kernels_that_fail_to_compile_fall_back_to_torch(monkeypatch, caplog):
    t, c = _maps(voxel_size=0.1)

    def broken(*a, **k):
        raise RuntimeError("LLVM ERROR: simulated")

    monkeypatch.setattr(c._grouper, "group", broken)
    cl = _cloud(500, seed=1)
    with caplog.at_level(logging.WARNING):
        for m in (t, c):
            assert m.fuse(cl, stamp=0.0) == 500
    assert "torch path" in caplog.text and c._grouper is None
    _assert_same(t, c)


@pytest.mark.parametrize("slots", [(1, 1), (2, 1), (1, 3)])
def test_compiled_with_few_slots_equals_torch(slots):
    # one slot: a voxel's two inline pairs already need the space-saving replacement,
    # in a new row (fill) and in a stored row
    k, ki = slots
    t, c = _maps(voxel_size=0.1, label_slots=k, instance_slots=ki)
    for s in range(4):
        cl = _cloud(2500, seed=60 + s, spread=0.5 + 0.1 * s)
        for m in (t, c):
            m.fuse(cl, stamp=float(s))
        _assert_same(t, c)


def test_votes_subset_keeps_inline_and_exact_pairs():
    v2 = np.array([[1, -1], [2, 5], [-1, -1], [0, -1]], np.int32)
    w2 = np.array([[3, 0], [1, 2], [0, 0], [4, 0]], np.float32)
    ovf = np.array([0, 0, 1, 1], np.uint8)
    xv, xval, xw = np.array([2, 2, 3]), np.array([4, 7, 1]), np.array([1, 2, 5], np.float32)
    v = cpu_kernels.Votes(v2, w2, ovf, xv, xval, xw)
    s = v.subset(np.array([1, 3]))
    assert len(s) == 2
    np.testing.assert_array_equal(s.v2, v2[[1, 3]])
    np.testing.assert_array_equal(s.ovf, [0, 1])
    np.testing.assert_array_equal(s.xv, [1])  # voxel 3 is row 1 of the subset
    np.testing.assert_array_equal(s.xval, [1])
    np.testing.assert_array_equal(s.xw, [5.0])
    # applied to an empty table, inline and exact votes land in the slots
    ids, cnts = np.full((2, 2), -1, np.int32), np.zeros((2, 2), np.float32)
    votes = np.zeros(2, np.float32)
    cpu_kernels.apply_votes(ids, cnts, votes, None, s, fill=True)
    np.testing.assert_array_equal(ids, [[2, 5], [1, -1]])
    np.testing.assert_array_equal(cnts, [[1, 2], [5, 0]])
    np.testing.assert_array_equal(votes, [3, 5])


def test_apply_votes_checks_what_its_kernel_does_not():
    v = cpu_kernels.Votes.from_pairs(np.array([0, 1]), np.array([3, 4]), np.ones(2, np.float32), 2)
    ids, cnts = np.full((2, 2), -1, np.int64), np.zeros((2, 2), np.float32)
    before = ids.copy(), cnts.copy()
    bad = [
        dict(rows=np.array([0, 2])),  # row 2 of a 2-row table
        dict(rows=np.array([0, -1])),
        dict(rows=np.array([0])),  # one row for two voxels
        dict(ids=np.full((1, 2), -1, np.int64), cnts=np.zeros((1, 2), np.float32)),
        dict(cnts=np.zeros((2, 3), np.float32)),
        dict(ids=np.full((2, 4), -1, np.int64)[:, ::2]),  # not contiguous
        dict(votes=np.zeros(3, np.float32)),
    ]
    for case in bad:
        kw = dict(ids=ids, cnts=cnts, votes=None, rows=None) | case
        with pytest.raises(ValueError):
            cpu_kernels.apply_votes(kw["ids"], kw["cnts"], kw["votes"], kw["rows"], v)
        np.testing.assert_array_equal(ids, before[0])  # nothing written
        np.testing.assert_array_equal(cnts, before[1])
    bad_votes = [
        cpu_kernels.Votes(v.v2[:1], v.w2, v.ovf, v.xv, v.xval, v.xw),
        cpu_kernels.Votes(v.v2, v.w2, v.ovf, v.xv, v.xval[:1], v.xw),
        cpu_kernels.Votes(v.v2, v.w2, v.ovf, v.xv + 1, v.xval, v.xw),  # voxel 2 of 2
    ]
    for bv in bad_votes:
        with pytest.raises(ValueError):
            cpu_kernels.apply_votes(ids, cnts, None, None, bv)
    np.testing.assert_array_equal(ids, before[0])
    cpu_kernels.apply_votes(ids, cnts, None, np.array([1, 0]), v)
    np.testing.assert_array_equal(ids, [[4, -1], [3, -1]])
    # strided rows and a bool overflow mask are made contiguous / uint8 first
    ids, cnts = np.full((2, 2), -1, np.int64), np.zeros((2, 2), np.float32)
    strided = np.array([1, 9, 0, 9])[::2]
    vb = cpu_kernels.Votes(v.v2, v.w2, v.ovf.astype(bool), v.xv, v.xval, v.xw)
    cpu_kernels.apply_votes(ids, cnts, None, strided, vb)
    np.testing.assert_array_equal(ids, [[4, -1], [3, -1]])


def test_group_checks_per_point_array_lengths():
    g = cpu_kernels.DenseGrouper(max_cells=1000)
    p = np.zeros((3, 3), np.float32)
    z3, z2 = np.zeros(3, np.int64), np.zeros(2, np.int64)
    for lab, inst, rgb in [(z2, z3, None), (z3, z2, None), (z3, z3, np.zeros((2, 3), np.uint8))]:
        with pytest.raises(ValueError, match="must be"):
            g.group(p, 0.1, lab, inst, rgb)
    assert g.group(p, 0.1, z3, z3, np.zeros((3, 3), np.uint8)) is not None


def test_parallel_vote_ranges_equal_one_range(monkeypatch):
    # many voxels with exact pairs spread over the ranges of the parallel launch
    rng = np.random.default_rng(2)
    nu, k = 3000, 3
    rows, vals, w = _random_pairs(rng, nu, 9000, 7, 5)
    v = cpu_kernels.Votes.from_pairs(rows, vals, w, nu)
    out = []
    for threads, floor in ((1, 10**9), (cpu_kernels.max_threads(), 0)):
        monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN_VOXELS", floor)
        ids, cnts = np.full((nu, k), -1, np.int32), np.zeros((nu, k), np.float32)
        votes = np.zeros(nu, np.float32)
        cpu_kernels.apply_votes(ids, cnts, votes, None, v, fill=True, threads=threads)
        cpu_kernels.apply_votes(ids, cnts, votes, np.arange(nu)[::-1].copy(), v, threads=threads)
        out.append((ids, cnts, votes))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_a_failed_vote_pass_leaves_an_empty_map_empty(monkeypatch):
    t, c = _maps(voxel_size=0.1)
    cl = _cloud(800, seed=8)

    def boom(*a, **k):
        raise RuntimeError("simulated kernel failure")

    with monkeypatch.context() as mp:
        mp.setattr(cpu_kernels, "apply_votes", boom)
        with pytest.raises(RuntimeError, match="simulated"):
            c.fuse(cl, stamp=0.0)
    assert len(c) == 0 and c.keys.shape[0] == 0  # no half-filled rows
    for m in (t, c):
        m.fuse(cl, stamp=0.0)
    _assert_same(t, c)


def test_warm_up_compiles_every_kernel_a_fusion_uses(monkeypatch):
    # a node warms the kernels up before its first cloud: a fusion afterwards must not
    # compile anything (compiling takes ~30 s)
    cpu_kernels.warm_up()
    kernels = {
        name: obj
        for name, obj in vars(cpu_kernels).items()
        if hasattr(obj, "signatures") and hasattr(obj, "py_func")
    }
    assert "_accumulate_points" in kernels and "_vote_par" in kernels
    before = {name: len(k.signatures) for name, k in kernels.items()}
    monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN_POINTS", 0)
    monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN_VOXELS", 0)
    m = VoxelMap(FusionConfig(device="cpu", voxel_size=0.25, delta_min_rows=4))
    for k, rgb in enumerate([True, False, True]):
        cl = _dense_cloud(3000, seed=70 + k, labels=6, instances=4)  # exact-vote voxels
        if not rgb:
            cl = make_cloud(cl.points, cl.labels, instance=cl.instance)
        m.fuse(cl, stamp=float(k))  # empty table, then the built one and the side table
    m.fuse(_cloud(2000, seed=77, instances=0, spread=3.0), stamp=5.0)  # no instances
    m.snapshot()
    after = {name: len(k.signatures) for name, k in kernels.items()}
    assert after == before
