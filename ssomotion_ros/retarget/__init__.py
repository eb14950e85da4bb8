"""Retargeting of synthesized human motion onto avatar and robot skeletons from URDF.

Entry points:

- :func:`load_target` (URDF path or the generated avatar -> ready :class:`Retargeter`);
- :meth:`Retargeter.retarget` (ours) and :meth:`Retargeter.copy` (baseline) on a
  :class:`SourceMotion` from :func:`prepare_source`;
- :func:`~ssomotion_ros.retarget.metrics.evaluate` for the metrics;
- :mod:`~ssomotion_ros.retarget.evaluation` for ``ssomotion eval --suite retarget``.

See ``docs/retarget.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ssomotion_ros.retarget.core import (
    RetargetConfig,
    Retargeter,
    RetargetResult,
    SourceMotion,
    prepare_source,
)

__all__ = [
    "RetargetConfig",
    "Retargeter",
    "RetargetResult",
    "SourceMotion",
    "prepare_source",
    "load_target",
    "find_override",
    "CONFIG_DIR",
]

log = logging.getLogger(__name__)

#: Shipped YAML overrides (``config/retarget`` of the source tree).
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "retarget"


def find_override(urdf_path: str | Path, config_dir: str | Path | None = None) -> Path | None:
    """The shipped YAML override whose ``match`` key equals the URDF's file name, if any."""
    import yaml

    folder = Path(config_dir) if config_dir is not None else CONFIG_DIR
    if not folder.is_dir():
        return None
    name = Path(urdf_path).name
    for f in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(f.read_text()) or {}
        except yaml.YAMLError:
            log.warning("unreadable override %s skipped", f)
            continue
        if isinstance(data, dict) and data.get("match") == name:
            return f
    return None


def load_target(
    urdf_path: str | Path | None = None,
    override: str | Path | dict | None = None,
    config: RetargetConfig | None = None,
) -> Retargeter:
    """A :class:`Retargeter` for a URDF file (``None`` or ``""``: the generated avatar).

    override: YAML path or dict (see :mod:`~ssomotion_ros.retarget.mapping`); default: the
    shipped file in ``config/retarget`` whose ``match`` is the URDF's file name.
    Raises FileNotFoundError / ValueError with the reason (missing file, malformed XML,
    no joints, joints that cannot be mapped)."""
    from ssomotion_ros.retarget.avatar import avatar_urdf
    from ssomotion_ros.retarget.mapping import auto_map
    from ssomotion_ros.retarget.urdf import load_urdf, load_urdf_string

    if urdf_path in (None, ""):
        robot = load_urdf_string(avatar_urdf())
    else:
        robot = load_urdf(urdf_path)
        if override is None:
            override = find_override(urdf_path)
    return Retargeter(robot, auto_map(robot, override), config)
