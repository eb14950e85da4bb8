"""``ssomotion bench sso``: SSO fusion / tri-plane speed and map memory.

Measured in one run, on the same synthetic room scan (see
:mod:`ssomotion_ros.sso.synthetic`, 1M points; 100k with ``--quick``):

* ``fusion.points_per_s``: fusing the cloud into an empty map (best of 7 turns), and
  ``fusion.speedup_vs_open3d``: Open3D ``voxel_down_sample`` of the same points and
  colours at the same voxel size (best of its 7 turns), divided by our time (Open3D
  computes no labels, votes or instances, so the comparison favours it). Ours, ours on
  one thread (``one_thread_seconds``, ``speedup_vs_open3d_one_thread``) and Open3D are
  timed in turn (A, B, C, A, B, C, ...) so that a change of machine load hits all of
  them; ``speedup_vs_open3d_per_turn`` gives the spread of the ratio over the turns and
  ``*_turns`` every time. ``fusion.kernel`` says which CPU path ran (``compiled`` = the
  numba kernels on ``kernel_threads`` threads, see :mod:`ssomotion_ros.sso.cpu_kernels`;
  ``phases_ms`` then gives the median time of each of their phases and of the rest);
  ``torch_path_seconds`` / ``speedup_vs_torch_path`` time the torch path on the same
  cloud (CPU only), ``into_built_map_seconds`` fuses the same cloud again into the
  built map (every voxel already stored: the steady state of a mapper).
  ``fusion.scan_order`` repeats ours and Open3D on the same points in a spinning
  sensor's emission order (random order is the worst case for memory locality; Open3D's
  hash map gains much more from scan order than our kernels do). ``fusion.big_map``
  (not with ``--quick``): 50 k-point clouds with new voxels into a ~2.4 M-voxel map,
  with the side table for new voxels and with direct inserts into the sorted table.
* ``triplane.ms_per_agent``: local tri-planes for 1 and 16 agents at random poses in
  the room (median of the repeats, after one warm-up call), allocating new output
  tensors each call, and ``ms_per_agent_reusing_output`` passing the previous result
  as ``out=`` (on CPU, first-touch page faults of the ~5 MB per agent output are a
  large share of the time); ``..._best`` is the fastest repeat (machine noise aside).
* ``memory``: bytes of the sparse voxel table per cubic metre of occupied voxels and
  per cubic metre of the map's bounding box, and a dense grid's bytes for the same box
  holding the same per-voxel attributes.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time

import numpy as np

log = logging.getLogger(__name__)


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _interleaved(fns: dict, repeats: int) -> dict:
    """Times of each function in ``fns`` (name -> callable), run in turn ``repeats``
    times (A, B, C, A, B, C, ...) so that all see the same machine load: name -> list
    of seconds."""
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return times


def _scan_order(points: np.ndarray) -> np.ndarray:
    """(N,) int64 order of ``points`` ((N, 3) float32, metres, map frame) as a spinning
    sensor at the cloud's centre (1.2 m high) would emit them: 64 rings by elevation,
    each swept by azimuth."""
    lo, hi = points.min(0), points.max(0)
    centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2] + 1.2], np.float32)
    d = points - centre
    az = np.arctan2(d[:, 1], d[:, 0])
    el = np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1]))
    ring = np.floor((el + np.pi / 2) / (np.pi / 64)).astype(np.int64)
    return np.lexsort((az, ring))


def _big_map(device, vs: float, sync) -> dict:
    """New voxels into a large map: 8 tiles of 1 M points over 20 m x 40 m (about 2.4 M
    voxels), then clouds of 50 k points, half on mapped voxels and half on a wall never
    seen before. Timed with the side table (default) and with every new voxel inserted
    into the main sorted table (``delta_min_rows`` = infinity, the previous behaviour)."""
    from ssomotion_ros.sso.config import FusionConfig
    from ssomotion_ros.sso.fusion import VoxelMap
    from ssomotion_ros.sso.ingest import make_cloud

    rng = np.random.default_rng(5)
    cfg = FusionConfig(voxel_size=vs, device=str(device))
    m = VoxelMap(cfg, device)
    for tx in range(2):
        for ty in range(4):
            p = np.column_stack(
                [
                    rng.uniform(tx * 10, tx * 10 + 10, 1_000_000),
                    rng.uniform(ty * 10, ty * 10 + 10, 1_000_000),
                    rng.uniform(0.0, 0.2, 1_000_000),
                ]
            ).astype(np.float32)
            m.fuse(make_cloud(p, rng.integers(0, 5, len(p))), stamp=0.0)
    m.snapshot()  # compact
    wall_x = [30.0]

    def cloud():
        a = np.column_stack(
            [rng.uniform(5, 7, 25_000), rng.uniform(5, 7, 25_000), rng.uniform(0, 0.2, 25_000)]
        )
        wall_x[0] += 0.1
        b = np.column_stack(
            [
                np.full(25_000, wall_x[0]),
                rng.uniform(0, 3, 25_000),
                rng.uniform(0.3, 2.5, 25_000),
            ]
        )
        p = np.vstack([a, b]).astype(np.float32)
        return make_cloud(p, rng.integers(0, 5, len(p)))

    clouds = [cloud() for _ in range(6)]

    def timed(cl):
        t = time.perf_counter()
        m.fuse(cl, stamp=1.0)
        sync()
        return time.perf_counter() - t

    side = min(timed(c) for c in clouds[:3])
    cfg.delta_min_rows = 1 << 62
    m.snapshot()  # merge the side table: from here on every insert goes to the main table
    direct = min(timed(c) for c in clouds[3:])
    cfg.delta_min_rows = FusionConfig.delta_min_rows
    return {
        "map_voxels": len(m),
        "cloud_points": 50_000,
        "seconds_with_side_table": round(side, 5),
        "seconds_inserting_into_main_table": round(direct, 5),
        "speedup": round(direct / side, 1),
    }


def _phases(cfg, device, cloud, sync, repeats: int) -> dict:
    """Median milliseconds of each phase of the compiled fusion of ``cloud`` into an empty
    map (``cpu_kernels.DenseGrouper.timings``), and ``merge_and_rest``: the fusion's total
    minus the grouping phases (the table merge, Python and torch wrappers)."""
    from ssomotion_ros.sso.fusion import VoxelMap

    runs = []
    for _ in range(repeats):
        m = VoxelMap(cfg, device)
        m._grouper.timings = t = {}
        t0 = time.perf_counter()
        m.fuse(cloud, stamp=0.0)
        sync()
        total = time.perf_counter() - t0
        t["merge_and_rest"] = total - sum(t.values())
        t["total"] = total
        runs.append(t)
    return {k: round(statistics.median(r[k] for r in runs) * 1000, 2) for k in runs[0]}


def run_sso(args: argparse.Namespace) -> dict:
    import torch

    from ssomotion_ros.sso.config import FusionConfig, SceneModelConfig, resolve_device
    from ssomotion_ros.sso.fusion import VoxelMap
    from ssomotion_ros.sso.scene import SceneModel
    from ssomotion_ros.sso.synthetic import room_cloud

    quick = bool(getattr(args, "quick", False))
    # one torch thread by default: on a shared few-core machine, spinning worker threads
    # make timings erratic; set SSOMOTION_BENCH_THREADS=N to use N
    threads = int(os.environ.get("SSOMOTION_BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    device = resolve_device(getattr(args, "device", None) or "auto")
    n_points = 100_000 if quick else 1_000_000
    repeats = 2 if quick else 5
    vs = 0.04
    cloud = room_cloud(num_points=int(n_points * 1.2), seed=0)
    cloud = cloud.subset(slice(0, n_points))  # points are in random order
    n = len(cloud)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    cfg = FusionConfig(voxel_size=vs, device=str(device))
    cfg1 = FusionConfig(voxel_size=vs, device=str(device), cpu_threads=1)

    def ours(c=cfg):
        m = VoxelMap(c, device)
        m.fuse(cloud, stamp=0.0)
        sync()
        return m

    ours()  # warm-up (and loads the compiled kernels)
    o3d = None
    try:
        import open3d as o3d

        pc = o3d.geometry.PointCloud()
        pc.points = o3d.utility.Vector3dVector(cloud.points.astype(np.float64))
        pc.colors = o3d.utility.Vector3dVector(cloud.rgb.astype(np.float64) / 255.0)
        pc.voxel_down_sample(vs)
    except ImportError:
        pass
    # ours and the peer in turn, so that both see the same machine load
    fns = {"ours": ours}
    if device.type == "cpu":
        fns["ours_one_thread"] = lambda: ours(cfg1)
    if o3d is not None:
        fns["open3d"] = lambda: pc.voxel_down_sample(vs)
    times = _interleaved(fns, repeats + 2)
    t_ours = min(times["ours"])
    built = ours()
    threads_used = built._grouper.threads if built._grouper is not None else 0

    def into_built():
        built.fuse(cloud, stamp=1.0)
        sync()

    t_built = _best(into_built, repeats)
    t_torch = None
    if device.type == "cpu":
        tcfg = FusionConfig(voxel_size=vs, device="cpu", cpu_kernel="torch")

        def torch_path():
            VoxelMap(tcfg, device).fuse(cloud, stamp=0.0)

        torch_path()
        t_torch = _best(torch_path, repeats)
    result: dict = {
        "device": str(device),
        "torch_threads": threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "quick": quick,
        "voxel_size_m": vs,
        "fusion": {
            "points": n,
            "seconds": round(t_ours, 5),
            "points_per_s": round(n / t_ours),
            "kernel": "compiled" if built._grouper is not None else "torch",
            "kernel_threads": threads_used,
            "into_built_map_seconds": round(t_built, 5),
        },
    }
    fu = result["fusion"]
    if built._grouper is not None:
        fu["phases_ms"] = _phases(cfg, device, cloud, sync, repeats)
    if "ours_one_thread" in times:
        fu["one_thread_seconds"] = round(min(times["ours_one_thread"]), 5)
    if t_torch is not None:
        fu["torch_path_seconds"] = round(t_torch, 5)
        fu["speedup_vs_torch_path"] = round(t_torch / t_ours, 2)
    if o3d is None:
        fu["speedup_vs_open3d"] = None
        fu["open3d"] = "not installed"
    else:
        t_o3d = min(times["open3d"])
        fu["open3d_seconds"] = round(t_o3d, 5)
        fu["open3d_points_per_s"] = round(n / t_o3d)
        fu["speedup_vs_open3d"] = round(t_o3d / t_ours, 2)
        # per turn (ours and Open3D timed back to back): the spread of the ratio
        ratios = [b / a for a, b in zip(times["ours"], times["open3d"])]
        fu["speedup_vs_open3d_per_turn"] = {
            "median": round(statistics.median(ratios), 2),
            "min": round(min(ratios), 2),
            "max": round(max(ratios), 2),
        }
        if "ours_one_thread" in times:
            fu["speedup_vs_open3d_one_thread"] = round(t_o3d / fu["one_thread_seconds"], 2)
        fu["open3d_turns"] = [round(x, 5) for x in times["open3d"]]
        fu["ours_turns"] = [round(x, 5) for x in times["ours"]]

    if o3d is not None:
        # the same points in a sensor's scan order (rings swept in azimuth from the
        # room's centre): how clouds arrive from a lidar or a depth camera
        scan = cloud.subset(_scan_order(cloud.points))
        pcs = o3d.geometry.PointCloud()
        pcs.points = o3d.utility.Vector3dVector(scan.points.astype(np.float64))
        pcs.colors = o3d.utility.Vector3dVector(scan.rgb.astype(np.float64) / 255.0)

        def ours_scan():
            VoxelMap(cfg, device).fuse(scan, stamp=0.0)
            sync()

        ours_scan()
        ts = _interleaved({"ours": ours_scan, "open3d": lambda: pcs.voxel_down_sample(vs)}, repeats)
        t_scan, t_o3d_scan = min(ts["ours"]), min(ts["open3d"])
        result["fusion"]["scan_order"] = {
            "seconds": round(t_scan, 5),
            "open3d_seconds": round(t_o3d_scan, 5),
            "speedup_vs_open3d": round(t_o3d_scan / t_scan, 2),
        }

    if not quick:
        result["fusion"]["big_map"] = _big_map(device, vs, sync)

    # ---- tri-planes
    model = SceneModel(SceneModelConfig(fusion=cfg))
    model.fuse(cloud, stamp=0.0)
    rng = np.random.default_rng(1)
    tri: dict = {}
    tri_reuse: dict = {}
    tri_min: dict = {}
    for b in (1, 16):
        poses = np.stack(
            [rng.uniform(0.5, 5.5, b), rng.uniform(0.5, 4.5, b), rng.uniform(-np.pi, np.pi, b)], 1
        )
        model.local_triplanes(poses)  # warm-up (features, dense snapshot)
        sync()
        times = []
        for _ in range(3 if quick else 7):
            t = time.perf_counter()
            model.local_triplanes(poses)
            sync()
            times.append(time.perf_counter() - t)
        tri[str(b)] = round(statistics.median(times) / b * 1000, 3)
        out = model.local_triplanes(poses)
        times = []
        for _ in range(3 if quick else 7):
            t = time.perf_counter()
            model.local_triplanes(poses, out=out)
            sync()
            times.append(time.perf_counter() - t)
        tri_reuse[str(b)] = round(statistics.median(times) / b * 1000, 3)
        tri_min[str(b)] = round(min(times) / b * 1000, 3)
    result["triplane"] = {
        "ms_per_agent": tri,
        "ms_per_agent_reusing_output": tri_reuse,
        "ms_per_agent_reusing_output_best": tri_min,
        "grid_size": list(model.config.triplane.grid_size),
        "goal_ms_per_agent": 5.0,
    }

    # ---- memory
    vm = model.map
    snap = model.snapshot()
    occ_m3 = len(snap) * vs**3
    c = snap.coords.cpu().numpy()
    box_m3 = float(np.prod((c.max(0) - c.min(0) + 1) * vs))
    nbytes = vm.nbytes
    result["memory"] = {
        "voxels": len(vm),
        "bytes_per_voxel": vm.bytes_per_voxel,
        "table_bytes": nbytes,
        "bytes_per_occupied_m3": round(nbytes / occ_m3),
        "bytes_per_bbox_m3": round(nbytes / box_m3),
        "dense_bytes_per_bbox_m3": round(vm.bytes_per_voxel / vs**3),
        "sparse_vs_dense_ratio": round(nbytes / (box_m3 / vs**3 * vm.bytes_per_voxel), 4),
    }
    return result


BENCHMARKS = {"sso": run_sso}
