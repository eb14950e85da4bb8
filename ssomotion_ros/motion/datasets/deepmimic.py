"""DeepMimic humanoid clips (shipped in the ``pybullet`` wheel) -> 69-d SMPL parameters.

Optional extra real data: ``pip install -c constraints.txt pybullet`` puts short
mocap-derived clips (MIT-licensed DeepMimic data) in ``pybullet_data/data/motions/``:
walk, walker/0walk_forward, walker/turn_left0/1, walker/turn_right0/1 (1.27 s loops), run,
getup_faceup / getup_facedown (lying -> standing; reversed = lying down), and acrobatics
that are not used here.

File format: JSON ``{"Loop": "wrap"|"none", "Frames": [[dt, root pos (3), root quat
(w, x, y, z), chest q, neck q, right_hip q, right_knee angle, right_ankle q,
right_shoulder q, right_elbow angle, left_hip q, left_knee angle, left_ankle q,
left_shoulder q, left_elbow angle], ...]]`` (44 numbers), y up, metres; the character
faces +x with its right side towards +z. Bone offsets are those of DeepMimic's
``humanoid3d`` (the pybullet ``humanoid.urdf`` scaled by 0.25).

Retargeting mirrors :mod:`~ssomotion_ros.motion.datasets.cmu`: each SMPL joint takes the
global rotation of the matching DeepMimic segment times a rest alignment (the DeepMimic rest
pose has the arms down, SMPL-X's is a T-pose); the single DeepMimic chest joint is spread
evenly over SMPL's spine1..3; collars, head and wrists keep their parents' rotation. The
pelvis follows the hip midpoint scaled by the leg-length ratio; frames are resampled to
30 fps; the floor is re-levelled like the CMU clips.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ssomotion_ros.body.rotations import matrix_to_axis_angle_np, slerp_np, unwrap_axis_angle_np
from ssomotion_ros.body.skeleton import (
    JOINT_NAMES,
    NUM_JOINTS,
    PARENTS,
    R_NATIVE_TO_MAP,
    Skeleton,
    default_skeleton,
    forward_kinematics_np,
)
from ssomotion_ros.motion.datasets.cmu import Clip, _kabsch, _min_rotation, reversed_getup_labels

__all__ = [
    "DM_JOINTS",
    "DEEPMIMIC_CLIPS",
    "deepmimic_motion_dir",
    "read_deepmimic",
    "deepmimic_to_smpl",
    "tile_loop",
    "loop_gap",
    "load_deepmimic_dataset",
]

log = logging.getLogger(__name__)

_S = 0.25  # humanoid.urdf -> DeepMimic humanoid3d metres
#: DeepMimic joints: name -> (parent, offset in the parent frame (metres), dof 4|1|0).
DM_JOINTS: dict[str, tuple[str | None, tuple[float, float, float], int]] = {
    "root": (None, (0.0, 0.0, 0.0), 4),
    "chest": ("root", (0.0, 0.944604 * _S, 0.0), 4),
    "neck": ("chest", (0.0, 0.895576 * _S, 0.0), 4),
    "right_hip": ("root", (0.0, 0.0, 0.339548 * _S), 4),
    "right_knee": ("right_hip", (0.0, -1.686184 * _S, 0.0), 1),
    "right_ankle": ("right_knee", (0.0, -1.63948 * _S, 0.0), 4),
    "right_shoulder": ("chest", (-0.0962 * _S, 0.974 * _S, 0.73244 * _S), 4),
    "right_elbow": ("right_shoulder", (0.0, -1.099152 * _S, 0.0), 1),
    "left_hip": ("root", (0.0, 0.0, -0.339548 * _S), 4),
    "left_knee": ("left_hip", (0.0, -1.686184 * _S, 0.0), 1),
    "left_ankle": ("left_knee", (0.0, -1.63948 * _S, 0.0), 4),
    "left_shoulder": ("chest", (-0.0962 * _S, 0.974 * _S, -0.73244 * _S), 4),
    "left_elbow": ("left_shoulder", (0.0, -1.099152 * _S, 0.0), 1),
}
#: Order of the per-joint values after the root in a frame.
_FRAME_ORDER = ("chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder",
                "right_elbow", "left_hip", "left_knee", "left_ankle", "left_shoulder",
                "left_elbow")  # fmt: skip
_NAMES = tuple(DM_JOINTS)
_POINTS = {  # extra rest points in the parent joint's frame (end of segments)
    "head_top": ("neck", (0.0, 0.7 * _S * 1.6, 0.0)),
    "right_wrist": ("right_elbow", (0.0, -1.035788 * _S, 0.0)),
    "left_wrist": ("left_elbow", (0.0, -1.035788 * _S, 0.0)),
    "right_toe": ("right_ankle", (0.18 * _S * 2.0, -0.09 * _S * 2.0, 0.0)),
    "left_toe": ("left_ankle", (0.18 * _S * 2.0, -0.09 * _S * 2.0, 0.0)),
}
#: DeepMimic character axes (x fwd, y up, z right) -> SMPL-X native axes (x left, y up, z fwd).
_M = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])

#: clip file (relative to the motions folder) -> (action label, description).
DEEPMIMIC_CLIPS: dict[str, tuple[str, str]] = {
    "humanoid3d_walk.txt": ("walk", "walk (loop)"),
    "walker/0walk_forward.txt": ("walk", "walk forward (loop)"),
    "walker/turn_left0.txt": ("walk", "walk turning left (loop)"),
    "walker/turn_left1.txt": ("walk", "walk turning left (loop)"),
    "walker/turn_right0.txt": ("walk", "walk turning right (loop)"),
    "walker/turn_right1.txt": ("walk", "walk turning right (loop)"),
    "humanoid3d_getup_faceup.txt": ("getup", "get up from lying on the back"),
    "humanoid3d_getup_facedown.txt": ("getup", "get up from lying face down"),
}


def deepmimic_motion_dir() -> Path:
    """``pybullet_data/data/motions``; ImportError with the install command if absent."""
    try:
        import pybullet_data
    except ImportError as exc:
        raise ImportError(
            "DeepMimic clips come with the optional 'pybullet' package: "
            ".venv/bin/pip install -c constraints.txt pybullet"
        ) from exc
    return Path(pybullet_data.getDataPath()) / "data" / "motions"


def read_deepmimic(path: str | Path) -> dict:
    """Parse a DeepMimic motion file.

    Returns dict: ``times`` (T,) s, ``root_pos`` (T, 3) m (y up), ``local`` (T, 13, 3, 3)
    local rotation matrices in ``DM_JOINTS`` order (root first, in the world frame),
    ``loop`` str. ValueError for malformed files."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        frames = np.asarray(data["Frames"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{p}: not a DeepMimic motion file ({exc})") from exc
    if frames.ndim != 2 or frames.shape[1] != 44 or len(frames) < 2:
        raise ValueError(f"{p}: expected Frames (T >= 2, 44), got {frames.shape}")
    dt = frames[:, 0]
    times = np.concatenate([[0.0], np.cumsum(dt[:-1])])
    local = np.tile(np.eye(3), (len(frames), len(_NAMES), 1, 1))

    def quat(cols):
        q = frames[:, cols]  # w, x, y, z
        return Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()

    local[:, 0] = quat(slice(4, 8))
    c = 8
    for name in _FRAME_ORDER:
        j = _NAMES.index(name)
        if DM_JOINTS[name][2] == 4:
            local[:, j] = quat(slice(c, c + 4))
            c += 4
        else:
            local[:, j] = Rotation.from_rotvec(
                frames[:, c, None] * np.array([0, 0, 1.0])
            ).as_matrix()
            c += 1
    return {"times": times, "root_pos": frames[:, 1:4], "local": local,
            "loop": str(data.get("Loop", "none"))}  # fmt: skip


