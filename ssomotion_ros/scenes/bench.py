"""``ssomotion bench scenes``: scene generation, scan simulation and PCD loading speeds.

Each figure is measured next to a peer in the same run:

* PCD reading (LZF ``binary_compressed``): :func:`~.loaders.read_pcd` vs Open3D's reader
  on the real Kinect files in ``../shared/data/scans/kinect_tabletop`` (or on a written
  synthetic organised cloud when the data folder is absent).
* Semantic occupancy: :meth:`~.scene.Scene.occupancy` (labels, instances, colours) vs
  Open3D's ``VoxelGrid.create_from_triangle_mesh`` (geometry only) at 0.04 m.
* Depth scans: :func:`~.sensors.depth_scan` (labels, noise, dropouts, layout) vs the bare
  Open3D ``cast_rays`` of the same rays.
* Layout: :func:`~.layout.generate_spec` per prompt (no peer; figures only).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scans" / "kinect_tabletop"


def _best(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_scenes(args: argparse.Namespace) -> dict:
    """Run the benchmark; returns figures (seconds, best of N) and ratios ours/peer."""
    import tempfile

    import open3d as o3d

    from ssomotion_ros.scenes.layout import generate_spec
    from ssomotion_ros.scenes.loaders import read_pcd, write_pcd
    from ssomotion_ros.scenes.scene import Scene
    from ssomotion_ros.scenes.sensors import DepthCameraConfig, Raycaster, depth_scan

    quick = bool(getattr(args, "quick", False))
    reps = 2 if quick else 5
    out: dict = {"reps": reps}

    # --- PCD reading
    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(DATA.glob("*.pcd")) if DATA.is_dir() else []
        if not files:
            arr = np.zeros((480, 640), [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u4")])
            arr["x"] = np.random.default_rng(0).normal(size=arr.shape)
            arr["y"], arr["z"] = arr["x"] * 2, np.nan
            files = [Path(tmp) / "synthetic.pcd"]
            write_pcd(files[0], arr)
        ours = sum(_best(lambda f=f: read_pcd(f), reps) for f in files)
        peer = sum(
            _best(lambda f=f: o3d.io.read_point_cloud(str(f), remove_nan_points=False), reps)
            for f in files
        )
        out["pcd_read"] = {
            "files": [f.name for f in files],
            "ours_s": ours,
            "open3d_s": peer,
            "ratio_ours_over_open3d": ours / peer,
        }

    # --- layout, occupancy, scans
    prompts = [
        "a living room with a sofa, two armchairs and a coffee table",
        "a kitchen",
        "a cluttered room with 12 random objects",
    ]
    layout = {}
    for p in prompts:
        layout[p] = _best(lambda p=p: generate_spec(p, seed=1), reps)
    out["layout_s"] = layout
    scene = Scene(generate_spec(prompts[0], seed=1))
    m = scene.mesh()
    o3m = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(m.vertices.astype(np.float64)),
        o3d.utility.Vector3iVector(m.faces),
    )
    ours = _best(lambda: scene.occupancy(0.04), reps)
    peer = _best(lambda: o3d.geometry.VoxelGrid.create_from_triangle_mesh(o3m, 0.04), reps)
    out["occupancy"] = {
        "voxels": int(len(scene.occupancy(0.04).indices)),
        "ours_s": ours,
        "open3d_voxelgrid_s": peer,
        "ratio_ours_over_open3d": ours / peer,
    }
    caster = Raycaster(scene)
    cfg = DepthCameraConfig()
    pose = scene.start_pose()
    ours = _best(lambda: depth_scan(caster, pose, cfg, "label", np.random.default_rng(0)), reps)
    H, W = cfg.height, cfg.width
    f = W / 2 / np.tan(np.radians(cfg.hfov_deg) / 2)
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    d = np.stack([np.ones_like(u), -(u - W / 2) / f, -(v - H / 2) / f], -1).reshape(-1, 3)
    rays = np.concatenate([np.broadcast_to([pose[0], pose[1], 1.2], d.shape), d], 1)
    rays_t = o3d.core.Tensor(rays.astype(np.float32))
    peer = _best(lambda: caster.rc.cast_rays(rays_t), reps)
    out["depth_scan"] = {
        "rays": int(H * W),
        "ours_s": ours,
        "open3d_cast_rays_s": peer,
        "ratio_ours_over_open3d": ours / peer,
    }
    return out


BENCHMARKS = {"scenes": bench_scenes}
