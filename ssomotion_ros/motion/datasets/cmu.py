"""CMU mocap (BVH, 31-joint CMU skeleton) -> 69-d SMPL body parameters, and the CMU loader.

Retargeting (``bvh_to_smpl``), per frame, in the BVH's own frame (y up; the CMU rest pose
faces +z with body left = +x, which is exactly SMPL-X's native frame):

1. BVH forward kinematics gives every CMU joint's position ``P`` and frame rotation ``R``.
2. Each SMPL joint j is driven by one CMU body segment (``_SEGMENTS``): a start joint, an
   end point (a joint or an End Site) and the CMU joint whose frame carries the segment.
   A rest alignment ``A_j`` rotates the target skeleton's rest bone direction onto the CMU
   rest segment direction (rest = all channels zero); the posed SMPL global rotation is
   ``G_j = S_j @ R_k @ A_j`` where the swing ``S_j`` turns ``R_k A_j d_j`` onto the actual
   posed segment direction (identity for rigid segments; it absorbs the two-bone CMU neck).
   The pelvis and the chest (spine3), which have several children, use a Kabsch fit of their
   children's rest directions instead.
3. SMPL-X local rotations are ``G_parent^T G_j`` -> axis-angle body_pose; the pelvis rotation
   goes to the map frame (``R_NATIVE_TO_MAP``).
4. Scale: metres per BVH unit = (target skeleton's leg length hip->knee->ankle) / (CMU leg
   length), so the motion fits the target body's legs (the CMU ASF unit would be 0.0564 m;
   the ratio is reported in ``meta``). Root: the target's hip midpoint follows the scaled CMU
   hip midpoint; then the floor is re-levelled so the feet rest on ``z = 0`` (see meta).
5. Frames are resampled to 30 fps with slerp (rotations) and linear interpolation
   (translation). Rotations come from matrices, so Euler-angle flips in the channels (the
   knee artefacts of the conversion) cannot reach the output; remaining single-frame
   spikes are detected and repaired (``meta['repaired_frames']``).

The loader ``load_cmu_dataset`` reads ``INDEX.tsv`` and labels each frame with an action.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssomotion_ros.body.rotations import (
    axis_angle_to_matrix_np,
    matrix_to_axis_angle_np,
    slerp_np,
    unwrap_axis_angle_np,
)
from ssomotion_ros.body.skeleton import (
    JOINT_NAMES,
    NUM_JOINTS,
    PARENTS,
    R_NATIVE_TO_MAP,
    Skeleton,
    default_skeleton,
)
from ssomotion_ros.motion.datasets.bvh import BvhClip, read_bvh

__all__ = [
    "CMU_ALIASES",
    "RetargetConfig",
    "Clip",
    "bvh_to_smpl",
    "bvh_joint_positions_map",
    "skeleton_from_bvh",
    "load_cmu_dataset",
    "reversed_getup_labels",
    "default_cmu_root",
]

log = logging.getLogger(__name__)

#: Canonical CMU (MotionBuilder-style) joint names and the alternative names some CMU
#: conversions use (e.g. the 120 fps 131_xx files).
CMU_ALIASES: dict[str, tuple[str, ...]] = {
    "Hips": ("Hips",),
    "LeftUpLeg": ("LeftUpLeg", "LeftHip"),
    "LeftLeg": ("LeftLeg", "LeftKnee"),
    "LeftFoot": ("LeftFoot", "LeftAnkle"),
    "LeftToeBase": ("LeftToeBase", "LeftToe"),
    "RightUpLeg": ("RightUpLeg", "RightHip"),
    "RightLeg": ("RightLeg", "RightKnee"),
    "RightFoot": ("RightFoot", "RightAnkle"),
    "RightToeBase": ("RightToeBase", "RightToe"),
    "LowerBack": ("LowerBack", "lowerback"),
    "Spine": ("Spine", "Chest"),
    "Spine1": ("Spine1", "Chest2"),
    "Neck": ("Neck", "lowerneck"),
    "Neck1": ("Neck1", "Neck"),
    "Head": ("Head",),
    "LeftShoulder": ("LeftShoulder", "LeftCollar"),
    "LeftArm": ("LeftArm", "LeftShoulder"),
    "LeftForeArm": ("LeftForeArm", "LeftElbow"),
    "LeftHand": ("LeftHand", "LeftWrist"),
    "LeftHandIndex1": ("LeftHandIndex1", "LFingers"),
    "RightShoulder": ("RightShoulder", "RightCollar"),
    "RightArm": ("RightArm", "RightShoulder"),
    "RightForeArm": ("RightForeArm", "RightElbow"),
    "RightHand": ("RightHand", "RightWrist"),
    "RightHandIndex1": ("RightHandIndex1", "RFingers"),
}

#: SMPL joint -> CMU joint at the same place (defines positions for comparisons).
_POSITION_MAP: dict[str, str] = {
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg",
    "spine1": "LowerBack", "left_knee": "LeftLeg", "right_knee": "RightLeg",
    "spine2": "Spine", "left_ankle": "LeftFoot", "right_ankle": "RightFoot",
    "spine3": "Spine1", "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
    "neck": "Neck", "left_collar": "LeftShoulder", "right_collar": "RightShoulder",
    "head": "Head", "left_shoulder": "LeftArm", "right_shoulder": "RightArm",
    "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm", "left_wrist": "LeftHand",
    "right_wrist": "RightHand",
}  # fmt: skip

#: SMPL joint -> (segment start, segment end ('@End' = the start joint's End Site), frame
#: joint). The SMPL joint's rotation is the rotation of this CMU body segment.
_SEGMENTS: dict[str, tuple[str, str, str]] = {
    "left_hip": ("LeftUpLeg", "LeftLeg", "LeftUpLeg"),
    "right_hip": ("RightUpLeg", "RightLeg", "RightUpLeg"),
    "spine1": ("LowerBack", "Spine", "LowerBack"),
    "left_knee": ("LeftLeg", "LeftFoot", "LeftLeg"),
    "right_knee": ("RightLeg", "RightFoot", "RightLeg"),
    "spine2": ("Spine", "Spine1", "Spine"),
    "left_ankle": ("LeftFoot", "LeftToeBase", "LeftFoot"),
    "right_ankle": ("RightFoot", "RightToeBase", "RightFoot"),
    "left_foot": ("LeftToeBase", "@End", "LeftToeBase"),
    "right_foot": ("RightToeBase", "@End", "RightToeBase"),
    "neck": ("Neck", "Head", "Neck1"),
    "left_collar": ("LeftShoulder", "LeftArm", "LeftShoulder"),
    "right_collar": ("RightShoulder", "RightArm", "RightShoulder"),
    "head": ("Head", "@End", "Head"),
    "left_shoulder": ("LeftArm", "LeftForeArm", "LeftArm"),
    "right_shoulder": ("RightArm", "RightForeArm", "RightArm"),
    "left_elbow": ("LeftForeArm", "LeftHand", "LeftForeArm"),
    "right_elbow": ("RightForeArm", "RightHand", "RightForeArm"),
    "left_wrist": ("LeftHand", "LeftHandIndex1", "LeftHand"),
    "right_wrist": ("RightHand", "RightHandIndex1", "RightHand"),
}

#: Joints oriented by their frame joint alone (no swing towards the end point): the CMU
#: finger joints (FingerBase, HandIndex1) are noisy and flip by 180 degrees in some clips.
_RIGID = {"left_wrist", "right_wrist"}

#: Children (SMPL) used in the Kabsch fit of multi-child joints, with the CMU points.
_KABSCH: dict[str, tuple[str, list[tuple[str, str]]]] = {
    # joint: (CMU frame joint, [(SMPL child, CMU point)])
    "pelvis": ("Hips", [("left_hip", "LeftUpLeg"), ("right_hip", "RightUpLeg"),
                        ("spine2", "Spine")]),
    "spine3": ("Spine1", [("head", "Head"), ("left_shoulder", "LeftArm"),
                          ("right_shoulder", "RightArm")]),
}  # fmt: skip

ASF_UNIT_M = (1.0 / 0.45) * 2.54 / 100.0  # CMU ASF length unit in metres (0.0564)


@dataclass
class RetargetConfig:
    """Options of :func:`bvh_to_smpl`."""

    #: Output frame rate, Hz.
    fps: float = 30.0
    #: Re-level the floor so the feet's 5th-percentile contact height is 0 (metres, map z).
    level_floor: bool = True
    #: Largest floor shift applied, metres; bigger estimates are logged and not applied.
    max_floor_shift: float = 0.15
    #: Drop a leading CMU "bind pose" frame (all rotations ~0, unlike the next frame).
    drop_bind_frame: bool = True
    #: Joint angular speed (rad/frame at the source rate) above which an isolated
    #: one-frame spike is treated as a conversion glitch and replaced by slerp.
    spike_threshold: float = 1.2


def _resolve(clip: BvhClip) -> dict[str, int]:
    out = {}
    # aliases are ambiguous across conventions ('Neck', 'LeftShoulder'), so decide the
    # convention once from a joint whose name differs.
    motionbuilder = "LeftUpLeg" in clip.names
    for canon, names in CMU_ALIASES.items():
        name = names[0] if motionbuilder or len(names) == 1 else names[1]
        if name not in clip.names:
            raise ValueError(
                f"{clip.path}: not a CMU skeleton: joint {name!r} ({canon}) missing; "
                f"joints are {clip.names}"
            )
        out[canon] = clip.names.index(name)
    return out


def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3) a, b -> (..., 3, 3) smallest rotation taking direction a to direction b."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    s = np.linalg.norm(v, axis=-1)
    axis = v / np.maximum(s, 1e-12)[..., None]
    angle = np.arctan2(s, c)
    # antiparallel: any perpendicular axis
    anti = (s < 1e-9) & (c < 0)
    if np.any(anti):
        perp = np.cross(a[anti], np.eye(3)[np.argmin(np.abs(a[anti]), axis=-1)])
        axis[anti] = perp / np.linalg.norm(perp, axis=-1, keepdims=True)
    return axis_angle_to_matrix_np(axis * angle[..., None])


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(K, 3) src, dst directions -> rotation R minimising sum |R src_k - dst_k|^2."""
    src = src / np.linalg.norm(src, axis=-1, keepdims=True)
    dst = dst / np.linalg.norm(dst, axis=-1, keepdims=True)
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _native_rest(skeleton: Skeleton) -> np.ndarray:
    """Target skeleton rest joints in the SMPL-X native frame (22, 3)."""
    return skeleton.rest_joints().astype(np.float64) @ R_NATIVE_TO_MAP  # map -> native