def _fk(local: np.ndarray, root_pos: np.ndarray):
    """Global rotations (T, 13, 3, 3) and positions (T, 13 + 5, 3) incl. the extra points."""
    T = len(local)
    rot = np.zeros_like(local)
    pos = np.zeros((T, len(_NAMES) + len(_POINTS), 3))
    for j, name in enumerate(_NAMES):
        parent, off, _ = DM_JOINTS[name]
        if parent is None:
            rot[:, j] = local[:, j]
            pos[:, j] = root_pos
        else:
            pj = _NAMES.index(parent)
            rot[:, j] = rot[:, pj] @ local[:, j]
            pos[:, j] = pos[:, pj] + rot[:, pj] @ np.asarray(off)
    for k, (_name, (parent, off)) in enumerate(_POINTS.items()):
        pj = _NAMES.index(parent)
        pos[:, len(_NAMES) + k] = pos[:, pj] + rot[:, pj] @ np.asarray(off)
    return rot, pos


def _idx(name: str) -> int:
    if name in _NAMES:
        return _NAMES.index(name)
    return len(_NAMES) + list(_POINTS).index(name)


def deepmimic_to_smpl(
    motion: dict, skeleton: Skeleton | None = None, fps: float = 30.0, level_floor: bool = True
) -> tuple[np.ndarray, dict]:
    """Retarget a parsed DeepMimic motion (:func:`read_deepmimic`) to (T', 69) float32 params
    at ``fps`` (map frame, z up) plus a meta dict."""
    skel = skeleton if skeleton is not None else default_skeleton()
    tgt = skel.rest_joints().astype(np.float64) @ R_NATIVE_TO_MAP  # native rest joints
    rest_rot, rest_pos = _fk(np.tile(np.eye(3), (1, len(_NAMES), 1, 1)), np.zeros((1, 3)))
    rest_pos = rest_pos[0] @ _M.T  # DeepMimic rest, native axes
    rot, pos = _fk(motion["local"], motion["root_pos"])
    rot = _M @ rot @ _M.T  # rest-relative global rotations, native axes
    pos = pos @ _M.T
    T = len(rot)
    n = {name: i for i, name in enumerate(JOINT_NAMES)}

    def seg(smpl_j: str, smpl_child: str, dm_frame: str, dm_a: str, dm_b: str) -> np.ndarray:
        a = _min_rotation(tgt[n[smpl_child]] - tgt[n[smpl_j]], rest_pos[_idx(dm_b)] -
                          rest_pos[_idx(dm_a)])  # fmt: skip
        return rot[:, _idx(dm_frame)] @ a

    G = np.zeros((T, NUM_JOINTS, 3, 3))
    src = np.array([tgt[n[c]] - tgt[0] for c in ("left_hip", "right_hip", "spine3")])
    dst = np.array([rest_pos[_idx(c)] - rest_pos[0] for c in ("left_hip", "right_hip", "chest")])
    G[:, 0] = rot[:, 0] @ _kabsch(src, dst)
    src = np.array([tgt[n[c]] - tgt[n["spine3"]] for c in ("head", "left_shoulder",
                                                              "right_shoulder")])  # fmt: skip
    dst = np.array([rest_pos[_idx(c)] - rest_pos[_idx("chest")] for c in ("head_top",
                    "left_shoulder", "right_shoulder")])  # fmt: skip
    g3 = rot[:, _idx("chest")] @ _kabsch(src, dst)
    rel = Rotation.from_matrix(np.swapaxes(G[:, 0], -1, -2) @ g3).as_rotvec()
    for k, name in enumerate(("spine1", "spine2", "spine3")):
        G[:, n[name]] = G[:, 0] @ Rotation.from_rotvec(rel * (k + 1) / 3.0).as_matrix()
    for side in ("left", "right"):
        G[:, n[f"{side}_hip"]] = seg(f"{side}_hip", f"{side}_knee", f"{side}_hip",
                                     f"{side}_hip", f"{side}_knee")  # fmt: skip
        G[:, n[f"{side}_knee"]] = seg(f"{side}_knee", f"{side}_ankle", f"{side}_knee",
                                      f"{side}_knee", f"{side}_ankle")  # fmt: skip
        G[:, n[f"{side}_ankle"]] = seg(f"{side}_ankle", f"{side}_foot", f"{side}_ankle",
                                       f"{side}_ankle", f"{side}_toe")  # fmt: skip
        G[:, n[f"{side}_foot"]] = G[:, n[f"{side}_ankle"]]
        G[:, n[f"{side}_collar"]] = G[:, n["spine3"]]
        G[:, n[f"{side}_shoulder"]] = seg(f"{side}_shoulder", f"{side}_elbow",
                                          f"{side}_shoulder", f"{side}_shoulder",
                                          f"{side}_elbow")  # fmt: skip
        G[:, n[f"{side}_elbow"]] = seg(f"{side}_elbow", f"{side}_wrist", f"{side}_elbow",
                                       f"{side}_elbow", f"{side}_wrist")  # fmt: skip
        G[:, n[f"{side}_wrist"]] = G[:, n[f"{side}_elbow"]]
    G[:, n["neck"]] = seg("neck", "head", "neck", "neck", "head_top")
    G[:, n["head"]] = G[:, n["neck"]]

    local = np.zeros_like(G)
    local[:, 0] = G[:, 0]
    for j in range(1, NUM_JOINTS):
        local[:, j] = np.swapaxes(G[:, PARENTS[j]], -1, -2) @ G[:, j]

    tgt_leg = np.mean([np.linalg.norm(tgt[n[f"{s}_knee"]] - tgt[n[f"{s}_hip"]]) +
                       np.linalg.norm(tgt[n[f"{s}_ankle"]] - tgt[n[f"{s}_knee"]])
                       for s in ("left", "right")])  # fmt: skip
    dm_leg = np.mean([np.linalg.norm(rest_pos[_idx(f"{s}_knee")] - rest_pos[_idx(f"{s}_hip")]) +
                      np.linalg.norm(rest_pos[_idx(f"{s}_ankle")] - rest_pos[_idx(f"{s}_knee")])
                      for s in ("left", "right")])  # fmt: skip
    scale = tgt_leg / dm_leg
    hips_mid = 0.5 * (pos[:, _idx("left_hip")] + pos[:, _idx("right_hip")]) * scale
    hip_off = 0.5 * (tgt[1] + tgt[2]) - tgt[0]
    pelvis_map = (hips_mid - np.einsum("tab,b->ta", G[:, 0], hip_off)) @ R_NATIVE_TO_MAP.T
    transl = pelvis_map - skel.offsets[0].astype(np.float64)
    go_map = R_NATIVE_TO_MAP @ local[:, 0] @ R_NATIVE_TO_MAP.T
    aa = np.concatenate([matrix_to_axis_angle_np(go_map)[:, None],
                         matrix_to_axis_angle_np(local[:, 1:])], axis=1)  # fmt: skip
    ts = motion["times"]
    n_out = int(np.floor(ts[-1] * fps + 1e-6)) + 1
    td = np.arange(n_out) / fps
    aa = slerp_np(ts, aa, td)
    aa[:, 0] = unwrap_axis_angle_np(aa[:, 0])
    tr = np.stack([np.interp(td, ts, transl[:, k]) for k in range(3)], -1)
    params = np.concatenate([aa.reshape(n_out, 66), tr], 1)
    shift = 0.0
    if level_floor:
        j = forward_kinematics_np(params, skel)
        rest = skel.rest_joints()
        feet = [7, 8, 10, 11]
        est = float(np.percentile(np.min(j[:, feet, 2] - rest[feet, 2], axis=1), 5))
        if abs(est) <= 0.15:
            shift = -est
            params[:, 68] += shift
    meta = {"fps": float(fps), "scale": float(scale), "floor_shift_m": shift,
            "loop": motion["loop"], "times": td}  # fmt: skip
    return params.astype(np.float32), meta


