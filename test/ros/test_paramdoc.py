"""docs/parameters.md is what the nodes declare, and every parameter is described."""

from pathlib import Path

from ssomotion_ros.ros.paramdoc import markdown, node_parameters

REPO = Path(__file__).resolve().parents[2]


def test_every_parameter_has_a_description():
    missing = [
        f"{node}:{name}"
        for node, _plugin, rows in node_parameters()
        for name, _default, desc in rows
        if not desc.strip()
    ]
    assert not missing, f"parameters without a description: {missing}"


def test_docs_parameters_md_is_up_to_date():
    current = (REPO / "docs" / "parameters.md").read_text()
    assert current == markdown(), (
        "docs/parameters.md is out of date: run "
        "'.venv/bin/python -m ssomotion_ros.ros.paramdoc > docs/parameters.md'"
    )