def _leg_length(points: dict[str, np.ndarray]) -> float:
    out = 0.0
    for side in ("left", "right"):
        hip, knee, ankle = (points[f"{side}_{n}"] for n in ("hip", "knee", "ankle"))
        out += np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee)
    return out / 2.0


def _end_point(clip: BvhClip, j: int, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    if j not in clip.end_sites:
        raise ValueError(f"{clip.path}: joint {clip.names[j]} has no End Site")
    return pos[..., j, :] + np.einsum("...ab,b->...a", rot[..., j, :, :], clip.end_sites[j])


def _bind_frame(clip: BvhClip) -> bool:
    if clip.num_frames < 2:
        return False
    rot_cols = [
        i for i, c in enumerate(c for ch in clip.channels for c in ch) if c.endswith("rotation")
    ]
    f0, f1 = clip.frames[0, rot_cols], clip.frames[1, rot_cols]
    return bool(np.mean(f0 == 0.0) > 0.8 and np.mean(f1 == 0.0) < 0.5)


def bvh_joint_positions_map(clip: BvhClip, scale: float) -> np.ndarray:
    """CMU joints at the 22 SMPL joint places (``_POSITION_MAP``), per BVH frame.

    Returns (T, 22, 3) float64 metres in the map frame (BVH positions * scale, y-up -> z-up;
    the BVH floor y = 0 becomes z = 0). No resampling, no frame dropping."""
    idx = _resolve(clip)
    pos = clip.positions()
    sel = pos[:, [idx[_POSITION_MAP[n]] for n in JOINT_NAMES]] * scale
    return sel @ R_NATIVE_TO_MAP.T


def skeleton_from_bvh(clip: BvhClip, scale: float | None = None) -> Skeleton:
    """A :class:`Skeleton` with the BVH subject's own proportions (rest = all channels 0).

    Joints sit where ``_POSITION_MAP`` puts them; metres = BVH units * ``scale`` (default:
    the CMU ASF unit, 0.0564 m). The rest pose faces +x like every Skeleton. Retargeting to
    this skeleton reproduces the BVH joint positions (the check of ``bvh_to_smpl``)."""
    idx = _resolve(clip)
    s = ASF_UNIT_M if scale is None else float(scale)
    rest = clip.rest_positions()
    joints = np.array([rest[idx[_POSITION_MAP[n]]] for n in JOINT_NAMES]) * s
    joints = joints @ R_NATIVE_TO_MAP.T
    # floor: lowest rest foot point (End Site of the toes) at z = 0, pelvis on the z axis
    pos0 = rest[None]
    rot0 = np.tile(np.eye(3), (1, len(clip.names), 1, 1))
    toe_end = min(
        (_end_point(clip, idx[t], pos0, rot0)[0] * s @ R_NATIVE_TO_MAP.T)[2]
        for t in ("LeftToeBase", "RightToeBase")
    )
    joints = joints - np.array([joints[0, 0], joints[0, 1], min(toe_end, joints[:, 2].min())])
    offsets = joints.copy()
    offsets[1:] = joints[1:] - joints[PARENTS[1:]]
    return Skeleton(offsets=offsets.astype(np.float32), source=f"from BVH {clip.path}")


def _repair_spikes(local: np.ndarray, threshold: float) -> list[int]:
    """Replace isolated one-frame rotation spikes in (T, J, 3, 3) local rotations in place.

    A frame t is a spike for joint j if the rotation distance t-1 -> t and t -> t+1 both exceed
    ``threshold`` rad while t-1 -> t+1 is small. Returns the repaired frame indices."""
    from scipy.spatial.transform import Rotation, Slerp

    T = local.shape[0]
    if T < 3:
        return []

    def dist(a, b):
        tr = np.einsum("...ij,...ij->...", a, b)  # trace(a^T b)
        return np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0))

    d_prev = dist(local[1:-1], local[:-2])
    d_next = dist(local[1:-1], local[2:])
    d_skip = dist(local[:-2], local[2:])
    bad = (d_prev > threshold) & (d_next > threshold) & (d_skip < 0.5 * threshold)
    frames = sorted({int(t) + 1 for t in np.nonzero(bad)[0]})
    for t, j in zip(*np.nonzero(bad)):
        key = Rotation.from_matrix(np.stack([local[t, j], local[t + 2, j]]))
        local[t + 1, j] = Slerp([0.0, 1.0], key)([0.5]).as_matrix()[0]
    return frames


