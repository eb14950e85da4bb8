"""Layouts: no intersections, reachability from the door, determinism, spec round trip."""

from __future__ import annotations

import numpy as np
import pytest

from ssomotion_ros.scenes.layout import LayoutError, SceneSpec, generate_spec
from ssomotion_ros.scenes.scene import Scene, _fill_primitive

PROMPTS = [
    ("a living room with a sofa, two armchairs and a coffee table", 0),
    ("a kitchen", 1),
    ("a bedroom", 2),
    ("a dining room with a table and six chairs", 3),
    ("a bathroom", 4),
    ("a cluttered room with 10 random objects", 5),
    ("an L-shaped living room with a sofa, two armchairs, a coffee table and a bookshelf", 3),
]


@pytest.fixture(scope="module")
def scenes():
    return [Scene(generate_spec(p, s)) for p, s in PROMPTS]


def _poly_dist(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Reference: distance from points (N, 2) to a convex polygon (0 inside)."""
    inside = np.ones(len(p), bool)
    d = np.full(len(p), np.inf)
    for k in range(len(poly)):
        a, b = poly[k], poly[(k + 1) % len(poly)]
        ab = b - a
        t = np.clip(((p - a) @ ab) / (ab @ ab), 0, 1)
        d = np.minimum(d, np.linalg.norm(p - (a + t[:, None] * ab), axis=1))
        inside &= (ab[0] * (p[:, 1] - a[1]) - ab[1] * (p[:, 0] - a[0])) >= 0
    d[inside] = 0
    return d


def test_prompt_gives_expected_objects(scenes):
    names = sorted(o.name for o in scenes[0].spec.objects)
    assert names == ["armchair", "armchair", "coffee table", "sofa"]
    names = [o.name for o in scenes[3].spec.objects]
    assert names.count("chair") == 6 and names.count("dining table") == 1
    assert len(scenes[5].spec.objects) == 10


def test_no_two_objects_intersect_in_3d(scenes):
    for scene in scenes:
        by_inst: dict[int, list] = {}
        for p in scene.primitives:
            if p.instance > 0 and p.label not in (
                scene.labels.id_of("door"),
                scene.labels.id_of("window"),
            ):
                by_inst.setdefault(p.instance, []).append(p)
        origin = np.zeros(3)
        samples = {
            i: np.concatenate([_fill_primitive(p, origin, 0.02) for p in ps])
            for i, ps in by_inst.items()
        }
        room = scene.spec.room
        for i, pts in samples.items():
            assert len(pts) > 0
            # inside the room, above the floor
            assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= room.width
            assert pts[:, 1].min() >= 0 and pts[:, 1].max() <= room.depth
            assert pts[:, 2].min() >= 0
            if room.cutout is not None:  # nothing inside the solid corner of an L room
                x0, y0, x1, y1 = room.cutout
                inside = (pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (pts[:, 1] < y1)
                assert not inside.any()
            for j, ps in by_inst.items():
                if j == i:
                    continue
                for p in ps:
                    assert not p.contains(pts).any(), f"instances {i} and {j} intersect"


def test_every_object_reachable_from_door(scenes):
    for scene in scenes:
        fs = scene.free
        start = scene.start_pose()[:2]
        polys = [o.footprint() for o in scene.spec.objects]
        room = scene.spec.room
        if room.cutout is not None:
            polys.append(room.cutout_polygon())
        for inst in scene.instances:
            if inst.name in ("door", "window"):
                continue
            approaches = [a for a in inst.affordances if a.kind == "approach"]
            assert approaches, f"{inst.name} #{inst.instance_id} has no reachable approach"
            path = fs.path(start, approaches[0].position[:2])
            # reference check: every path point keeps the body radius from every footprint
            # and from the walls (the exact end points may sit up to half a cell diagonal
            # off their cell centres)
            dense = np.concatenate(
                [np.linspace(a, b, 5) for a, b in zip(path[:-1], path[1:])] or [path]
            )
            for poly in polys:
                assert _poly_dist(dense, poly).min() >= fs.body_radius - 0.75 * fs.resolution
            wall = np.minimum.reduce(
                [dense[:, 0], room.width - dense[:, 0], dense[:, 1], room.depth - dense[:, 1]]
            )
            assert wall.min() >= fs.body_radius - 0.75 * fs.resolution


def test_affordances_are_on_the_objects(scenes):
    for scene in scenes:
        for inst in scene.instances:
            for a in inst.affordances:
                if a.kind in ("sit", "lie"):
                    assert np.all(a.position >= inst.bbox_min - 1e-6)
                    assert np.all(a.position <= inst.bbox_max + 1e-6)
                    assert 0.3 < a.position[2] < 0.8  # seat / mattress heights
                elif a.kind == "approach":
                    assert a.position[2] == 0.0


def test_l_shaped_room(scenes):
    room = scenes[-1].spec.room
    assert room.cutout is not None
    x0, y0, x1, y1 = room.cutout
    assert 0.25 * room.width < x1 - x0 < 0.5 * room.width
    assert (x0 == 0 or x1 == pytest.approx(room.width)) and (
        y0 == 0 or y1 == pytest.approx(room.depth)
    )
    for op in [room.door, *room.windows]:  # openings stay on visible walls
        cov = room.covered(op.wall)
        assert (
            cov is None or op.offset + op.width / 2 <= cov[0] or op.offset - op.width / 2 >= cov[1]
        )
    back = SceneSpec.from_dict(scenes[-1].spec.to_dict())
    assert back.room.cutout == pytest.approx(room.cutout, abs=1e-6)


def test_same_seed_same_scene_other_seed_differs():
    a = generate_spec("a bedroom with a bed and a wardrobe", seed=7).to_dict()
    b = generate_spec("a bedroom with a bed and a wardrobe", seed=7).to_dict()
    c = generate_spec("a bedroom with a bed and a wardrobe", seed=8).to_dict()
    assert a == b
    assert a != c


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_spec_round_trip(tmp_path, suffix):
    spec = generate_spec("a living room with a sofa and a coffee table", seed=3)
    spec.save(tmp_path / f"s{suffix}")
    back = SceneSpec.load(tmp_path / f"s{suffix}")
    assert back.to_dict() == spec.to_dict()
    m0, m1 = Scene(spec).mesh(), Scene(back).mesh()
    np.testing.assert_allclose(m0.vertices, m1.vertices, atol=1e-5)
    np.testing.assert_array_equal(m0.vertex_label, m1.vertex_label)


def test_bad_specs_and_impossible_layouts(tmp_path):
    with pytest.raises(ValueError, match="lacks 'size'"):
        SceneSpec.from_dict(
            {"room": {"width": 3, "depth": 3}, "objects": [{"class": "bed", "instance_id": 1,
                                                             "position": [1, 1], "yaw": 0}]}
        )  # fmt: skip
    with pytest.raises(ValueError, match="unknown object class 'spaceship'"):
        SceneSpec.from_dict(
            {"room": {"width": 3, "depth": 3}, "objects": [{"class": "spaceship", "instance_id": 1,
             "position": [1, 1], "yaw": 0, "size": [1, 1, 1]}]}
        )  # fmt: skip
    (tmp_path / "bad.yaml").write_text("room: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        SceneSpec.load(tmp_path / "bad.yaml")
    with pytest.raises(LayoutError, match="no valid layout.*larger room"):
        generate_spec("a 2 x 2 m room with a bed, two wardrobes and a sofa", seed=0)