def tile_loop(params: np.ndarray, cycles: int) -> np.ndarray:
    """Repeat a looping (T, 69) clip ``cycles`` times, continuing position and heading.

    DeepMimic "wrap" loops end one frame before the pose they start with, so each new
    cycle is turned about z and shifted so that its first frame lands one step (the step of
    the previous cycle's last two frames, in position and heading) after the previous
    cycle's last frame. Returns (T * cycles, 69) float32."""
    from ssomotion_ros.motion.datasets.augment import heading, rotate_z

    if cycles < 1:
        raise ValueError(f"cycles must be >= 1, got {cycles}")
    p = np.asarray(params, np.float32)
    out = [p]
    for _ in range(cycles - 1):
        prev = out[-1]
        h1, h0 = heading(prev[-1]), heading(prev[-2])
        dh = (h1 - h0 + np.pi) % (2 * np.pi) - np.pi
        nxt = rotate_z(p, float(h1 + dh - heading(p[0])), origin=(0.0, 0.0))
        step = prev[-1, 66:68] + (prev[-1, 66:68] - prev[-2, 66:68])
        nxt[:, 66:68] += step - nxt[0, 66:68]
        out.append(nxt)
    return np.concatenate(out)


def loop_gap(params: np.ndarray) -> float:
    """Largest joint distance (m) between the first and last frame of a (T, 69) clip, each
    expressed in its own body frame (pelvis above the origin, facing +x)."""
    from ssomotion_ros.motion.datasets.augment import canonicalize

    p = np.asarray(params, np.float32)
    a, _ = canonicalize(p[:1], frame=0)
    b, _ = canonicalize(p[-1:], frame=0)
    return float(np.linalg.norm(forward_kinematics_np(a) - forward_kinematics_np(b), axis=-1).max())


