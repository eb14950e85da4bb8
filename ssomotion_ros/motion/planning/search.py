"""Grid search: geodesic cost fields (scipy Dijkstra) and Lazy Theta* (any-angle).

All functions work on a free grid ``free: (H, W) bool`` in cell units (1 = one cell
side); callers convert to metres. Moves follow the movement rule of
:mod:`.grid` (8 neighbours, no corner cutting).
"""

from __future__ import annotations

import heapq
import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from .grid import _los_uv

_SQRT2 = math.sqrt(2.0)
#: (di, dj, cost) of the 8 neighbour moves, in cells.
_MOVES = (
    (0, 1, 1.0),
    (1, 0, 1.0),
    (0, -1, 1.0),
    (-1, 0, 1.0),
    (1, 1, _SQRT2),
    (1, -1, _SQRT2),
    (-1, 1, _SQRT2),
    (-1, -1, _SQRT2),
)


def grid_graph(free: np.ndarray):
    """Sparse undirected graph of the 8-connected free grid without corner cutting.

    free: (H, W) bool. Returns a scipy COO matrix of shape (H*W, H*W) whose entries are
    move lengths in cells (1 or sqrt 2); node id = i * W + j.
    """
    H, W = free.shape
    idx = np.arange(H * W).reshape(H, W)
    rows, cols, wts = [], [], []
    # Horizontal and vertical moves.
    m = free[:, :-1] & free[:, 1:]
    rows.append(idx[:, :-1][m])
    cols.append(idx[:, 1:][m])
    wts.append(np.ones(int(m.sum())))
    m = free[:-1, :] & free[1:, :]
    rows.append(idx[:-1, :][m])
    cols.append(idx[1:, :][m])
    wts.append(np.ones(int(m.sum())))
    # Diagonals need the whole 2x2 block free (no corner cutting).
    block = free[:-1, :-1] & free[1:, 1:] & free[:-1, 1:] & free[1:, :-1]
    nb = int(block.sum())
    rows += [idx[:-1, :-1][block], idx[:-1, 1:][block]]
    cols += [idx[1:, 1:][block], idx[1:, :-1][block]]
    wts += [np.full(nb, _SQRT2), np.full(nb, _SQRT2)]
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    w = np.concatenate(wts)
    return coo_matrix((w, (r, c)), shape=(H * W, H * W)).tocsr()


def geodesic_cost(free: np.ndarray, source_ij, graph=None) -> np.ndarray:
    """Shortest 8-connected path length (cells) from ``source_ij`` to every cell.

    free: (H, W) bool. source_ij: (2,) int cell index (must be free).
    Returns (H, W) float64 in cells; ``inf`` where unreachable or not free.
    """
    H, W = free.shape
    if graph is None:
        graph = grid_graph(free)
    src = int(source_ij[0]) * W + int(source_ij[1])
    dist = dijkstra(graph, directed=False, indices=src)
    out = np.asarray(dist, dtype=np.float64).reshape(H, W)
    out[~free] = np.inf
    return out


def _reconstruct(parent: list[int], start: int, goal: int, W: int) -> list[tuple[int, int]]:
    path = [goal]
    s = goal
    while s != start:
        s = parent[s]
        path.append(s)
    path.reverse()
    return [divmod(s, W) for s in path]


