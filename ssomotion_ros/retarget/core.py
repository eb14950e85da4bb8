"""Optimization-based retargeting of human motion onto a URDF robot/avatar, and the naive
copy-the-rotations baseline, in one harness.

Source: our 69-d body parameters ``params (T, 69)`` (map frame, z up, metres, 30 fps)
and, optionally, per-frame action labels (``sit`` frames give a seat contact). Target: a
:class:`~.urdf.RobotModel` with a :class:`~.mapping.Mapping`.

Objective per frame window (all lengths divided by the robot's leg length ``L_r`` so the
weights do not depend on the robot's units), minimised with Adam over the joint
configuration and the root pose (rotation as 6D, position) of a batch of windows at once:

- ``position``: key points to targets scaled to the robot's proportions. The pelvis
  target is the robot's rest pelvis plus the human pelvis displacement times
  ``s = L_r / L_h`` (leg-length ratio); every other key point hangs from its mapped parent
  with the robot's own rest bone vector, turned by the human segment's rotation (the
  parent's global rotation, then a swing onto the actual human bone direction).
  End effectors (wrists, ankles, feet, head) weigh ``end_effector`` times more.
- ``semantic``: the key-pair distance matrix (:data:`SEMANTIC_PAIRS`, hands to head,
  hands to hips, feet apart, hand to hand, ...) normalised by leg length must equal the
  source's (both bodies at their own scale).
- ``contact``: where a source foot is in contact (low and slow, measured on the foot
  points the robot has: ankle, and toe when mapped), the robot's foot is planted: its
  height (the same points above their rest height) is zero (or the source's, where that
  is below zero) and its slowest point does not slide; the lowest foot capsule point
  never goes below the floor ``z = 0``; in seat frames the pelvis holds its scaled seat
  height and does not slide.
- ``penetration``: squared depth of every non-adjacent capsule pair overlap
  (self-collision from the URDF's collision geometry).
- joint limits: hard, by reparametrisation ``q = mid + half * tanh(theta)`` for every
  DoF with finite limits (never exceeded, whatever the optimizer does).
- ``smooth``: squared second differences of the configuration, root and key points.
- ``rotation``: a weak pull of each mapped segment's rest-relative rotation toward the
  human's (rest-aligned), which fixes the twists positions cannot see.

The baseline :meth:`Retargeter.copy` fits only the rotation term (no positions, limits,
contacts or collisions), with the root placed at the scaled pelvis: the classic "copy the
joint rotations" retarget, generalised to robots whose joints are split into revolute
axes (rest poses aligned bone by bone, as a fair copy does).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ssomotion_ros.body.rotations import matrix_to_rotation_6d, rotation_6d_to_matrix
from ssomotion_ros.body.skeleton import (
    JOINT_NAMES,
    Skeleton,
    check_params,
    default_skeleton,
    forward_kinematics,
)
from ssomotion_ros.retarget.kinematics import RobotKinematics, segment_distance
from ssomotion_ros.retarget.mapping import CHAINS, Mapping
from ssomotion_ros.retarget.urdf import RobotModel

__all__ = [
    "SEMANTIC_PAIRS",
    "END_EFFECTORS",
    "RetargetConfig",
    "SourceMotion",
    "RetargetResult",
    "Retargeter",
    "pick_device",
]

log = logging.getLogger(__name__)

_I = {n: i for i, n in enumerate(JOINT_NAMES)}

#: Human key pairs whose normalised distances carry the motion's meaning.
SEMANTIC_PAIRS: tuple[tuple[str, str], ...] = (
    ("left_wrist", "right_wrist"), ("left_wrist", "head"), ("right_wrist", "head"),
    ("left_wrist", "pelvis"), ("right_wrist", "pelvis"), ("left_wrist", "spine3"),
    ("right_wrist", "spine3"), ("left_wrist", "left_hip"), ("right_wrist", "right_hip"),
    ("left_wrist", "right_hip"), ("right_wrist", "left_hip"), ("left_wrist", "left_knee"),
    ("right_wrist", "right_knee"), ("left_wrist", "left_ankle"),
    ("right_wrist", "right_ankle"), ("left_elbow", "right_elbow"), ("left_elbow", "spine3"),
    ("right_elbow", "spine3"), ("left_ankle", "right_ankle"), ("left_knee", "right_knee"),
    ("left_ankle", "pelvis"), ("right_ankle", "pelvis"), ("head", "pelvis"),
    ("left_knee", "spine3"), ("right_knee", "spine3"),
)  # fmt: skip
#: Human joints weighted as end effectors in the position term.
END_EFFECTORS: tuple[str, ...] = (
    "left_wrist", "right_wrist", "left_ankle", "right_ankle", "left_foot", "right_foot", "head",
)  # fmt: skip


def pick_device(device=None) -> torch.device:
    """``device`` if given, else ``cuda`` when available, else ``cpu``."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class RetargetConfig:
    """Retargeting options (weights are relative; lengths are human metres unless said)."""

    #: Adam iterations per batch of windows for our method.
    iterations: int = 150
    #: Adam iterations of the copy baseline's rotation fit.
    copy_iterations: int = 120
    #: Optimizer of our method: "lbfgs" (strong-Wolfe line search; ``iterations`` = max
    #: iterations) or "adam" (cosine-decayed learning rate ``lr``).
    optimizer: str = "lbfgs"
    #: Adam learning rate (copy baseline and ``optimizer="adam"``).
    lr: float = 0.04
    #: Frames per window.
    window: int = 30
    #: Windows optimised together (one batch).
    batch_windows: int = 8
    #: Weight of key point positions (scaled targets).
    w_position: float = 1.0
    #: Extra factor on end effectors in the position term.
    end_effector: float = 2.0
    #: Weight of the normalised key-pair distance matrix term.
    w_semantic: float = 4.0
    #: Weight of foot contact (on floor, no sliding, never below floor) and seat terms.
    w_contact: float = 10.0
    #: Weight of the self-penetration term.
    w_penetration: float = 50.0
    #: Fraction of the L-BFGS iterations run as a second stage with the penetration
    #: weight multiplied by ``escalate_penetration`` (0 = one stage). Measured with 0.3 /
    #: 10 on the eval: TALOS penetration frames 0.24 -> 0.15, but key-pair error worse on
    #: every robot (e.g. avatar 0.068 -> 0.077), so off by default.
    escalate_fraction: float = 0.0
    #: Penetration weight factor of the second stage.
    escalate_penetration: float = 10.0
    #: Weight of temporal smoothness (second differences).
    w_smooth: float = 0.5
    #: Weight of the rest-aligned segment rotation term.
    w_rotation: float = 0.02
    #: A source foot is in contact below this height above the floor (m).
    contact_height: float = 0.05
    #: ... and slower than this (m/s).
    contact_speed: float = 0.4
    #: Pelvis speed below which a ``sit`` frame is a seat contact (m/s).
    seat_speed: float = 0.3
    #: Capsule pairs closer than this at rest (human metres, scaled to the robot) are
    #: treated as touching by design and not penalised.
    rest_clearance: float = 0.005
    #: Penetration depth below which a pair does not count (human metres, scaled).
    penetration_tolerance: float = 0.01
    #: Frames per second of the source.
    fps: float = 30.0
    #: Torch device (None: cuda if available, else cpu).
    device: str | None = None
    #: Show tqdm progress bars.
    progress: bool = True


