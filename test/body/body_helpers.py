"""Writes a synthetic SMPL-X .npz with the keys and shapes of the real v1.1 release."""

from pathlib import Path

import numpy as np


def write_synthetic_smplx(folder: Path, seed: int = 0) -> Path:
    """Create ``folder/smplx/SMPLX_NEUTRAL.npz`` (10475 vertices, 55 joints, 10+10 coeffs).

    Joints are the SMPL-X neutral rest joints from mannequin-x (J_regressor selects one
    vertex per joint); every vertex is skinned to one joint; no pose/shape correctives."""
    from mannequin import _io

    rng = np.random.default_rng(seed)
    V, J = 10475, 55
    cal = _io.load_calibration()
    joints = np.zeros((J, 3))
    joints[:54] = cal.joint_rest
    joints[54] = cal.joint_rest[53]
    v = rng.normal(0.0, 0.01, (V, 3)) + joints[rng.integers(0, J, V)]
    v[:J] = joints
    v[J] = (0.0, float(cal.sole_y_rest.min()), 0.0)  # a sole vertex: floor height
    jreg = np.zeros((J, V))
    jreg[np.arange(J), np.arange(J)] = 1.0
    parents = np.array(
        [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
        + [20] * 15
        + [21] * 15
    )
    kin = np.stack([np.where(parents < 0, 4294967295, parents), np.arange(J)]).astype(np.int64)
    weights = np.zeros((V, J))
    owner = np.arange(V) % J
    weights[np.arange(V), owner] = 1.0
    out = folder / "smplx"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "SMPLX_NEUTRAL.npz"
    np.savez_compressed(
        path,
        v_template=v.astype(np.float32),
        f=rng.integers(0, V, (20908, 3)).astype(np.int64),
        J_regressor=jreg.astype(np.float32),
        kintree_table=kin,
        shapedirs=np.zeros((V, 3, 20), np.float32),
        posedirs=np.zeros((V, 3, 486), np.float32),
        weights=weights.astype(np.float32),
        hands_componentsl=np.eye(45, dtype=np.float32),
        hands_componentsr=np.eye(45, dtype=np.float32),
        hands_meanl=np.zeros(45, np.float32),
        hands_meanr=np.zeros(45, np.float32),
        lmk_faces_idx=np.zeros(51, np.int64),
        lmk_bary_coords=np.full((51, 3), 1 / 3, np.float32),
        dynamic_lmk_faces_idx=np.zeros((79, 17), np.int64),
        dynamic_lmk_bary_coords=np.full((79, 17, 3), 1 / 3, np.float32),
    )
    return path