def bvh_to_smpl(
    clip: BvhClip,
    skeleton: Skeleton | None = None,
    config: RetargetConfig | None = None,
) -> tuple[np.ndarray, dict]:
    """Retarget a CMU BVH clip to 69-d SMPL body parameters (see the module docstring).

    clip: a CMU skeleton read by :func:`~ssomotion_ros.motion.datasets.bvh.read_bvh`.
    skeleton: target body (default :func:`~ssomotion_ros.body.skeleton.default_skeleton`);
        the parameters reproduce the CMU segment directions on this skeleton.
    Returns ``params`` (T', 69) float32 at ``config.fps`` ([global_orient | body_pose |
    transl], radians/metres, map frame, z up) and ``meta`` (dict: fps, scale_m_per_unit,
    asf_height_ratio, floor_shift_m, dropped_bind_frame, repaired_frames, source_fps,
    source_frames, times (T',) seconds in the source clip).
    """
    cfg = config or RetargetConfig()
    skel = skeleton if skeleton is not None else default_skeleton()
    idx = _resolve(clip)
    pos, rot = clip.global_transforms()  # (T, J, 3), (T, J, 3, 3) file units, y up
    start = 1 if cfg.drop_bind_frame and _bind_frame(clip) else 0
    pos, rot = pos[start:], rot[start:]
    T = pos.shape[0]
    if T < 2:
        raise ValueError(f"{clip.path}: needs at least 2 motion frames, has {T}")

    rest_pos = clip.rest_positions()
    rest_rot = np.tile(np.eye(3), (1, len(clip.names), 1, 1))
    tgt = _native_rest(skel)  # (22, 3) target rest joints, native frame
    name_to_i = {n: i for i, n in enumerate(JOINT_NAMES)}

    def point(name: str, seg_start: str, P, R):
        if name == "@End":
            return _end_point(clip, idx[seg_start], P, R)
        return P[..., idx[name], :]

    G = np.zeros((T, NUM_JOINTS, 3, 3))
    children = {j: [c for c in range(NUM_JOINTS) if PARENTS[c] == j] for j in range(NUM_JOINTS)}
    for j, name in enumerate(JOINT_NAMES):
        if name in _KABSCH:
            frame_joint, pairs = _KABSCH[name]
            src = np.array([tgt[name_to_i[c]] - tgt[j] for c, _ in pairs])
            dst = np.array([rest_pos[idx[p]] - rest_pos[idx[frame_joint]] for _, p in pairs])
            a = _kabsch(src, dst)
            G[:, j] = rot[:, idx[frame_joint]] @ a
            continue
        s_name, e_name, f_name = _SEGMENTS[name]
        if children[j]:
            d0 = tgt[children[j][0]] - tgt[j]
        else:  # end joints (head, feet, wrists): target has no child; use the CMU direction
            d0 = None
        u0 = point(e_name, s_name, rest_pos[None], rest_rot)[0] - rest_pos[idx[s_name]]
        a = np.eye(3) if d0 is None else _min_rotation(d0, u0)
        gk = rot[:, idx[f_name]] @ a
        if name in _RIGID:
            G[:, j] = gk
            continue
        u = point(e_name, s_name, pos, rot) - pos[:, idx[s_name]]
        pred = np.einsum("tab,b->ta", rot[:, idx[f_name]], u0)
        G[:, j] = _min_rotation(pred, u) @ gk

    local = np.zeros_like(G)
    local[:, 0] = G[:, 0]
    for j in range(1, NUM_JOINTS):
        local[:, j] = np.swapaxes(G[:, PARENTS[j]], -1, -2) @ G[:, j]
    repaired = _repair_spikes(local, cfg.spike_threshold)
    if repaired:
        log.info("%s: repaired rotation spikes at %d frames", clip.path, len(repaired))

    # scale from leg lengths, root from the hip midpoint
    cmu_rest_pts = {n: rest_pos[idx[_POSITION_MAP[n]]] for n in JOINT_NAMES}
    tgt_pts = {n: tgt[i] for i, n in enumerate(JOINT_NAMES)}
    scale = _leg_length(tgt_pts) / _leg_length(cmu_rest_pts)
    hips_mid = 0.5 * (pos[:, idx["LeftUpLeg"]] + pos[:, idx["RightUpLeg"]]) * scale  # native
    tgt_hip_off = 0.5 * (tgt[1] + tgt[2]) - tgt[0]  # pelvis -> hip midpoint at rest, native
    # pelvis rotation in world = G0 (native world); hips midpoint = pelvis + G0 @ off
    pelvis_native = hips_mid - np.einsum("tab,b->ta", G[:, 0], tgt_hip_off)
    pelvis_map = pelvis_native @ R_NATIVE_TO_MAP.T
    transl = pelvis_map - skel.offsets[0].astype(np.float64)

    go_map = R_NATIVE_TO_MAP @ local[:, 0] @ R_NATIVE_TO_MAP.T
    aa = np.concatenate(
        [matrix_to_axis_angle_np(go_map)[:, None], matrix_to_axis_angle_np(local[:, 1:])], axis=1
    )  # (T, 22, 3)

    # resample to the output rate
    src_t = np.arange(T) * clip.frame_time
    n_out = int(np.floor(src_t[-1] * cfg.fps + 1e-6)) + 1
    dst_t = np.arange(n_out) / cfg.fps
    if abs(clip.fps - cfg.fps) < 1e-3 * cfg.fps:
        aa_out, transl_out, dst_t = aa, transl, src_t
    else:
        aa_out = slerp_np(src_t, aa, dst_t)
        transl_out = np.stack([np.interp(dst_t, src_t, transl[:, k]) for k in range(3)], -1)
    aa_out = aa_out.copy()
    aa_out[:, 0] = unwrap_axis_angle_np(aa_out[:, 0])
    params = np.concatenate([aa_out.reshape(len(dst_t), 66), transl_out], axis=1)

    floor_shift = 0.0
    if cfg.level_floor:
        from ssomotion_ros.body.skeleton import forward_kinematics_np

        j = forward_kinematics_np(params, skel)
        rest = skel.rest_joints()
        feet = [7, 8, 10, 11]
        contact = np.min(j[:, feet, 2] - rest[feet, 2], axis=1)
        est = float(np.percentile(contact, 5))
        if abs(est) <= cfg.max_floor_shift:
            floor_shift = -est
            params[:, 68] += floor_shift
        else:
            log.warning(
                "%s: floor estimate %.3f m exceeds max_floor_shift; not applied", clip.path, est
            )
    meta = {
        "fps": float(cfg.fps),
        "source_fps": float(clip.fps),
        "source_frames": int(clip.num_frames),
        "dropped_bind_frame": bool(start),
        "scale_m_per_unit": float(scale),
        "asf_height_ratio": float(scale / ASF_UNIT_M),
        "floor_shift_m": float(floor_shift),
        "repaired_frames": [r + start for r in repaired],
        "times": dst_t + start * clip.frame_time,
    }
    return params.astype(np.float32), meta


