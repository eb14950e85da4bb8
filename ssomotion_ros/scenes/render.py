"""Top-down pictures of generated scenes (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ssomotion_ros.scenes.scene import Scene


def draw_topdown(
    scene: Scene,
    path: str | Path,
    path_xy: np.ndarray | None = None,
    dpi: int = 110,
    markers: list[tuple[np.ndarray, str]] | None = None,
) -> None:
    """Write a PNG of the layout seen from above (map frame, x right, y up, metres).

    Shows walls, the door, windows, each object's footprint in its palette colour with
    ``name #instance``, sit (triangles pointing the facing) / lie (rectangles) targets,
    approach points (dots), the reachable floor (light shading) and, optionally, a
    path ``path_xy`` (K, 2) metres and labelled ``markers`` [(xy (2,), text)].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    room = scene.spec.room
    lut = scene.labels.lut() / 255.0
    fig_w = 7.0
    fig, ax = plt.subplots(figsize=(fig_w, fig_w * (room.depth + 1) / (room.width + 1)))
    fs = scene.free
    ext = [fs.origin[0], fs.origin[0] + fs.reachable.shape[0] * fs.resolution,
           fs.origin[1], fs.origin[1] + fs.reachable.shape[1] * fs.resolution]  # fmt: skip
    ax.imshow(fs.reachable.T, origin="lower", extent=ext, cmap="Greens", alpha=0.18, vmin=0, vmax=1)
    t = room.wall_thickness
    for lo, hi in _wall_boxes(scene):
        ax.add_patch(Rectangle(lo, hi[0] - lo[0], hi[1] - lo[1], color="0.35"))
    for inst in scene.instances:
        if inst.name in ("door", "window"):
            lo, hi = inst.bbox_min, inst.bbox_max
            ax.add_patch(Rectangle(lo[:2], hi[0] - lo[0], hi[1] - lo[1], color=lut[inst.label]))
            ax.text(*inst.centroid[:2], inst.name, fontsize=6, ha="center", va="center")
    for obj in scene.spec.objects:
        lab = scene.labels.id_of(obj.name)
        ax.add_patch(Polygon(obj.footprint(), closed=True, fc=lut[lab], ec="k", lw=0.8, alpha=0.85))
        front = obj.to_map(np.array([obj.size[0] / 2, 0.0, 0.0]))[:2]
        ax.plot([obj.position[0], front[0]], [obj.position[1], front[1]], "k-", lw=0.6)
        ax.text(obj.position[0], obj.position[1], f"{obj.name}\n#{obj.instance_id}", fontsize=6,
                ha="center", va="center")  # fmt: skip
    for inst in scene.instances:
        for a in inst.affordances:
            p = a.position
            if a.kind == "approach":
                ax.plot(p[0], p[1], "o", ms=2.5, color="tab:green")
            elif a.kind == "sit":
                ax.plot(p[0], p[1], marker=(3, 0, np.degrees(a.facing) - 90), ms=6, color="tab:red")
            elif a.kind == "lie":
                c, s = np.cos(a.facing), np.sin(a.facing)
                e = a.extent
                loc = np.array([[e[0], e[1]], [-e[0], e[1]], [-e[0], -e[1]], [e[0], -e[1]]])
                poly = loc @ np.array([[c, s], [-s, c]]) + p[:2]
                ax.add_patch(
                    Polygon(poly, closed=True, fill=False, ec="tab:purple", ls="--", lw=0.8)
                )
    if path_xy is not None and len(path_xy):
        pxy = np.asarray(path_xy)
        ax.plot(pxy[:, 0], pxy[:, 1], "-", color="tab:blue", lw=1.2)
    for xy, text in markers or []:
        ax.plot(xy[0], xy[1], "*", color="tab:orange", ms=8)
        ax.text(xy[0], xy[1] + 0.1, text, fontsize=6, ha="center")
    ax.set_xlim(-t - 0.2, room.width + t + 0.2)
    ax.set_ylim(-t - 0.2, room.depth + t + 0.2)
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    title = scene.spec.prompt or "scene"
    ax.set_title(f"{title} (seed {scene.spec.seed})", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _wall_boxes(scene: Scene):
    wall = scene.labels.id_of("wall")
    for p in scene.primitives:
        if p.label == wall and p.part.center[2] - p.part.size[2] / 2 < 0.5:
            c, s = np.asarray(p.part.center), np.asarray(p.part.size)
            yield (c[:2] - s[:2] / 2), (c[:2] + s[:2] / 2)