@dataclass
class SourceMotion:
    """Human source motion prepared for retargeting (all numpy, map frame, metres)."""

    #: (T, 69) float32 body parameters.
    params: np.ndarray
    #: (T, 22, 3) float32 joint positions.
    joints: np.ndarray
    #: (T, 22, 3, 3) float32 rest-relative global rotations.
    rotations: np.ndarray
    #: (T, 2) bool left/right foot contact.
    foot_contact: np.ndarray
    #: (T, 2) float32 left/right foot height above its rest height (m): min over ankle and
    #: toe joints.
    sole_height: np.ndarray
    #: (T,) bool pelvis-on-seat frames.
    seat: np.ndarray
    #: Human leg length hip->knee->ankle (m).
    leg_length: float
    #: The skeleton used.
    skeleton: Skeleton

    @property
    def num_frames(self) -> int:
        return int(self.params.shape[0])


@dataclass
class RetargetResult:
    """Robot motion (numpy, world frame, URDF units)."""

    #: (T, D) float64 joint configuration (radians / URDF units), within limits for ours.
    q: np.ndarray
    #: (T, 3, 3) float64 root link world rotation (includes the mapping's rest alignment).
    root_rot: np.ndarray
    #: (T, 3) float64 root link world position.
    root_pos: np.ndarray
    #: (T, K, 3) float64 key point positions, order of :attr:`Retargeter.key_names`.
    keypoints: np.ndarray
    #: DoF names (length D).
    dof_names: list[str]
    #: Seconds spent.
    seconds: float = 0.0
    #: Final loss terms (means over batches).
    losses: dict = field(default_factory=dict)


def _foot_heights_human(joints: np.ndarray, skel: Skeleton) -> np.ndarray:
    """(T, 2) height of each foot above its rest height (m): min over ankle and toe."""
    rest = skel.rest_joints()
    out = []
    for a, f in (("left_ankle", "left_foot"), ("right_ankle", "right_foot")):
        ha = joints[:, _I[a], 2] - rest[_I[a], 2]
        hf = joints[:, _I[f], 2] - rest[_I[f], 2]
        out.append(np.minimum(ha, hf))
    return np.stack(out, 1)


def _speed(x: np.ndarray, fps: float) -> np.ndarray:
    """(T, ..., 3) -> (T, ...) horizontal speed (m/s), central differences."""
    if len(x) < 2:
        return np.zeros(x.shape[:-1])
    v = np.gradient(x[..., :2], axis=0) * fps
    return np.linalg.norm(v, axis=-1)