# ---------------------------------------------------------------- dataset


@dataclass
class Clip:
    """One retargeted motion clip with per-frame action labels."""

    #: Clip name (file stem).
    name: str
    #: (T, 69) float32 [global_orient | body_pose | transl], map frame, 30 fps.
    params: np.ndarray
    #: (T,) str per-frame action in {walk, sit, stand_up, lie, idle}.
    actions: np.ndarray
    #: Frames per second of ``params``.
    fps: float = 30.0
    #: Category from the dataset index (e.g. ``walk``, ``sit_stand``).
    category: str = ""
    #: Free-text description from the index.
    description: str = ""
    #: Retargeting metadata (CMU clips: also ``posture`` (T,) str standing/seated/lying).
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.params.shape[0])


def reversed_getup_labels(params: np.ndarray, skeleton: Skeleton | None = None) -> np.ndarray:
    """Labels of a time-reversed get-up (a lie-down), (T, 69) -> (T,) str.

    Labelled afresh (so walking backwards is not ``walk``); any ``stand_up`` left is a
    reversed sit-down on the way to the floor and becomes ``lie``."""
    from ssomotion_ros.motion.datasets.labels import label_actions

    acts = label_actions(params, "ground_liedown", skeleton=skeleton)
    acts[acts == "stand_up"] = "lie"
    return acts


