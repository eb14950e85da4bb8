"""Objects shared by the nodes of one process (see DESIGN.md: one SceneModel per process)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class SharedState:
    """What nodes composed in one process share.

    scene_model: the process's SceneModel (created by the mapper node, or by a node
        running alone), or None before any scene exists.
    """

    scene_model: object | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def scene_ready(self) -> bool:
        """True once a scene holds fused data."""
        scene = self.scene_model
        if scene is None:
            return False
        empty = getattr(scene, "is_empty", None)
        return not empty() if callable(empty) else True
