"""The learned generator: goals become full-body motion with the SSOMotion model (issue 7.2).

:class:`LearnedSynthesizer` implements the :class:`~ssomotion_ros.synthesis.types.Synthesizer`
protocol with the trained denoiser (:class:`~ssomotion_ros.motion.rollout.MotionSampler`):

- **Plan first** (before the first window, so an impossible goal fails at once with the
  planner's reason): walk goals get a path on the SSO's walkable grid; sit/lie goals an
  approach pose and the walk to it (:func:`~ssomotion_ros.motion.planning.plan_approach`).
- **Autoregressive windows** of 30 frames with 5 history frames (the checkpoint's sizes).
  At every window the local tri-planes are re-extracted around the current pelvis in the
  body frame (``SceneModel.local_triplanes``); the walk's direction hint is the carrot
  point of the planner's path (``PathFollower.lookahead``) minus the pelvis; sit / lie /
  stand_up hints are per joint: target pose minus current pose (DESIGN.md), the target
  being a real seated / lying / standing pose (the baseline's CMU clip frames) placed on
  the contact pose.
- **Guidance** (cost gradients on every DDIM step's x0 prediction): scene penetration of
  the body's capsule axis points against an obstacle SDF (the SSO without floor and
  ceiling, columns filled down to the floor), foot-floor contact / skating (not while
  lying), and the goal (the walk's carrot point; the seat / bed contact pelvis).
- **Path keeping**: after each walk window the pelvis is pulled back into a corridor
  around the path (``corridor`` metres) by a smooth shift that ramps over the window, so
  a weak model cannot drift into furniture; the shift is reported per window.
- **Foot planting** (:mod:`~ssomotion_ros.synthesis.foot_ik`): after a walk window's pelvis
  is final, the stance foot's ankle is pinned and the legs re-solved with two-bone IK
  (written back into the SMPL-X parameters); a foot whose leg gets too long steps ahead.
  The pelvis path is not changed.
- **Transitions**: walk -> sit (walk to the approach pose, turn in place to its facing,
  then sit), walk -> lie, sit/lie -> stand_up (back to the standing point), stand_up before
  a walk when seated.
- **Stops** when the pelvis is within ``success_radius`` of the goal (walks) or the
  interaction pose is reached, or when the time budget runs out (the last window says so).
- **Batched**: :meth:`LearnedSynthesizer.stream_batch` runs several agents (or several
  samples of one goal) in one network batch and yields per step one window per agent;
  :meth:`LearnedSynthesizer.stream` is the one-agent protocol method.
- **Streaming**: windows are yielded as soon as each is sampled.

Output per window (:class:`~ssomotion_ros.synthesis.types.MotionWindow`): SMPL-X 69-d
parameters per frame, 22 joint positions, pelvis poses, actions per frame, 30 fps.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ssomotion_ros.body.skeleton import PARAM_DIM, default_skeleton, forward_kinematics_np
from ssomotion_ros.config_fields import doc_field
from ssomotion_ros.synthesis.types import (
    FPS,
    BodyState,
    MotionWindow,
    SynthesisCancelled,
    SynthesisError,
    heading_of,
    target_instance,
)

log = logging.getLogger(__name__)

__all__ = ["LearnedConfig", "LearnedSynthesizer", "ObstacleSDF"]

#: Actions the network knows (the others are executed procedurally).
MODEL_ACTIONS = ("walk", "sit", "stand_up", "lie")


@dataclass
class LearnedConfig:
    """Parameters of the learned generator."""

    checkpoint: str = doc_field("", "Motion checkpoint folder ('' = the shipped default).")
    device: str = doc_field("", "Torch device ('' = cuda when available, else cpu).")
    clearance_radius: float = doc_field(0.25, "Body clearance of the planner's grid, metres.")
    success_radius: float = doc_field(0.2, "A walk ends when the pelvis is this close (m, xy).")
    walk_time_scale: float = doc_field(
        1.8,
        "Walk: play each generated walk window this many times faster (its frames resampled "
        "in time, joint rotations by slerp) before steering and foot planting; the network "
        "walks slower than people do (1.8: time to goal 7.2 -> 4.5 s on the locomotion suite). "
        "Foot planting's speed thresholds and blend lengths scale with it. 1 = as generated.",
    )
    walk_speed: float = doc_field(
        1.1, "Walking speed the direction hint asks for, m/s (carrot distance per window)."
    )
    time_budget_s: float = doc_field(
        0.0, "Seconds of motion per goal before giving up (0 = path / budget_speed + 10 s)."
    )
    budget_speed: float = doc_field(
        0.2, "Slowest walking speed (m/s) the automatic time budget allows for."
    )
    steps: int = doc_field(0, "DDIM steps per window (0 = the checkpoint's).")
    guidance_step: float = doc_field(0.05, "Cost-guidance step on the normalised x0.")
    guidance: bool = doc_field(True, "Cost guidance on (penetration, contact, goal).")
    guidance_iterations: int = doc_field(1, "Cost-guidance gradient steps per DDIM step.")
    guidance_start: float = doc_field(
        0.0, "Fraction of the DDIM steps after which guidance starts (0 = from the first)."
    )
    w_path: float = doc_field(
        20.0, "Walk: weight of the dense path cost (pelvis xy vs. the path at walk speed)."
    )
    w_penetration: float = doc_field(1.0, "Weight of the scene-penetration cost.")
    w_contact: float = doc_field(1.0, "Weight of the foot contact / skating cost.")
    w_goal: float = doc_field(1.0, "Weight of the goal cost.")
    penetration_margin: float = doc_field(0.02, "Clearance wanted beyond the capsules, m.")
    max_turn_deg: float = doc_field(
        90.0,
        "Walk steering: most degrees a window is rotated (about its first pelvis) so that its "
        "displacement points along the path (0 = off).",
    )
    corridor: float = doc_field(
        0.12, "Walk: the pelvis may leave the path by this much before it is pulled back, m."
    )
    path_keeping: float = doc_field(
        1.0, "Fraction of the excess deviation removed after each walk window (0 = off)."
    )
    keyframe_frames: int = doc_field(
        3,
        "Sit/lie/stand_up: the last window of the transition has its last N frames inpainted "
        "with the target pose (the network in-betweens to it; 0 = off).",
    )
    fit_target: bool = doc_field(
        True,
        "Sit/lie: lift / shift the seated or lying target pose (up to 0.08 m up, +-0.1 m along "
        "the facing) to the least penetration of the SSO's obstacle SDF.",
    )
    refine_target_steps: int = doc_field(
        60,
        "Sit/lie: gradient steps that bend the target pose's joints (pelvis fixed) out of "
        "the SSO's obstacle SDF before the lift / shift fit (0 = off).",
    )
    refine_feet_cost: float = doc_field(
        1.0,
        "Sit target refinement: cost per metre of the lowest foot joint above the floor + "
        "0.05 m (a seated person's feet rest on the floor); 0 = off.",
    )
    refine_pose_cost: float = doc_field(
        0.05,
        "Sit/lie target refinement: cost per squared radian of joint-angle change, against "
        "the summed capsule penetration (metres); higher keeps the mocap pose.",
    )
    fit_move_cost: float = doc_field(
        10.0,
        "Sit/lie target fit: cost per metre of lift / shift, in the same unit as the summed "
        "capsule penetration (metres) it trades against; higher keeps the pelvis nearer the "
        "seat (goal distance) at the price of more penetration.",
    )
    push_out: float = doc_field(
        0.15,
        "Walk: most metres a frame's pelvis is shifted (smoothly) to get the body's capsules "
        "out of obstacles of the SSO's SDF (0 = off).",
    )
    foot_lock: float = doc_field(
        0.0,
        "Walk (superseded by foot_plant, off by default): fraction of the grounded (lowest, "
        "< 6 cm) foot's horizontal slide removed by moving the whole body against it (0 = off, "
        "1 = stance foot pinned). Trades progress for contact (docs/synthesis_eval.md).",
    )
    lock_min_progress: float = doc_field(
        0.15,
        "Walk (with foot_lock > 0): the foot lock of a window is lowered so the window still "
        "advances at least this many metres along the path (when the network's own motion does).",
    )
    foot_plant: bool = doc_field(
        True,
        "Walk: plant the stance foot (pinned ankle, two-bone leg IK, synthesis/foot_ik.py) "
        "after the window's pelvis is final; the pelvis path is not changed.",
    )
    plant_enter_height: float = doc_field(
        0.04,
        "Foot planting: a stance starts when the foot's lowest part is less than this many "
        "metres above its flat-foot height on the floor (and the ankle is slow).",
    )
    plant_exit_height: float = doc_field(
        0.08, "Foot planting: a stance ends when the foot's lowest part rises above this, m."
    )
    plant_enter_speed: float = doc_field(
        1.0,
        "Foot planting: a stance starts only while the generated ankle is slower (m/s, xy, "
        "in the network's time: x walk_time_scale once played faster).",
    )
    plant_exit_speed: float = doc_field(
        2.0,
        "Foot planting: a stance ends when the generated ankle is faster than this (m/s, in "
        "the network's time: x walk_time_scale once played faster).",
    )
    plant_blend_frames: int = doc_field(
        4,
        "Foot planting: frames over which a pin fades in at contact start and out at its end "
        "(in the network's time: / walk_time_scale once played faster, at least 1).",
    )
    plant_max_stretch: float = doc_field(
        0.98,
        "Foot planting: the pin is released when hip -> planted ankle exceeds this fraction "
        "of the leg's length (while the other foot stands; always at 1.0); the foot steps.",
    )
    plant_step_lead_s: float = doc_field(
        0.4,
        "Foot planting: a released foot steps this many seconds of pelvis velocity ahead of "
        "the hip (at most to plant_step_reach).",
    )
    plant_step_reach: float = doc_field(
        0.95, "Foot planting: a step lands at most this fraction of the leg's length from the hip."
    )
    plant_swing_height: float = doc_field(
        0.1, "Foot planting: metres a stepping foot's ankle is lifted at mid-swing."
    )
    arrive_radius: float = doc_field(
        0.6, "Walk: within this distance of the goal (m) the arrival assist applies."
    )
    arrive_assist: float = doc_field(
        0.12,
        "Walk: most metres per window the pelvis is moved toward the goal inside "
        "arrive_radius, when the network's own steps fall short (0 = off).",
    )
    push_out_transitions: bool = doc_field(
        True, "Sit/lie: push-out also on the in-between frames (fading to 0 at the target)."
    )
    face_before_transition: bool = doc_field(
        True,
        "Sit/lie: turn in place (turn_rate_deg) to the approach pose's facing between the "
        "walk and the transition, so the in-between does not have to turn the body.",
    )
    interaction_windows: int = doc_field(
        2, "Most windows of a sit / lie / stand_up transition (25 new frames each)."
    )
    interaction_tolerance: float = doc_field(
        0.08, "Sit/lie/stand_up ends when the pelvis is this close to its target pose, m."
    )
    contact_settle: float = doc_field(
        1.0, "Sit/lie: fraction of the remaining pelvis error removed over the last window."
    )
    max_settle: float = doc_field(
        0.3, "Sit/lie/stand_up: most pelvis error (m) the settle step removes in one window."
    )
    hold_s: float = doc_field(
        1.0, "Sit/lie: seconds the final seated / lying pose is held (as the baseline does)."
    )
    turn_rate_deg: float = doc_field(120.0, "Turning in place, degrees per second.")
    seed: int = doc_field(0, "Seed of the sampler noise (each stream advances it).")

    def __post_init__(self) -> None:
        for name in (
            "clearance_radius",
            "success_radius",
            "corridor",
            "penetration_margin",
            "fit_move_cost",
            "refine_pose_cost",
            "refine_feet_cost",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 metres, got {getattr(self, name)}")
        if not 0.25 <= self.walk_time_scale <= 4.0:
            raise ValueError(f"walk_time_scale must be in [0.25, 4], got {self.walk_time_scale}")
        if not self.walk_speed > 0 or not self.budget_speed > 0:
            raise ValueError(
                f"walk_speed and budget_speed must be > 0 m/s, got {self.walk_speed}, "
                f"{self.budget_speed}"
            )
        if self.time_budget_s < 0:
            raise ValueError(
                f"time_budget_s must be >= 0 (0 = automatic), got {self.time_budget_s}"
            )
        if self.steps < 0 or self.interaction_windows < 1 or self.guidance_iterations < 1:
            raise ValueError(
                "steps must be >= 0, interaction_windows >= 1 and guidance_iterations >= 1"
            )
        if not 0.0 <= self.guidance_start < 1.0:
            raise ValueError(f"guidance_start must be in [0, 1), got {self.guidance_start}")
        if not 0.0 <= self.path_keeping <= 1.0 or not 0.0 <= self.contact_settle <= 1.0:
            raise ValueError("path_keeping and contact_settle must be in [0, 1]")
        if self.plant_blend_frames < 1 or not (
            0.0 < self.plant_max_stretch <= 1.0 and 0.0 < self.plant_step_reach <= 1.0
        ):
            raise ValueError(
                f"plant_blend_frames must be >= 1, plant_max_stretch and plant_step_reach in "
                f"(0, 1]; got {self.plant_blend_frames}, {self.plant_max_stretch}, "
                f"{self.plant_step_reach}"
            )
        if self.plant_step_lead_s < 0 or self.plant_swing_height < 0:
            raise ValueError("plant_step_lead_s and plant_swing_height must be >= 0")
        if self.plant_exit_height < self.plant_enter_height or (
            self.plant_exit_speed < self.plant_enter_speed
        ):
            raise ValueError(
                "foot planting hysteresis: plant_exit_height must be >= plant_enter_height and "
                "plant_exit_speed >= plant_enter_speed"
            )


# ------------------------------------------------------------------ obstacle SDF
class ObstacleSDF:
    """Signed distance to obstacles (occupied voxels that are not floor/ceiling).

    grid: (X, Y, Z) float32 metres, indexed [ix, iy, iz]; voxel centre =
    ``origin + (idx + 0.5) * resolution``; > 0 free, < 0 inside. Points off the grid get
    ``outside`` (free). Queries: :meth:`torch_query` (differentiable, trilinear) and
    :meth:`__call__` (numpy, for metrics).
    """

    def __init__(self, grid: np.ndarray, origin, resolution: float, outside: float = 1.0):
        g = np.asarray(grid, np.float32)
        if g.ndim != 3:
            raise ValueError(f"grid must be (X, Y, Z) metres, got shape {g.shape}")
        if not resolution > 0:
            raise ValueError(f"resolution must be > 0 metres, got {resolution}")
        self.grid = g
        self.origin = np.asarray(origin, np.float64).reshape(3)
        self.resolution = float(resolution)
        self.outside = float(outside)
        self._t: dict = {}

    @classmethod
    def from_occupancy(cls, occupied: np.ndarray, origin, resolution: float) -> ObstacleSDF:
        """occupied: (X, Y, Z) bool obstacle voxels; origin: (3,) metres (corner of voxel
        0); resolution: metres. The distance is Euclidean between voxel centres, minus half
        a voxel so that it is about zero on the occupied voxels' faces."""
        from scipy.ndimage import distance_transform_edt

        occ = np.asarray(occupied, bool)
        if occ.ndim != 3:
            raise ValueError(f"occupied must be (X, Y, Z) bool, got shape {occ.shape}")
        if not occ.any():
            return cls(np.full(occ.shape, 2.0, np.float32), origin, resolution, 2.0)
        out = distance_transform_edt(~occ) * resolution
        inside = distance_transform_edt(occ) * resolution
        sdf = np.where(occ, -(inside - 0.5 * resolution), out - 0.5 * resolution)
        return cls(sdf.astype(np.float32), origin, resolution)

    @classmethod
    def from_scene_model(cls, scene, stride: int = 2, margin: float = 0.4) -> ObstacleSDF:
        """From a :class:`~ssomotion_ros.sso.scene.SceneModel`: its occupied voxels without
        floor / ceiling labels, each obstacle column filled down to the floor (the map only
        sees surfaces; furniture stands on the floor), at ``stride`` x the voxel size."""
        snap = scene.snapshot()
        vs = float(snap.voxel_size)
        if len(snap) == 0:
            return cls(np.full((2, 2, 2), 2.0, np.float32), np.zeros(3), vs, 2.0)
        coords = snap.coords.cpu().numpy().astype(np.int64)
        labels = snap.labels.cpu().numpy()
        skip = set(int(i) for i in scene.vocabulary.ids_named(tuple(scene.config.maps.floor_names)))
        try:
            skip |= set(int(i) for i in scene.vocabulary.ids_named(("ceiling",)))
        except (KeyError, ValueError):
            pass
        keep = ~np.isin(labels, list(skip)) if skip else np.ones(len(labels), bool)
        floor_z = (
            float(np.median(scene.floor_height(coords[~keep][:, :2] * vs)))
            if (~keep).any()
            else 0.0
        )
        coords = coords[keep]
        res = vs * stride
        m = int(math.ceil(margin / res))
        c = np.floor_divide(coords, stride)
        lo = c.min(0) - m
        lo[2] = min(lo[2], int(math.floor(floor_z / res)) - 1)
        hi = c.max(0) + m + 1
        shape = hi - lo
        occ = np.zeros(tuple(shape), bool)
        rel = c - lo
        occ[rel[:, 0], rel[:, 1], rel[:, 2]] = True
        # fill each obstacle column from its top down to the floor
        kz = int(math.floor(floor_z / res)) - int(lo[2]) + 1
        top = np.where(occ.any(2), occ.shape[2] - 1 - np.argmax(occ[:, :, ::-1], axis=2), -1)
        zz = np.arange(occ.shape[2])[None, None]
        occ |= (zz <= top[..., None]) & (zz >= kz)
        return cls.from_occupancy(occ, lo * res, res)

    @classmethod
    def from_semantic_occupancy(cls, occ, skip_labels=(1, 3)) -> ObstacleSDF:
        """From a ground-truth :class:`~ssomotion_ros.scenes.scene.SemanticOccupancy`
        (``Scene.occupancy(solid=True)``) without the ``skip_labels`` (floor 1, ceiling 3 in
        the scenes vocabulary)."""
        keep = ~np.isin(occ.label, list(skip_labels))
        grid = np.zeros(tuple(int(s) for s in occ.shape), bool)
        idx = occ.indices[keep]
        grid[idx[:, 0], idx[:, 1], idx[:, 2]] = True
        return cls.from_occupancy(grid, occ.origin, occ.voxel_size)

    def __call__(self, points) -> np.ndarray:
        """points: (N, 3) metres, map frame -> (N,) float64 signed distances, metres."""
        from scipy.ndimage import map_coordinates

        pts = np.asarray(points, np.float64).reshape(-1, 3)
        c = (pts - self.origin) / self.resolution - 0.5
        hi = np.array(self.grid.shape) - 1.0
        inside = np.all((c >= -0.5) & (c <= hi + 0.5), axis=1)
        vals = map_coordinates(self.grid, np.clip(c, 0.0, hi).T, order=1, mode="nearest")
        return np.where(inside, vals, self.outside)

    def torch_query(self, points: torch.Tensor) -> torch.Tensor:
        """points: (..., 3) float tensor, metres, map frame -> (...) signed distances
        (differentiable w.r.t. the points; trilinear)."""
        dev = points.device
        key = str(dev)
        if key not in self._t:
            g = torch.as_tensor(self.grid, device=dev).permute(2, 1, 0)[None, None].contiguous()
            size = torch.tensor(self.grid.shape, dtype=torch.float32, device=dev)
            org = torch.as_tensor(self.origin, dtype=torch.float32, device=dev)
            self._t[key] = (g, size, org)
        g, size, org = self._t[key]
        shp = points.shape[:-1]
        p = points.reshape(1, -1, 1, 1, 3).to(torch.float32)
        # voxel centre i is at normalised (2 i + 1) / size - 1 (align_corners=False)
        n = 2.0 * (p - org) / (self.resolution * size) - 1.0
        v = torch.nn.functional.grid_sample(
            g, n, mode="bilinear", padding_mode="border", align_corners=False
        ).reshape(shp)
        off = (n.abs() > 1.0).any(-1).reshape(shp)
        return torch.where(off, torch.full_like(v, self.outside), v)