def load_deepmimic_dataset(
    motion_dir: str | Path | None = None,
    skeleton: Skeleton | None = None,
    loop_cycles: int = 4,
    reverse_getups: bool = True,
    max_loop_gap: float = 2.0,
) -> list[Clip]:
    """The walking and get-up clips of :data:`DEEPMIMIC_CLIPS` as labelled 30 fps clips.

    Loops are tiled ``loop_cycles`` times when they close: :func:`loop_gap` below
    ``max_loop_gap`` times the clip's median per-frame joint step (the last frame is about
    one step before the first; turn_left1 and turn_right0 do not close and stay single).
    Get-up clips are labelled by
    :func:`~ssomotion_ros.motion.datasets.labels.label_actions` (lying, then stand_up);
    with ``reverse_getups`` their time reversal is added as a lie-down
    (:func:`~ssomotion_ros.motion.datasets.cmu.reversed_getup_labels`).
    Raises ImportError (with the install command) when pybullet is not installed."""
    from ssomotion_ros.motion.datasets.labels import label_actions

    root = Path(motion_dir) if motion_dir is not None else deepmimic_motion_dir()
    skel = skeleton if skeleton is not None else default_skeleton()
    clips = []
    for rel, (label, desc) in DEEPMIMIC_CLIPS.items():
        path = root / rel
        if not path.is_file():
            log.warning("DeepMimic clip %s not found; skipped", path)
            continue
        motion = read_deepmimic(path)
        params, meta = deepmimic_to_smpl(motion, skel)
        name = "deepmimic_" + Path(rel).stem
        if label == "walk":
            gap = loop_gap(params)
            j = forward_kinematics_np(params, skel)
            step = float(np.median(np.linalg.norm(np.diff(j, axis=0), axis=-1).max(1)))
            if motion["loop"] == "wrap" and loop_cycles > 1 and gap < max_loop_gap * step:
                params = tile_loop(params, loop_cycles)
            elif loop_cycles > 1:
                log.info("%s: loop does not close (%.3f m); not tiled", rel, gap)
            actions, posture = label_actions(params, "walk", skeleton=skel, return_posture=True)
            meta = {**meta, "loop_gap_m": gap, "posture": posture}
            clips.append(Clip(name, params, actions, 30.0, "deepmimic_walk", desc, meta))
            continue
        actions, posture = label_actions(params, "ground_getup", skeleton=skel, return_posture=True)
        meta = {**meta, "posture": posture}
        clips.append(Clip(name, params, actions, 30.0, "ground_getup", desc, meta))
        if reverse_getups:
            rev_params = np.ascontiguousarray(params[::-1])
            rev = reversed_getup_labels(rev_params, skel)
            clips.append(Clip(name + "_reversed", rev_params, rev, 30.0,
                              "ground_liedown", desc + " (reversed: lying down)",
                              {**meta, "reversed": True,
                               "posture": posture[::-1].copy()}))  # fmt: skip
    return clips
