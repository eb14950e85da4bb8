import math

import numpy as np
import pytest
import torch

from ssomotion_ros.sso.config import FusionConfig, SceneModelConfig, TriplaneConfig
from ssomotion_ros.sso.ingest import make_cloud
from ssomotion_ros.sso.scene import SceneModel
from ssomotion_ros.sso.synthetic import room_cloud
from ssomotion_ros.sso.triplane import decompose, reference_triplanes_numpy
from ssomotion_ros.sso.types import TRIPLANE_ORDER

X_PLUS, X_MINUS, Y_PLUS, Y_MINUS, Z = range(5)


@pytest.mark.parametrize("compiled", [False, None])  # the tensor path, the compiled pass
@pytest.mark.parametrize("density", [0.0, 0.15, 1.0])
def test_decompose_matches_numpy_reference(compiled, density):
    cfg = TriplaneConfig(grid_size=(9, 7, 11), z_plane_offset=2)
    rng = np.random.default_rng(0)
    occ = rng.random((3, 9, 7, 11)) < density
    res = decompose(torch.from_numpy(occ.astype(np.uint8)), cfg, compiled=compiled)
    for b in range(3):
        ref = reference_triplanes_numpy(occ[b], cfg)
        for m in range(5):
            off, found, _ = res[m]
            got = torch.where(found, off, -1)[b].T.numpy()
            assert np.array_equal(got, ref[m]), TRIPLANE_ORDER[m]
    four = decompose(torch.from_numpy(occ), cfg, z_map=False, compiled=compiled)  # bool input
    assert len(four) == 4
    for m in range(4):
        for x, y in zip(four[m], res[m]):
            assert torch.equal(x, y), TRIPLANE_ORDER[m]


def _wall_model(axis="x", at=1.02, device="cpu"):
    g = np.mgrid[-3:3:0.02, 0:2:0.02].reshape(2, -1).T
    pts = np.zeros((len(g), 3), np.float32)
    if axis == "x":
        pts[:, 0], pts[:, 1], pts[:, 2] = at, g[:, 0], g[:, 1]
    else:
        pts[:, 0], pts[:, 1], pts[:, 2] = g[:, 0], at, g[:, 1]
    model = SceneModel(SceneModelConfig(fusion=FusionConfig(device=device)))
    model.fuse(make_cloud(pts, labels=np.ones(len(pts), np.int64)))
    return model


def _check_wall_ahead(tp):
    S = tp.depth.shape[-1]
    assert tp.depth.shape == (1, 5, S, S) and S == 101
    m = tp.mask[0].cpu()
    assert m[X_PLUS].any()
    assert torch.allclose(tp.depth[0, X_PLUS].cpu()[m[X_PLUS]], torch.tensor(1.0), atol=1e-5)
    assert not m[X_MINUS].any()
    # the wall is at local x = 1.0 m (i = 75): side/top maps see it only in that column
    for k in (Y_PLUS, Y_MINUS, Z):
        cols = torch.nonzero(m[k])[:, 1].unique().tolist()
        assert cols == [75], (TRIPLANE_ORDER[k], cols)
    # wall height 0..2 m, crop centre 0.9 m above the floor: rows k with z in the wall
    rows = torch.nonzero(m[X_PLUS])[:, 0]
    z = (rows.float() - 40) * 0.04 + 0.9
    assert z.min() >= -0.03 and z.max() <= 2.03
    assert (tp.label[0, X_PLUS].cpu()[m[X_PLUS]] == 1).all()
    assert (tp.label[0].cpu()[~m] == -1).all() and (tp.depth[0].cpu()[~m] == 0).all()


def test_wall_one_metre_ahead_only_in_x_plus(device):
    model = _wall_model("x", device=device)
    tp = model.local_triplanes(np.array([[0.02, 0.02, 0.0]]), floor_z=[0.0])
    _check_wall_ahead(tp)
    assert tp.depth.device.type == device


def test_wall_ahead_after_rotation():
    model = _wall_model("y")
    tp = model.local_triplanes(np.array([[0.02, 0.02, math.pi / 2]]), floor_z=[0.0])
    _check_wall_ahead(tp)


