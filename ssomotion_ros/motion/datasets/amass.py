"""Loaders for SMPL-X motion files users may have: AMASS ``.npz`` and HUMANISE motions.

Both store SMPL-X parameters in a **z-up world** (AMASS: the mocap room, floor z = 0;
HUMANISE: the ScanNet scene frame, z up): ``global_orient`` there is the SMPL-X root
rotation taking the y-up native body to that world, and the pelvis is at
``J0(betas) + trans`` (SMPL-X applies ``trans`` after rotating about the rest pelvis J0).
:func:`smplx_world_to_params` converts to this project's parameters (map frame, see
:mod:`ssomotion_ros.body.skeleton`): ``R_map = R_world @ R_NATIVE_TO_MAP.T``, body_pose
unchanged, ``transl = J0 + trans - skeleton.offsets[0]``. J0 comes from the mannequin-x
SMPL-X calibration for the file's betas (exact for SMPL-X; for SMPL-H AMASS files the
pelvis differs by a few millimetres).

No pickles are executed: HUMANISE ``.pkl`` files are read by an unpickler that only
rebuilds numpy arrays and tuples.
"""

from __future__ import annotations

import csv
import io
import logging
import pickle
from pathlib import Path

import numpy as np

from ssomotion_ros.body.rotations import axis_angle_to_matrix_np, matrix_to_axis_angle_np
from ssomotion_ros.body.skeleton import (
    R_NATIVE_TO_MAP,
    Skeleton,
    default_skeleton,
    smplx_rest_native,
)
from ssomotion_ros.motion.datasets.augment import level_floor as _level_floor
from ssomotion_ros.motion.datasets.augment import resample
from ssomotion_ros.motion.datasets.cmu import Clip

__all__ = [
    "smplx_world_to_params",
    "smplx_rest_pelvis",
    "load_amass_npz",
    "load_humanise_motion",
    "load_humanise",
    "HUMANISE_ACTIONS",
]

log = logging.getLogger(__name__)

#: HUMANISE action names -> this project's actions.
HUMANISE_ACTIONS = {"sit": "sit", "stand up": "stand_up", "walk": "walk", "lie": "lie"}


def smplx_rest_pelvis(betas: np.ndarray | None = None) -> np.ndarray:
    """SMPL-X rest pelvis J0 (3,) float64 in the native frame, metres, for (>= 10,) betas
    (shorter betas are zero-padded)."""
    b = None
    if betas is not None:
        b = np.asarray(betas, np.float64).ravel()[:10]
        b = np.pad(b, (0, 10 - len(b)))
    return smplx_rest_native(b)[0][0]


def _leg_ratio(betas: np.ndarray | None, skeleton: Skeleton) -> float:
    """Target leg length (hip->knee->ankle, mean of both sides) over the subject's."""

    def leg(j: np.ndarray) -> float:
        return float(np.mean([np.linalg.norm(j[k] - j[h]) + np.linalg.norm(j[a] - j[k])
                              for h, k, a in ((1, 4, 7), (2, 5, 8))]))  # fmt: skip

    b = None
    if betas is not None:
        b = np.asarray(betas, np.float64).ravel()[:10]
        b = np.pad(b, (0, 10 - len(b)))
    return leg(skeleton.rest_joints().astype(np.float64)) / leg(smplx_rest_native(b)[0])


