"""Object instances of the fused SSO, with affordance hints.

Grouping: voxels with an instance id (from the cloud's instance field) are grouped by
it; voxels without one are split into connected components (6/18/26-neighbourhood)
among voxels of the same label. Groups of "stuff" labels (floor, wall, ceiling, ...)
and groups smaller than ``min_voxels`` are not reported.

Affordances (all map frame):

* sit (chairs, sofas, stools, benches, beds, ...): the seat surface is the most common
  height of the group's upward-facing voxels (no voxel of the group right above) within
  ``seat_height_range`` above the floor; position = centre of those voxels at the
  surface top; facing = from the back rest (voxels higher than seat + 0.2 m) towards
  the seat centre, 0 when there is no back rest; extent = half sizes of the seat voxels
  along/across the facing direction.
* lie (beds, sofas): the same surface, kind "lie".
* approach: a floor point 0.4 m in front of the seat (facing direction); for other
  objects, or when the seat front is not walkable, points 0.4 m out from the middle of
  each bounding-box side that lie on walkable floor, facing the object (one -x side
  point when none is walkable).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ssomotion_ros.sso.config import InstanceConfig
from ssomotion_ros.sso.types import Affordance, SceneInstance
from ssomotion_ros.sso.vocabulary import Vocabulary

_BITS = 21
_OFF = 1 << 20


def _pack(c: np.ndarray) -> np.ndarray:
    c = c.astype(np.int64) + _OFF
    return (c[:, 0] << (2 * _BITS)) | (c[:, 1] << _BITS) | c[:, 2]


def _offsets(connectivity: int) -> np.ndarray:
    offs = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dz in (-1, 0, 1):
                n = abs(dx) + abs(dy) + abs(dz)
                if n == 0:
                    continue
                if connectivity == 6 and n > 1 or connectivity == 18 and n > 2:
                    continue
                if (dx, dy, dz) > (0, 0, 0):  # half of the symmetric set
                    offs.append((dx, dy, dz))
    return np.array(offs, np.int64)


def connected_groups(coords: np.ndarray, labels: np.ndarray, connectivity: int = 26):
    """Connected components among voxels of equal label.

    coords: (M, 3) int voxel indices (unique). labels: (M,) int.
    Returns (M,) int64 component id.
    """
    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    m = len(coords)
    if m == 0:
        return np.zeros(0, np.int64)
    keys = _pack(coords)
    order = np.argsort(keys)
    sk = keys[order]
    src, dst = [], []
    for off in _offsets(connectivity):
        q = _pack(coords + off)
        pos = np.clip(np.searchsorted(sk, q), 0, m - 1)
        hit = sk[pos] == q
        j = order[pos[hit]]
        i = np.flatnonzero(hit)
        same = labels[i] == labels[j]
        src.append(i[same])
        dst.append(j[same])
    src = np.concatenate(src)
    dst = np.concatenate(dst)
    g = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(m, m))
    _, comp = connected_components(g, directed=False)
    return comp.astype(np.int64)


def _seat(pts_idx, coords, vs, floor, cfg: InstanceConfig):
    """Seat surface of one group: (seat height in map z, seat voxel mask) or None."""
    c = coords[pts_idx]
    keys = _pack(c)
    above = _pack(c + np.array([0, 0, 1]))
    top = ~np.isin(above, keys)
    ztop = (c[:, 2] + 1) * vs - floor
    lo, hi = cfg.seat_height_range
    cand = top & (ztop >= lo) & (ztop <= hi)
    if not cand.any():
        return None
    q = c[cand, 2]
    uq, cnt = np.unique(q, return_counts=True)
    best = uq[np.argmax(cnt)]
    seat = cand & (np.abs(c[:, 2] - best) <= 1)
    height = (best + 0.5) * vs  # centre of the seat's top voxel layer, map z
    return height, seat


def extract_instances(
    coords: np.ndarray,
    labels: np.ndarray,
    instance: np.ndarray,
    voxel_size: float,
    vocabulary: Vocabulary,
    cfg: InstanceConfig,
    floor_at=None,
    free_at=None,
) -> list[SceneInstance]:
    """Instances from occupied voxels.

    coords: (M, 3) int voxel indices; labels: (M,) int64 majority labels (-1 = none);
    instance: (M,) int64 instance ids (-1 = none); voxel_size: metres;
    floor_at: callable (N, 2) xy -> (N,) floor heights (metres), or None (floor 0).
    free_at: callable (N, 2) xy -> (N,) bool walkable, or None (approach points are then
        not checked).
    Returns a list of :class:`SceneInstance`, largest first.
    """
    coords = np.asarray(coords, np.int64)
    labels = np.asarray(labels, np.int64)
    instance = np.asarray(instance, np.int64)
    vs = float(voxel_size)
    stuff = set(vocabulary.ids_named(cfg.stuff_names).tolist())
    keep = (labels >= 0) & ~np.isin(labels, list(stuff)) if stuff else labels >= 0
    idx_all = np.flatnonzero(keep)
    if len(idx_all) == 0:
        return []
    c, lab, ins = coords[idx_all], labels[idx_all], instance[idx_all]
    has = ins >= 0
    group = np.full(len(c), -1, np.int64)
    next_id = 0
    if has.any():
        uq, inv = np.unique(ins[has], return_inverse=True)
        group[has] = inv
        next_id = len(uq)
    if (~has).any():
        comp = connected_groups(c[~has], lab[~has], cfg.connectivity)
        group[~has] = comp + next_id
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    out: list[SceneInstance] = []
    sit_ids = set(vocabulary.ids_named(cfg.sit_names).tolist())
    lie_ids = set(vocabulary.ids_named(cfg.lie_names).tolist())
    for members in np.split(order, bounds):
        if len(members) < cfg.min_voxels:
            continue
        glab = lab[members]
        ul, cnt = np.unique(glab, return_counts=True)
        label = int(ul[np.argmax(cnt)])
        gi = ins[members]
        inst_id = int(gi[0]) if gi[0] >= 0 else -1
        cm = c[members]
        centers = (cm + 0.5) * vs
        bmin = cm.min(axis=0) * vs
        bmax = (cm.max(axis=0) + 1) * vs
        centroid = centers.mean(axis=0)
        floor = float(floor_at(centroid[None, :2])[0]) if floor_at is not None else 0.0
        affs: list[Affordance] = []
        yaw = 0.0
        if label in sit_ids or label in lie_ids:
            seat = _seat(np.arange(len(cm)), cm, vs, floor, cfg)
            if seat is not None:
                h, smask = seat
                sp = centers[smask]
                sxy = sp[:, :2].mean(axis=0)
                back = centers[:, 2] > h + 0.2
                if back.any():
                    d = sxy - centers[back, :2].mean(axis=0)
                    yaw = math.atan2(d[1], d[0]) if np.linalg.norm(d) > 1e-6 else 0.0
                ca, sa = math.cos(yaw), math.sin(yaw)
                along = (sp[:, 0] - sxy[0]) * ca + (sp[:, 1] - sxy[1]) * sa
                across = -(sp[:, 0] - sxy[0]) * sa + (sp[:, 1] - sxy[1]) * ca
                ext = np.array(
                    [0.5 * (np.ptp(along) + vs), 0.5 * (np.ptp(across) + vs)], np.float64
                )
                pos = np.array([sxy[0], sxy[1], h])
                if label in sit_ids:
                    affs.append(Affordance("sit", pos, yaw, ext))
                if label in lie_ids:
                    affs.append(Affordance("lie", pos.copy(), yaw, ext.copy()))
                front = sxy + (ext[0] + 0.4) * np.array([ca, sa])
                affs.append(Affordance("approach", np.array([front[0], front[1], floor]), yaw))
        front_ok = any(a.kind == "approach" for a in affs)
        if front_ok and free_at is not None:
            front_ok = bool(free_at(affs[-1].position[None, :2])[0])
        if not front_ok:
            # approach points 0.4 m out from the middle of each bbox side, facing the
            # object; only those on walkable floor when that is known
            cx, cy = (bmin[0] + bmax[0]) / 2, (bmin[1] + bmax[1]) / 2
            sides = [
                (bmin[0] - 0.4, cy, 0.0),
                (bmax[0] + 0.4, cy, math.pi),
                (cx, bmin[1] - 0.4, math.pi / 2),
                (cx, bmax[1] + 0.4, -math.pi / 2),
            ]
            pts = np.array([[x, y] for x, y, _ in sides])
            ok = free_at(pts) if free_at is not None else np.ones(4, bool)
            if not np.any(ok) and not any(a.kind == "approach" for a in affs):
                ok = np.array([True, False, False, False])  # keep one, even if blocked
            for (x, y, f), good in zip(sides, ok):
                if good:
                    affs.append(Affordance("approach", np.array([x, y, floor]), f))
        out.append(
            SceneInstance(
                instance_id=inst_id if inst_id >= 0 else 1_000_000 + len(out),
                label=label,
                name=vocabulary.name(label),
                centroid=centroid,
                bbox_min=bmin,
                bbox_max=bmax,
                yaw=yaw,
                affordances=affs,
                num_voxels=len(members),
            )
        )
    out.sort(key=lambda s: -s.num_voxels)
    return out
