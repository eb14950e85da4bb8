"""Posed mannequin meshes (no SMPL-X model files needed) from 69-d parameters.

Wraps the PyPI package ``mannequin-x`` (Apache-2.0): ``"wooden"`` is a skinned figure
(24,256 vertices / 48,396 faces), ``"convex"`` rigid convex hulls per bone (LOD 0-2). The
mesh follows the same skeleton as :func:`ssomotion_ros.body.skeleton.default_skeleton`
(same SMPL-X calibration), so its joints coincide with :func:`forward_kinematics`.
Output vertices are in the map frame (z up, metres, floor z = 0 at rest).

For RViz markers, ``MannequinMesh(kind, target_faces=N)`` decimates the rest mesh once
(open3d quadric decimation) and then poses the reduced mesh by following, for each kept
vertex, the nearest vertex of the full mesh.
"""

from __future__ import annotations

import logging

import numpy as np

from ssomotion_ros.body.skeleton import (
    R_NATIVE_TO_MAP,
    check_params,
    default_skeleton,
)

__all__ = ["MannequinMesh", "decimate_mesh"]

log = logging.getLogger(__name__)


def decimate_mesh(
    vertices: np.ndarray, faces: np.ndarray, target_faces: int
) -> tuple[np.ndarray, np.ndarray]:
    """Quadric-error decimation (open3d).

    vertices: (V, 3) float; faces: (F, 3) int. Returns (V', 3) float32, (F', 3) int64 with
    F' <= about ``target_faces``."""
    import open3d as o3d

    if target_faces < 4:
        raise ValueError(f"target_faces must be >= 4, got {target_faces}")
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.asarray(vertices, np.float64)),
        o3d.utility.Vector3iVector(np.asarray(faces, np.int32)),
    )
    mesh = mesh.simplify_quadric_decimation(int(target_faces))
    mesh.remove_unreferenced_vertices()
    return np.asarray(mesh.vertices, np.float32), np.asarray(mesh.triangles, np.int64)


class MannequinMesh:
    """A posable mannequin mesh.

    kind: ``"wooden"`` (skinned) or ``"convex"`` (rigid hulls). lod: convex level of detail
    0-2 (ignored for wooden). betas: optional (10,) SMPL-X shape. target_faces: decimate to
    about this many faces (None = full resolution).
    """

    def __init__(
        self,
        kind: str = "wooden",
        lod: int = 0,
        betas: np.ndarray | None = None,
        target_faces: int | None = None,
    ) -> None:
        try:
            from mannequin import Mannequin
        except ImportError as exc:  # pragma: no cover - declared dependency
            raise ImportError(
                "MannequinMesh needs 'mannequin-x' (pip install mannequin-x)"
            ) from exc
        if kind not in ("wooden", "convex"):
            raise ValueError(f"kind must be 'wooden' or 'convex', got {kind!r}")
        shape = None if betas is None else np.asarray(betas, np.float32)
        self._m = Mannequin(kind, lod=None if kind == "wooden" else lod, shape=shape)
        self.kind = kind
        self._skeleton = default_skeleton(betas)
        self._pelvis_native = self._rest_pelvis_native()
        self._map_index: np.ndarray | None = None
        self._faces = np.asarray(self._m.faces, np.int64)
        if target_faces is not None and target_faces < len(self._faces):
            rest_v = self._pose_native_full(np.zeros(69, np.float64))
            dv, df = decimate_mesh(rest_v, self._faces, target_faces)
            from scipy.spatial import cKDTree

            _, idx = cKDTree(rest_v).query(dv)
            self._map_index = idx.astype(np.int64)
            self._faces = df
            log.debug("decimated %s mannequin to %d faces", kind, len(df))

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 triangle indices."""
        return self._faces

    @property
    def num_vertices(self) -> int:
        return int(len(self._map_index) if self._map_index is not None else self._m.num_vertices)

    def _rest_pelvis_native(self) -> np.ndarray:
        """Rest pelvis of the mannequin rig, native frame (public API: rest joint transforms)."""
        rest = self._m.rest_pose(dtype=np.float64)
        return np.asarray(self._m.joint_transforms(rest)[0, :3, 3], np.float64)

    def _pose_native_full(self, params: np.ndarray) -> np.ndarray:
        """All mannequin vertices for params (69,), map frame (name kept for history)."""
        from ssomotion_ros.body.rotations import axis_angle_to_matrix_np, matrix_to_axis_angle_np

        go = axis_angle_to_matrix_np(params[0:3]) @ R_NATIVE_TO_MAP
        pelvis_map = self._skeleton.offsets[0].astype(np.float64) + params[66:69]
        pose = self._m.rest_pose(dtype=np.float64)
        pose["body_pose"] = params[3:66].reshape(21, 3).astype(np.float64)
        pose["global_rotation"] = matrix_to_axis_angle_np(go)
        pose["global_translation"] = pelvis_map - go @ self._pelvis_native
        return np.asarray(self._m.vertices(pose), np.float32)

    def mesh(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posed mesh for one frame.

        params: (69,) [global_orient | body_pose | transl] (map frame conventions of
        :mod:`ssomotion_ros.body.skeleton`). Returns (vertices (V, 3) float32 metres, map
        frame; faces (F, 3) int64)."""
        check_params(np.asarray(params))
        p = np.asarray(params, np.float64)
        if p.shape != (69,):
            raise ValueError(f"params: expected (69,), got {p.shape}; pose one frame at a time")
        v = self._pose_native_full(p)
        if self._map_index is not None:
            v = v[self._map_index]
        return v, self._faces

    def joints(self, params: np.ndarray) -> np.ndarray:
        """(22, 3) float32 joint positions of the mannequin rig, map frame (for checks)."""
        from ssomotion_ros.body.rotations import axis_angle_to_matrix_np, matrix_to_axis_angle_np

        p = np.asarray(params, np.float64)
        go = axis_angle_to_matrix_np(p[0:3]) @ R_NATIVE_TO_MAP
        pose = self._m.rest_pose(dtype=np.float64)
        pose["body_pose"] = p[3:66].reshape(21, 3)
        pose["global_rotation"] = matrix_to_axis_angle_np(go)
        pelvis_map = self._skeleton.offsets[0].astype(np.float64) + p[66:69]
        pose["global_translation"] = pelvis_map - go @ self._pelvis_native
        return np.asarray(self._m.joint_transforms(pose)[:22, :3, 3], np.float32)