# ------------------------------------------------------------------ pose helpers
_OFFSET0 = default_skeleton().offsets[0].astype(np.float64)


def _pelvis(params: np.ndarray) -> np.ndarray:
    return _OFFSET0 + np.asarray(params, np.float64)[..., 66:69]


def _set_pelvis(params: np.ndarray, pelvis: np.ndarray) -> None:
    params[..., 66:69] = np.asarray(pelvis) - _OFFSET0


def _place(canon: np.ndarray, yaw: float, pelvis_xyz) -> np.ndarray:
    """A canonical pose (69,) (facing +x, pelvis over the origin) rotated by ``yaw`` and
    moved so its pelvis is at ``pelvis_xyz`` (x, y, z metres; z None keeps the height)."""
    out = np.array(canon, np.float64)
    out[:3] = (Rotation.from_rotvec([0, 0, yaw]) * Rotation.from_rotvec(out[:3])).as_rotvec()
    pel = _pelvis(out)
    pel[:2] = pelvis_xyz[:2]
    if len(pelvis_xyz) > 2 and pelvis_xyz[2] is not None:
        pel[2] = pelvis_xyz[2]
    _set_pelvis(out, pel)
    return out


def _root_poses(params: np.ndarray, joints: np.ndarray) -> np.ndarray:
    q = Rotation.from_rotvec(params[:, :3].astype(np.float64)).as_quat()
    return np.concatenate([joints[:, 0], q], 1).astype(np.float32)


