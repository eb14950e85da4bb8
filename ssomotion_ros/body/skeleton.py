"""The 22-joint SMPL body kinematic tree and batched, differentiable forward kinematics.

Frames and conventions (also in ``docs/body.md``)
-------------------------------------------------
- **Map frame** (REP-103): x forward, y left, z up, metres. Every position this module
  returns is in the map frame.
- **Rest pose**: the SMPL-X neutral rest pose (near T-pose, arms out along +-y), standing
  upright along +z, **facing +x**, body left = +y, soles on the floor ``z = 0``, pelvis on
  the z axis at height ``Skeleton.offsets[0, 2]`` (0.950 m for the neutral shape).
- **SMPL-X native frame** (the frame SMPL-X's own rest mesh lives in): x = body left,
  y = up, z = forward. ``R_NATIVE_TO_MAP`` (a pure axis permutation, det +1) maps native
  vectors to map vectors: ``x_map = z_native, y_map = x_native, z_map = y_native``.
- **Parameters** ``params (..., 69)`` float32: ``[global_orient 3 | body_pose 63 | transl 3]``.

  * ``body_pose`` (21 x 3 axis-angle, radians) is *exactly SMPL-X's body_pose*: local joint
    rotations expressed in the SMPL-X native body frame (so AMASS / SMPL-X body poses are
    used as they are, and the mirror rule is SMPL's: swap left/right and negate the y and z
    components).
  * ``global_orient`` (axis-angle, radians) is the pelvis rotation **in the map frame
    relative to the rest pose** above: zero = upright, facing +x. A yaw of ``psi`` about +z
    is ``(0, 0, psi)``, so the body faces ``(cos psi, sin psi, 0)``.
  * ``transl`` (metres, map frame) moves the pelvis from its rest position:
    ``pelvis = offsets[0] + transl`` (pelvis height above the floor = ``0.950 + transl_z``
    for the neutral shape). The pelvis is not rotated about the origin.

  Relation to an ``smplx`` model (y-up native): SMPL-X ``global_orient = R(global_orient) @
  R_NATIVE_TO_MAP`` (as rotations), ``body_pose`` unchanged, SMPL-X ``transl = offsets[0] +
  transl - J0`` where ``J0`` is that model's rest pelvis; its output is then in the map frame.
  AMASS (z-up world) root orientations convert with ``R_map = R_amass @ R_NATIVE_TO_MAP.T``
  (see ``ssomotion_ros.motion.datasets.amass``).
- **Global rotations** returned by :func:`forward_kinematics` are *rest-relative* and in the
  map frame: ``G_j`` maps a rest-pose bone vector (map frame) to the posed bone vector, so
  all ``G_j`` are identity at the rest pose. Local map-frame rotation of joint j (j >= 1) is
  ``R_NATIVE_TO_MAP @ R(body_pose_j) @ R_NATIVE_TO_MAP.T``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from ssomotion_ros.body.rotations import axis_angle_to_matrix

__all__ = [
    "JOINT_NAMES",
    "PARENTS",
    "NUM_JOINTS",
    "PARAM_DIM",
    "LEFT_RIGHT_PAIRS",
    "MIRROR_PERMUTATION",
    "JOINT_GROUPS",
    "R_NATIVE_TO_MAP",
    "Skeleton",
    "default_skeleton",
    "forward_kinematics",
    "forward_kinematics_np",
    "split_params",
    "join_params",
    "check_params",
    "smplx_rest_native",
]

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)  # fmt: skip
#: Parent index per joint (-1 for the pelvis); parents always precede children.
PARENTS: np.ndarray = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19], dtype=np.int64
)
NUM_JOINTS = 22
#: Length of one frame's parameter vector: global_orient 3 + body_pose 63 + transl 3.
PARAM_DIM = 69
#: (left, right) joint index pairs.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, JOINT_NAMES.index("right_" + n[5:]))
    for i, n in enumerate(JOINT_NAMES)
    if n.startswith("left_")
)
#: Joint index permutation that swaps left and right (an involution).
MIRROR_PERMUTATION: np.ndarray = np.arange(NUM_JOINTS)
for _l, _r in LEFT_RIGHT_PAIRS:
    MIRROR_PERMUTATION[_l], MIRROR_PERMUTATION[_r] = _r, _l
#: Joint groups used in reports and metrics.
JOINT_GROUPS: dict[str, tuple[int, ...]] = {
    "root": (0,),
    "legs": (1, 2, 4, 5),
    "feet": (7, 8, 10, 11),
    "spine": (3, 6, 9),
    "head": (12, 15),
    "arms": (13, 14, 16, 17, 18, 19),
    "hands": (20, 21),
}
#: Maps SMPL-X native vectors (x left, y up, z forward) to map vectors (x fwd, y left, z up).
R_NATIVE_TO_MAP: np.ndarray = np.array(
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float64
)


@dataclass
class Skeleton:
    """A 22-joint body: rest offsets in the map frame.

    ``offsets[0]`` is the rest pelvis position (map frame, metres, floor at z = 0);
    ``offsets[j]`` (j >= 1) is joint j's rest position minus its parent's.
    """

    #: (22, 3) float32, metres, map frame (rest pose facing +x, z up).
    offsets: np.ndarray
    #: (22,) int64 parent indices.
    parents: np.ndarray = field(default_factory=lambda: PARENTS.copy())
    #: Joint names, 22 entries.
    names: tuple[str, ...] = JOINT_NAMES
    #: Free text saying where the offsets came from.
    source: str = "custom"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        off = np.asarray(self.offsets, dtype=np.float32)
        if off.shape != (NUM_JOINTS, 3) or not np.all(np.isfinite(off)):
            raise ValueError(f"Skeleton.offsets must be finite (22, 3) metres, got {off.shape}")
        self.offsets = off
        self.parents = np.asarray(self.parents, dtype=np.int64)

    def rest_joints(self) -> np.ndarray:
        """(22, 3) float32 rest joint positions, metres, map frame (floor z = 0)."""
        out = np.zeros((NUM_JOINTS, 3), np.float64)
        for j in range(NUM_JOINTS):
            p = self.parents[j]
            out[j] = self.offsets[j] + (out[p] if p >= 0 else 0.0)
        return out.astype(np.float32)

    def bone_lengths(self) -> np.ndarray:
        """(22,) float32 metres: length of the bone from each joint's parent (0 for pelvis)."""
        lengths = np.linalg.norm(self.offsets, axis=1)
        lengths[0] = 0.0
        return lengths.astype(np.float32)

    @property
    def pelvis_height(self) -> float:
        """Rest pelvis height above the floor, metres."""
        return float(self.offsets[0, 2])

    def offsets_tensor(self, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        """Offsets as a cached (22, 3) tensor on ``device``."""
        key = (str(device), dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.offsets, dtype=dtype, device=device)
        return self._cache[key]


@functools.lru_cache(maxsize=16)
def _rest_native_cached(betas_key: tuple[float, ...]) -> tuple[np.ndarray, float]:
    b = np.asarray(betas_key, dtype=np.float64)
    try:  # fast path: mannequin-x's baked SMPL-X calibration table (private module)
        from mannequin import _io

        cal = _io.load_calibration(dtype=np.float64)
        joints = cal.joint_rest[:NUM_JOINTS] + cal.joint_dirs[:NUM_JOINTS] @ b
        sole = float((cal.sole_y_rest + cal.sole_y_dirs @ b).min())
        return joints, sole
    except (ImportError, AttributeError, KeyError, TypeError):
        pass
    return _rest_native_public(b)


def _rest_native_public(b: np.ndarray) -> tuple[np.ndarray, float]:
    """Same figures through mannequin-x's public API (used if its private layout changes):
    rest joint transforms of the mannequin, floor = lowest rest vertex of the wooden figure
    (which mannequin-x fits to the SMPL-X sole height)."""
    try:
        from mannequin import Mannequin
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise ImportError(
            "default_skeleton needs the PyPI package 'mannequin-x' (pip install mannequin-x)"
        ) from exc
    m = Mannequin("wooden", shape=b.astype(np.float32))
    rest = m.rest_pose(dtype=np.float64)
    joints = np.asarray(m.joint_transforms(rest))[:NUM_JOINTS, :3, 3].astype(np.float64)
    sole = float(np.asarray(m.vertices(rest))[:, 1].min())
    return joints, sole


def smplx_rest_native(betas: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """SMPL-X rest joints and floor from mannequin-x's calibration (no model files).

    betas: optional (>= 10,) shape coefficients (the first 10 are used). Returns (joints
    (22, 3) float64 metres in the SMPL-X native frame (x left, y up, z forward), sole height:
    native y of the lowest sole point, metres)."""
    b = np.zeros(10) if betas is None else np.asarray(betas, dtype=np.float64).ravel()
    if b.ndim != 1 or b.size < 10:
        raise ValueError(f"betas must be (10,) SMPL-X shape coefficients, got {np.shape(betas)}")
    joints, sole = _rest_native_cached(tuple(float(v) for v in b[:10]))
    return joints.copy(), sole


def _mannequin_rest_native(betas: np.ndarray | None) -> tuple[np.ndarray, float]:
    if betas is not None and np.asarray(betas).shape != (10,):
        raise ValueError(
            f"betas must be (10,) SMPL-X shape coefficients, got {np.asarray(betas).shape}"
        )
    return smplx_rest_native(betas)


@functools.lru_cache(maxsize=8)
def _default_offsets(betas_key: tuple[float, ...] | None, symmetric: bool) -> np.ndarray:
    betas = None if betas_key is None else np.array(betas_key)
    native, sole = _mannequin_rest_native(betas)
    if symmetric:
        native = native.copy()
        for left, right in LEFT_RIGHT_PAIRS:
            avg = 0.5 * (native[left] + native[right] * np.array([-1.0, 1.0, 1.0]))
            native[left] = avg
            native[right] = avg * np.array([-1.0, 1.0, 1.0])
        for j in range(NUM_JOINTS):
            if MIRROR_PERMUTATION[j] == j:
                native[j, 0] = 0.0
    joints = native @ R_NATIVE_TO_MAP.T  # map frame
    pelvis = joints[0].copy()
    joints = joints - np.array([pelvis[0], pelvis[1], 0.0])  # pelvis on the z axis
    joints[:, 2] -= sole  # floor (lowest sole vertex of the rest mesh) at z = 0
    offsets = joints.copy()
    offsets[1:] = joints[1:] - joints[PARENTS[1:]]
    return offsets.astype(np.float32)


def default_skeleton(betas: np.ndarray | None = None, symmetric: bool = False) -> Skeleton:
    """The SMPL-X-compatible neutral skeleton from ``mannequin-x``'s shape calibration.

    betas: optional (10,) SMPL-X shape coefficients (default: the neutral mean shape).
    symmetric: mirror-average left/right joints (exact left/right symmetry; SMPL-X's own
    skeleton is asymmetric by ~1 cm). Rest pose facing +x, z up, soles at z = 0; pelvis at
    (0, 0, 0.950) m for the neutral shape. Returns a new :class:`Skeleton`.
    """
    key = None if betas is None else tuple(float(v) for v in np.asarray(betas).ravel())
    offsets = _default_offsets(key, bool(symmetric))
    return Skeleton(
        offsets=offsets.copy(),
        source=f"mannequin-x SMPL-X calibration (betas={'neutral' if key is None else 'user'}, "
        f"symmetric={bool(symmetric)})",
    )


@functools.lru_cache(maxsize=1)
def _default() -> Skeleton:
    return default_skeleton()


def check_params(
    params: torch.Tensor | np.ndarray, name: str = "params", finite: bool = True
) -> None:
    """Raise ValueError unless ``params`` has shape (..., 69) (and, with ``finite``, holds no
    NaN/inf). The finiteness check reads the values: on a GPU tensor it synchronises."""
    shape = tuple(params.shape)
    if len(shape) < 1 or shape[-1] != PARAM_DIM:
        raise ValueError(
            f"{name}: expected shape (..., 69) = [global_orient 3 | body_pose 63 | transl 3], "
            f"got {shape}"
        )
    if not finite:
        return
    ok = (
        torch.isfinite(params).all()
        if isinstance(params, torch.Tensor)
        else (np.isfinite(params).all())
    )
    if not bool(ok):
        raise ValueError(f"{name}: contains NaN or inf")


def split_params(params):
    """(..., 69) -> (global_orient (..., 3), body_pose (..., 21, 3), transl (..., 3)).

    Works for torch tensors and numpy arrays (views, no copies)."""
    check_params(params)
    return (
        params[..., 0:3],
        params[..., 3:66].reshape(*params.shape[:-1], 21, 3),
        params[..., 66:69],
    )


def join_params(global_orient, body_pose, transl):
    """Inverse of :func:`split_params`.

    (..., 3), (..., 21, 3) or (..., 63), (..., 3) -> (..., 69)."""
    if isinstance(global_orient, torch.Tensor):
        if tuple(body_pose.shape[-2:]) == (21, 3):
            body_pose = body_pose.reshape(*body_pose.shape[:-2], 63)
        return torch.cat([global_orient, body_pose, transl], dim=-1)
    body_pose = np.asarray(body_pose)
    if body_pose.shape[-2:] == (21, 3):
        body_pose = body_pose.reshape(*body_pose.shape[:-2], 63)
    return np.concatenate([global_orient, body_pose, transl], axis=-1)


def forward_kinematics(
    params: torch.Tensor,
    skeleton: Skeleton | None = None,
    return_rotations: bool = False,
    check_finite: bool | None = None,
):
    """Joint positions from 69-d body parameters (batched, differentiable).

    params: (..., 69) float tensor, [global_orient 3 | body_pose 63 | transl 3] axis-angle
        radians / metres, map frame (see module docstring). Any device.
    skeleton: rest skeleton; default :func:`default_skeleton`.
    return_rotations: also return the rest-relative global rotations.
    check_finite: raise ValueError on NaN/inf input. Default: on CPU tensors only (on a GPU
        the check would synchronise the device every call; NaNs then propagate).

    Returns joints (..., 22, 3) metres, map frame, same dtype/device as ``params``; with
    ``return_rotations`` a tuple ``(joints, rotations (..., 22, 3, 3))``.
    """
    if not isinstance(params, torch.Tensor):
        raise ValueError(
            "forward_kinematics: params must be a torch.Tensor; use "
            "forward_kinematics_np for numpy arrays"
        )
    if check_finite is None:
        check_finite = params.device.type == "cpu"
    check_params(params, finite=check_finite)
    if not params.is_floating_point():
        raise ValueError(f"params must be a float tensor, got {params.dtype}")
    skel = skeleton if skeleton is not None else _default()
    offsets = skel.offsets_tensor(params.device, params.dtype)
    parents = skel.parents
    c = torch.as_tensor(R_NATIVE_TO_MAP, dtype=params.dtype, device=params.device)

    aa = params[..., :66].reshape(*params.shape[:-1], 22, 3)
    mats = axis_angle_to_matrix(aa)  # (..., 22, 3, 3)
    local = c @ mats[..., 1:, :, :] @ c.T  # body joints, map frame
    transl = params[..., 66:69]

    rots = [mats[..., 0, :, :]]
    pos = [offsets[0] + transl]
    for j in range(1, NUM_JOINTS):
        p = int(parents[j])
        rots.append(rots[p] @ local[..., j - 1, :, :])
        pos.append(pos[p] + (rots[p] @ offsets[j, :, None])[..., 0])
    joints = torch.stack(pos, dim=-2)
    if return_rotations:
        return joints, torch.stack(rots, dim=-3)
    return joints


def forward_kinematics_np(
    params: np.ndarray, skeleton: Skeleton | None = None, return_rotations: bool = False
):
    """Numpy wrapper of :func:`forward_kinematics` (float64 inside).

    params: (..., 69) array. Returns joints (..., 22, 3) float32 metres, map frame (and
    rotations (..., 22, 3, 3) float32 with ``return_rotations``)."""
    p = np.asarray(params)
    check_params(p)
    out = forward_kinematics(torch.from_numpy(p.astype(np.float64)), skeleton, return_rotations)
    if return_rotations:
        return out[0].numpy().astype(np.float32), out[1].numpy().astype(np.float32)
    return out.numpy().astype(np.float32)
