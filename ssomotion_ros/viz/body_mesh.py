"""A light, rigidly skinned mannequin mesh for live display (RViz markers, pictures).

Posing the full ``mannequin-x`` figure costs ~40 ms a frame on a laptop core, too slow
for several humans at 30 fps. :class:`RigidBodyMesh` decimates the wooden mannequin once
(open3d quadric decimation, a few seconds; the result is cached on disk), assigns every
kept vertex to the nearest bone of the 22-joint skeleton at rest, and then poses it with
the skeleton's forward-kinematics rotations: ``v = G_b (v_rest - J_b,rest) + J_b`` — one
small matrix product per frame (well under a millisecond for ~300 vertices).
Vertices are in the map frame (metres, z up), like every body output.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np
import torch

from ssomotion_ros.body.skeleton import PARENTS, default_skeleton, forward_kinematics

log = logging.getLogger(__name__)

_CACHE_VERSION = "rigid-v1"


def _default_cache() -> Path:
    return Path.home() / ".cache" / "ssomotion_ros"


def _nearest_bone(vertices: np.ndarray, rest_joints: np.ndarray) -> np.ndarray:
    """(V,) index of the joint whose rotation moves each vertex: the parent joint of the
    nearest bone segment (or a leaf joint itself for points beyond it)."""
    segs, owner = [], []
    # leaves first: beyond a leaf joint its point and its bone are equally near, and the
    # first minimum wins
    leaves = sorted(set(range(len(PARENTS))) - {int(p) for p in PARENTS if p >= 0})
    for leaf in leaves:
        segs.append((rest_joints[leaf], rest_joints[leaf]))
        owner.append(leaf)
    for c in range(1, len(PARENTS)):
        p = int(PARENTS[c])
        segs.append((rest_joints[p], rest_joints[c]))
        owner.append(p)
    a = np.array([s[0] for s in segs])  # (S, 3)
    b = np.array([s[1] for s in segs])
    ab = b - a
    denom = np.maximum((ab * ab).sum(1), 1e-12)
    ap = vertices[:, None] - a[None]  # (V, S, 3)
    t = np.clip((ap * ab[None]).sum(2) / denom[None], 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    d = np.linalg.norm(vertices[:, None] - closest, axis=2)
    # a point beyond a leaf joint (top of the head, finger tips, toes) belongs to the leaf
    return np.asarray(owner)[np.argmin(d, axis=1)]


class RigidBodyMesh:
    """A decimated mannequin posed rigidly per bone.

    target_faces: about how many triangles to keep (>= 50).
    cache_dir: where the decimated mesh is cached ('' = ~/.cache/ssomotion_ros;
        'off' = never cache).
    Thread-safe after construction (posing uses no shared mutable state).
    """

    def __init__(self, target_faces: int = 400, cache_dir: str = ""):
        if target_faces < 50:
            raise ValueError(f"target_faces must be >= 50, got {target_faces}")
        self.target_faces = int(target_faces)
        skel = default_skeleton()
        self._skeleton = skel
        self.rest_joints = (
            forward_kinematics(torch.zeros(69, dtype=torch.float64), skel)
            .numpy()
            .astype(np.float64)
        )
        v, f = self._load_or_build(cache_dir)
        self.rest_vertices = v
        self.faces = f
        self.bone = _nearest_bone(v, self.rest_joints)
        self._local = v - self.rest_joints[self.bone]

    def _load_or_build(self, cache_dir: str) -> tuple[np.ndarray, np.ndarray]:
        path = None
        if cache_dir != "off":
            key = hashlib.sha1(f"{_CACHE_VERSION}:{self.target_faces}".encode()).hexdigest()[:12]
            path = Path(cache_dir or _default_cache()) / f"mannequin_{key}.npz"
            if path.is_file():
                try:
                    with np.load(path) as z:
                        return z["vertices"].astype(np.float64), z["faces"].astype(np.int64)
                except (OSError, KeyError, ValueError) as exc:
                    log.warning("ignoring unreadable mesh cache %s: %s", path, exc)
        from ssomotion_ros.body.mannequin import MannequinMesh

        log.info("decimating the mannequin mesh to %d faces (once; cached)", self.target_faces)
        mm = MannequinMesh("wooden", target_faces=self.target_faces)
        v, f = mm.mesh(np.zeros(69))
        v, f = np.asarray(v, np.float64), np.asarray(f, np.int64)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.npz")
                np.savez(tmp, vertices=v.astype(np.float32), faces=f.astype(np.int32))
                tmp.replace(path)
            except OSError as exc:
                log.warning("cannot write mesh cache %s: %s", path, exc)
        return v, f

    @property
    def num_vertices(self) -> int:
        return int(len(self.rest_vertices))

    def pose(self, params: np.ndarray) -> np.ndarray:
        """Posed vertices.

        params: (69,) or (T, 69) body parameters (map frame, see
        :mod:`ssomotion_ros.body.skeleton`). Returns (V, 3) or (T, V, 3) float32 metres,
        map frame; faces are :attr:`faces` (F, 3) int64.
        """
        p = np.asarray(params, np.float64)
        single = p.ndim == 1
        if p.shape[-1] != 69 or p.ndim not in (1, 2):
            raise ValueError(f"params must be (69,) or (T, 69), got {p.shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError("params must be finite")
        pt = torch.from_numpy(p.reshape(-1, 69))
        joints, rots = forward_kinematics(pt, self._skeleton, return_rotations=True)
        j = joints.numpy()[:, self.bone]  # (T, V, 3)
        r = rots.numpy()[:, self.bone]  # (T, V, 3, 3)
        v = np.einsum("tvij,vj->tvi", r, self._local) + j
        v = v.astype(np.float32)
        return v[0] if single else v

    def triangles(self, params: np.ndarray) -> np.ndarray:
        """(F * 3, 3) float32: the corners of every triangle in order (a TRIANGLE_LIST)."""
        return self.pose(params)[self.faces].reshape(-1, 3)


_SHARED: dict[tuple[int, str], RigidBodyMesh] = {}
_SHARED_LOCK = threading.Lock()


def shared_body_mesh(target_faces: int = 400, cache_dir: str = "") -> RigidBodyMesh:
    """One :class:`RigidBodyMesh` per (faces, cache) per process."""
    key = (int(target_faces), cache_dir)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = RigidBodyMesh(target_faces, cache_dir)
        return _SHARED[key]


class SmplxDisplayMesh:
    """The user's SMPL-X body (model files needed) decimated for display.

    model_dir: folder with ``smplx/SMPLX_<GENDER>.npz`` (see
    :mod:`ssomotion_ros.body.smplx_adapter`). The SMPL-X mesh is posed with linear blend
    skinning every frame (``smplx``), and the vertices of a decimated rest mesh are
    picked from it (nearest rest vertex), so it shows the user's body with
    ``target_faces`` triangles. Same interface as :class:`RigidBodyMesh`.
    Raises the adapter's FileNotFoundError / ValueError when the files are missing or bad.
    """

    def __init__(self, model_dir, target_faces: int = 400, gender: str = "neutral", device="cpu"):
        from scipy.spatial import cKDTree

        from ssomotion_ros.body.mannequin import decimate_mesh
        from ssomotion_ros.body.smplx_adapter import SmplxBody

        if target_faces < 50:
            raise ValueError(f"target_faces must be >= 50, got {target_faces}")
        self.body = SmplxBody(model_dir, gender=gender, device=device)
        with torch.no_grad():
            rest = self.body(np.zeros(69, np.float32))["vertices"].cpu().numpy()
        dv, df = decimate_mesh(rest, self.body.faces, target_faces)
        if len(df) > 1.5 * target_faces:  # a mesh quadric decimation cannot simplify
            log.warning(
                "decimation left %d of %d faces; showing an even subset of %d faces",
                len(df),
                len(self.body.faces),
                target_faces,
            )
            keep = df[np.linspace(0, len(df) - 1, target_faces).astype(np.int64)]
            used, inverse = np.unique(keep, return_inverse=True)
            dv, df = dv[used], inverse.reshape(-1, 3)
        _, idx = cKDTree(rest).query(dv)
        self._index = np.asarray(idx, np.int64)
        self.faces = np.asarray(df, np.int64)

    @property
    def num_vertices(self) -> int:
        return int(len(self._index))

    def pose(self, params: np.ndarray) -> np.ndarray:
        """params: (69,) or (T, 69) -> (V, 3) or (T, V, 3) float32 metres, map frame."""
        p = np.asarray(params, np.float32)
        if p.shape[-1] != 69 or p.ndim not in (1, 2):
            raise ValueError(f"params must be (69,) or (T, 69), got {p.shape}")
        with torch.no_grad():
            v = self.body(p)["vertices"].cpu().numpy()
        return v[..., self._index, :].astype(np.float32)

    def triangles(self, params: np.ndarray) -> np.ndarray:
        """(F * 3, 3) float32 triangle corners (a TRIANGLE_LIST)."""
        return self.pose(params)[self.faces].reshape(-1, 3)
