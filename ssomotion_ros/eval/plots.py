"""Top-down plots of synthesized motion in a scene (matplotlib, Agg backend).

One PNG per case: obstacles seen from above, the planned path, every method's pelvis
trajectory (one line per sample), the frames whose body penetrates obstacles marked with
red crosses, start (circle) and goal (star).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Line colour per method name.
METHOD_COLORS = {"learned": "tab:blue", "baseline_copy": "tab:orange", "reference": "tab:green"}


def obstacle_footprint(occupied: np.ndarray) -> np.ndarray:
    """(X, Y, Z) bool obstacle voxels -> (X, Y) bool: any obstacle in the column."""
    occ = np.asarray(occupied, bool)
    if occ.ndim != 3:
        raise ValueError(f"occupied must be (X, Y, Z) bool, got shape {occ.shape}")
    return occ.any(2)


def plot_case(
    path: str | Path,
    footprint: np.ndarray,
    origin_xy,
    resolution: float,
    trajectories: dict[str, list[np.ndarray]],
    penetrating: dict[str, list[np.ndarray]] | None = None,
    planned_path: np.ndarray | None = None,
    start=None,
    goal=None,
    title: str = "",
    dpi: int = 100,
) -> Path:
    """Write one top-down PNG.

    footprint: (X, Y) bool obstacle columns, indexed [ix, iy]; cell centre =
        ``origin_xy + (idx + 0.5) * resolution`` (metres, map frame).
    trajectories: method name -> list of (T, 2|3) pelvis positions (metres, map frame),
        one per sample.
    penetrating: method name -> list of (T,) bool masks (frames with a penetrating body
        point), aligned with ``trajectories``.
    planned_path: (K, 2) metres. start / goal: (2+,) metres.
    Returns the written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fp = np.asarray(footprint, bool)
    if fp.ndim != 2:
        raise ValueError(f"footprint must be (X, Y) bool, got shape {fp.shape}")
    o = np.asarray(origin_xy, np.float64).reshape(-1)[:2]
    ext = [o[0], o[0] + fp.shape[0] * resolution, o[1], o[1] + fp.shape[1] * resolution]
    fig, ax = plt.subplots(figsize=(6.5, 6.5 * fp.shape[1] / max(fp.shape[0], 1)))
    ax.imshow(fp.T, origin="lower", extent=ext, cmap="Greys", vmin=0, vmax=1.6, alpha=0.9)
    if planned_path is not None and len(planned_path):
        pp = np.asarray(planned_path)
        ax.plot(pp[:, 0], pp[:, 1], "--", color="0.4", lw=1.0, label="planned path")
    marked = False
    for name, trajs in trajectories.items():
        col = METHOD_COLORS.get(name, None)
        for k, tr in enumerate(trajs):
            tr = np.asarray(tr)
            ax.plot(tr[:, 0], tr[:, 1], "-", color=col, lw=1.0, alpha=0.8,
                    label=name if k == 0 else None)  # fmt: skip
            if penetrating and name in penetrating and k < len(penetrating[name]):
                m = np.asarray(penetrating[name][k], bool)
                if m.any():
                    ax.plot(tr[m, 0], tr[m, 1], "x", color="red", ms=3, mew=0.8,
                            label=None if marked else "penetrating frame")  # fmt: skip
                    marked = True
    if start is not None:
        ax.plot(start[0], start[1], "o", color="k", ms=6, label="start")
    if goal is not None:
        ax.plot(goal[0], goal[1], "*", color="gold", mec="k", ms=12, label="goal")
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6, loc="best")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