def smplx_world_to_params(
    global_orient: np.ndarray,
    body_pose: np.ndarray,
    trans: np.ndarray,
    betas: np.ndarray | None = None,
    skeleton: Skeleton | None = None,
    rescale: bool = False,
) -> np.ndarray:
    """SMPL-X parameters in a z-up world -> (T, 69) float32 params (map frame).

    global_orient: (T, 3) axis-angle; body_pose: (T, 63) or (T, 21, 3); trans: (T, 3)
    metres; betas: optional (>= 10,) shape (for J0).
    rescale: scale the pelvis trajectory (about the world origin, so a floor at z = 0 stays)
    by the target skeleton's leg length over the subject's (from ``betas``), so the motion
    fits the target body's legs like the CMU retargeting does. Keep False for motions placed
    in a scene (HUMANISE)."""
    go = np.asarray(global_orient, np.float64)
    bp = np.asarray(body_pose, np.float64).reshape(len(go), -1)
    tr = np.asarray(trans, np.float64)
    if go.ndim != 2 or go.shape[1] != 3 or bp.shape[1] != 63 or tr.shape != go.shape:
        raise ValueError(
            f"expected global_orient (T, 3), body_pose (T, 63), trans (T, 3); got {go.shape}, "
            f"{np.shape(body_pose)}, {tr.shape}"
        )
    skel = skeleton if skeleton is not None else default_skeleton()
    r_map = axis_angle_to_matrix_np(go) @ R_NATIVE_TO_MAP.T
    pelvis = smplx_rest_pelvis(betas) + tr
    if rescale:
        pelvis = pelvis * _leg_ratio(betas, skel)
    transl = pelvis - skel.offsets[0].astype(np.float64)
    out = np.concatenate([matrix_to_axis_angle_np(r_map), bp, transl], axis=1)
    return out.astype(np.float32)