def prepare_source(
    params: np.ndarray,
    actions: np.ndarray | None = None,
    skeleton: Skeleton | None = None,
    config: RetargetConfig | None = None,
) -> SourceMotion:
    """Human FK, contacts and seat frames of a motion.

    params: (T, 69) float body parameters (map frame, metres, ``config.fps``).
    actions: optional (T,) str labels; ``sit`` frames with a slow pelvis are seat contacts.
    """
    cfg = config or RetargetConfig()
    p = np.asarray(params, np.float32)
    check_params(p)
    if p.ndim != 2 or p.shape[0] < 2:
        raise ValueError(f"params: expected (T, 69) with T >= 2 frames, got {p.shape}")
    skel = skeleton if skeleton is not None else default_skeleton()
    with torch.no_grad():
        j, r = forward_kinematics(torch.from_numpy(p).double(), skel, return_rotations=True)
    joints, rots = j.numpy().astype(np.float32), r.numpy().astype(np.float32)
    heights = _foot_heights_human(joints, skel)
    speeds = np.stack(
        [np.minimum(_speed(joints[:, _I[a]], cfg.fps), _speed(joints[:, _I[f]], cfg.fps))
         for a, f in (("left_ankle", "left_foot"), ("right_ankle", "right_foot"))], 1,
    )  # fmt: skip
    contact = (heights < cfg.contact_height) & (speeds < cfg.contact_speed)
    seat = np.zeros(len(p), bool)
    if actions is not None:
        a = np.asarray(actions)
        if a.shape != (len(p),):
            raise ValueError(f"actions: expected ({len(p)},) labels, got {a.shape}")
        seat = (a == "sit") & (_speed(joints[:, 0], cfg.fps) < cfg.seat_speed)
    bl = skel.bone_lengths()
    leg = 0.5 * sum(float(bl[_I[f"{s}_knee"]] + bl[_I[f"{s}_ankle"]]) for s in ("left", "right"))
    return SourceMotion(p, joints, rots, contact, heights.astype(np.float32), seat, leg, skel)