def _time_scale(prev: np.ndarray, new: np.ndarray, k: float) -> np.ndarray:
    """Play ``new`` (T, 69) SMPL-X params at 30 fps, which follow ``prev`` (69,), ``k``
    times faster: frames at times k, 2k, ... <= T of the track prev, new[0], ..., new[-1]
    (joint rotations by slerp, translation linearly). Returns (floor(T / k), 69), at least
    one frame."""
    from ssomotion_ros.body.rotations import slerp_np

    seq = np.concatenate([np.asarray(prev, np.float64)[None], np.asarray(new, np.float64)])
    T = len(new)
    m = max(1, int(math.floor(T / k + 1e-9)))
    ts = np.arange(T + 1, dtype=np.float64)
    td = np.minimum(np.arange(1, m + 1) * k, T)
    out = np.empty((m, seq.shape[1]))
    out[:, :66] = slerp_np(ts, seq[:, :66].reshape(T + 1, 22, 3), td).reshape(m, 66)
    for c in range(66, 69):
        out[:, c] = np.interp(td, ts, seq[:, c])
    return out


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _arc_of(path: np.ndarray, point: np.ndarray) -> float:
    """Arc length (metres) of the point of a (K, 2) polyline closest to ``point``."""
    if len(path) < 2:
        return 0.0
    seg = np.diff(path, axis=0)
    cum = np.r_[0.0, np.cumsum(np.linalg.norm(seg, axis=1))]
    L2 = np.maximum((seg**2).sum(1), 1e-12)
    t = np.clip(((point[None] - path[:-1]) * seg).sum(1) / L2, 0, 1)
    p = path[:-1] + t[:, None] * seg
    k = int(np.argmin(np.linalg.norm(p - point[None], axis=1)))
    return float(cum[k] + t[k] * np.sqrt(L2[k]))


def _project(path: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, float]:
    """Closest point of a polyline (K, 2) to each of xy (N, 2): (points (N, 2), arc (N,))."""
    if len(path) < 2:
        return np.repeat(path[:1], len(xy), 0), np.zeros(len(xy))
    a, b = path[:-1], path[1:]
    ab = b - a
    L2 = np.maximum((ab**2).sum(1), 1e-12)
    t = np.clip(((xy[:, None] - a[None]) * ab[None]).sum(-1) / L2[None], 0, 1)
    p = a[None] + t[..., None] * ab[None]
    d = np.linalg.norm(p - xy[:, None], axis=-1)
    k = d.argmin(1)
    return p[np.arange(len(xy)), k], k


