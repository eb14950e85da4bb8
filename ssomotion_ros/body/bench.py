"""``ssomotion bench body``: forward kinematics, capsule points, meshes, retargeting.

Figures in milliseconds (median of repeats) and ratios against peers measured in the
same run: our batched torch FK vs a per-frame numpy/scipy FK (the reference used in the
tests), and the posed SMPL-X-like wooden mannequin vs the convex one.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["BENCHMARKS"]


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return float(np.median(times))


def _reference_fk(params: np.ndarray, offsets: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Per-frame FK with scipy rotations (the numpy reference of the tests)."""
    from scipy.spatial.transform import Rotation

    from ssomotion_ros.body.skeleton import R_NATIVE_TO_MAP as c

    out = np.zeros((len(params), 22, 3))
    for t, p in enumerate(params):
        mats = Rotation.from_rotvec(p[:66].reshape(22, 3)).as_matrix()
        g = [mats[0]]
        out[t, 0] = offsets[0] + p[66:]
        for j in range(1, 22):
            par = parents[j]
            g.append(g[par] @ c @ mats[j] @ c.T)
            out[t, j] = out[t, par] + g[par] @ offsets[j]
    return out


def bench_body(args) -> dict:
    import torch

    from ssomotion_ros.body.collision import body_points
    from ssomotion_ros.body.mannequin import MannequinMesh
    from ssomotion_ros.body.skeleton import default_skeleton, forward_kinematics

    torch.set_num_threads(1)  # small ops: one thread is fastest on a shared CPU
    dev = torch.device(
        getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    )
    quick = bool(getattr(args, "quick", False))
    reps = 5 if quick else 20
    skel = default_skeleton()
    rng = np.random.default_rng(0)
    out: dict = {"device": str(dev), "threads": torch.get_num_threads()}

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for agents in (1, 8):
        p = torch.as_tensor(rng.normal(0, 0.3, (agents, 30, 69)), dtype=torch.float32, device=dev)

        def fk(p=p):
            forward_kinematics(p, skel)
            sync()

        def fk_grad(p=p):
            q = p.clone().requires_grad_()
            pts, _ = body_points(forward_kinematics(q, skel), 4)
            pts.square().sum().backward()
            sync()

        out[f"fk_ms_{agents}x30"] = round(_median_ms(fk, reps), 3)
        out[f"fk_points_backward_ms_{agents}x30"] = round(_median_ms(fk_grad, reps), 3)
    p_np = rng.normal(0, 0.3, (30, 69))
    ref_ms = _median_ms(lambda: _reference_fk(p_np, skel.offsets, skel.parents), max(2, reps // 4))
    out["reference_numpy_fk_ms_1x30"] = round(ref_ms, 3)
    out["fk_speedup_vs_numpy_reference_1x30"] = round(ref_ms / out["fk_ms_1x30"], 1)
    frame = rng.normal(0, 0.3, 69)
    for kind in ("wooden", "convex"):
        m = MannequinMesh(kind)
        out[f"mannequin_{kind}_pose_ms"] = round(_median_ms(lambda m=m: m.mesh(frame), reps), 2)
    out["wooden_vs_convex_ratio"] = round(
        out["mannequin_wooden_pose_ms"] / out["mannequin_convex_pose_ms"], 1
    )
    if not quick:
        from ssomotion_ros.motion.datasets.bvh import read_bvh
        from ssomotion_ros.motion.datasets.cmu import bvh_to_smpl, default_cmu_root

        path = default_cmu_root() / "13_01.bvh"
        if path.is_file():
            clip = read_bvh(path)
            t = time.perf_counter()
            params, _ = bvh_to_smpl(clip)
            dt = time.perf_counter() - t
            out["retarget_frames_per_s"] = round(len(params) / dt, 1)
    return out


BENCHMARKS = {"body": bench_body}