def _swing(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Minimal rotations (..., 3, 3) taking unit vectors a onto b (both (..., 3))."""
    v = torch.cross(a, b, dim=-1)
    c = (a * b).sum(-1, keepdim=True)[..., None]
    z = torch.zeros_like(v[..., 0])
    k = torch.stack([z, -v[..., 2], v[..., 1], v[..., 2], z, -v[..., 0], -v[..., 1], v[..., 0], z],
                    -1).reshape(*v.shape[:-1], 3, 3)  # fmt: skip
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand_as(k)
    return eye + k + k @ k / (1.0 + c).clamp_min(1e-6)


def _swing_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = (torch.from_numpy(np.asarray(x, np.float64)[None]) for x in (a, b))
    return _swing(a, b)[0].numpy()


class Retargeter:
    """Retargets human motion onto one robot (see module doc).

    robot: the URDF model; mapping: human joint -> key point (:func:`~.mapping.auto_map`);
    config: options; skeleton: the human skeleton of the source (default neutral)."""

    def __init__(
        self,
        robot: RobotModel,
        mapping: Mapping,
        config: RetargetConfig | None = None,
        skeleton: Skeleton | None = None,
    ):
        self.robot = robot
        self.mapping = mapping
        self.cfg = config or RetargetConfig()
        self.device = pick_device(self.cfg.device)
        self.dtype = torch.float32
        self.kin = RobotKinematics(robot, self.device, self.dtype)
        self.skeleton = skeleton if skeleton is not None else default_skeleton()
        self.key_names = mapping.joints
        self.key_human = np.array([_I[n] for n in self.key_names])
        self.key_link = np.array([mapping.points[n].link for n in self.key_names])
        self.key_offset = np.stack([mapping.points[n].offset for n in self.key_names])
        self.align = mapping.align.astype(np.float64)
        self._rest_geometry()
        self._collision_pairs()
        self._rotation_targets()
        kw = {"device": self.device, "dtype": self.dtype}
        self.t_align = torch.as_tensor(self.align, **kw)
        self.t_key_link = torch.as_tensor(self.key_link, device=self.device)
        self.t_key_offset = torch.as_tensor(self.key_offset, **kw)
        lim = robot.limited()
        self.t_limited = torch.as_tensor(lim, device=self.device)
        lo = np.where(lim, robot.lower, 0.0)
        hi = np.where(lim, robot.upper, 0.0)
        self.t_mid = torch.as_tensor(0.5 * (lo + hi), **kw)
        self.t_half = torch.as_tensor(0.5 * (hi - lo), **kw)
        w = np.array([self.cfg.end_effector if n in END_EFFECTORS else 1.0 for n in self.key_names])
        self.t_key_w = torch.as_tensor(w / w.sum(), **kw)
        pairs = []
        for a, b in SEMANTIC_PAIRS:
            a = a if a in mapping.points or a != "head" else "neck"
            b = b if b in mapping.points or b != "head" else "neck"
            if a in mapping.points and b in mapping.points and a != b:
                pairs.append((self.key_names.index(a), self.key_names.index(b)))
        self.sem_pairs = np.array(pairs, np.int64).reshape(-1, 2)
        self.t_sem = torch.as_tensor(self.sem_pairs, device=self.device)
        parts = ["ankle"] + (["foot"] if all(f"{sd}_foot" in mapping.points
                                             for sd in ("left", "right")) else [])  # fmt: skip
        names = [[f"{sd}_{pt}" for pt in parts] for sd in ("left", "right")]
        self.foot_human = np.array([[_I[n] for n in row] for row in names])  # (2, F)
        self.t_foot_keys = torch.as_tensor(
            [[self.key_index[n] for n in row] for row in names], device=self.device
        )
        self.t_foot_rest_z = torch.as_tensor(
            [[self.key_rest[self.key_index[n], 2] for n in row] for row in names], **kw
        )

    # ------------------------------------------------------------ precomputation

    def _rest_geometry(self) -> None:
        robot = self.robot
        rot, pos = robot.rest_link_poses()
        self.rest_rot_root = rot  # (L, 3, 3) root frame
        key_rest = pos[self.key_link] + np.einsum("kij,kj->ki", rot[self.key_link], self.key_offset)
        key_rest = key_rest @ self.align.T  # map-aligned, root at origin
        caps_a = np.array([rot[c.link] @ c.a + pos[c.link] for c in robot.capsules]).reshape(-1, 3)
        caps_b = np.array([rot[c.link] @ c.b + pos[c.link] for c in robot.capsules]).reshape(-1, 3)
        rad = np.array([c.radius for c in robot.capsules])
        self.cap_rest_a = caps_a @ self.align.T
        self.cap_rest_b = caps_b @ self.align.T
        if len(rad):
            floor = float(np.min(np.minimum(self.cap_rest_a[:, 2], self.cap_rest_b[:, 2]) - rad))
        else:
            floor = float(key_rest[:, 2].min())
        self.root_height = -floor  # root z that puts the rest soles on z = 0
        self.key_rest = key_rest + np.array([0.0, 0.0, self.root_height])
        k = {n: i for i, n in enumerate(self.key_names)}
        leg = []
        for s in ("left", "right"):
            h, kn, an = (k.get(f"{s}_{p}") for p in ("hip", "knee", "ankle"))
            leg.append(np.linalg.norm(self.key_rest[h] - self.key_rest[kn])
                       + np.linalg.norm(self.key_rest[kn] - self.key_rest[an]))  # fmt: skip
        self.leg_length = float(np.mean(leg))
        self.scale = self.leg_length / self._human_leg()
        # foot capsules: capsules on links below each mapped ankle
        self.foot_caps = []
        for s in ("left", "right"):
            ank = self.mapping.points[f"{s}_ankle"].link
            idx = [i for i, c in enumerate(robot.capsules) if robot.is_ancestor(ank, c.link)]
            self.foot_caps.append(idx)
        self.key_index = k

    def _human_leg(self) -> float:
        bl = self.skeleton.bone_lengths()
        return 0.5 * sum(
            float(bl[_I[f"{s}_knee"]] + bl[_I[f"{s}_ankle"]]) for s in ("left", "right")
        )

    def _collision_pairs(self) -> None:
        """Capsule pairs checked for self-collision.

        Bodies are links with collision geometry; links without geometry (dummy links of
        multi-DoF joints) and links joined by fixed joints merge into the nearest body
        above them. Excluded: pairs on one body, on parent/child bodies, on
        grandparent/grandchild bodies whose middle body is shorter than the two radii
        (they touch through the joint), and pairs already touching at rest."""
        robot = self.robot
        caps = robot.capsules
        has_geom = np.zeros(robot.num_links, bool)
        for c in caps:
            has_geom[c.link] = True
        parent = robot.link_parent()
        body = np.arange(robot.num_links)
        for j in robot.joints:  # topological order: parents first
            if j.ndof == 0 or not has_geom[j.child]:
                body[j.child] = body[j.parent]
        body_parent: dict[int, int] = {}
        for li in range(1, robot.num_links):
            if body[li] == li:
                body_parent[li] = int(body[parent[li]])
        _, rest_pos = robot.rest_link_poses()
        pairs = []
        if caps:
            a = torch.as_tensor(self.cap_rest_a)
            b = torch.as_tensor(self.cap_rest_b)
            r = np.array([c.radius for c in caps])
            clear = self.cfg.rest_clearance * self.scale
            for i in range(len(caps)):
                for k in range(i + 1, len(caps)):
                    bi, bk = int(body[caps[i].link]), int(body[caps[k].link])
                    if bi == bk or body_parent.get(bi) == bk or body_parent.get(bk) == bi:
                        continue
                    skip = False
                    for lo, hi in ((bi, bk), (bk, bi)):
                        mid = body_parent.get(lo)
                        if mid is not None and body_parent.get(mid) == hi:
                            if np.linalg.norm(rest_pos[lo] - rest_pos[mid]) < r[i] + r[k]:
                                skip = True
                    if skip:
                        continue
                    d = float(segment_distance(a[i], b[i], a[k], b[k]))
                    if d < r[i] + r[k] + clear:
                        continue  # touching at rest by design
                    pairs.append((i, k))
        self.col_pairs = np.array(pairs, np.int64).reshape(-1, 2)
        self.t_col = torch.as_tensor(self.col_pairs, device=self.device)
        log.info("%s: %d self-collision capsule pairs checked", robot.name, len(pairs))

    def _rotation_targets(self) -> None:
        """Per mapped human joint: the robot link carrying its segment and the rest
        alignment (robot rest bone direction onto the human's)."""
        robot = self.robot
        pts = self.mapping.points
        human_rest = self.skeleton.rest_joints()
        children: dict[str, str] = {}
        for chain in CHAINS:
            mapped = [j for j in chain if j in pts]
            for a, b in zip(mapped[:-1], mapped[1:]):
                children.setdefault(a, b)
        targets = []
        parent = robot.link_parent()
        for n in self.key_names:
            if n == "pelvis":
                link, align = 0, np.eye(3)
            elif n in children:
                c = children[n]
                link = int(parent[pts[c].link])
                d_r = self.key_rest[self.key_index[c]] - self.key_rest[self.key_index[n]]
                d_h = human_rest[_I[c]] - human_rest[_I[n]]
                if np.linalg.norm(d_r) < 1e-9 or np.linalg.norm(d_h) < 1e-9:
                    align = np.eye(3)
                else:
                    align = _swing_np(d_r / np.linalg.norm(d_r), d_h / np.linalg.norm(d_h))
            else:
                link = pts[n].link
                while True:
                    kids = [j for j in robot.joints if j.parent == link]
                    if len(kids) != 1:
                        break
                    link = kids[0].child
                align = np.eye(3)
            targets.append((link, align))
        links = [t[0] for t in targets]
        # key points rigidly attached to their mapped parent's segment link
        self.rigid_child = []
        for n in self.key_names:
            p = self.mapping.mapped_parent(n)
            if p is None:
                self.rigid_child.append(False)
                continue
            seg = links[self.key_names.index(p)]
            kp_link = pts[n].link
            end = kp_link if np.linalg.norm(pts[n].offset) > 1e-9 else int(parent[kp_link])
            rigid = robot.is_ancestor(seg, end)
            node = end
            while rigid and node != seg:
                j = next(jj for jj in robot.joints if jj.child == node)
                rigid = j.ndof == 0
                node = j.parent
            self.rigid_child.append(bool(rigid))
        kw = {"device": self.device, "dtype": self.dtype}
        self.rot_link = torch.as_tensor(links, device=self.device)
        self.rot_align = torch.as_tensor(np.stack([t[1] for t in targets]), **kw)
        rest_world = np.einsum("ij,ljk->lik", self.align, self.rest_rot_root)
        self.t_rest_world = torch.as_tensor(rest_world, **kw)

    # ------------------------------------------------------------ pieces

    def _human_targets(self, src: SourceMotion) -> dict[str, torch.Tensor]:
        kw = {"device": self.device, "dtype": self.dtype}
        jh = torch.as_tensor(src.joints, **kw)
        gh = torch.as_tensor(src.rotations, **kw)
        hr = torch.as_tensor(src.skeleton.rest_joints(), **kw)
        kr = torch.as_tensor(self.key_rest, **kw)
        s = self.scale
        t = src.num_frames
        tgt = torch.zeros(t, len(self.key_names), 3, **kw)
        pelvis_k = self.key_index["pelvis"]
        tgt[:, pelvis_k] = kr[pelvis_k] + s * (jh[:, 0] - hr[0])
        for k, n in enumerate(self.key_names):
            if n == "pelvis":
                continue
            p = self.mapping.mapped_parent(n)
            pk = self.key_index[p]
            r_rest = kr[k] - kr[pk]
            if self.rigid_child[k]:
                # rigid in the parent's segment: turn the robot's own rest vector with the
                # human segment rotation (rest-aligned)
                g = gh[:, _I[p]] @ self.rot_align[pk]
                tgt[:, k] = tgt[:, pk] + g @ r_rest
            else:
                # moved by robot joints: human bone direction, robot bone length
                h_cur = torch.nn.functional.normalize(jh[:, _I[n]] - jh[:, _I[p]], dim=-1)
                tgt[:, k] = tgt[:, pk] + torch.linalg.norm(r_rest) * h_cur
        rot_t = gh[:, self.key_human] @ self.rot_align  # (T, K, 3, 3)
        dist_h = (
            torch.linalg.norm(
                jh[:, self.key_human[self.sem_pairs[:, 0]]]
                - jh[:, self.key_human[self.sem_pairs[:, 1]]],
                dim=-1,
            )
            / src.leg_length
            if len(self.sem_pairs)
            else torch.zeros(t, 0, **kw)
        )
        contact, heights, _ = self.source_contact(src)
        return {
            "pos": tgt,
            "rot": rot_t,
            "dist": dist_h,
            "contact": torch.as_tensor(contact, device=self.device),
            "sole": torch.as_tensor(heights / src.leg_length, **kw),
            "seat": torch.as_tensor(src.seat, device=self.device),
            "root_rot": gh[:, 0],
        }

    def _q(self, theta: torch.Tensor, bounded: bool) -> torch.Tensor:
        if not bounded:
            return theta
        return torch.where(self.t_limited, self.t_mid + self.t_half * torch.tanh(theta), theta)

    def _theta_from_q(self, q: torch.Tensor) -> torch.Tensor:
        u = ((q - self.t_mid) / self.t_half.clamp_min(1e-9)).clamp(-0.995, 0.995)
        return torch.where(self.t_limited, torch.atanh(u), q)

    def _forward(self, q, root6, root_pos):
        root_rot = rotation_6d_to_matrix(root6)
        rot, pos = self.kin.link_poses(q, root_rot @ self.t_align, root_pos)
        kp = (
            pos[..., self.t_key_link, :]
            + (rot[..., self.t_key_link, :, :] @ self.t_key_offset[:, :, None])[..., 0]
        )
        return rot, pos, kp, root_rot

    def _root_pos_for(self, root_rot: torch.Tensor, pelvis_target: torch.Tensor) -> torch.Tensor:
        """Root position putting the pelvis key point on ``pelvis_target``."""
        k = self.key_index["pelvis"]
        local = torch.as_tensor(
            self.key_rest[k] - np.array([0, 0, self.root_height]), device=self.device,
            dtype=self.dtype,
        )  # fmt: skip
        return pelvis_target - root_rot @ local

    def _rotation_loss(self, rot, tg):
        g_robot = rot[..., self.rot_link, :, :] @ self.t_rest_world[self.rot_link].transpose(-1, -2)
        return (g_robot - tg["rot"]).pow(2).sum((-1, -2)).mean(-1)

    def _penetration(self, rot, pos) -> torch.Tensor:
        """(N, P) penetration depth per checked capsule pair (URDF units)."""
        if len(self.col_pairs) == 0:
            return torch.zeros(*pos.shape[:-2], 0, device=self.device, dtype=self.dtype)
        a, b = self.kin.capsules_world(rot, pos)
        i, k = self.t_col[:, 0], self.t_col[:, 1]
        d = segment_distance(a[..., i, :], b[..., i, :], a[..., k, :], b[..., k, :])
        return torch.relu(self.kin.cap_r[i] + self.kin.cap_r[k] - d)

    def _sole_heights(self, kp: torch.Tensor) -> torch.Tensor:
        """(N, 2) height of each foot above its rest height (URDF units): the minimum over
        the foot key points (ankle, and toe where both toes are mapped), the same measure
        as :meth:`source_contact` uses for the human."""
        z = kp[..., self.t_foot_keys, 2] - self.t_foot_rest_z  # (N, 2, F)
        return z.min(-1).values

    def source_contact(self, src: SourceMotion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Foot contact of the source measured on the joints this robot has (ankle, and toe
        when both toes are mapped), so that robot and human use one definition.

        Returns (contact (T, 2) bool, heights (T, 2) m above rest, speeds (T, 2) m/s)."""
        rest = src.skeleton.rest_joints()
        feet = src.joints[:, self.foot_human]  # (T, 2, F, 3)
        heights = (feet[..., 2] - rest[self.foot_human][..., 2]).min(-1)
        speeds = _speed(feet, self.cfg.fps).min(-1)
        contact = (heights < self.cfg.contact_height) & (speeds < self.cfg.contact_speed)
        return contact, heights, speeds

    def _floor_depth(self, rot, pos) -> torch.Tensor:
        """(N,) how far the lowest foot capsule point is below the floor z = 0 (>= 0)."""
        a, b = self.kin.capsules_world(rot, pos)
        idx = [i for lst in self.foot_caps for i in lst]
        if not idx:
            return torch.zeros(pos.shape[:-2], device=self.device, dtype=self.dtype)
        ii = torch.as_tensor(idx, device=self.device)
        low = torch.minimum(a[..., ii, 2], b[..., ii, 2]) - self.kin.cap_r[ii]
        return torch.relu(-low).amax(-1)

    # ------------------------------------------------------------ solvers

    def _objective(self, theta, r6, rp_n, sub, prev, pen_scale: float = 1.0):
        """Weighted objective of one chunk (module doc): (loss, terms, (q, rp, kp))."""
        cfg = self.cfg
        inv_l = 1.0 / self.leg_length
        contact = sub["contact"].to(self.dtype)
        seat = sub["seat"].to(self.dtype)
        q = self._q(theta, True)
        rp = rp_n * self.leg_length
        rot, pos, kp, _ = self._forward(q, r6, rp)
        terms = {}
        err = (kp - sub["pos"]).pow(2).sum(-1) * inv_l**2
        terms["position"] = (err * self.t_key_w).sum(-1).mean()
        if len(self.sem_pairs):
            d = torch.linalg.norm(kp[:, self.t_sem[:, 0]] - kp[:, self.t_sem[:, 1]], dim=-1)
            terms["semantic"] = (d * inv_l - sub["dist"]).pow(2).mean()
        else:
            terms["semantic"] = torch.zeros((), device=self.device)
        sole = self._sole_heights(kp) * inv_l  # (N, 2)
        sole_t = sub["sole"]  # (N, 2) source sole heights / source leg length
        feet = kp[:, self.t_foot_keys] * inv_l  # (N, 2, F, 3)
        # planted: the slowest foot point does not move in contact frames
        slide = (feet[1:, ..., :2] - feet[:-1, ..., :2]).pow(2).sum(-1).min(-1).values
        both = contact[1:] * contact[:-1]
        pel = kp[:, self.key_index["pelvis"]] * inv_l
        pel_t = sub["pos"][:, self.key_index["pelvis"]] * inv_l
        seat_slide = (pel[1:, :2] - pel[:-1, :2]).pow(2).sum(-1) * seat[1:] * seat[:-1]
        terms["contact"] = (
            ((sole - sole_t.clamp_max(0.0)).pow(2) * contact).mean()
            + (self._floor_depth(rot, pos) * inv_l).pow(2).mean()
            + 10.0 * (slide * both).mean()
            + ((pel[:, 2] - pel_t[:, 2]).pow(2) * seat).mean()
            + 10.0 * seat_slide.mean()
        )
        pen = self._penetration(rot, pos) * inv_l
        terms["penetration"] = pen.pow(2).sum(-1).mean() if pen.shape[-1] else pen.sum()
        seqs = (q, r6, rp * inv_l, kp * inv_l)
        if prev is not None:
            seqs = tuple(torch.cat([a, b]) for a, b in zip(prev, seqs))
        acc = torch.zeros((), device=self.device)
        for x in seqs:
            if x.shape[0] >= 3:
                acc = acc + (x[2:] - 2 * x[1:-1] + x[:-2]).pow(2).mean()
        terms["smooth"] = acc
        terms["rotation"] = self._rotation_loss(rot, sub).mean()
        loss = (
            cfg.w_position * terms["position"]
            + cfg.w_semantic * terms["semantic"]
            + cfg.w_contact * terms["contact"]
            + cfg.w_penetration * pen_scale * terms["penetration"]
            + cfg.w_smooth * terms["smooth"]
            + cfg.w_rotation * terms["rotation"]
        )
        return loss, terms, (q, rp, kp)

    def _chunks(self, t: int) -> list[tuple[int, int]]:
        n = self.cfg.window * self.cfg.batch_windows
        return [(s, min(s + n, t)) for s in range(0, t, n)]

    def copy(self, src: SourceMotion) -> RetargetResult:
        """Baseline: copy rest-aligned segment rotations, root at the scaled pelvis."""
        t0 = time.perf_counter()
        tg = self._human_targets(src)
        root_rot = tg["root_rot"]
        root_pos = self._root_pos_for(root_rot, tg["pos"][:, self.key_index["pelvis"]])
        root6 = matrix_to_rotation_6d(root_rot)
        qs = []
        from tqdm import tqdm

        chunks = self._chunks(src.num_frames)
        bar = tqdm(total=len(chunks) * self.cfg.copy_iterations, desc=f"copy {self.robot.name}",
                   disable=not self.cfg.progress, leave=False)  # fmt: skip
        for s, e in chunks:
            sub = {k: v[s:e] for k, v in tg.items()}
            q = torch.zeros(e - s, self.robot.num_dofs, device=self.device, dtype=self.dtype)
            q.requires_grad_(True)

            def objective(q=q, s=s, e=e, sub=sub):
                rot, _, _, _ = self._forward(q, root6[s:e], root_pos[s:e])
                return self._rotation_loss(rot, sub).mean()

            if self.cfg.optimizer == "lbfgs":
                opt = torch.optim.LBFGS([q], lr=1.0, max_iter=self.cfg.copy_iterations,
                                        history_size=20, line_search_fn="strong_wolfe",
                                        tolerance_grad=1e-9, tolerance_change=1e-12)  # fmt: skip

                def closure(opt=opt, objective=objective):
                    opt.zero_grad()
                    loss = objective()
                    loss.backward()
                    return loss

                opt.step(closure)
                bar.update(self.cfg.copy_iterations)
            else:
                opt = torch.optim.Adam([q], lr=self.cfg.lr * 2)
                for _ in range(self.cfg.copy_iterations):
                    opt.zero_grad()
                    objective().backward()
                    opt.step()
                    bar.update(1)
            qs.append(q.detach())
        bar.close()
        q = torch.cat(qs)
        return self._result(q, root6, root_pos, time.perf_counter() - t0, {})

    def retarget(
        self,
        src: SourceMotion,
        init: RetargetResult | None = None,
        history: RetargetResult | None = None,
    ) -> RetargetResult:
        """Our optimisation (module doc). ``init``: optional start (default: the copy
        baseline, clamped into the limits). ``history``: the previous window's result of
        the same stream; its last two frames join the smoothness term (streaming)."""
        t0 = time.perf_counter()
        cfg = self.cfg
        if init is None:
            init = self.copy(src)
        tg = self._human_targets(src)
        kw = {"device": self.device, "dtype": self.dtype}
        q0 = torch.as_tensor(init.q, **kw)
        lo = torch.as_tensor(np.where(np.isfinite(self.robot.lower), self.robot.lower, -1e9), **kw)
        hi = torch.as_tensor(np.where(np.isfinite(self.robot.upper), self.robot.upper, 1e9), **kw)
        q0 = torch.minimum(torch.maximum(q0, lo), hi)
        root6_0 = matrix_to_rotation_6d(torch.as_tensor(init.root_rot, **kw) @ self.t_align.T)
        rootp_0 = torch.as_tensor(init.root_pos, **kw)
        inv_l = 1.0 / self.leg_length
        out_q, out_r6, out_p = [], [], []
        prev = None  # last two frames of the previous chunk (q, root6, pos, keypoints)
        if history is not None and len(history.q) >= 2:
            prev = (
                torch.as_tensor(history.q[-2:], **kw),
                matrix_to_rotation_6d(torch.as_tensor(history.root_rot[-2:], **kw)
                                      @ self.t_align.T),
                torch.as_tensor(history.root_pos[-2:], **kw) * inv_l,
                torch.as_tensor(history.keypoints[-2:], **kw) * inv_l,
            )  # fmt: skip
        from tqdm import tqdm

        chunks = self._chunks(src.num_frames)
        bar = tqdm(total=len(chunks) * cfg.iterations, desc=f"retarget {self.robot.name}",
                   disable=not cfg.progress, leave=False)  # fmt: skip
        last_terms: dict[str, float] = {}
        for cs, ce in chunks:
            sub = {k: v[cs:ce] for k, v in tg.items()}
            theta = self._theta_from_q(q0[cs:ce]).clone().requires_grad_(True)
            r6 = root6_0[cs:ce].clone().requires_grad_(True)
            rp_n = (rootp_0[cs:ce] * inv_l).clone().requires_grad_(True)  # leg lengths
            params = [theta, r6, rp_n]
            if cfg.optimizer == "lbfgs":
                # two stages: the second one with the penetration weight raised, which
                # pushes out overlaps the first compromise left (continuation)
                n1 = max(1, int(round(cfg.iterations * (1 - cfg.escalate_fraction))))
                stages = [(n1, 1.0), (cfg.iterations - n1, cfg.escalate_penetration)]
                for n_it, pen_scale in stages:
                    if n_it <= 0:
                        continue
                    opt = torch.optim.LBFGS(
                        params, lr=1.0, max_iter=n_it, history_size=20,
                        line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12,
                    )  # fmt: skip

                    def closure(opt=opt, theta=theta, r6=r6, rp_n=rp_n, sub=sub, prev=prev,
                                pen_scale=pen_scale):  # fmt: skip
                        opt.zero_grad()
                        loss, _, _ = self._objective(theta, r6, rp_n, sub, prev, pen_scale)
                        loss.backward()
                        return loss

                    opt.step(closure)
                    bar.update(n_it)
            else:
                opt = torch.optim.Adam(params, lr=cfg.lr)
                sched = torch.optim.lr_scheduler.LambdaLR(
                    opt, lambda i: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * i / cfg.iterations))
                )
                for _ in range(cfg.iterations):
                    opt.zero_grad()
                    loss, _, _ = self._objective(theta, r6, rp_n, sub, prev)
                    loss.backward()
                    opt.step()
                    sched.step()
                    bar.update(1)
            with torch.no_grad():
                _, terms, _ = self._objective(theta, r6, rp_n, sub, prev)
            with torch.no_grad():
                q = self._q(theta, True)
                rp = rp_n * self.leg_length
                _, _, kp, _ = self._forward(q, r6, rp)
                prev = (q[-2:].detach(), r6[-2:].detach(), (rp[-2:] * inv_l).detach(),
                        (kp[-2:] * inv_l).detach())  # fmt: skip
                last_terms = {k: float(v) for k, v in terms.items()}
            out_q.append(q.detach())
            out_r6.append(r6.detach())
            out_p.append(rp.detach())
        bar.close()
        q = torch.cat(out_q)
        return self._result(
            q, torch.cat(out_r6), torch.cat(out_p), time.perf_counter() - t0, last_terms,
            clamp=True,
        )  # fmt: skip

    def _result(self, q, root6, root_pos, seconds, losses, clamp=False) -> RetargetResult:
        with torch.no_grad():
            _, _, kp, root_rot = self._forward(q, root6, root_pos)
        qn = q.detach().cpu().double().numpy()
        if clamp:  # float32 tanh may round onto the bound; keep exact float64 limits
            qn = np.clip(qn, self.robot.lower, self.robot.upper)
        return RetargetResult(
            q=qn,
            root_rot=(root_rot @ self.t_align).detach().cpu().double().numpy(),
            root_pos=root_pos.detach().cpu().double().numpy(),
            keypoints=kp.detach().cpu().double().numpy(),
            dof_names=list(self.robot.dof_names),
            seconds=seconds,
            losses=losses,
        )

    # ------------------------------------------------------------ evaluation helpers

    def link_poses_np(self, res: RetargetResult) -> tuple[torch.Tensor, torch.Tensor]:
        """World link poses of a result (float32 tensors on the device)."""
        kw = {"device": self.device, "dtype": self.dtype}
        with torch.no_grad():
            rr = torch.as_tensor(res.root_rot, **kw)
            return self.kin.link_poses(
                torch.as_tensor(res.q, **kw), rr, torch.as_tensor(res.root_pos, **kw)
            )