# ------------------------------------------------------------------ per-agent run state
@dataclass
class _Phase:
    kind: str  # walk, sit, lie, stand_up, turn, wait
    path: np.ndarray | None = None
    follower: object = None
    goal_xy: np.ndarray | None = None
    final_yaw: float | None = None
    target: np.ndarray | None = None  # (69,) target pose (sit/lie/stand_up)
    posture: str = "standing"  # posture after the phase
    stand_xy: np.ndarray | None = None
    seconds: float = 0.0  # turn / wait
    segment: np.ndarray | None = None  # (2, 2) pelvis xy start -> target (transitions)
    label: str = ""  # action label of procedural frames (hold: "sit" / "lie")
    fit_yaw: float | None = None  # sit/lie: target not yet fitted to the scene (its facing)


@dataclass
class _Run:
    goal: object
    phases: list
    history: np.ndarray  # (H, 69) float64
    agent_id: str
    request_id: str
    phase: int = 0
    windows_in_phase: int = 0
    frames: int = 0
    budget_frames: int = 0
    path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    posture: str = "standing"
    stand_xy: np.ndarray | None = None
    done: bool = False
    note: str = ""
    shift: float = 0.0  # metres of path keeping applied (total)
    turn: float = 0.0  # radians of steering applied (total, absolute)
    plant: object = None  # foot_ik.PlantState of the running walk (None = fresh)
    planted: int = 0  # frames with a fully planted foot (reported in the final note)