def default_cmu_root() -> Path:
    """``<repo root>/../shared/data/mocap/cmu``."""
    return Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "mocap" / "cmu"


def load_cmu_dataset(
    root: str | Path | None = None,
    skeleton: Skeleton | None = None,
    config: RetargetConfig | None = None,
    names: list[str] | None = None,
    progress: bool = True,
    reverse_getups: bool = True,
) -> list[Clip]:
    """Read every clip listed in ``root/INDEX.tsv``, retarget it, and label its frames.

    root: folder with ``INDEX.tsv`` and the BVH files (default :func:`default_cmu_root`).
    names: optional subset of file stems (e.g. ``["08_01"]``).
    reverse_getups: also add each ``ground_getup`` clip played backwards as
        ``<name>_reversed`` (getting up from the floor reversed = lying down), labelled by
        :func:`reversed_getup_labels`. Kinematic data is valid backwards in time.
    Returns a list of :class:`Clip` (30 fps, actions from
    :func:`~ssomotion_ros.motion.datasets.labels.label_actions`).
    """
    from tqdm import tqdm

    from ssomotion_ros.motion.datasets.labels import label_actions

    root = Path(root) if root is not None else default_cmu_root()
    index = root / "INDEX.tsv"
    if not index.is_file():
        raise FileNotFoundError(
            f"CMU index not found: {index}. Expected the CMU BVH folder with INDEX.tsv "
            "(see ../shared/data/README.md)"
        )
    with open(index, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if names is not None:
        wanted = set(names)
        rows = [r for r in rows if Path(r["file"]).stem in wanted]
    skel = skeleton if skeleton is not None else default_skeleton()
    clips = []
    for row in tqdm(rows, desc="CMU clips", disable=not progress):
        path = root / row["file"]
        params, meta = bvh_to_smpl(read_bvh(path), skel, config)
        actions, posture = label_actions(
            params, row.get("category", ""), fps=meta["fps"], skeleton=skel, return_posture=True
        )
        meta["posture"] = posture
        clips.append(
            Clip(
                name=path.stem,
                params=params,
                actions=actions,
                fps=meta["fps"],
                category=row.get("category", ""),
                description=row.get("description", ""),
                meta=meta,
            )
        )
        if reverse_getups and row.get("category", "") == "ground_getup":
            rev_params = np.ascontiguousarray(params[::-1])
            rev_actions = reversed_getup_labels(rev_params, skel)
            clips.append(
                Clip(
                    name=path.stem + "_reversed",
                    params=rev_params,
                    actions=rev_actions,
                    fps=meta["fps"],
                    category="ground_liedown",
                    description=row.get("description", "") + " (reversed: lying down)",
                    meta={**meta, "reversed": True, "posture": posture[::-1].copy()},
                )
            )
    return clips
