"""Offscreen pictures of what RViz would show: the SSO occupancy, object boxes and names,
the humans' bodies, planned and executed paths — a PNG and a short GIF, on the CPU.

matplotlib's Agg backend (no display, no GPU, no Vulkan) draws a 3-D view (or a top-down
one); Pillow writes the GIF. Inputs are plain arrays, so pictures can be made from a
live :class:`~ssomotion_ros.sso.scene.SceneModel` and motion windows, or from a recorded
bag. Frames: map (REP-103: x forward, y left, z up), metres.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssomotion_ros.config_fields import doc_field

log = logging.getLogger(__name__)

#: Body colours per agent, in order (RGB 0-1); the same as the RViz markers.
BODY_COLORS = (
    (0.90, 0.45, 0.15),
    (0.20, 0.55, 0.90),
    (0.30, 0.75, 0.35),
    (0.80, 0.30, 0.70),
    (0.95, 0.80, 0.20),
    (0.40, 0.80, 0.85),
)


@dataclass
class RenderConfig:
    """How pictures look."""

    width_px: int = doc_field(900, "Picture width, pixels.")
    height_px: int = doc_field(640, "Picture height, pixels.")
    view: str = doc_field("perspective", "'perspective' (3-D, like RViz's orbit) or 'top'.")
    elev: float = doc_field(42.0, "Camera elevation of the perspective view, degrees.")
    azim: float = doc_field(-62.0, "Camera azimuth of the perspective view, degrees.")
    max_points: int = doc_field(9000, "Occupied voxels drawn (evenly subsampled).")
    point_size: float = doc_field(3.0, "Size of an occupancy point, points^2.")
    cut_height: float = doc_field(1.8, "Voxels above this height (metres) are left out (cutaway).")
    body: str = doc_field("mesh", "Bodies as 'mesh' (decimated mannequin) or 'skeleton'.")
    color_by: str = doc_field("label", "Occupancy colours: 'label' (palette) or 'rgb' (fused).")
    mesh_faces: int = doc_field(300, "Triangles of the body mesh.")
    gif_fps: float = doc_field(10.0, "GIF frames per second (motion is resampled from 30 fps).")

    def __post_init__(self) -> None:
        if self.view not in ("perspective", "top"):
            raise ValueError(f"view must be 'perspective' or 'top', got {self.view!r}")
        if self.color_by not in ("label", "rgb"):
            raise ValueError(f"color_by must be 'label' or 'rgb', got {self.color_by!r}")
        if self.body not in ("mesh", "skeleton"):
            raise ValueError(f"body must be 'mesh' or 'skeleton', got {self.body!r}")
        if self.width_px < 64 or self.height_px < 64:
            raise ValueError("width_px and height_px must be >= 64")
        if not 0 < self.gif_fps <= 30:
            raise ValueError(f"gif_fps must be in (0, 30], got {self.gif_fps}")
        if self.max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {self.max_points}")


@dataclass
class SceneView:
    """The static part of a picture (see :meth:`from_scene_model`).

    points: (N, 3) float32 voxel centres, metres, map frame. colors: (N, 3) float32 RGB
    in [0, 1]. boxes: list of (name, bbox_min (3,), bbox_max (3,)).
    """

    points: np.ndarray
    colors: np.ndarray
    boxes: list

    @classmethod
    def from_scene_model(cls, scene, config: RenderConfig | None = None) -> SceneView:
        """From a SceneModel: its occupied voxels (subsampled, cut away above
        ``cut_height`` over the floor) and its instances' boxes (walls, floor and ceiling
        are not boxed)."""
        cfg = config or RenderConfig()
        centres, labels, rgb, inst = scene.occupied_voxels()
        if cfg.color_by == "label":
            rgb = scene.vocabulary.colors_of(labels)
        return cls.from_arrays(
            centres,
            rgb,
            [(i.name, i.bbox_min, i.bbox_max) for i in scene.instances()],
            cfg,
            priority=inst > 0,
        )

    @classmethod
    def from_arrays(
        cls, centres, rgb, boxes, config: RenderConfig | None = None, priority=None
    ) -> SceneView:
        """centres: (M, 3) metres; rgb: (M, 3) uint8 or floats in [0, 1]; boxes: list of
        (name, bbox_min, bbox_max); priority: optional (M,) bool, voxels kept first when
        subsampling (objects rather than floor and walls)."""
        cfg = config or RenderConfig()
        c = np.asarray(centres, np.float32).reshape(-1, 3)
        col = np.asarray(rgb).reshape(-1, 3)
        if len(col) != len(c):
            raise ValueError(f"rgb has {len(col)} rows, centres {len(c)}: give one colour each")
        col = col.astype(np.float32) / (255.0 if col.dtype == np.uint8 or col.max() > 1 else 1.0)
        keep = c[:, 2] <= cfg.cut_height
        pri = np.zeros(len(keep), bool) if priority is None else np.asarray(priority, bool)
        c, col, pri = c[keep], col[keep], pri[keep]
        if len(c) > cfg.max_points:
            rng = np.random.default_rng(0)  # the same picture every time
            first = np.flatnonzero(pri)
            first = first[rng.permutation(len(first))[: cfg.max_points // 2]]
            rest = np.setdiff1d(np.arange(len(c)), first)
            rest = rest[rng.permutation(len(rest))[: cfg.max_points - len(first)]]
            idx = np.sort(np.concatenate([first, rest]))
            c, col = c[idx], col[idx]
        skip = {"wall", "floor", "ceiling"}
        keep_boxes = [
            (str(n), np.asarray(lo, float), np.asarray(hi, float))
            for n, lo, hi in boxes
            if str(n) not in skip
        ]
        return cls(c, col, keep_boxes)


def _box_edges(lo, hi) -> np.ndarray:
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    v = np.array(
        [[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0]]
        + [[x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]]
    )
    e = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4)]
    e += [(0, 4), (1, 5), (2, 6), (3, 7)]
    return np.array([[v[a], v[b]] for a, b in e])


class SceneRenderer:
    """Draws a :class:`SceneView` with bodies and paths (matplotlib Agg, CPU)."""

    def __init__(self, view: SceneView, config: RenderConfig | None = None):
        import matplotlib

        matplotlib.use("Agg")
        self.view = view
        self.config = config or RenderConfig()
        self._mesh = None
        lo = view.points.min(0) if len(view.points) else np.zeros(3)
        hi = view.points.max(0) if len(view.points) else np.ones(3)
        self.bounds = (lo.astype(float), np.maximum(hi, lo + 1e-3).astype(float))

    @property
    def mesh(self):
        if self._mesh is None:
            from ssomotion_ros.viz.body_mesh import shared_body_mesh

            self._mesh = shared_body_mesh(self.config.mesh_faces)
        return self._mesh

    # ------------------------------------------------------------------ figure
    def _figure(self):
        import matplotlib.pyplot as plt
        from mpl_toolkits.mplot3d.art3d import Line3DCollection

        cfg = self.config
        fig = plt.figure(figsize=(cfg.width_px / 100, cfg.height_px / 100), dpi=100)
        ax = fig.add_axes([0, 0, 1, 1], projection="3d")
        lo, hi = self.bounds
        span = hi - lo
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_zlim(min(lo[2], 0.0), max(hi[2], 2.0))
        ax.set_box_aspect((span[0], span[1], max(hi[2], 2.0) - min(lo[2], 0.0)))
        if cfg.view == "top":
            ax.view_init(elev=90, azim=-90)
        else:
            ax.view_init(elev=cfg.elev, azim=cfg.azim)
        ax.set_axis_off()
        v = self.view
        if len(v.points):
            ax.scatter(
                *v.points.T, c=v.colors, s=cfg.point_size, marker="s", lw=0, depthshade=False
            )
        if v.boxes:
            segs = np.concatenate([_box_edges(lo_, hi_) for _, lo_, hi_ in v.boxes])
            ax.add_collection3d(Line3DCollection(segs, colors=(0.1, 0.1, 0.1, 0.7), lw=0.8))
            for name, lo_, hi_ in v.boxes:
                c = (np.asarray(lo_) + np.asarray(hi_)) / 2
                ax.text(c[0], c[1], hi_[2] + 0.12, name, fontsize=7, ha="center", zorder=10)
        return fig, ax

    def _draw_dynamic(self, ax, bodies, planned, executed, labels) -> list:
        from mpl_toolkits.mplot3d.art3d import Poly3DCollection

        artists = []
        for k, agent in enumerate(sorted(set(bodies) | set(planned) | set(executed))):
            rgb = BODY_COLORS[k % len(BODY_COLORS)]
            if agent in planned and len(planned[agent]):
                xy = np.asarray(planned[agent], float).reshape(-1, 2)
                artists += ax.plot(xy[:, 0], xy[:, 1], 0.02, "--", color=rgb, lw=1.2)
            if agent in executed and len(executed[agent]):
                xy = np.asarray(executed[agent], float).reshape(-1, 2)
                artists += ax.plot(xy[:, 0], xy[:, 1], 0.03, "-", color=rgb, lw=2.0)
            if agent not in bodies:
                continue
            params = np.asarray(bodies[agent], np.float64).reshape(69)
            if self.config.body == "mesh":
                v = self.mesh.pose(params)
                tri = v[self.mesh.faces]
                # light from above: shade by the triangles' normal z
                n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
                n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
                shade = 0.55 + 0.45 * np.abs(n[:, 2:3])
                col = np.clip(np.asarray(rgb)[None] * shade, 0, 1)
                pc = Poly3DCollection(tri, facecolors=col, edgecolors="none")
                ax.add_collection3d(pc)
                artists.append(pc)
                head = v[:, 2].max()
            else:
                from ssomotion_ros.body.skeleton import PARENTS, forward_kinematics_np

                j = forward_kinematics_np(params)
                for c in range(1, len(j)):
                    p = int(PARENTS[c])
                    artists += ax.plot(*np.stack([j[p], j[c]]).T, "-", color=rgb, lw=2.5)
                head = j[:, 2].max()
            pel = self._pelvis(params)
            text = f"{agent}: {labels[agent]}" if labels.get(agent) else agent
            text = text if len(text) <= 48 else text[:45] + "..."
            artists.append(
                ax.text(pel[0], pel[1], head + 0.3, text, fontsize=7, color=rgb, ha="center")
            )
        return artists

    @staticmethod
    def _pelvis(params: np.ndarray) -> np.ndarray:
        from ssomotion_ros.body.skeleton import default_skeleton

        return default_skeleton().offsets[0] + np.asarray(params)[..., 66:69]

    @staticmethod
    def _to_image(fig):
        from PIL import Image

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        buf.seek(0)
        return Image.open(buf).convert("RGB")

    # ------------------------------------------------------------------ outputs
    def render_png(
        self,
        path: str | Path,
        bodies: dict | None = None,
        planned: dict | None = None,
        executed: dict | None = None,
        labels: dict | None = None,
    ) -> Path:
        """One picture.

        bodies: {agent: (69,) body parameters}; planned / executed: {agent: (K, 2) metres};
        labels: {agent: instruction text}. Returns the written path.
        """
        import matplotlib.pyplot as plt

        fig, ax = self._figure()
        try:
            self._draw_dynamic(ax, bodies or {}, planned or {}, executed or {}, labels or {})
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=100)
        finally:
            plt.close(fig)
        return path

    def render_gif(
        self,
        path: str | Path,
        tracks: dict,
        planned: dict | None = None,
        labels: dict | None = None,
        fps: float = 30.0,
        progress: bool = True,
    ) -> Path:
        """An animated GIF of the motion.

        tracks: {agent: (T, 69) body parameters at ``fps``} (shorter tracks hold their last
        frame). planned: {agent: (K, 2)}; labels: {agent: text}. The GIF plays at
        ``config.gif_fps`` (frames are resampled); the executed path grows as it plays.
        """
        import matplotlib.pyplot as plt
        from tqdm import tqdm

        if not tracks:
            raise ValueError("tracks is empty: give {agent: (T, 69) parameters}")
        tr = {a: np.asarray(p, np.float64).reshape(-1, 69) for a, p in tracks.items()}
        n = max(len(p) for p in tr.values())
        step = fps / self.config.gif_fps
        idx = np.unique(np.round(np.arange(0, n, step)).astype(int).clip(0, n - 1))
        pel = {a: self._pelvis(p) for a, p in tr.items()}
        fig, ax = self._figure()
        images = []
        try:
            for k in tqdm(idx, desc="GIF frames", disable=not progress):
                bodies = {a: p[min(k, len(p) - 1)] for a, p in tr.items()}
                executed = {a: pv[: min(k, len(pv) - 1) + 1, :2] for a, pv in pel.items()}
                artists = self._draw_dynamic(ax, bodies, planned or {}, executed, labels or {})
                images.append(self._to_image(fig))
                for art in artists:
                    art.remove()
        finally:
            plt.close(fig)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        images[0].save(
            path,
            save_all=True,
            append_images=images[1:],
            duration=int(round(1000 / self.config.gif_fps)),
            loop=0,
            optimize=False,
        )
        log.info("wrote %s (%d frames)", path, len(images))
        return path


def tracks_from_windows(windows) -> dict:
    """{agent: (T, 69) float32} from MotionWindows of one or more agents, in the order
    they were made (each agent's requests one after another)."""
    per: dict[str, list] = {}
    for w in windows:
        per.setdefault(w.agent_id, []).append(w.params)
    return {a: np.concatenate(ps) for a, ps in per.items()}


def render_scene_and_motion(
    scene,
    windows,
    png: str | Path,
    gif: str | Path | None = None,
    config: RenderConfig | None = None,
    labels: dict | None = None,
):
    """PNG of the last frame (with planned and executed paths) and optionally a GIF of
    ``windows`` (MotionWindows) in ``scene`` (a SceneModel). Returns (png, gif or None)."""
    cfg = config or RenderConfig()
    r = SceneRenderer(SceneView.from_scene_model(scene, cfg), cfg)
    tracks = tracks_from_windows(windows)
    planned = {}
    for w in windows:
        if len(w.planned_path):
            planned[w.agent_id] = w.planned_path
    pel = {a: r._pelvis(p)[:, :2] for a, p in tracks.items()}
    out_png = r.render_png(png, {a: p[-1] for a, p in tracks.items()}, planned, pel, labels)
    out_gif = r.render_gif(gif, tracks, planned, labels) if gif is not None else None
    return out_png, out_gif
