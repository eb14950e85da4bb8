import pytest

from ssomotion_ros.graph_spec import default_graph_path, load_graph


def test_default_graph_loads():
    g = load_graph(default_graph_path())
    assert [n.name for n in g.nodes] == ["ssomotion_scene", "ssomotion_mapper", "ssomotion_motion"]
    assert g.node("ssomotion_motion").executable == "motion_node"
    params = g.params_file_dict()
    assert params["ssomotion_motion"]["ros__parameters"]["default_agent"] == "human_0"
    with pytest.raises(KeyError, match="no node 'nope'"):
        g.node("nope")


@pytest.mark.parametrize(
    "text, msg",
    [
        ("[]", "top-level 'nodes:' list"),
        ("nodes: []", "has no nodes"),
        ("nodes: [{name: a, executable: e, plugin: nocolon}]", "must be 'module:Class'"),
        ("nodes: [{name: a, executable: e, plugin: m:C, bogus: 1}]", "unknown keys"),
        (
            "nodes: [{name: a, executable: e, plugin: m:C}, {name: a, executable: e, plugin: m:C}]",
            "appears twice",
        ),
        ("nodes: [{name: 'bad name', executable: e, plugin: m:C}]", "not a valid ROS name"),
        ("nodes: [", "not valid YAML"),
    ],
)
def test_bad_graphs(tmp_path, text, msg):
    p = tmp_path / "g.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=msg):
        load_graph(p)


def test_missing_graph(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_graph(tmp_path / "nope.yaml")
