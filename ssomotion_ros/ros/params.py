"""Declare a node's ROS parameters from a config dataclass and read them back."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from ssomotion_ros.config_fields import field_docs

T = TypeVar("T")


def declare_config(node: Node, cls: type[T], prefix: str = "") -> T:
    """Declare one ROS parameter per field of ``cls`` (with its doc as description),
    then build ``cls`` from the parameter values.

    Raises ValueError (with the parameter names) when the values do not validate, so the
    node fails at start-up with a message that says which parameter to fix.
    """
    docs = field_docs(cls)
    defaults = cls()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        default = getattr(defaults, f.name)
        if default is None or isinstance(default, (tuple, dict)):
            # Optional/complex fields are not exposed as ROS parameters.
            continue
        if isinstance(default, list):
            if not default:
                continue
            default = list(default)
        name = prefix + f.name
        desc = ParameterDescriptor(description=docs.get(f.name, ""))
        node.declare_parameter(name, default, desc)
        value = node.get_parameter(name).value
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        values[f.name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid parameters for node {node.get_name()}: {exc}") from exc
