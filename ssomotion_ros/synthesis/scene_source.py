"""SceneModels for a motion node running alone (no mapper): from a prompt or a saved map.

The mapper node normally owns the process's SceneModel (``SharedState.scene_model``).
When the motion node runs alone it can build one itself: a room generated from a text
prompt (:func:`ssomotion_ros.scenes.scene.generate_scene`) whose semantic occupancy is
fused into a SceneModel as a labelled cloud of voxel centres, or a map saved with
``SceneModel.save``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def occupancy_cloud(scene, voxel_size: float = 0.04) -> np.ndarray:
    """The generated scene's semantic occupancy as a structured cloud.

    scene: :class:`ssomotion_ros.scenes.scene.Scene`. voxel_size: metres (> 0).
    Returns (M,) structured array with fields x, y, z (float32, metres, map frame: the
    voxel centres), label, instance (uint32; the scenes library's label ids).
    """
    occ = scene.occupancy(voxel_size)
    c = occ.centers()
    cloud = np.zeros(
        len(c),
        dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("label", "u4"), ("instance", "u4")],
    )
    cloud["x"], cloud["y"], cloud["z"] = c[:, 0], c[:, 1], c[:, 2]
    cloud["label"] = occ.label
    cloud["instance"] = occ.instance
    return cloud


def scene_model_from_generated(scene, voxel_size: float = 0.04):
    """A SceneModel holding the fused occupancy of a generated scene (its vocabulary is
    the scenes library's label CSV, so instance names match)."""
    from ssomotion_ros.scenes.labels import DEFAULT_LABELS_CSV
    from ssomotion_ros.sso.config import SceneModelConfig
    from ssomotion_ros.sso.scene import SceneModel

    cfg = SceneModelConfig(vocabulary=str(DEFAULT_LABELS_CSV))
    cfg.fusion.voxel_size = float(voxel_size)
    model = SceneModel(cfg)
    model.fuse(occupancy_cloud(scene, voxel_size))
    return model


def scene_model_from_prompt(prompt: str, seed: int = 0, voxel_size: float = 0.04):
    """(SceneModel, Scene) for a room generated from ``prompt`` (seeded)."""
    from ssomotion_ros.scenes.scene import generate_scene

    if not prompt.strip():
        raise ValueError("scene prompt is empty: describe a room, e.g. 'a bedroom with a bed'")
    scene = generate_scene(prompt, seed=seed)
    log.info("generated room from %r (seed %d): %d objects", prompt, seed, len(scene.instances))
    return scene_model_from_generated(scene, voxel_size), scene


def scene_model_from_file(path: str | Path):
    """A SceneModel loaded from ``SceneModel.save`` output; ValueError if missing."""
    from ssomotion_ros.sso.scene import SceneModel

    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"scene file {p} does not exist: give a map saved by SceneModel.save")
    return SceneModel.from_file(p)