class LearnedSynthesizer:
    """The learned generator as a :class:`~ssomotion_ros.synthesis.types.Synthesizer`.

    config: :class:`LearnedConfig`. sampler: a loaded
    :class:`~ssomotion_ros.motion.rollout.MotionSampler` (default: from
    ``config.checkpoint``, loaded on first use). library: the baseline's
    :class:`~ssomotion_ros.synthesis.baseline.MotionLibrary` whose seated / lying /
    standing frames are the targets of the per-joint hints (default: loaded on first use).
    A lock serialises network use, so one instance may serve several agent threads.
    """

    name = "learned"

    def __init__(self, config: LearnedConfig | None = None, sampler=None, library=None,
                 planner_config=None):  # fmt: skip
        from ssomotion_ros.motion.planning import Planner, PlannerConfig

        self.config = config or LearnedConfig()
        self._sampler = sampler
        self._library = library
        pc = planner_config or PlannerConfig()
        pc.clearance_radius = self.config.clearance_radius
        self.planner = Planner(pc)
        self._lock = threading.RLock()
        self._scene_cache: dict = {}
        self._gen = torch.Generator(device="cpu").manual_seed(self.config.seed)
        #: seconds from the call of the last stream to its first window (instrumentation)
        self.last_first_window_s = math.nan

    # -------------------------------------------------------------- resources
    @property
    def sampler(self):
        with self._lock:
            if self._sampler is None:
                from ssomotion_ros.motion.rollout import MotionSampler

                cfg = self.config
                self._sampler = MotionSampler.from_checkpoint(
                    cfg.checkpoint or None, device=cfg.device or None
                )
                if self._sampler.history < 1 or self._sampler.window <= self._sampler.history:
                    raise ValueError("checkpoint window must be longer than its history")
            return self._sampler

    @property
    def library(self):
        with self._lock:
            if self._library is None:
                from ssomotion_ros.synthesis.baseline import load_library

                self._library = load_library()
            return self._library

    def _scene_products(self, scene):
        """(walkable grid, obstacle SDF) of ``scene`` (cached per scene version)."""
        from ssomotion_ros.motion.planning import WalkableGrid

        key = (id(scene), getattr(scene, "version", 0))
        hit = self._scene_cache.get(key)
        if hit is None:
            grid = WalkableGrid.coerce(scene.walkable_grid(self.config.clearance_radius))
            sdf = ObstacleSDF.from_scene_model(scene)
            hit = (grid, sdf)
            if len(self._scene_cache) > 8:
                self._scene_cache.clear()
            self._scene_cache[key] = hit
        return hit

    def grid(self, scene):
        """The walkable grid (``WalkableGrid``, clearance ``clearance_radius``) this generator
        plans on, cached per scene version (the agent manager re-checks paths on it)."""
        return self._scene_products(scene)[0]

    def _use_reduction(self, scene) -> None:
        """Give the scene the semantic reduction the checkpoint's scene branch was trained
        with (when it stores one), so tri-plane semantics match training."""
        get = getattr(self.sampler, "semantic_reduction", None)
        if get is None or not hasattr(scene, "set_reduction"):
            return
        if not hasattr(self, "_reduction"):
            self._reduction = get()
        if self._reduction is not None and getattr(scene, "reduction", None) is not self._reduction:
            scene.set_reduction(self._reduction)

    def prepare(self, scene) -> None:
        """Warm everything a first window needs (network, clips, scene grid/SDF, semantic
        features) so that instruction -> first window latency excludes one-off loading."""
        _ = self.sampler, self.library
        grid, _ = self._scene_products(scene)
        self._use_reduction(scene)
        if hasattr(scene, "local_triplanes"):
            # builds the semantic features and the dense occupancy the crops are cut from
            xy = grid.cell_center(tuple(np.argwhere(grid.free)[0])) if grid.free.any() else (0, 0)
            scene.local_triplanes(np.array([[xy[0], xy[1], 0.0]]))

    # -------------------------------------------------------------- protocol
    def stream(
        self,
        goal,
        scene,
        agent_state: BodyState,
        cancel: threading.Event | None = None,
        agent_id: str = "",
        request_id: str = "",
    ) -> Iterator[MotionWindow]:
        """See :class:`~ssomotion_ros.synthesis.types.Synthesizer`. Planning happens here,
        before the iterator is returned, so an impossible goal raises
        :class:`SynthesisError` with the planner's reason at once."""
        runs = self._make_runs([goal], scene, [agent_state], [agent_id], [request_id])
        return self._single(runs, scene, cancel)

    def _single(self, runs, scene, cancel):
        for step in self._steps(runs, scene, cancel):
            if step[0] is not None:
                yield step[0]

    def stream_batch(
        self,
        goals: list,
        scene,
        agent_states: list[BodyState],
        cancel: threading.Event | None = None,
        agent_ids: list[str] | None = None,
        request_ids: list[str] | None = None,
    ) -> Iterator[list[MotionWindow | None]]:
        """Several agents (or samples) at once, in one network batch per step.

        goals / agent_states: one per agent (same length B). Yields lists of B entries:
        each agent's next :class:`MotionWindow`, or None once that agent has finished.
        Raises :class:`SynthesisError` (naming the agent) before the first step when any
        goal cannot be planned.
        """
        if len(goals) != len(agent_states) or not goals:
            raise ValueError(
                f"goals and agent_states must be non-empty and of equal length, "
                f"got {len(goals)} and {len(agent_states)}"
            )
        n = len(goals)
        ids = list(agent_ids) if agent_ids is not None else [f"agent{i}" for i in range(n)]
        rids = list(request_ids) if request_ids is not None else [""] * n
        runs = self._make_runs(goals, scene, agent_states, ids, rids)
        return self._steps(runs, scene, cancel)

    # -------------------------------------------------------------- planning
    def _make_runs(self, goals, scene, states, ids, rids) -> list[_Run]:
        self._t0 = time.perf_counter()
        runs = []
        for g, s, aid, rid in zip(goals, states, ids, rids):
            if not isinstance(s, BodyState):
                raise ValueError(f"agent_state must be a BodyState, got {type(s).__name__}")
            try:
                runs.append(self._plan(g, scene, s, aid, rid))
            except SynthesisError as e:
                if len(goals) > 1:
                    raise SynthesisError(f"{aid}: {e}") from e
                raise
        return runs

    def _fresh_history(self, scene, s: BodyState) -> np.ndarray:
        H = self.sampler.history
        if s.params is not None:
            return np.repeat(np.asarray(s.params, np.float64)[None], H, 0)
        fz = float(np.nan_to_num(scene.floor_height(s.xy[None])[0]))
        idle = self.library.idle
        p = _place(idle, s.yaw, np.array([s.x, s.y, _pelvis(idle)[2] + fz]))
        return np.repeat(p[None], H, 0)

    def _plan(self, goal, scene, s: BodyState, aid: str, rid: str) -> _Run:
        from ssomotion_ros.motion.planning import PathFollower, plan_approach
        from ssomotion_ros.sso.types import Affordance

        cfg = self.config
        grid, _ = self._scene_products(scene)
        hist = self._fresh_history(scene, s)
        act = goal.action
        phases: list[_Phase] = []
        xy = s.xy
        yaw = s.yaw
        if act in ("walk", "sit", "lie", "turn") and s.posture != "standing":
            sxy = s.stand_xy if s.stand_xy is not None else self._free_near(grid, xy)
            phases.append(self._stand_phase(sxy, yaw, scene))
            xy = np.asarray(sxy, np.float64)
        length = 0.0
        if act == "walk":
            f = PathFollower(self.planner, goal.position[:2])
            res = f.start(grid, xy)
            if not res.success:
                raise SynthesisError(res.reason)
            length = res.length
            phases.append(_Phase("walk", res.path, f, goal.position[:2].copy(), goal.facing))
        elif act in ("sit", "lie"):
            target = target_instance(scene, goal.target_id)
            if target is None:
                ext = np.array([0.25, 0.25]) if act == "sit" else np.array([0.9, 0.45])
                target = Affordance(act, goal.position.copy(), float(goal.facing or 0.0), ext)
            ap = plan_approach(self.planner, grid, xy, target, act)
            if not ap.reachable:
                raise SynthesisError(ap.reason or f"no way to {act} on the target")
            f = PathFollower(self.planner, ap.stand_pose[:2])
            f.plan, f.grid = ap.plan, grid
            length = ap.plan.length
            phases.append(_Phase("walk", ap.plan.path, f, ap.stand_pose[:2].copy(),
                                 float(ap.stand_pose[2])))  # fmt: skip
            if cfg.face_before_transition:
                phases.append(_Phase("turn", final_yaw=float(ap.stand_pose[2])))
            c = ap.contact_pose
            lib = self.library
            if act == "sit":
                canon = lib.sit[lib.sit_seated]
                z = float(c[2]) + 0.1
            else:
                canon = lib.lie[lib.lie_down]
                z = float(c[2]) + 0.12
            tgt = _place(canon, float(c[3]), np.array([c[0], c[1], z]))
            posture = "sitting" if act == "sit" else "lying"
            sxy = ap.stand_pose[:2].copy()
            # fitted to the scene when the phase starts (see _phase_target): off the first
            # window's latency, and on the map as it is then
            phases.append(
                _Phase(act, target=tgt, posture=posture, stand_xy=sxy, fit_yaw=float(c[3]))
            )
            if cfg.hold_s > 0:
                phases.append(
                    _Phase("hold", posture=posture, stand_xy=sxy, seconds=cfg.hold_s, label=act)
                )
        elif act == "stand_up":
            if s.posture == "standing":
                phases.append(_Phase("wait", seconds=0.3))
            else:
                sxy = s.stand_xy if s.stand_xy is not None else self._free_near(grid, xy)
                phases.append(self._stand_phase(sxy, yaw, scene))
        elif act == "turn":
            phases.append(
                _Phase("turn", final_yaw=float(goal.facing if goal.facing is not None else yaw))
            )
        elif act == "wait":
            phases.append(_Phase("wait", seconds=float(goal.duration_s or 1.0), posture=s.posture,
                                 stand_xy=s.stand_xy))  # fmt: skip
        else:
            raise SynthesisError(f"the learned generator cannot execute '{act}'")
        budget_s = cfg.time_budget_s or (length / cfg.budget_speed + 10.0)
        budget_s += sum(
            cfg.interaction_windows * (self.sampler.window - self.sampler.history) / FPS
            for p in phases
            if p.kind in ("sit", "lie", "stand_up")
        )
        run = _Run(goal, phases, hist, aid, rid, budget_frames=int(budget_s * FPS),
                   posture=s.posture, stand_xy=s.stand_xy)  # fmt: skip
        return run

    def _phase_target(self, ph: _Phase, scene) -> np.ndarray:
        """The (69,) target pose of a sit/lie/stand_up phase; a sit/lie target is refined
        (:meth:`_refine_target`) and fitted (:meth:`_fit_target`) on first use."""
        if ph.fit_yaw is not None:
            cfg = self.config
            tgt = ph.target
            if cfg.refine_target_steps > 0:
                tgt = self._refine_target(tgt, scene, seated=ph.kind == "sit")
            if cfg.fit_target:
                tgt = self._fit_target(tgt, ph.fit_yaw, scene)
            ph.target, ph.fit_yaw = tgt, None
        return ph.target

    def _refine_target(self, tgt: np.ndarray, scene, seated: bool = False) -> np.ndarray:
        """Bend a seated/lying target pose's joints out of obstacles with the pelvis held.

        tgt: (69,) float SMPL-X params, map frame. Minimises, by Adam on the 21 body-joint
        rotations, the summed capsule penetration into the scene's obstacle SDF plus
        ``refine_pose_cost`` x the squared change of the joint angles plus a hinge keeping
        the feet above the floor and, when ``seated``, ``refine_feet_cost`` x the height
        of the lowest foot joint above the floor (a seated person's feet rest on it).
        Returns the refined (69,) params (the input when it does not penetrate)."""
        from ssomotion_ros.body.collision import body_points
        from ssomotion_ros.body.skeleton import forward_kinematics
        from ssomotion_ros.eval.metrics import FOOT_JOINTS

        cfg = self.config
        _, sdf = self._scene_products(scene)
        base = torch.as_tensor(tgt, dtype=torch.float32)
        pel = _pelvis(tgt[None])[0]
        floor = float(np.nan_to_num(scene.floor_height(pel[None, :2])[0]))
        feet = list(FOOT_JOINTS)  # ankles and toes

        def loss_of(pose):
            p = torch.cat([base[:3], pose, base[66:]])
            j = forward_kinematics(p[None], check_finite=False)[0]
            pts, radii = body_points(j, n_per_bone=2)
            pen = torch.relu(radii - sdf.torch_query(pts)).sum()
            below = torch.relu(floor - j[feet, 2]).sum()
            if seated:
                below = below + cfg.refine_feet_cost / 10.0 * (j[feet, 2].min() - floor - 0.05)
            return pen, below

        pose0 = base[3:66].clone()
        with torch.no_grad():
            pen0, _ = loss_of(pose0)
        if float(pen0) <= 1e-4:
            return tgt
        pose = pose0.clone().requires_grad_(True)
        opt = torch.optim.Adam([pose], lr=0.03)
        best, best_loss = pose0.clone(), float("inf")
        for _ in range(int(cfg.refine_target_steps)):
            opt.zero_grad()
            pen, below = loss_of(pose)
            loss = pen + 10.0 * below + cfg.refine_pose_cost * ((pose - pose0) ** 2).sum()
            if float(loss.detach()) < best_loss:
                best_loss, best = float(loss.detach()), pose.detach().clone()
            loss.backward()
            opt.step()
        out = np.asarray(tgt, np.float64).copy()
        out[3:66] = best.numpy().astype(np.float64)
        return out

    def _fit_target(self, tgt: np.ndarray, yaw: float, scene) -> np.ndarray:
        """Move a seated/lying target pose (69,) up by 0..0.08 m and along ``yaw`` by
        -0.1..0.1 m to the least capsule penetration of the scene's obstacle SDF (ties and
        small gains go to the smallest move)."""
        from ssomotion_ros.body.collision import body_points

        _, sdf = self._scene_products(scene)
        dz = np.arange(0.0, 0.081, 0.02)
        da = np.arange(-0.1, 0.101, 0.05)
        DZ, DA = np.meshgrid(dz, da, indexing="ij")
        DZ, DA = DZ.ravel(), DA.ravel()
        cand = np.repeat(tgt[None], len(DZ), 0)
        pel = _pelvis(cand)
        pel[:, 0] += DA * math.cos(yaw)
        pel[:, 1] += DA * math.sin(yaw)
        pel[:, 2] += DZ
        _set_pelvis(cand, pel)
        j = forward_kinematics_np(cand.astype(np.float32))
        pts, radii = body_points(j.astype(np.float64), n_per_bone=2)
        d = sdf(pts.reshape(-1, 3)).reshape(len(cand), -1)
        pen = np.maximum(radii[None] - d, 0.0).sum(1)
        score = pen + self.config.fit_move_cost * (DZ + np.abs(DA))
        return cand[int(np.argmin(score))]

    def _free_near(self, grid, xy):
        ij, _, _ = self.planner.snap(grid, np.asarray(xy, np.float64), "start")
        return grid.cell_center(ij) if ij is not None else np.asarray(xy, np.float64)

    def _stand_phase(self, stand_xy, yaw, scene) -> _Phase:
        fz = float(np.nan_to_num(scene.floor_height(np.asarray(stand_xy)[None])[0]))
        idle = self.library.idle
        tgt = _place(idle, yaw, np.array([stand_xy[0], stand_xy[1], _pelvis(idle)[2] + fz]))
        return _Phase("stand_up", target=tgt, posture="standing")

    # -------------------------------------------------------------- stepping
    def _steps(self, runs: list[_Run], scene, cancel) -> Iterator[list[MotionWindow | None]]:
        first = True
        while not all(r.done for r in runs):
            if cancel is not None and cancel.is_set():
                raise SynthesisCancelled("cancelled")
            out: list[MotionWindow | None] = [None] * len(runs)
            model_idx = []
            for i, r in enumerate(runs):
                if r.done:
                    continue
                ph = r.phases[r.phase]
                if ph.kind in MODEL_ACTIONS:
                    model_idx.append(i)
                else:
                    out[i] = self._procedural(r, ph, scene)
            if model_idx:
                with self._lock:
                    wins = self._model_step([runs[i] for i in model_idx], scene)
                for i, w in zip(model_idx, wins):
                    out[i] = w
            if first:
                self.last_first_window_s = time.perf_counter() - self._t0
                first = False
            yield out

    def _procedural(self, r: _Run, ph: _Phase, scene) -> MotionWindow:
        base = np.array(r.history[-1], np.float64)
        if ph.kind == "turn":
            d = _wrap(float(ph.final_yaw) - heading_of(base))
            n = max(2, int(round(abs(math.degrees(d)) / self.config.turn_rate_deg * FPS)))
            w = _smoothstep(np.arange(1, n + 1) / n)
            frames = np.repeat(base[None], n, 0)
            rot = Rotation.from_rotvec(np.stack([0 * w, 0 * w, d * w], 1)) * Rotation.from_rotvec(
                np.repeat(base[None, :3], n, 0)
            )
            frames[:, :3] = rot.as_rotvec()
            act = "turn"
        else:
            n = max(1, int(round(ph.seconds * FPS)))
            frames = np.repeat(base[None], n, 0)
            act = ph.label or "idle"
        return self._emit(r, frames, [act] * len(frames), phase_done=True)

    def _model_step(self, runs: list[_Run], scene) -> list[MotionWindow]:
        """One network window for every run in ``runs`` (one batch)."""
        from ssomotion_ros.body.collision import body_points
        from ssomotion_ros.motion.diffusion import foot_contact_cost
        from ssomotion_ros.motion.model import SceneInput
        from ssomotion_ros.motion.planning import point_along

        cfg = self.config
        s = self.sampler
        dev = s.device
        H, W = s.history, s.window
        _, sdf = self._scene_products(scene)
        B = len(runs)
        hist = np.stack([r.history for r in runs])  # (B, H, 69)
        joints_h = forward_kinematics_np(hist.reshape(-1, PARAM_DIM)).reshape(B, H, 22, 3)
        actions, directions, goals, goal_xy_only, w_contact = [], [], [], [], []
        refs, w_ref, poses, key_p, key_n = [], [], [], [], []
        t_new = (np.arange(1, W - H + 1)) / FPS  # seconds after the last history frame
        for b, r in enumerate(runs):
            ph = r.phases[r.phase]
            pel0 = joints_h[b, 0, 0].astype(np.float64)
            pel_now = joints_h[b, -1, 0].astype(np.float64)
            poses.append([pel0[0], pel0[1], heading_of(hist[b, 0])])
            d = np.zeros((22, 3))
            ref = np.zeros((W - H, 2))
            key_p.append(np.zeros(PARAM_DIM))
            key_n.append(0)
            if ph.kind == "walk":
                # where the pelvis should be at each new frame: along the path at walk speed
                path = ph.follower.plan.path
                proj, _ = _project(path, pel_now[None, :2])
                s_now = _arc_of(path, proj[0])
                ref = np.stack([point_along(path, s_now + cfg.walk_speed * t) for t in t_new])
                # hint = pelvis displacement over the window (from the first history frame),
                # as in training; the sampler caps it at 1 m
                d[0, :2] = ref[-1] - pel0[:2]
                goals.append([ref[-1, 0], ref[-1, 1], 0.0])
                goal_xy_only.append(True)
                w_contact.append(1.0)
                w_ref.append(1.0)
            else:
                target = self._phase_target(ph, scene)
                tj = forward_kinematics_np(target[None].astype(np.float32))[0].astype(np.float64)
                d = tj - joints_h[b, 0].astype(np.float64)
                goals.append(list(_pelvis(target)))
                goal_xy_only.append(False)
                w_contact.append(0.0 if ph.kind == "lie" else 1.0)
                w_ref.append(0.0)
                if cfg.keyframe_frames > 0 and r.windows_in_phase + 1 >= cfg.interaction_windows:
                    key_p[-1] = target
                    key_n[-1] = min(cfg.keyframe_frames, W - H)
            refs.append(ref)
            directions.append(d)
            actions.append(ph.kind)
        self._use_reduction(scene)
        tp = scene.local_triplanes(np.asarray(poses, np.float64))
        scene_in = SceneInput.from_triplanes(tp)
        floor = np.nan_to_num(scene.floor_height(np.asarray(poses)[:, :2]))

        def t32(x):
            return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=dev)

        floor_t = t32(floor)[:, None, None]
        goal_t = t32(goals)
        xy_only = torch.as_tensor(goal_xy_only, device=dev)
        wc, wr, ref_t = t32(w_contact), t32(w_ref), t32(np.stack(refs))
        contact = foot_contact_cost(floor_z=floor_t)
        _, radii = body_points(torch.zeros(1, 22, 3), n_per_bone=2)
        radii_t = t32(radii)
        xy_mask = torch.tensor([1.0, 1.0, 0.0], device=dev)

        def cost(view):
            j = view.joints[:, H:]  # (B, T', 22, 3) the new frames
            pts, _ = body_points(j, n_per_bone=2)  # (B, T', P, 3)
            pen = torch.relu(radii_t + cfg.penetration_margin - sdf.torch_query(pts))
            dg = view.joints[:, -1, 0] - goal_t
            dg = torch.where(xy_only[:, None], dg * xy_mask, dg)
            total = cfg.w_penetration * pen.sum((-1, -2)) + cfg.w_goal * dg.norm(dim=-1)
            if cfg.w_path > 0:
                e = ((j[..., 0, :2] - ref_t) ** 2).sum(-1).mean(-1)
                total = total + cfg.w_path * wr * e
            if cfg.w_contact > 0:
                total = total + cfg.w_contact * wc * contact(view)
            return total

        hist_t = t32(hist)
        keys = None
        if any(key_n):
            keys = (t32(np.stack(key_p)), key_n)
        win = self._sample_window(hist_t, actions, t32(directions), scene_in,
                                  cost if cfg.guidance else None, keys)  # fmt: skip
        win = win.detach().cpu().numpy().astype(np.float64)  # (B, W, 69)
        return [self._finish_window(r, win[b, H:], scene) for b, r in enumerate(runs)]

    def _sample_window(
        self, history, actions, direction, scene_in, cost, keys=None
    ) -> torch.Tensor:
        """``MotionSampler.sample_window`` with this generator's guidance settings
        (iterations, start). history: (B, H, 69) map frame; direction: (B, 22, 3) map
        frame; returns (B, W, 69) map frame whose first H frames are ``history``."""
        import warnings

        from ssomotion_ros.motion import representation as rep
        from ssomotion_ros.motion.diffusion import Guidance, make_view_fn
        from ssomotion_ros.motion.rollout import action_indices

        cfg = self.config
        s = self.sampler
        model = s.model
        dev = s.device
        B, H = history.shape[:2]
        act = action_indices(actions, B, dev)
        origin, yaw = rep.window_frame(history)
        known = torch.zeros(B, s.window, model.cfg.feature_dim, device=dev)
        known[:, :H] = model.normalize(rep.params_to_features(history, origin, yaw))
        km = torch.zeros(B, s.window, dtype=torch.bool, device=dev)
        km[:, :H] = True
        if keys is not None:
            # keyframes: (B, 69) target poses inpainted on the last frames of chosen agents
            kp, kn = keys
            feat = model.normalize(rep.params_to_features(kp[:, None], origin, yaw))[:, 0]
            for b in range(B):
                n = int(kn[b])
                if n > 0:
                    known[b, -n:] = feat[b]
                    km[b, -n:] = True
        R = rep.yaw_matrix(-yaw)[:, None]
        d_local = rep.cap_length((R @ direction[..., None])[..., 0])
        tokens = model.encode_scene(scene_in.to(dev))
        guidance = None
        if cost is not None:
            guidance = self._last_guidance = Guidance(
                costs=[cost],
                to_view=make_view_fn(model, origin, yaw),
                step_size=cfg.guidance_step,
                iterations=cfg.guidance_iterations,
                start=cfg.guidance_start,
            )
        gen = self._gen if dev.type == "cpu" else None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            x0 = s.diffusion.sample(
                model,
                act,
                known,
                km,
                direction=d_local,
                scene_tokens=tokens,
                steps=cfg.steps or None,
                guidance=guidance,
                generator=gen,
            )
        new = rep.features_to_params(model.denormalize(x0[:, H:]), origin, yaw)
        return torch.cat([history, new], dim=1)

    def _finish_window(self, r: _Run, new: np.ndarray, scene) -> MotionWindow:
        """Post-process the new frames (T, 69) of one agent, decide whether its phase is
        over, and make its window."""
        cfg = self.config
        ph = r.phases[r.phase]
        r.windows_in_phase += 1
        new = np.array(new, np.float64)
        pel = _pelvis(new)
        phase_done = False
        if ph.kind == "walk":
            if cfg.walk_time_scale != 1.0:
                new = _time_scale(r.history[-1], new, cfg.walk_time_scale)
                pel = _pelvis(new)
            new, pel = self._steer(r, ph, new, pel, self._scene_products(scene)[1])
            d = np.linalg.norm(pel[:, :2] - ph.goal_xy[None], axis=1)
            hit = np.nonzero(d < cfg.success_radius)[0]
            if len(hit):
                # stop at the closest frame after entering the radius
                k = int(hit[0] + np.argmin(d[hit[0] :]))
                new = new[: k + 1]
                phase_done = True
            if cfg.foot_plant:
                # before a sit / lie the transition starts from the network's own pose
                ends = phase_done and r.phase + 1 < len(r.phases)
                new = self._plant(r, new, scene, release_at_end=ends)
        else:
            tgt = _pelvis(self._phase_target(ph, scene))
            if ph.segment is None:
                ph.segment = np.stack([_pelvis(r.history[-1])[:2], tgt[:2]])
            ramp = _smoothstep((np.arange(len(new)) + 1.0) / len(new))[:, None]
            if cfg.path_keeping > 0:
                # keep the pelvis in the corridor of the straight line to the target
                proj, _ = _project(ph.segment, pel[-1:, :2])
                off = pel[-1, :2] - proj[0]
                dev_ = float(np.linalg.norm(off))
                if dev_ > cfg.corridor:
                    corr = -off * (dev_ - cfg.corridor) / dev_ * cfg.path_keeping
                    pel[:, :2] += corr[None] * ramp
                    r.shift += float(np.linalg.norm(corr))
            err = tgt - pel[-1]
            last = r.windows_in_phase >= cfg.interaction_windows
            if np.linalg.norm(err) < cfg.interaction_tolerance or last:
                # settle: remove the remaining pelvis error (at most max_settle) smoothly
                n = float(np.linalg.norm(err))
                if n > cfg.max_settle:
                    err = err * cfg.max_settle / n
                pel = pel + err[None] * ramp * cfg.contact_settle
                r.shift += float(np.linalg.norm(err)) * cfg.contact_settle
                phase_done = True
            _set_pelvis(new, pel)
            if cfg.push_out > 0 and cfg.push_out_transitions and ph.kind in ("sit", "lie"):
                # the in-between may sweep through the furniture's edge: push those frames
                # out, fading to nothing at the window's end (the fitted target stays exact)
                _, sdf = self._scene_products(scene)
                _, pushed, _ = self._push_out(new.copy(), pel.copy(), sdf)
                fade = 1.0 - _smoothstep((np.arange(len(new)) + 1.0) / len(new))
                pel = pel + (pushed - pel) * fade[:, None]
                _set_pelvis(new, pel)
        acts = [ph.kind] * len(new)
        return self._emit(r, new, acts, phase_done)

    def _steer(self, r: _Run, ph: _Phase, new: np.ndarray, pel: np.ndarray, sdf: ObstacleSDF):
        """Walk steering and path keeping of one window's new frames (T, 69).

        1. Rotate the window about the last history pelvis (cumulative yaw ramping from 0
           to delta over the window) so that its displacement points at the reference
           point on the path (|delta| <= ``max_turn_deg``).
        2. Remove the pelvis deviation beyond ``corridor`` from the path, ramped over the
           window. Both are recorded in the run (``r.turn``, ``r.shift``)."""
        from ssomotion_ros.motion.planning import point_along

        cfg = self.config
        path = ph.follower.plan.path
        p0 = _pelvis(r.history[-1])
        ramp = _smoothstep((np.arange(len(new)) + 1.0) / len(new))
        if cfg.max_turn_deg > 0 and len(path) >= 2:
            s0 = _arc_of(path, p0[:2])
            target = point_along(path, s0 + cfg.walk_speed * len(new) / FPS)
            want, have = target - p0[:2], pel[-1, :2] - p0[:2]
            if np.linalg.norm(want) > 0.05 and np.linalg.norm(have) > 0.05:
                delta = _wrap(math.atan2(want[1], want[0]) - math.atan2(have[1], have[0]))
                cap = math.radians(cfg.max_turn_deg)
                delta = float(np.clip(delta, -cap, cap))
                ang = delta * ramp
                rz = Rotation.from_rotvec(np.stack([0 * ang, 0 * ang, ang], 1))
                new[:, :3] = (rz * Rotation.from_rotvec(new[:, :3])).as_rotvec()
                rel = pel - p0
                rel[:, 2] = 0.0
                pel = p0 * np.array([1.0, 1.0, 0.0]) + rz.apply(rel) + pel * np.array([0, 0, 1.0])
                r.turn += abs(delta)
        if cfg.foot_lock > 0:
            new, pel = self._foot_lock(r.history[-1], new, pel, path, p0)
        if cfg.path_keeping > 0 and len(path) >= 2:
            proj, _ = _project(path, pel[:, :2])
            off = pel[-1, :2] - proj[-1]
            dev_ = float(np.linalg.norm(off))
            if dev_ > cfg.corridor:
                corr = -off * (dev_ - cfg.corridor) / dev_ * cfg.path_keeping
                pel[:, :2] += corr[None] * ramp[:, None]
                r.shift += float(np.linalg.norm(corr))
        _set_pelvis(new, pel)
        if cfg.arrive_assist > 0 and ph.goal_xy is not None:
            to_goal = ph.goal_xy - pel[-1, :2]
            rem = float(np.linalg.norm(to_goal))
            if 0.5 * cfg.success_radius < rem < cfg.arrive_radius:
                step = min(cfg.arrive_assist, rem - 0.5 * cfg.success_radius)
                pel[:, :2] += (to_goal / rem * step)[None] * ramp[:, None]
                _set_pelvis(new, pel)
                r.shift += step
        if cfg.push_out > 0:
            new, pel, moved = self._push_out(new, pel, sdf)
            r.shift += moved
        return new, pel

    def _plant(self, r: _Run, new: np.ndarray, scene, release_at_end: bool = False) -> np.ndarray:
        """Foot planting of a walk window's final frames (T, 69) (pelvis untouched): the
        stance foot's ankle is pinned and the legs re-solved (:func:`foot_ik.plant_feet`),
        its state carried in ``r.plant`` to the next window; ``release_at_end`` fades the
        pins out over the last frames. Returns the new (T, 69)."""
        from ssomotion_ros.synthesis.foot_ik import LEGS, plant_feet

        cfg = self.config
        j = forward_kinematics_np(new.astype(np.float32)).astype(np.float64)
        ank = j[:, [LEGS[0][2], LEGS[1][2]], :2].reshape(-1, 2)
        floor = np.asarray(scene.floor_height(ank), np.float64).reshape(len(new), 2)
        ok = np.isfinite(floor)
        fill = float(np.median(floor[ok])) if ok.any() else 0.0
        floor = np.where(ok, floor, fill)
        k = cfg.walk_time_scale
        out, r.plant, info = plant_feet(
            new,
            floor,
            r.plant,
            enter_height=cfg.plant_enter_height,
            exit_height=cfg.plant_exit_height,
            # speeds and blend lengths are in the generated motion's own time: a walk
            # played walk_time_scale times faster has faster ankles and shorter blends
            enter_speed=cfg.plant_enter_speed * k,
            exit_speed=cfg.plant_exit_speed * k,
            blend_frames=max(1, int(round(cfg.plant_blend_frames / k))),
            max_stretch=cfg.plant_max_stretch,
            step_lead_s=cfg.plant_step_lead_s,
            step_reach=cfg.plant_step_reach,
            swing_height=cfg.plant_swing_height,
            release_at_end=release_at_end,
            fps=FPS,
        )
        r.planted += int((info["planted"] >= 1.0).any(1).sum())
        return out

    def _foot_lock(self, prev, new, pel, path, p0):
        """Move the body against its grounded foot's horizontal slide, frame by frame (the
        shift accumulates), by the fraction ``foot_lock`` — lowered for this window when
        the locked window would progress less than ``lock_min_progress`` metres along the
        path. prev: (69,) last history frame; new: (T, 69); pel: (T, 3); path: (K, 2);
        p0: (3,) last history pelvis. Returns (new, pel)."""
        from ssomotion_ros.eval.metrics import FOOT_JOINTS

        cfg = self.config
        allp = np.concatenate([prev[None], new]).astype(np.float32)
        feet = forward_kinematics_np(allp)[:, list(FOOT_JOINTS)].astype(np.float64)  # (T+1,4,3)
        h = feet[..., 2] - float(np.min(feet[..., 2]))
        slide = np.zeros((len(new), 2))
        for k in range(1, len(allp)):
            f = int(np.argmin(h[k]))
            if h[k, f] < 0.06 and h[k - 1, f] < 0.06:
                slide[k - 1] = feet[k, f, :2] - feet[k - 1, f, :2]
        cum = -np.cumsum(slide, axis=0)  # shift per frame for lock = 1
        lock = cfg.foot_lock
        if len(path) >= 2:
            s0 = _arc_of(path, p0[:2])
            p_free = _arc_of(path, pel[-1, :2]) - s0
            p_full = _arc_of(path, pel[-1, :2] + cum[-1]) - s0
            want = min(cfg.lock_min_progress, p_free)
            if p_free - p_full > 1e-6 and p_free - lock * (p_free - p_full) < want:
                lock = max(0.0, (p_free - want) / (p_free - p_full))
        pel = pel.copy()
        pel[:, :2] += lock * cum
        _set_pelvis(new, pel)
        return new, pel

    def _push_out(self, new: np.ndarray, pel: np.ndarray, sdf: ObstacleSDF):
        """Shift each frame's body (rigidly in xy, smoothed over frames, at most
        ``push_out`` metres) out of obstacles: a few steps along the SDF gradient at the
        penetrating capsule points. new: (T, 69); pel: (T, 3). Returns (new, pel, the
        largest shift in metres)."""
        from scipy.ndimage import uniform_filter1d

        from ssomotion_ros.body.collision import body_points

        cfg = self.config
        j = forward_kinematics_np(new.astype(np.float32)).astype(np.float64)
        pts, radii = body_points(j, n_per_bone=2)  # (T, P, 3)
        T, P, _ = pts.shape
        shift = np.zeros((T, 2))
        h = 0.02
        for _ in range(4):
            q = pts + np.concatenate([shift, np.zeros((T, 1))], 1)[:, None]
            d = sdf(q.reshape(-1, 3)).reshape(T, P) - radii[None]
            pen = np.maximum(cfg.penetration_margin - d, 0.0)
            if not pen.any():
                break
            g = np.zeros((T, P, 2))
            for k in range(2):
                e = np.zeros(3)
                e[k] = h
                dp = sdf((q + e).reshape(-1, 3)).reshape(T, P)
                dm = sdf((q - e).reshape(-1, 3)).reshape(T, P)
                g[..., k] = (dp - dm) / (2 * h)
            w = pen[..., None]
            step = (w * g).sum(1) / np.maximum((pen > 0).sum(1), 1)[:, None]
            shift += step * 1.5
            n = np.linalg.norm(shift, axis=1, keepdims=True)
            shift *= np.minimum(1.0, cfg.push_out / np.maximum(n, 1e-9))
        if not shift.any():
            return new, pel, 0.0
        # smooth (keeps foot speeds low) and keep the first frame continuous with history
        shift = uniform_filter1d(shift, size=9, axis=0, mode="nearest")
        shift *= _smoothstep((np.arange(T) + 1.0) / min(T, 8))[:, None]
        pel = pel.copy()
        pel[:, :2] += shift
        _set_pelvis(new, pel)
        return new, pel, float(np.linalg.norm(shift, axis=1).max())

    def _emit(self, r: _Run, frames: np.ndarray, acts, phase_done: bool) -> MotionWindow:
        H = self.sampler.history
        ph = r.phases[r.phase]
        if ph.path is not None:
            r.path = ph.path
        r.history = np.concatenate([r.history, frames])[-H:]
        r.frames += len(frames)
        if phase_done:
            r.plant = None
            r.posture = ph.posture
            r.stand_xy = ph.stand_xy if ph.posture != "standing" else None
            r.phase += 1
            r.windows_in_phase = 0
        final = r.phase >= len(r.phases)
        if not final and r.frames >= r.budget_frames:
            final = True
            r.note = (
                f"time budget ran out ({r.budget_frames / FPS:.1f} s) during "
                f"'{r.phases[r.phase].kind}'"
            )
        if final:
            r.done = True
            g = r.goal
            if g.action in ("walk", "sit", "lie"):
                pel = _pelvis(frames[-1])
                dd = float(np.hypot(*(pel[:2] - g.position[:2])))
                msg = f"pelvis ended {dd:.2f} m from the goal"
                r.note = f"{r.note}; {msg}" if r.note else msg
            if r.turn > 0 or r.shift > 0:
                r.note += (
                    f"; steering {math.degrees(r.turn):.0f} deg and path keeping "
                    f"{r.shift:.2f} m applied"
                )
            if r.planted:
                r.note += f"; a foot planted in {r.planted} frames"
        p32 = frames.astype(np.float32)
        j = forward_kinematics_np(p32)
        w = MotionWindow(
            r.agent_id,
            r.request_id,
            np.array(acts),
            r.frames - len(frames),
            p32,
            j,
            _root_poses(p32, j),
            r.path,
            FPS,
            final=final,
            posture=r.posture,
            stand_xy=r.stand_xy,
            note=r.note if final else "",
        )
        return w

    def describe(self) -> dict:
        """Configuration and checkpoint facts (for logs and reports)."""
        from dataclasses import asdict

        s = self.sampler
        return {
            "synthesizer": self.name,
            "config": asdict(self.config),
            "checkpoint": self.config.checkpoint or "default",
            "window": s.window,
            "history": s.history,
        }