def lazy_theta_star(
    free: np.ndarray,
    start_ij,
    goal_ij,
    heuristic: np.ndarray | None = None,
    heuristic_scale: float = 1.0,
    max_expansions: int = 0,
) -> tuple[list[tuple[int, int]] | None, int]:
    """Lazy Theta* (Nash, Koenig & Tovey 2010) on an 8-connected grid.

    free: (H, W) bool; start_ij, goal_ij: (2,) int free cells.
    heuristic: optional (H, W) float cost-to-goal estimate in cells (e.g. the geodesic
        field from :func:`geodesic_cost`); None uses the Euclidean distance to the goal.
        The estimate is multiplied by ``heuristic_scale`` (use < 1 to keep a geodesic
        8-connected field admissible for any-angle costs; 1 / 1.0824 bounds the 8-grid
        overhead over straight lines).
    max_expansions: stop after this many expansions (0 = no limit).

    Returns ``(cells, expansions)``: the list of (i, j) corner cells from start to goal
    whose consecutive pairs have line of sight, or ``None`` when the goal was not
    reached (unreachable or budget exhausted).
    """
    H, W = free.shape
    N = H * W
    si, sj = int(start_ij[0]), int(start_ij[1])
    gi, gj = int(goal_ij[0]), int(goal_ij[1])
    start = si * W + sj
    goal = gi * W + gj
    free_l = free.ravel().tolist()
    if not free_l[start] or not free_l[goal]:
        return None, 0
    if start == goal:
        return [(si, sj)], 0

    if heuristic is not None:
        h_arr = np.asarray(heuristic, dtype=np.float64).ravel() * heuristic_scale
        h_l = h_arr.tolist()

        def h(n: int) -> float:
            return h_l[n]
    else:

        def h(n: int) -> float:
            ni, nj = divmod(n, W)
            return heuristic_scale * math.hypot(ni - gi, nj - gj)

    inf = math.inf
    g = [inf] * N
    parent = [-1] * N
    closed = bytearray(N)
    g[start] = 0.0
    parent[start] = start
    heap: list[tuple[float, float, int]] = [(h(start), 0.0, start)]
    expansions = 0
    uv_p = np.empty(2)
    uv_s = np.empty(2)
    hypot = math.hypot

    while heap:
        _, _, s = heapq.heappop(heap)
        if closed[s]:
            continue
        si_, sj_ = divmod(s, W)
        p = parent[s]
        if p != s:
            pi_, pj_ = divmod(p, W)
            # Orthogonal neighbours need no line-of-sight check; everything else does
            # (a diagonal neighbour may cut a corner).
            if abs(pi_ - si_) + abs(pj_ - sj_) > 1:
                uv_p[0] = pj_ + 0.5
                uv_p[1] = pi_ + 0.5
                uv_s[0] = sj_ + 0.5
                uv_s[1] = si_ + 0.5
                if not _los_uv(free, uv_p, uv_s):
                    # Path 1: best closed neighbour as parent.
                    best_g, best_n = inf, -1
                    for di, dj, cost in _MOVES:
                        ni, nj = si_ + di, sj_ + dj
                        if ni < 0 or ni >= H or nj < 0 or nj >= W:
                            continue
                        n = ni * W + nj
                        if not closed[n]:
                            continue
                        if di and dj and not (free_l[si_ * W + nj] and free_l[ni * W + sj_]):
                            continue
                        cand = g[n] + cost
                        if cand < best_g:
                            best_g, best_n = cand, n
                    g[s] = best_g
                    parent[s] = best_n
        closed[s] = 1
        expansions += 1
        if s == goal:
            return _reconstruct(parent, start, goal, W), expansions
        if max_expansions and expansions >= max_expansions:
            return None, expansions
        p = parent[s]
        pi_, pj_ = divmod(p, W)
        gp = g[p]
        for di, dj, _cost in _MOVES:
            ni, nj = si_ + di, sj_ + dj
            if ni < 0 or ni >= H or nj < 0 or nj >= W:
                continue
            n = ni * W + nj
            if closed[n] or not free_l[n]:
                continue
            if di and dj and not (free_l[si_ * W + nj] and free_l[ni * W + sj_]):
                continue
            # Path 2 (lazily assumed): straight from the parent of s.
            new_g = gp + hypot(ni - pi_, nj - pj_)
            if new_g < g[n]:
                g[n] = new_g
                parent[n] = p
                heapq.heappush(heap, (new_g + h(n), -new_g, n))
    return None, expansions
