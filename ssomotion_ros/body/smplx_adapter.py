"""Exact SMPL-X joints and meshes when the user supplies SMPL-X model files.

SMPL-X model files cannot be redistributed; register at https://smpl-x.is.tue.mpg.de,
download "SMPL-X v1.1 (NPZ)" and place ``SMPLX_NEUTRAL.npz`` (and optionally
``SMPLX_MALE.npz`` / ``SMPLX_FEMALE.npz``) at ``<model_dir>/smplx/``. ``.pkl`` files need
``chumpy`` (which does not build on current Python): use the ``.npz`` files.

:class:`SmplxBody` wraps the ``smplx`` package and speaks this project's parameters
(``params (..., 69)``, map frame, see :mod:`ssomotion_ros.body.skeleton`): it feeds SMPL-X
``global_orient = R(global_orient) @ R_NATIVE_TO_MAP`` and ``transl = pelvis_map - J0`` so
its output is directly in the map frame. ``SmplxBody.skeleton`` is the model's own rest
skeleton (pelvis on the z axis, lowest rest vertex at z = 0); ``forward_kinematics(params,
body.skeleton)`` reproduces its 22 body joints.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ssomotion_ros.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from ssomotion_ros.body.skeleton import NUM_JOINTS, PARENTS, R_NATIVE_TO_MAP, Skeleton, check_params

__all__ = ["SmplxBody", "smplx_model_path", "REQUIRED_KEYS"]

log = logging.getLogger(__name__)

#: Arrays an SMPL-X ``.npz`` must hold (shapes for SMPL-X v1.1: V = 10475, J = 55).
REQUIRED_KEYS: tuple[str, ...] = (
    "v_template", "f", "J_regressor", "kintree_table", "shapedirs", "posedirs", "weights",
    "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr", "lmk_faces_idx",
    "lmk_bary_coords",
)  # fmt: skip


def smplx_model_path(model_dir: str | Path, gender: str = "neutral") -> Path:
    """``<model_dir>/smplx/SMPLX_<GENDER>.npz``; FileNotFoundError saying where to put it."""
    g = gender.upper()
    if g not in ("NEUTRAL", "MALE", "FEMALE"):
        raise ValueError(f"gender must be neutral, male or female, got {gender!r}")
    root = Path(model_dir)
    candidates = [root / "smplx" / f"SMPLX_{g}.npz", root / f"SMPLX_{g}.npz"]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        f"SMPL-X model file not found: expected {candidates[0]}. SMPL-X cannot be shipped "
        "with this package: register at https://smpl-x.is.tue.mpg.de, download 'SMPL-X v1.1 "
        f"(NPZ)', and copy SMPLX_{g}.npz to {candidates[0]} (the folder you pass is the one "
        "that contains 'smplx/'). Without it, ssomotion uses the mannequin-x figure instead."
    )


def _validate(path: Path) -> None:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in REQUIRED_KEYS if k not in data.files]
            if missing:
                raise ValueError(
                    f"{path} is not an SMPL-X model: missing arrays {missing} (need the "
                    "SMPL-X v1.1 NPZ release)"
                )
            v = data["v_template"].shape
            if len(v) != 2 or v[1] != 3:
                raise ValueError(f"{path}: v_template must be (V, 3), got {v}")
            jr = data["J_regressor"].shape
            if len(jr) != 2 or jr[1] != v[0] or jr[0] < NUM_JOINTS:
                raise ValueError(f"{path}: J_regressor must be (J>=22, {v[0]}), got {jr}")
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise ValueError(
                f"{path} stores Python objects (pickled arrays); refusing to unpickle it. "
                "Use the official SMPL-X v1.1 NPZ file."
            ) from exc
        raise


class SmplxBody:
    """An SMPL-X body model in the map frame.

    model_dir: folder containing ``smplx/SMPLX_NEUTRAL.npz`` (see module docstring).
    gender: ``neutral`` | ``male`` | ``female``. betas: optional (10,) shape coefficients.
    device: torch device (default cuda when available, else cpu).
    """

    def __init__(
        self,
        model_dir: str | Path,
        gender: str = "neutral",
        betas: np.ndarray | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        path = smplx_model_path(model_dir, gender)
        _validate(path)
        import smplx

        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.model = smplx.SMPLX(
            str(path), gender=gender, ext="npz", use_pca=False, num_betas=10,
            num_expression_coeffs=10, batch_size=1,
        ).to(self.device)  # fmt: skip
        self.model.eval()
        b = np.zeros(10, np.float32) if betas is None else np.asarray(betas, np.float32)
        if b.shape != (10,):
            raise ValueError(f"betas must be (10,), got {b.shape}")
        self.betas = torch.as_tensor(b, device=self.device)[None]
        self.faces = np.asarray(self.model.faces, np.int64)
        self._c = torch.as_tensor(R_NATIVE_TO_MAP, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            rest = self._raw(
                torch.zeros(1, 3, device=self.device),
                torch.zeros(1, 63, device=self.device),
                torch.zeros(1, 3, device=self.device),
            )
        rest_j = rest.joints[0, :NUM_JOINTS].cpu().double().numpy()  # native frame
        self._j0 = torch.as_tensor(rest_j[0], dtype=torch.float32, device=self.device)
        floor = float(rest.vertices[0, :, 1].min())
        joints_map = rest_j @ R_NATIVE_TO_MAP.T
        joints_map -= np.array([joints_map[0, 0], joints_map[0, 1], floor])
        offsets = joints_map.copy()
        offsets[1:] = joints_map[1:] - joints_map[PARENTS[1:]]
        #: The model's own rest skeleton (map frame, floor z = 0).
        self.skeleton = Skeleton(offsets=offsets.astype(np.float32), source=f"SMPL-X {path}")

    def _raw(self, go, body_pose, transl):
        B = go.shape[0]
        z = torch.zeros(B, 3, device=self.device)
        return self.model(
            betas=self.betas.expand(B, -1), global_orient=go, body_pose=body_pose, transl=transl,
            jaw_pose=z, leye_pose=z, reye_pose=z,
            left_hand_pose=torch.zeros(B, 45, device=self.device),
            right_hand_pose=torch.zeros(B, 45, device=self.device),
            expression=torch.zeros(B, 10, device=self.device), return_verts=True,
        )  # fmt: skip

    def __call__(self, params: torch.Tensor | np.ndarray) -> dict:
        """Pose the model.

        params: (..., 69) [global_orient | body_pose | transl], map frame. Returns dict with
        ``vertices`` (..., V, 3) and ``joints`` (..., 22, 3) float32 tensors (metres, map
        frame) and ``faces`` (F, 3) int64 numpy."""
        p = torch.as_tensor(params, dtype=torch.float32, device=self.device)
        check_params(p)
        lead = p.shape[:-1]
        p = p.reshape(-1, 69)
        go = matrix_to_axis_angle(axis_angle_to_matrix(p[:, :3]) @ self._c)
        pelvis = torch.as_tensor(self.skeleton.offsets[0], device=self.device) + p[:, 66:69]
        out = self._raw(go, p[:, 3:66], pelvis - self._j0)
        return {
            "vertices": out.vertices.reshape(*lead, -1, 3),
            "joints": out.joints[:, :NUM_JOINTS].reshape(*lead, NUM_JOINTS, 3),
            "faces": self.faces,
        }