def load_amass_npz(
    path: str | Path,
    fps: float = 30.0,
    skeleton: Skeleton | None = None,
    level_floor: bool = True,
    rescale: bool = True,
) -> tuple[np.ndarray, dict]:
    """Read an AMASS SMPL-X (``poses`` (T, 165)) or SMPL-H (``poses`` (T, 156)) ``.npz``.

    Uses ``poses[:, :3]`` (root), ``poses[:, 3:66]`` (21 body joints), ``trans`` (T, 3),
    ``mocap_frame_rate`` (SMPL-X) or ``mocap_framerate`` (SMPL-H), optional ``betas``.
    ``rescale`` fits the pelvis trajectory to the target skeleton's legs (see
    :func:`smplx_world_to_params`; ratio in ``meta["leg_ratio"]``).
    AMASS does not guarantee the floor at z = 0 for every subset; with ``level_floor`` the
    feet are put on z = 0 (:func:`~ssomotion_ros.motion.datasets.augment.level_floor`, shift
    in ``meta["floor_shift_m"]``). Returns (params (T', 69) float32 at ``fps``, meta)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"AMASS file not found: {p}")
    try:
        data = np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{p}: not a plain .npz (object arrays are refused): {exc}") from exc
    with data:
        for key in ("poses", "trans"):
            if key not in data.files:
                raise ValueError(f"{p}: missing {key!r}; AMASS files hold {data.files}")
        poses = np.asarray(data["poses"], np.float64)
        trans = np.asarray(data["trans"], np.float64)
        rate_key = next((k for k in ("mocap_frame_rate", "mocap_framerate") if k in data.files),
                        None)  # fmt: skip
        if rate_key is None:
            raise ValueError(f"{p}: missing 'mocap_frame_rate' (or 'mocap_framerate')")
        src_fps = float(np.asarray(data[rate_key]))
        betas = np.asarray(data["betas"], np.float64) if "betas" in data.files else None
        gender = str(np.asarray(data["gender"])) if "gender" in data.files else "neutral"
    if poses.ndim != 2 or poses.shape[1] not in (156, 165) or len(trans) != len(poses):
        raise ValueError(
            f"{p}: poses must be (T, 165) SMPL-X or (T, 156) SMPL-H with trans (T, 3); got "
            f"{poses.shape}, {trans.shape}"
        )
    if not src_fps > 0:
        raise ValueError(f"{p}: frame rate must be > 0, got {src_fps}")
    params = smplx_world_to_params(
        poses[:, :3], poses[:, 3:66], trans, betas, skeleton, rescale=rescale
    )
    if abs(src_fps - fps) > 1e-3 and len(params) >= 2:
        params = resample(params, src_fps, fps)
    shift = 0.0
    if level_floor:
        params, shift = _level_floor(params, skeleton)
    ratio = _leg_ratio(betas, skeleton or default_skeleton()) if rescale else 1.0
    meta = {
        "floor_shift_m": shift,
        "leg_ratio": ratio,
        "source_fps": src_fps,
        "fps": float(fps),
        "gender": gender,
        "model": "smplx" if poses.shape[1] == 165 else "smplh",
        "path": str(p),
    }
    return params, meta


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only reconstructs numpy arrays, dtypes, tuples/lists/dicts."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a pickle (only numpy arrays are allowed)"
        )


def _load_humanise_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as d:
            return np.asarray(d["motion"]), np.asarray(d["betas"])
    raw = path.read_bytes()
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw)).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(obj, (tuple, list)) or len(obj) < 2:
        raise ValueError(f"{path}: expected a (motion (L, 159), betas (10,)) tuple")
    return np.asarray(obj[0]), np.asarray(obj[1])


def load_humanise_motion(path: str | Path, skeleton: Skeleton | None = None) -> np.ndarray:
    """One HUMANISE motion (re-formatted release): ``.pkl`` tuple ``(motion (L, 159), betas
    (10,))`` with motion = [trans 3 | orient 3 | body_pose 63 | hand_pose 90], 30 fps, z up
    (ScanNet frame), or ``.npz`` with keys ``motion`` and ``betas``.

    The motion is returned as stored (HUMANISE's aligned scene frame); the scene offset
    ``scene_trans_x/y/z`` of ``annotation.csv`` is kept in the clip meta by
    :func:`load_humanise`. Returns (L, 69) float32 params."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"HUMANISE motion not found: {p}")
    motion, betas = _load_humanise_arrays(p)
    if motion.ndim != 2 or motion.shape[1] < 69:
        raise ValueError(f"{p}: motion must be (L, 159) [trans|orient|body|hands], got "
                         f"{motion.shape}")  # fmt: skip
    trans = motion[:, 0:3].astype(np.float64)
    params = smplx_world_to_params(motion[:, 3:6], motion[:, 6:69], trans, betas, skeleton)
    return params


def load_humanise(
    root: str | Path, skeleton: Skeleton | None = None, limit: int | None = None
) -> list[Clip]:
    """All motions listed in ``root/annotation.csv`` (files in ``root/motions/``).

    Each clip's frames are labelled with its annotated action (``HUMANISE_ACTIONS``)."""
    root = Path(root)
    ann = root / "annotation.csv"
    if not ann.is_file():
        raise FileNotFoundError(
            f"{ann} not found: expected the re-formatted HUMANISE release (motions/ + "
            "annotation.csv)"
        )
    with open(ann, newline="") as fh:
        rows = list(csv.DictReader(fh))
    clips = []
    for row in rows[:limit]:
        mid = row["motion_id"]
        path = next((root / "motions" / f"{mid}{ext}" for ext in (".pkl", ".npz")
                     if (root / "motions" / f"{mid}{ext}").is_file()), None)  # fmt: skip
        if path is None:
            log.warning("HUMANISE motion %s listed but missing; skipped", mid)
            continue
        action = HUMANISE_ACTIONS.get(row.get("action", "").strip())
        if action is None:
            raise ValueError(f"{ann}: unknown action {row.get('action')!r} for motion {mid}")
        params = load_humanise_motion(path, skeleton)
        clips.append(
            Clip(name=mid, params=params, actions=np.full(len(params), action), fps=30.0,
                 category="humanise", description=row.get("text", ""),
                 meta={"scene_id": row.get("scene_id"), "object_label": row.get("object_label"),
                       "scene_trans": [float(row.get(f"scene_trans_{a}", 0.0)) for a in "xyz"]})
        )  # fmt: skip
    return clips
