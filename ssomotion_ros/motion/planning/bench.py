"""``ssomotion bench planner``: planning time and path quality on cluttered 200x200 grids.

Ours: :class:`Planner` with the default geodesic heuristic (Dijkstra field + Lazy
Theta* + shortcutting + smoothing). Peer in the same run: the same planner with the
textbook admissible Euclidean heuristic (plain Lazy Theta*). Reference length: the
8-connected shortest path (scipy Dijkstra), which any-angle paths should beat.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time

import numpy as np

log = logging.getLogger(__name__)


def cluttered_room(
    rng: np.random.Generator, size: int = 200, boxes: int = 60, res: float = 0.05
) -> np.ndarray:
    """(size, size) bool occupancy: walls around, ``boxes`` furniture-sized rectangles
    (0.15-0.75 m sides) and a few interior wall segments with doors."""
    occ = np.zeros((size, size), dtype=bool)
    occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = True
    for _ in range(boxes):
        i, j = rng.integers(0, size, 2)
        h, w = rng.integers(3, 16, 2)
        occ[i : i + h, j : j + w] = True
    for _ in range(3):
        if rng.random() < 0.5:
            c = int(rng.integers(size // 5, 4 * size // 5))
            occ[:, c] = True
            d = int(rng.integers(5, size - 30))
            occ[d : d + int(1.0 / res), c] = False
        else:
            r = int(rng.integers(size // 5, 4 * size // 5))
            occ[r, :] = True
            d = int(rng.integers(5, size - 30))
            occ[r, d : d + int(1.0 / res)] = False
    return occ


def _queries(grid, rng, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """n start/goal pairs at least 4 m apart in the largest free component."""
    counts = np.bincount(grid.labels.ravel())
    counts[0] = 0
    free = np.argwhere(grid.labels == int(np.argmax(counts)))
    out = []
    for _ in range(50 * n):
        a, b = free[rng.integers(0, len(free), 2)]
        pa, pb = grid.cell_center(a), grid.cell_center(b)
        if np.linalg.norm(pa - pb) >= 4.0:
            out.append((pa, pb))
            if len(out) == n:
                break
    return out


def bench_planner(args: argparse.Namespace) -> dict:
    """Median/p95 planning time of ours vs the Euclidean-heuristic peer (ms)."""
    from tqdm import tqdm

    from .grid import WalkableGrid
    from .planner import Planner, PlannerConfig
    from .search import geodesic_cost

    quick = bool(getattr(args, "quick", False))
    n_maps, n_q = (2, 5) if quick else (10, 10)
    rng = np.random.default_rng(0)
    ours = Planner(PlannerConfig())
    peer = Planner(PlannerConfig(heuristic="euclidean"))
    t_ours, t_peer, ratio_len, ratio_peer_len, exp_ours, exp_peer = [], [], [], [], [], []
    failures = {"ours": 0, "peer": 0, "unreachable": 0}
    bar = tqdm(total=n_maps * n_q, desc="planner bench", unit="query")
    for _ in range(n_maps):
        grid = WalkableGrid.from_occupancy(cluttered_room(rng), (0.0, 0.0), 0.05, 0.25)
        for s, g in _queries(grid, rng, n_q):
            bar.update(1)
            a = ours.plan(grid, s, g)
            b = peer.plan(grid, s, g)
            if not a.success and a.reason.startswith("goal unreachable"):
                failures["unreachable"] += 1
                continue
            if not a.success:
                failures["ours"] += 1
                continue
            if not b.success:
                failures["peer"] += 1
                continue
            t_ours.append(a.planning_time_s)
            t_peer.append(b.planning_time_s)
            exp_ours.append(a.expansions)
            exp_peer.append(b.expansions)
            gi = grid.world_to_cell(g)
            si = grid.world_to_cell(s)
            ref = geodesic_cost(grid.free, gi)[si[0], si[1]] * grid.resolution
            ratio_len.append(a.length / ref)
            ratio_peer_len.append(a.length / b.length)
    bar.close()
    large = _bench_large(rng, 1 if quick else 3, 5)
    to = np.array(t_ours) * 1e3
    tp = np.array(t_peer) * 1e3
    return {
        "benchmark": "planner",
        "grid": "200x200 cells, 0.05 m, 60 boxes + 3 walls with doors, clearance 0.25 m",
        "queries_timed": len(to),
        "failures": failures,
        "ours_geodesic_ms": {
            "median": float(np.median(to)),
            "p95": float(np.percentile(to, 95)),
            "max": float(to.max()),
        },
        "peer_euclidean_ms": {
            "median": float(np.median(tp)),
            "p95": float(np.percentile(tp, 95)),
            "max": float(tp.max()),
        },
        "speedup_median": float(np.median(tp) / np.median(to)),
        "expansions_median": {
            "ours": float(np.median(exp_ours)),
            "peer": float(np.median(exp_peer)),
        },
        "length_vs_8connected_median": float(np.median(ratio_len)),
        "length_vs_peer_median": float(np.median(ratio_peer_len)),
        "large_500x500": large,
        "machine": platform.processor() or platform.machine(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _bench_large(rng: np.random.Generator, n_maps: int, n_q: int) -> dict:
    """500 x 500 cells at 0.04 m (a 20 m flat): ours (search window) vs the same
    planner searching the whole map every time."""
    from .grid import WalkableGrid
    from .planner import Planner, PlannerConfig

    ours = Planner(PlannerConfig())
    whole = Planner(PlannerConfig(search_window_margin=float("inf")))
    ta, tb, ratio = [], [], []
    for _ in range(n_maps):
        occ = cluttered_room(rng, size=500, boxes=350, res=0.04)
        grid = WalkableGrid.from_occupancy(occ, (0.0, 0.0), 0.04, 0.25)
        for s, g in _queries(grid, rng, n_q):
            a = ours.plan(grid, s, g)
            b = whole.plan(grid, s, g)
            if a.success and b.success:
                ta.append(a.planning_time_s)
                tb.append(b.planning_time_s)
                ratio.append(a.length / b.length)
    ta_ms, tb_ms = np.array(ta) * 1e3, np.array(tb) * 1e3
    return {
        "queries_timed": len(ta),
        "ours_window_ms": {"median": float(np.median(ta_ms)), "max": float(ta_ms.max())},
        "peer_whole_map_ms": {"median": float(np.median(tb_ms)), "max": float(tb_ms.max())},
        "speedup_median": float(np.median(tb_ms) / np.median(ta_ms)),
        "length_vs_whole_map_max": float(max(ratio)),
    }


BENCHMARKS = {"planner": bench_planner}
