"""Object library: vocabulary coverage, dimensions, meshes, affordance geometry."""

from __future__ import annotations

import numpy as np
import pytest

from ssomotion_ros.scenes.labels import default_labels, pack_rgb, read_label_csv, unpack_rgb
from ssomotion_ros.scenes.objects import LIBRARY, PlacedObject, object_mesh, sample_object

ISSUE_CLASSES = (
    "sofa", "armchair", "chair", "stool", "bench", "dining table", "coffee table", "desk",
    "bed", "nightstand", "wardrobe", "bookshelf", "cabinet", "tv stand", "refrigerator",
    "kitchen counter", "sink", "toilet", "bathtub", "plant", "lamp",
)  # fmt: skip


def test_library_covers_issue_classes_and_csv():
    labels = default_labels()
    assert len(LIBRARY) >= 20
    assert set(ISSUE_CLASSES) <= set(LIBRARY)
    for n in list(LIBRARY) + ["floor", "wall", "door", "window"]:
        labels.id_of(n)  # every class is in the CSV
    assert len({tuple(c) for c in labels.colors}) == len(labels.names)  # distinct colours


def test_label_csv_errors(tmp_path):
    (tmp_path / "a.csv").write_text("name,red,green\nx,1,2\n")
    with pytest.raises(ValueError, match="header"):
        read_label_csv(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("name,red,green,blue,alpha,id\nx,1,2,3,255,0\ny,1,2,3,255,0\n")
    with pytest.raises(ValueError, match="unique"):
        read_label_csv(tmp_path / "b.csv")
    with pytest.raises(ValueError, match="known classes"):
        default_labels().id_of("spaceship")


def test_pack_rgb_matches_pcl_layout():
    c = np.array([[255, 0, 0], [1, 2, 3]], np.uint8)
    packed = pack_rgb(c)
    assert packed.dtype == np.float32
    assert packed.view(np.uint32).tolist() == [0xFF0000, 0x010203]
    np.testing.assert_array_equal(unpack_rgb(packed), c)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_object_sizes_meshes_and_affordances(name):
    rng = np.random.default_rng(11)
    cls = LIBRARY[name]
    for _ in range(3):
        size, params = sample_object(name, rng)
        assert cls.depth[0] <= size[0] <= cls.depth[1]
        assert cls.width[0] <= size[1] <= cls.width[1] or cls.square
        assert cls.height[0] <= size[2] <= cls.height[1]
        obj = PlacedObject(name, 1, np.array([2.0, 1.0]), 0.7, size, params)
        v, f = object_mesh(obj)
        assert f.max() < len(v) and v[:, 2].min() >= -1e-9
        assert v[:, 2].max() == pytest.approx(size[2], abs=1e-6)
        # the mesh stays inside the rotated footprint
        loc = (v[:, :2] - obj.position) @ obj.rotation()
        assert np.all(np.abs(loc) <= size[:2] / 2 + 1e-6)
        affs = obj.affordances()
        assert any(a.kind == "approach" for a in affs)
        for a in affs:
            if a.kind == "approach":
                lx = (a.position[:2] - obj.position) @ obj.rotation()
                assert np.all(np.abs(lx) <= size[:2] / 2 + 0.35 + 1e-6)
                assert np.any(np.abs(lx) > size[:2] / 2)  # outside the footprint


@pytest.mark.parametrize("name", ["chair", "sofa", "armchair", "stool", "bench", "toilet", "bed"])
def test_seat_affordance_on_top_of_the_seat(name):
    """A ray straight down onto the sit/lie point hits the object at the point's height, and
    for chairs with a back, the back rest is behind the facing direction."""
    o3d = pytest.importorskip("open3d")
    rng = np.random.default_rng(5)
    size, params = sample_object(name, rng)
    obj = PlacedObject(name, 1, np.array([1.0, -0.5]), -2.0, size, params)
    v, f = object_mesh(obj)
    rc = o3d.t.geometry.RaycastingScene()
    rc.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
    seats = [a for a in obj.affordances() if a.kind in ("sit", "lie")]
    assert seats
    for a in seats:
        top = a.position + np.array([0, 0, 3.0])
        ray = np.concatenate([top, [0, 0, -1.0]])[None].astype(np.float32)
        t = rc.cast_rays(o3d.core.Tensor(ray))["t_hit"].numpy()[0]
        assert t == pytest.approx(3.0, abs=1e-4)  # hits at the affordance height
    if name in ("chair", "sofa", "armchair"):
        a = [s for s in seats if s.kind == "sit"][0]
        back = np.array([-np.cos(a.facing), -np.sin(a.facing), 0.0])
        origin = a.position + np.array([0, 0, 0.2])
        ray = np.concatenate([origin, back])[None].astype(np.float32)
        t = rc.cast_rays(o3d.core.Tensor(ray))["t_hit"].numpy()[0]
        assert t < size[0]  # the back rest is right behind
        ray = np.concatenate([origin, -back])[None].astype(np.float32)
        assert not np.isfinite(rc.cast_rays(o3d.core.Tensor(ray))["t_hit"].numpy()[0])
