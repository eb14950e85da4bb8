"""Data types shared between the SSO and its consumers (language, motion, planner).

These are the contracts other modules code against; extend them, do not break them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Order of the five bi-directional tri-plane maps along the ``maps`` axis.
TRIPLANE_ORDER: tuple[str, ...] = ("x+", "x-", "y+", "y-", "z")


@dataclass
class Affordance:
    """Where and how a body can use an object (all in the map frame, REP-103).

    kind: ``"sit"``, ``"lie"`` or ``"approach"``.
    position: (3,) float, metres: the point of contact (seat centre at seat height,
        lying surface centre) or the approach point on the floor.
    facing: yaw in radians the body faces while using it (sitting: facing away
        from the back rest, i.e. the seat's front direction).
    extent: (2,) float, metres: half sizes of the usable surface (along, across).
    """

    kind: str
    position: np.ndarray
    facing: float = 0.0
    extent: np.ndarray = field(default_factory=lambda: np.zeros(2))


@dataclass
class SceneInstance:
    """One object instance in the scene (map frame, metres).

    instance_id: unique id within the scene.
    label: integer class id in the scene's vocabulary.
    name: class name (e.g. ``"chair"``).
    centroid: (3,) float, metres.
    bbox_min, bbox_max: (3,) float, metres, axis-aligned bounds.
    yaw: radians, orientation of the object's front (0 when unknown).
    affordances: usable surfaces/approach points (may be empty).
    num_voxels: occupied voxels supporting it (0 for ground-truth objects).
    """

    instance_id: int
    label: int
    name: str
    centroid: np.ndarray
    bbox_min: np.ndarray
    bbox_max: np.ndarray
    yaw: float = 0.0
    affordances: list[Affordance] = field(default_factory=list)
    num_voxels: int = 0


@dataclass
class TriPlanes:
    """Local bi-directional tri-planes for a batch of B agents (torch tensors).

    All maps share one padded image size S x S (S = the largest local-grid side,
    101 by default); pixels outside a map's true extent have ``mask`` False.
    Maps are ordered as :data:`TRIPLANE_ORDER`. Body frame: x forward, y left, z up,
    origin at the agent's (x, y) on the floor height of the crop centre.

    depth: (B, 5, S, S) float32, metres from the centre plane to the nearest occupied
        voxel along the projection direction; 0 where ``mask`` is False.
    rgb: (B, 5, 3, S, S) float32 in [0, 1].
    semantic: (B, 5, F, S, S) float32, the F-d (16 by default) reduced text feature of
        the nearest voxel's label; 0 where ``mask`` is False.
    label: (B, 5, S, S) int64, the nearest voxel's label id; -1 where ``mask`` is False.
    mask: (B, 5, S, S) bool, True where an occupied voxel was found.

    Image layout (row index first; see :mod:`ssomotion_ros.sso.triplane`): x+/x- maps
    ``[k, j]`` (row = z index from the bottom, column = y index from -y), y+/y- maps
    ``[k, i]``, the z map ``[j, i]``. ``rgb`` and ``semantic`` may be channels-last views.
    """

    depth: object
    rgb: object
    semantic: object
    label: object
    mask: object
