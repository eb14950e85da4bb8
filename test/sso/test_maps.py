import numpy as np
import pytest
import torch

from ssomotion_ros.sso.ingest import make_cloud
from ssomotion_ros.sso.scene import SceneModel


def _floor_and_box(with_floor_label=True):
    g = np.mgrid[0:4:0.02, 0:3:0.02].reshape(2, -1).T
    floor = np.c_[g, np.full(len(g), 0.01)]
    # a 0.4 x 0.4 x 1.0 m box standing at x 2..2.4, y 1..1.4
    b = np.mgrid[2.0:2.4:0.02, 1.0:1.4:0.02, 0.0:1.0:0.02].reshape(3, -1).T
    pts = np.concatenate([floor, b]).astype(np.float32)
    fl = 2 if with_floor_label else 39
    labels = np.r_[np.full(len(floor), fl), np.full(len(b), 7)]
    m = SceneModel()
    m.fuse(make_cloud(pts, labels=labels))
    return m


def test_walkable_grid_convention_and_clearance():
    m = _floor_and_box()
    free, origin, res = m.walkable_grid(0.0)
    assert free.dtype == bool and free.ndim == 2 and res == pytest.approx(0.04)

    def cell(x, y):
        return int((y - origin[1]) // res), int((x - origin[0]) // res)

    assert free[cell(1.0, 1.0)]
    assert not free[cell(2.2, 1.2)]  # inside the box
    assert not free[cell(-0.3, 1.0)]  # outside the scanned floor (unknown)
    # cell centre convention: centre of (i, j) = origin + ((j + .5) res, (i + .5) res)
    i, j = cell(1.0, 1.0)
    cx, cy = origin + (np.array([j, i]) + 0.5) * res
    assert abs(cx - 1.0) <= res / 2 + 1e-9 and abs(cy - 1.0) <= res / 2 + 1e-9
    # clearance: 0.3 m from the box edge is free with r = 0.25, not with r = 0.35
    f25, _, _ = m.walkable_grid(0.25)
    f35, _, _ = m.walkable_grid(0.35)
    assert f25[cell(1.66, 1.2)] and not f35[cell(1.66, 1.2)]
    assert f25.sum() < free.sum()
    with pytest.raises(ValueError):
        m.walkable_grid(-1)


def test_floor_height_with_and_without_floor_labels():
    for lab in (True, False):
        m = _floor_and_box(with_floor_label=lab)
        h = m.floor_height(np.array([[1.0, 1.0], [3.5, 2.5], [50.0, 50.0]]))
        assert np.allclose(h, 0.02, atol=0.021)


def test_signed_distance_sign_values_and_gradient():
    m = _floor_and_box()
    # the floor is 0.9 m below these points; the box's -x face is at x = 2.0
    p = torch.tensor([[1.6, 1.2, 0.9], [2.2, 1.2, 0.5], [1.8, 1.2, 0.9]], requires_grad=True)
    d = m.signed_distance(p)
    assert d.shape == (3,)
    assert d[1] < 0 < d[0]
    assert d[0] > d[2]  # farther from the box's -x face
    assert float(d[0].detach()) == pytest.approx(0.4, abs=0.09)
    assert float(d[2].detach()) == pytest.approx(0.2, abs=0.09)
    d[2].backward()
    g = p.grad[2]
    assert g[0] < 0 and abs(float(g[0])) > abs(float(g[1]))  # moving toward the box lowers it
    far = m.signed_distance(np.array([[100.0, 0.0, 0.0]]))
    assert float(far[0]) > 90
    with pytest.raises(ValueError):
        m.signed_distance(torch.zeros(3))


def test_features_at_points():
    m = _floor_and_box()
    f = m.features_at(np.array([[2.2, 1.2, 0.5], [1.0, 1.0, 1.5]]))
    assert f.occupied.tolist() == [True, False]
    assert f.label.tolist() == [7, -1]
    assert f.feature.shape == (2, 16) and torch.all(f.feature[1] == 0)
    assert torch.allclose(f.feature[0], torch.from_numpy(m.features().table[7]))


def test_unseen_floor_enclosed_by_walls_is_inferred():
    from ssomotion_ros.sso.config import MapsConfig, SceneModelConfig
    from ssomotion_ros.sso.synthetic import SyntheticRoom, room_cloud

    c = room_cloud(SyntheticRoom(boxes=[]), num_points=150_000, seed=0)
    floor_id = 2
    seen = ~((c.labels == floor_id) & (c.points[:, 0] > 3.0))  # floor unseen for x > 3
    part = c.subset(seen)

    def free_at(cloud, fill, xy=(4.5, 2.5)):
        m = SceneModel(SceneModelConfig(maps=MapsConfig(fill_enclosed_unknown=fill)))
        m.fuse(cloud)
        free, origin, res = m.walkable_grid(0.25)
        i, j = int((xy[1] - origin[1]) // res), int((xy[0] - origin[0]) // res)
        return bool(free[i, j]), m.floor_map()

    ok, fm = free_at(part, True)
    assert ok and fm.inferred.any()
    assert not free_at(part, False)[0]
    # a missing wall (x = 6 m) opens the room to the outside: nothing is inferred
    leak = part.subset(~((part.labels == 1) & (part.points[:, 0] > 5.9)))
    ok, fm = free_at(leak, True)
    assert not ok and not fm.inferred.any()
