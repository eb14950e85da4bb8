import math

import numpy as np
import pytest

from ssomotion_ros.sso.config import InstanceConfig
from ssomotion_ros.sso.instances import connected_groups, extract_instances
from ssomotion_ros.sso.scene import SceneModel
from ssomotion_ros.sso.synthetic import room_cloud
from ssomotion_ros.sso.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def room_model():
    m = SceneModel()
    m.fuse(room_cloud(num_points=300_000), stamp=0.0)
    return m


def _by_name(insts, name):
    found = [i for i in insts if i.name == name]
    assert len(found) == 1, [i.name for i in insts]
    return found[0]


def test_instances_from_instance_ids(room_model):
    insts = room_model.instances()
    assert {i.name for i in insts} == {"chair", "table", "sofa", "bed"}  # no floor/wall
    chair = _by_name(insts, "chair")
    assert chair.instance_id == 10
    assert np.allclose(chair.bbox_min[:2], [1.76, 1.3], atol=0.05)
    assert np.allclose(chair.bbox_max, [2.2, 1.7, 0.95], atol=0.06)
    sit = [a for a in chair.affordances if a.kind == "sit"][0]
    assert sit.position[2] == pytest.approx(0.46, abs=0.03)
    assert np.allclose(sit.position[:2], [2.0, 1.5], atol=0.06)
    assert sit.facing == pytest.approx(0.0, abs=0.15)  # back rest on -x: faces +x
    sofa = _by_name(insts, "sofa")
    s = [a for a in sofa.affordances if a.kind == "sit"][0]
    assert s.position[2] == pytest.approx(0.42, abs=0.03)
    assert s.facing == pytest.approx(-math.pi / 2, abs=0.15)  # back on +y: faces -y
    assert any(a.kind == "lie" for a in sofa.affordances)
    bed = _by_name(insts, "bed")
    assert [a for a in bed.affordances if a.kind == "lie"][0].position[2] == pytest.approx(
        0.55, abs=0.03
    )
    table = _by_name(insts, "table")
    assert not any(a.kind == "sit" for a in table.affordances)
    assert room_model.instances() is insts  # cached per version


def test_connected_components_without_instance_ids():
    # two separate blobs of label 5, one touching blob of label 6
    a = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 1]])
    b = np.array([[10, 0, 0], [10, 0, 1]])
    c = np.array([[2, 0, 0], [3, 0, 0]])
    coords = np.concatenate([a, b, c])
    labels = np.array([5, 5, 5, 5, 5, 6, 6])
    g = connected_groups(coords, labels, 26)
    assert g[0] == g[1] == g[2] and g[3] == g[4] and g[5] == g[6]
    assert len({g[0], g[3], g[5]}) == 3
    g6 = connected_groups(coords, labels, 6)
    assert g6[2] != g6[1]  # diagonal neighbour is not 6-connected
    voc = Vocabulary.default()
    insts = extract_instances(
        coords, labels, np.full(7, -1), 0.1, voc, InstanceConfig(min_voxels=2)
    )
    assert sorted(i.num_voxels for i in insts) == [2, 2, 3]
    with pytest.raises(ValueError):
        connected_groups(coords, labels, 7)


def test_approach_points_lie_on_walkable_floor(room_model):
    free, origin, res = room_model.walkable_grid(room_model.config.maps.body_radius)
    table = _by_name(room_model.instances(), "table")
    apps = [a for a in table.affordances if a.kind == "approach"]
    assert len(apps) >= 2
    for a in apps:
        i, j = int((a.position[1] - origin[1]) // res), int((a.position[0] - origin[0]) // res)
        assert free[i, j], a.position
        # facing the table: the table centre lies ahead
        d = (table.bbox_min + table.bbox_max)[:2] / 2 - a.position[:2]
        assert np.cos(np.arctan2(d[1], d[0]) - a.facing) > 0.7