def test_chair_label_reaches_the_right_maps():
    model = SceneModel()
    model.fuse(room_cloud(num_points=200_000, walls=False), stamp=0.0)
    chair = model.vocabulary.id_of("chair")
    # agent 1 m in front (+x) of the chair (chair centre (2.0, 1.5)), facing it (yaw pi)
    tp = model.local_triplanes(np.array([[3.0, 1.5, math.pi]]))
    lab = tp.label[0]
    assert (lab[X_PLUS] == chair).any()
    assert not (lab[X_MINUS] == chair).any()
    assert (lab[Z] == chair).any()  # the seat lies below the z plane
    # semantic channels are the label's feature
    feats = model.features()
    sel = lab[X_PLUS] == chair
    want = torch.from_numpy(feats.table[chair])
    got = tp.semantic[0, X_PLUS].permute(1, 2, 0)[sel]
    assert torch.allclose(got, want.expand_as(got))
    assert (tp.rgb[0, X_PLUS].permute(1, 2, 0)[sel] > 0).all()
    # seat top 0.46 m: from the z plane at 0.9 + 0.4 m the seat is ~0.84 m down
    zsel = lab[Z] == chair
    d = tp.depth[0, Z][zsel]
    assert d.min() == pytest.approx(1.3 - 0.94, abs=0.05)  # back rest top 0.95
    assert d.max() <= 1.3 + 0.05


def test_batch_equals_single_and_out_reuse_and_regional():
    model = SceneModel()
    model.fuse(room_cloud(num_points=100_000), stamp=0.0)
    poses = np.array([[1.0, 2.0, 0.3], [3.5, 2.5, -2.0], [5.0, 1.0, 1.0]])
    tp = model.local_triplanes(poses)
    for b in range(3):
        one = model.local_triplanes(poses[b : b + 1])
        for f in ("depth", "rgb", "semantic", "label", "mask"):
            assert torch.equal(getattr(tp, f)[b], getattr(one, f)[0]), f
    again = model.local_triplanes(poses[::-1].copy(), out=tp)
    assert again.depth is tp.depth
    fresh = model.local_triplanes(poses[::-1].copy())
    for f in ("depth", "rgb", "semantic", "label", "mask"):
        assert torch.equal(getattr(again, f), getattr(fresh, f)), f
    with pytest.raises(ValueError, match="out"):
        model.local_triplanes(poses[:2], out=tp)
    # a map too large for one dense grid: regional grids give the same answer
    model.config.maps.max_dense_cells = 1000
    model._cache.clear()
    reg = model.local_triplanes(poses[::-1].copy())
    for f in ("depth", "label", "mask"):
        assert torch.equal(getattr(reg, f), getattr(fresh, f)), f


@pytest.mark.parametrize("local_voxel", [0.04, 0.05])  # 0.05: no z-map column shortcut
def test_compiled_cpu_path_equals_tensor_path(local_voxel, monkeypatch):
    from ssomotion_ros.sso import cpu_kernels

    cfg = SceneModelConfig(triplane=TriplaneConfig(voxel_size=local_voxel))
    model = SceneModel(cfg)
    model.fuse(room_cloud(num_points=100_000), stamp=0.0)
    # near walls, in the open, partly outside the map
    poses = np.array([[1.0, 2.0, 0.3], [3.5, 2.5, -2.0], [5.8, 0.2, 1.0], [-1.0, 2.0, 0.0]])
    compiled = model.local_triplanes(poses)
    monkeypatch.setattr(cpu_kernels, "available", lambda: False)
    tensor = model.local_triplanes(poses)
    assert compiled.mask.any()
    for f in ("depth", "rgb", "semantic", "label", "mask"):
        assert torch.equal(getattr(compiled, f), getattr(tensor, f)), f


def test_pose_errors():
    model = SceneModel()
    with pytest.raises(ValueError, match="B, 3"):
        model.local_triplanes(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        model.local_triplanes(np.array([[np.nan, 0, 0]]))
    tp = model.local_triplanes(np.zeros((2, 3)))  # empty map: nothing found
    assert not tp.mask.any()


def test_z_map_column_index_equals_voxel_scan():
    from ssomotion_ros.sso.triplane import (
        _z_map_from_columns,
        crop_indices,
        gather_local_occupancy,
    )

    model = SceneModel()
    model.fuse(room_cloud(num_points=80_000, seed=5), stamp=0.0)
    snap, dense = model.snapshot(), model.dense_occupancy()
    cfg = model.config.triplane
    rng = np.random.default_rng(0)
    poses = torch.tensor(
        np.stack([rng.uniform(-1, 7, 6), rng.uniform(-1, 6, 6), rng.uniform(-3, 3, 6)], 1)
    )
    floor = torch.tensor([0.0, 0.0, -1.5, 2.0, 0.5, 5.0], dtype=torch.float64)
    gx, gy, gz = crop_indices(poses, floor, cfg, snap.voxel_size)
    occ, col, zidx = gather_local_occupancy(dense, gx, gy, gz)
    off, found, idx = decompose(occ, cfg)[4]
    off2, found2, idx2, zrel = _z_map_from_columns(dense, col, gz, cfg)
    assert found.any() and torch.equal(found, found2)
    assert torch.equal(off[found], off2[found]) and torch.equal(idx[found], idx2[found])
    assert torch.equal(zidx.gather(1, idx.view(6, -1)).view(idx.shape)[found], zrel[found])
