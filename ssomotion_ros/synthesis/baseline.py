"""Path-following baseline: real CMU clips placed along planned paths (issue 7 item 3a).

What game and simulator tools do, built from real motion capture so every metric of the
learned generator has an honest peer:

- **walk**: one gait cycle extracted from a CMU walk clip (12_02 by default) is slid
  along the planner's path. The heading follows the path tangent (looked ahead a little),
  and the foot phase is tied to the distance travelled (``phase = distance / stride``),
  so feet do not skate at the clip's natural speed. Speed ramps up and down at the ends.
- **sit**: a CMU sit clip (75_17, "medium sit") is played at the seat: rotated so the
  seated body faces the seat's front, translated so the seated pelvis lands on the seat
  centre, its pelvis height shifted in proportion to how far down the body is (so the
  seated pelvis sits ``sitting_pelvis_above_seat`` above the seat surface), and its
  first frame pinned to the approach pose the planner chose.
- **lie**: the data engineer's lie-down clip (a CMU get-up from the floor, reversed:
  ``139_16_reversed``) placed the same way on the bed (head towards the head end).
- **stand_up**: the sit (or lie) clip played backwards from the current pose.
- **turn** / **wait**: the current pose rotated in place / held.

Every transition blends rotations (slerp) and the pelvis (lerp) from the previous
frame over ``blend_frames``. Motion is produced window by window (30 frames) and
yielded as soon as each window exists.

The clips are read once per process from ``../shared/data/mocap/cmu`` (about 5 s) and
cached as a small ``.npz`` under ``~/.cache/ssomotion_ros`` (keyed by the BVH files'
sizes and modification times), so later processes start in milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
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

__all__ = ["BaselineConfig", "BaselineSynthesizer", "MotionLibrary", "rest_params"]


@dataclass
class BaselineConfig:
    """Parameters of the path-following baseline."""

    walk_clip: str = doc_field("12_02", "CMU clip the gait cycle is taken from (file stem).")
    sit_clip: str = doc_field("75_17", "CMU clip played to sit down (file stem).")
    lie_clip: str = doc_field(
        "139_16_reversed", "Clip played to lie down (a reversed get-up from the data loader)."
    )
    cmu_root: str = doc_field("", "Folder with the CMU BVH files and INDEX.tsv ('' = shared data).")
    cache_dir: str = doc_field(
        "", "Where the extracted clips are cached ('' = ~/.cache/ssomotion_ros; 'off' = none)."
    )
    window: int = doc_field(30, "Frames per streamed window.")
    walk_speed: float = doc_field(0.0, "Walking speed, m/s (0 = the clip's own speed).")
    accel_distance: float = doc_field(0.4, "Metres over which walking speeds up / slows down.")
    heading_lookahead: float = doc_field(0.35, "Metres ahead on the path the heading aims at.")
    turn_distance: float = doc_field(
        0.8, "Metres before the end of a walk over which the body turns to its final yaw."
    )
    clearance_radius: float = doc_field(0.25, "Body clearance of the planner's grid, metres.")
    blend_frames: int = doc_field(10, "Frames over which a new clip blends in from the last pose.")
    sit_hold_s: float = doc_field(1.0, "Seconds the seated pose is held after sitting down.")
    lie_hold_s: float = doc_field(1.0, "Seconds the lying pose is held after lying down.")
    sitting_pelvis_above_seat: float = doc_field(0.1, "Seated pelvis above the seat, metres.")
    lying_pelvis_above_surface: float = doc_field(0.12, "Lying pelvis above the bed, metres.")
    turn_rate_deg: float = doc_field(120.0, "Turning in place, degrees per second.")
    settle_s: float = doc_field(0.3, "Seconds standing still at the end of a walk.")
    walk_goal_search: float = doc_field(
        1.5, "A walk to an object whose goal point is blocked ends on free floor this near, m."
    )

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ValueError(f"window must be >= 2 frames, got {self.window}")
        if self.walk_speed < 0:
            raise ValueError(f"walk_speed must be >= 0 m/s (0 = clip speed), got {self.walk_speed}")
        for name in ("accel_distance", "heading_lookahead", "turn_distance", "clearance_radius"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 metres, got {getattr(self, name)}")
        if self.blend_frames < 0:
            raise ValueError(f"blend_frames must be >= 0, got {self.blend_frames}")
        if not self.turn_rate_deg > 0:
            raise ValueError(f"turn_rate_deg must be > 0, got {self.turn_rate_deg}")


# ------------------------------------------------------------------ rotation helpers
def _rz(yaw) -> Rotation:
    yaw = np.asarray(yaw, np.float64)
    return Rotation.from_rotvec(np.stack([0 * yaw, 0 * yaw, yaw], -1))


def _quat_slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Slerp of unit quaternions (x, y, z, w). q0, q1: (..., 4); w: broadcastable (..., 1)."""
    dot = np.sum(q0 * q1, -1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    s = np.sin(theta)
    small = s < 1e-6
    a = np.where(small, 1 - w, np.sin((1 - w) * theta) / np.where(small, 1, s))
    b = np.where(small, w, np.sin(w * theta) / np.where(small, 1, s))
    q = a * q0 + b * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _to_quats(params: np.ndarray) -> np.ndarray:
    """(T, 69) -> (T, 22, 4) quaternions of the 22 axis-angle rotations."""
    t = params.shape[0]
    return Rotation.from_rotvec(params[:, :66].reshape(-1, 3)).as_quat().reshape(t, 22, 4)


def _from_quats(quats: np.ndarray, transl: np.ndarray) -> np.ndarray:
    t = quats.shape[0]
    aa = Rotation.from_quat(quats.reshape(-1, 4)).as_rotvec().reshape(t, 66)
    return np.concatenate([aa, transl], 1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _wrap(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


class _Body:
    """Pelvis <-> transl conversion for the default skeleton."""

    def __init__(self):
        self.offset0 = default_skeleton().offsets[0].astype(np.float64)

    def pelvis(self, params: np.ndarray) -> np.ndarray:
        return self.offset0 + params[..., 66:69]

    def set_pelvis(self, params: np.ndarray, pelvis: np.ndarray) -> None:
        params[..., 66:69] = pelvis - self.offset0


_BODY = _Body()


def rest_params(x: float, y: float, yaw: float, floor_z: float = 0.0, idle=None) -> np.ndarray:
    """A standing pose at (x, y) facing ``yaw`` (radians), feet on ``floor_z`` (metres).

    idle: optional (69,) canonical standing pose (facing +x, pelvis over the origin);
    default the skeleton's rest pose. Returns (69,) float64.
    """
    p = np.zeros(PARAM_DIM) if idle is None else np.array(idle, np.float64)
    rot = _rz(yaw) * Rotation.from_rotvec(p[:3])
    p[:3] = rot.as_rotvec()
    pel = _BODY.pelvis(p)
    _BODY.set_pelvis(p, np.array([x, y, pel[2] + floor_z]))
    return p


def _canonicalize(params: np.ndarray, yaw: float, origin_xy: np.ndarray) -> np.ndarray:
    """Rotate a clip by -yaw about +z through ``origin_xy`` and move that point to 0."""
    out = np.array(params, np.float64)
    r = _rz(-yaw)
    out[:, :3] = (r * Rotation.from_rotvec(out[:, :3])).as_rotvec()
    pel = _BODY.pelvis(out)
    pel[:, :2] -= origin_xy
    pel = r.apply(pel)
    _BODY.set_pelvis(out, pel)
    return out


def _place(params: np.ndarray, yaw: float, xy: np.ndarray) -> np.ndarray:
    """Rotate a canonical clip by yaw about +z (through the origin) and shift by xy."""
    out = np.array(params, np.float64)
    r = _rz(yaw)
    out[:, :3] = (r * Rotation.from_rotvec(out[:, :3])).as_rotvec()
    pel = r.apply(_BODY.pelvis(out))
    pel[:, :2] += xy
    _BODY.set_pelvis(out, pel)
    return out


# ------------------------------------------------------------------ clip library
@dataclass
class MotionLibrary:
    """The real clips the baseline plays, in canonical form (facing +x).

    walk_cycle: (N, 69) one gait cycle; pelvis xy = sway around the straight line
        through the origin (x forward), heading removed. stride: metres per cycle.
    sit: (S, 69) standing -> seated, facing +x, seated pelvis over the origin;
        sit_seated: index of the first fully seated frame.
    lie: (L, 69) standing -> lying, head towards -x, lying pelvis over the origin;
        lie_down: index of the first fully lying frame.
    idle: (69,) a standing pose facing +x with the pelvis over the origin.
    All poses have feet on z = 0 (the clips' levelled floor).
    """

    walk_cycle: np.ndarray
    stride: float
    sit: np.ndarray
    sit_seated: int
    lie: np.ndarray
    lie_down: int
    idle: np.ndarray
    source: dict

    @property
    def walk_speed(self) -> float:
        """Natural speed of the gait cycle, m/s."""
        return self.stride / (len(self.walk_cycle) / FPS)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            walk_cycle=self.walk_cycle,
            stride=self.stride,
            sit=self.sit,
            sit_seated=self.sit_seated,
            lie=self.lie,
            lie_down=self.lie_down,
            idle=self.idle,
            source=np.array(repr(self.source)),
        )

    @classmethod
    def load(cls, path: Path) -> MotionLibrary:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                z["walk_cycle"],
                float(z["stride"]),
                z["sit"],
                int(z["sit_seated"]),
                z["lie"],
                int(z["lie_down"]),
                z["idle"],
                {"cache": str(path), "source": str(z["source"])},
            )


def extract_gait_cycle(params: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
    """One gait cycle from a straight walk clip.

    params: (T, 69) float, a walk clip at 30 fps (map frame). The cycle runs between
    two consecutive frames where the left ankle passes the right one going forward
    (the crossings nearest the middle of the clip).
    Returns (cycle (N, 69) float64 canonical: facing +x, pelvis sway about the x axis,
    stride (metres per cycle), (first, last+1) frame indices in the clip).
    Raises ValueError when the clip has fewer than two such crossings.
    """
    params = np.asarray(params, np.float64)
    joints = forward_kinematics_np(params).astype(np.float64)
    pel = joints[:, 0, :2]
    d = pel[-1] - pel[0]
    if np.linalg.norm(d) < 0.5:
        raise ValueError("walk clip travels less than 0.5 m: not a straight walk")
    d /= np.linalg.norm(d)
    lr = (joints[:, 7, :2] - joints[:, 8, :2]) @ d
    ups = np.nonzero((lr[:-1] < 0) & (lr[1:] >= 0))[0] + 1
    if len(ups) < 2:
        raise ValueError("walk clip holds less than one full gait cycle")
    mid = len(params) / 2
    pairs = [(a, b) for a, b in zip(ups[:-1], ups[1:])]
    a, b = min(pairs, key=lambda ab: abs((ab[0] + ab[1]) / 2 - mid))
    seg = params[a : b + 1]
    step = pel[b] - pel[a]
    stride = float(np.linalg.norm(step))
    yaw = math.atan2(step[1], step[0])
    canon = _canonicalize(seg, yaw, pel[a])
    # keep only the lateral sway and the speed variation about the mean line
    k = np.arange(len(canon)) / (len(canon) - 1)
    pcan = _BODY.pelvis(canon)
    pcan[:, 0] -= k * stride
    _BODY.set_pelvis(canon, pcan)
    return canon[:-1], stride, (int(a), int(b))


def _level(params: np.ndarray, frames: slice = slice(None)) -> np.ndarray:
    """Shift a clip vertically so its lowest foot joint over ``frames`` touches z = 0
    (the retargeted clips float a few centimetres)."""
    out = np.array(params, np.float64)
    j = forward_kinematics_np(out[frames])
    low = float(j[:, [7, 8, 10, 11], 2].min())
    out[:, 68] -= low
    return out


def _descent(params: np.ndarray) -> np.ndarray:
    """(T,) in [0, 1]: how far the pelvis is down from its first to its lowest height."""
    z = _BODY.pelvis(params)[:, 2]
    lo, hi = z.min(), z[0]
    if hi - lo < 1e-3:
        return np.zeros(len(z))
    return np.clip((hi - z) / (hi - lo), 0.0, 1.0)


def _prepare_sit(params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, int]:
    sit = np.nonzero(actions == "sit")[0]
    if len(sit) == 0:
        raise ValueError("sit clip has no frame labelled 'sit'")
    start = max(0, int(sit[0]) - 8)
    end = int(sit[-1]) + 1
    seg = np.asarray(params[start:end], np.float64)
    z = _BODY.pelvis(seg)[:, 2]
    seated = int(np.argmax(z <= z.min() + 0.02))
    seg = seg[: max(seated + 1, int(np.argmin(z)) + 1)]
    yaw = heading_of(seg[seated])
    canon = _canonicalize(seg, yaw, _BODY.pelvis(seg[seated])[:2])
    return canon, seated


def _prepare_lie(params: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, int]:
    lie = np.nonzero(actions == "lie")[0]
    if len(lie) == 0:
        raise ValueError("lie clip has no frame labelled 'lie'")
    walk = np.nonzero((actions == "walk") & (np.arange(len(actions)) < lie[0]))[0]
    start = int(walk[-1]) - 4 if len(walk) else max(0, int(lie[0]) - 10)
    seg = np.asarray(params[max(0, start) :], np.float64)
    z = _BODY.pelvis(seg)[:, 2]
    down = int(np.argmax(z <= z.min() + 0.03))
    seg = seg[: down + 1]
    joints = forward_kinematics_np(seg[-1:]).astype(np.float64)[0]
    head = joints[15, :2] - joints[0, :2]
    # canonical lying: head towards -x, i.e. feet towards +x (the contact yaw direction)
    yaw = math.atan2(-head[1], -head[0])
    canon = _canonicalize(seg, yaw, _BODY.pelvis(seg[-1])[:2])
    return canon, down


def _cache_key(cfg: BaselineConfig, root: Path) -> str:
    h = hashlib.sha1(repr((cfg.walk_clip, cfg.sit_clip, cfg.lie_clip, "v3")).encode())
    for stem in (cfg.walk_clip, cfg.sit_clip, cfg.lie_clip.replace("_reversed", "")):
        f = root / f"{stem}.bvh"
        if f.is_file():
            st = f.stat()
            h.update(f"{stem}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


_LIB_LOCK = threading.Lock()
_LIBS: dict[str, MotionLibrary] = {}


def load_library(config: BaselineConfig | None = None) -> MotionLibrary:
    """The baseline's clips (process-wide cache, then the on-disk cache, then the BVHs).

    Raises FileNotFoundError (with the expected folder) when the CMU data is missing.
    """
    from ssomotion_ros.motion.datasets.cmu import default_cmu_root, load_cmu_dataset

    cfg = config or BaselineConfig()
    root = Path(cfg.cmu_root) if cfg.cmu_root else default_cmu_root()
    key = _cache_key(cfg, root)
    with _LIB_LOCK:
        if key in _LIBS:
            return _LIBS[key]
        cache_file = None
        if cfg.cache_dir != "off":
            base = Path(cfg.cache_dir or Path.home() / ".cache" / "ssomotion_ros")
            cache_file = base / f"baseline_clips_{key}.npz"
            if cache_file.is_file():
                try:
                    lib = MotionLibrary.load(cache_file)
                    _LIBS[key] = lib
                    return lib
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("ignoring unreadable clip cache %s: %s", cache_file, exc)
        names = [cfg.walk_clip, cfg.sit_clip, cfg.lie_clip.replace("_reversed", "")]
        log.info("reading CMU clips %s from %s", names, root)
        clips = {c.name: c for c in load_cmu_dataset(root, names=names, progress=False)}
        missing = [n for n in (cfg.walk_clip, cfg.sit_clip, cfg.lie_clip) if n not in clips]
        if missing:
            raise FileNotFoundError(f"CMU clips {missing} not found under {root}")
        walk, stride, span = extract_gait_cycle(clips[cfg.walk_clip].params)
        sit, seated = _prepare_sit(clips[cfg.sit_clip].params, clips[cfg.sit_clip].actions)
        lie, down = _prepare_lie(clips[cfg.lie_clip].params, clips[cfg.lie_clip].actions)
        walk = _level(walk)
        sit = _level(sit, slice(0, 3))
        lie = _level(lie, slice(0, 3))
        idle = _canonicalize(sit[:1], heading_of(sit[0]), _BODY.pelvis(sit[0])[:2])[0]
        lib = MotionLibrary(
            walk,
            stride,
            sit,
            seated,
            lie,
            down,
            idle,
            {"walk": (cfg.walk_clip, span), "sit": cfg.sit_clip, "lie": cfg.lie_clip},
        )
        if cache_file is not None:
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(f".{os.getpid()}.npz")
                lib.save(tmp)
                tmp.replace(cache_file)
            except OSError as exc:
                log.warning("cannot write clip cache %s: %s", cache_file, exc)
        log.info(
            "baseline clips: gait cycle %d frames, stride %.2f m (%.2f m/s); sit %d frames; "
            "lie %d frames",
            len(walk),
            stride,
            lib.walk_speed,
            len(sit),
            len(lie),
        )
        _LIBS[key] = lib
        return lib


# ------------------------------------------------------------------ synthesis
class _Segment:
    """Frames of one motion segment, produced lazily in chunks."""

    def __init__(self, action, chunks, posture, path=None, stand_xy=None, note=""):
        self.note = note
        self.action = action
        self.chunks = chunks  # iterator of (n, 69) float64 arrays
        self.posture = posture
        self.path = path
        self.stand_xy = stand_xy


def _polyline_arclength(path: np.ndarray) -> np.ndarray:
    return np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]


def _interp_path(path: np.ndarray, s_cum: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(s, s_cum, path[:, 0]), np.interp(s, s_cum, path[:, 1])], -1)


def _distance_profile(length: float, speed: float, accel_dist: float, fps: float) -> np.ndarray:
    """Distance travelled at each frame: trapezoidal speed, ends exactly at ``length``."""
    if length <= 1e-6:
        return np.zeros(1)
    da = min(accel_dist, length / 2)
    acc = speed * speed / (2 * da) if da > 0 else math.inf
    vmax = speed if da > 0 else speed
    if da > 0 and da < accel_dist:  # triangular profile
        vmax = math.sqrt(acc * length)
    ta = vmax / acc if da > 0 else 0.0
    sa = 0.5 * acc * ta * ta if da > 0 else 0.0
    tc = max(0.0, (length - 2 * sa) / vmax)
    total = 2 * ta + tc
    t = np.arange(0.0, total + 1.0 / fps, 1.0 / fps)
    s = np.where(
        t < ta,
        0.5 * acc * t * t if da > 0 else 0.0,
        np.where(
            t < ta + tc,
            sa + vmax * (t - ta),
            length - 0.5 * acc * np.clip(total - t, 0, None) ** 2 if da > 0 else length,
        ),
    )
    s = np.clip(s, 0.0, length)
    s[-1] = length
    return s


class BaselineSynthesizer:
    """The path-following baseline as a :class:`~ssomotion_ros.synthesis.types.Synthesizer`.

    config: :class:`BaselineConfig`. library: clips (default :func:`load_library`).
    planner_config: :class:`~ssomotion_ros.motion.planning.PlannerConfig` (its
        ``clearance_radius`` is taken from ``config``).
    Thread-safe: one instance serves every agent of a process.
    """

    name = "baseline"

    def __init__(self, config: BaselineConfig | None = None, library=None, planner_config=None):
        from ssomotion_ros.motion.planning import Planner, PlannerConfig

        self.config = config or BaselineConfig()
        self._library = library
        pc = planner_config or PlannerConfig()
        pc.clearance_radius = self.config.clearance_radius
        self.planner = Planner(pc)
        self._grid_lock = threading.Lock()
        self._grids: dict = {}

    @property
    def library(self) -> MotionLibrary:
        if self._library is None:
            self._library = load_library(self.config)
        return self._library

    # -------------------------------------------------------------- scene access
    def grid(self, scene):
        """The walkable grid of ``scene`` (cached per scene version)."""
        from ssomotion_ros.motion.planning import WalkableGrid

        key = (id(scene), getattr(scene, "version", 0))
        with self._grid_lock:
            g = self._grids.get(key)
        if g is None:
            g = WalkableGrid.coerce(scene.walkable_grid(self.config.clearance_radius))
            with self._grid_lock:
                self._grids = {key: g}
        return g

    @staticmethod
    def _floor(scene, xy: np.ndarray) -> np.ndarray:
        fh = getattr(scene, "floor_height", None)
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        if fh is None:
            return np.zeros(len(xy))
        z = np.asarray(fh(xy), np.float64).reshape(-1)
        return np.where(np.isfinite(z), z, 0.0)

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
        """See :class:`~ssomotion_ros.synthesis.types.Synthesizer`. Planning happens
        before the first window is yielded; a goal that cannot be executed raises
        :class:`SynthesisError` with the planner's reason."""
        if not isinstance(agent_state, BodyState):
            raise ValueError(f"agent_state must be a BodyState, got {type(agent_state).__name__}")
        lib = self.library
        state = agent_state
        if state.params is None:
            fz = float(self._floor(scene, state.xy)[0])
            state = BodyState(
                state.x,
                state.y,
                state.yaw,
                state.posture,
                rest_params(*state.xy, state.yaw, fz, lib.idle),
            )
        segments = self._plan_segments(goal, scene, state)  # raises SynthesisError
        return self._windows(goal, segments, state, cancel, agent_id, request_id)

    def _windows(self, goal, segments, state, cancel, agent_id, request_id):
        cfg = self.config
        prev = np.array(state.params, np.float64)
        buf: list[np.ndarray] = []
        acts: list[str] = []
        start = 0
        path = np.zeros((0, 2))
        posture = state.posture
        stand_xy = state.stand_xy
        note = ""

        def make(frames, actions, final):
            nonlocal start
            p = np.concatenate(frames).astype(np.float32)
            j = forward_kinematics_np(p)
            rot = Rotation.from_rotvec(p[:, :3].astype(np.float64)).as_quat()
            root = np.concatenate([j[:, 0], rot], 1)
            w = MotionWindow(
                agent_id,
                request_id,
                np.array(actions),
                start,
                p,
                j,
                root,
                path,
                FPS,
                final=final,
                posture=posture,
                stand_xy=stand_xy,
                note=note if final else "",
            )
            start += len(p)
            return w

        for seg in segments:
            if seg.path is not None:
                path = seg.path
            first = True
            for chunk in seg.chunks:
                chunk = np.asarray(chunk, np.float64)
                if first and cfg.blend_frames > 0:
                    chunk = self._blend_in(prev, chunk)
                    first = False
                prev = chunk[-1]
                # the walk/turn labels per frame; clip segments carry their own action
                buf.append(chunk)
                acts.extend([seg.action] * len(chunk))
                while sum(len(b) for b in buf) > cfg.window:  # keep frames for the final one
                    allf = np.concatenate(buf)
                    out, rest = allf[: cfg.window], allf[cfg.window :]
                    a_out, acts = acts[: cfg.window], acts[cfg.window :]
                    buf = [rest] if len(rest) else []
                    if cancel is not None and cancel.is_set():
                        raise SynthesisCancelled("cancelled")
                    yield make([out], a_out, False)
            posture = seg.posture
            stand_xy = seg.stand_xy
        if cancel is not None and cancel.is_set():
            raise SynthesisCancelled("cancelled")
        pel = _BODY.pelvis(prev)
        notes = [s.note for s in segments if s.note]
        note = "; ".join([*notes, self._outcome(goal, pel)])
        if buf:
            yield make(buf, acts, True)
        else:
            yield make([prev[None]], [acts[-1] if acts else "idle"], True)

    @staticmethod
    def _outcome(goal, pelvis: np.ndarray) -> str:
        if goal.action in ("walk", "sit", "lie"):
            d = float(np.hypot(*(pelvis[:2] - goal.position[:2])))
            return f"pelvis ended {d:.2f} m from the goal (radius {goal.radius:.2f} m)"
        return ""

    def _blend_in(self, prev: np.ndarray, chunk: np.ndarray, frames: int | None = None):
        """Blend ``chunk`` (n, 69) in from the pose ``prev`` (69,) over its first frames."""
        n = min(self.config.blend_frames if frames is None else frames, len(chunk))
        if n == 0:
            return chunk
        out = chunk.copy()
        w = _smoothstep((np.arange(n) + 1.0) / (n + 1.0))
        q0 = _to_quats(prev[None])
        q1 = _to_quats(chunk[:n])
        q = _quat_slerp(np.broadcast_to(q0, q1.shape), q1, w[:, None, None])
        tr = prev[66:69][None] * (1 - w[:, None]) + chunk[:n, 66:69] * w[:, None]
        out[:n] = _from_quats(q, tr)
        return out

    # -------------------------------------------------------------- planning
    def _plan_segments(self, goal, scene, state: BodyState) -> list[_Segment]:
        from ssomotion_ros.motion.planning import plan_approach
        from ssomotion_ros.sso.types import Affordance

        act = goal.action
        segs: list[_Segment] = []
        if act in ("walk", "sit", "lie", "turn") and state.posture != "standing":
            segs.append(self._stand_up(state, scene))
            state = self._state_after(segs[-1], state)
        if act == "walk":
            grid = self.grid(scene)
            res = self.planner.plan(grid, state.xy, goal.position[:2])
            note = ""
            if not res.success and goal.target_id is not None:
                res, note = self._walk_fallback(grid, state, goal, scene, res)
            if not res.success:
                raise SynthesisError(res.reason)
            segs.append(self._walk(res.path, scene, goal.facing))
            segs[-1].note = note
        elif act in ("sit", "lie"):
            grid = self.grid(scene)
            target = target_instance(scene, goal.target_id)
            if target is None:
                ext = np.array([0.25, 0.25]) if act == "sit" else np.array([0.9, 0.45])
                target = Affordance(act, goal.position.copy(), float(goal.facing or 0.0), ext)
            ap = plan_approach(self.planner, grid, state.xy, target, act)
            if not ap.reachable:
                raise SynthesisError(ap.reason or f"no way to {act} on the target")
            segs.append(self._walk(ap.plan.path, scene, float(ap.stand_pose[2])))
            clip = self._sit(ap) if act == "sit" else self._lie(ap)
            segs.append(clip)
        elif act == "stand_up":
            if state.posture == "standing":
                segs.append(self._hold(state, 0.3, "idle", "standing"))
            else:
                segs.append(self._stand_up(state, scene))
        elif act == "turn":
            segs.append(
                self._turn(state, float(goal.facing if goal.facing is not None else state.yaw))
            )
        elif act == "wait":
            segs.append(self._hold(state, float(goal.duration_s or 1.0), "idle", state.posture))
        else:
            raise SynthesisError(f"the baseline cannot execute '{act}'")
        return segs

    def _walk_fallback(self, grid, state, goal, scene, failed):
        """A walk to an object whose goal point is not walkable (an object against a wall,
        a tight corner): try the object's approach points, then the nearest free floor
        within ``walk_goal_search`` of the goal. Returns (plan, note)."""
        cands = []
        inst = target_instance(scene, goal.target_id)
        if inst is not None:
            cands += [np.asarray(a.position[:2]) for a in inst.affordances if a.kind == "approach"]
        ij, _ = grid.nearest_free_cell(goal.position[:2], self.config.walk_goal_search)
        if ij is not None:
            cands.append(grid.cell_center(ij))
        best = None
        for xy in cands:
            res = self.planner.plan(grid, state.xy, xy)
            if res.success and (best is None or res.length < best.length):
                best = res
        if best is None:
            return failed, ""
        d = float(np.hypot(*(best.path[-1] - goal.position[:2])))
        what = goal.target_name or "the target"
        return best, (
            f"the goal point next to the {what} is not walkable ({failed.reason}); "
            f"walked to the nearest reachable point, {d:.2f} m from it"
        )

    @staticmethod
    def _state_after(seg: _Segment, state: BodyState) -> BodyState:
        chunks = list(seg.chunks)
        seg.chunks = iter(chunks)
        last = chunks[-1][-1]
        pel = _BODY.pelvis(last)
        return BodyState(float(pel[0]), float(pel[1]), heading_of(last), seg.posture, last)

    # -------------------------------------------------------------- segments
    def _walk(self, path: np.ndarray, scene, final_yaw: float | None) -> _Segment:
        cfg = self.config
        lib = self.library
        path = np.asarray(path, np.float64)
        s_cum = _polyline_arclength(path)
        length = float(s_cum[-1])
        speed = cfg.walk_speed or lib.walk_speed
        s = _distance_profile(length, speed, cfg.accel_distance, FPS)
        settle = int(round(cfg.settle_s * FPS))
        n_cycle = len(lib.walk_cycle)
        q_cycle = _to_quats(lib.walk_cycle)
        pel_cycle = _BODY.pelvis(lib.walk_cycle)
        window = cfg.window

        def headings(sv: np.ndarray) -> np.ndarray:
            if length < 1e-6:
                y0 = final_yaw if final_yaw is not None else 0.0
                return np.full(len(sv), y0)
            ahead = _interp_path(path, s_cum, np.minimum(sv + cfg.heading_lookahead, length))
            back = _interp_path(path, s_cum, np.maximum(sv - 0.05, 0.0))
            d = ahead - back
            # at the very end the look-ahead collapses: use the last segment direction
            end_dir = (
                path[-1] - path[max(0, len(path) - 3)] if len(path) > 1 else np.array([1.0, 0])
            )
            small = np.linalg.norm(d, axis=1) < 1e-3
            d[small] = end_dir
            yaw = np.arctan2(d[:, 1], d[:, 0])
            if final_yaw is not None and cfg.turn_distance > 0:
                w = _smoothstep(1.0 - (length - sv) / max(cfg.turn_distance, 1e-6))
                yaw = yaw + _wrap(final_yaw - yaw) * w
            return yaw

        def chunks():
            last = None
            for i in range(0, len(s), window):
                sv = s[i : i + window]
                phase = (sv / lib.stride) * n_cycle
                k0 = np.floor(phase).astype(int) % n_cycle
                k1 = (k0 + 1) % n_cycle
                f = (phase - np.floor(phase))[:, None, None]
                q = _quat_slerp(q_cycle[k0], q_cycle[k1], f)
                # pelvis: path point + sway (rotated by the heading), height from the cycle
                sway = pel_cycle[k0] * (1 - f[:, 0]) + pel_cycle[k1] * f[:, 0]
                yaw = headings(sv)
                xy = _interp_path(path, s_cum, sv)
                taper = np.clip((length - sv) / 0.3, 0.0, 1.0)[:, None]
                c, sn = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
                lat = sway[:, 1:2] * taper
                xy = xy + np.concatenate([-sn * lat, c * lat], 1)
                z = sway[:, 2] + self._floor(scene, xy)
                frames = _from_quats(q, np.zeros((len(sv), 3)))
                r = _rz(yaw) * Rotation.from_rotvec(frames[:, :3])
                frames[:, :3] = r.as_rotvec()
                _BODY.set_pelvis(frames, np.concatenate([xy, z[:, None]], 1))
                last = frames[-1]
                yield frames
            # settle: blend the last walking frame into the standing idle pose
            if settle > 0:
                yaw_end = float(headings(s[-1:])[0])
                xy_end = path[-1] if len(path) else np.zeros(2)
                fz = float(self._floor(scene, xy_end)[0])
                idle = np.repeat(rest_params(*xy_end, yaw_end, fz, lib.idle)[None], settle, 0)
                yield self._blend_in(last, idle, settle) if last is not None else idle

        return _Segment("walk", chunks(), "standing", path)

    def _clip_at(self, clip, key, contact, stand_xy, z_target) -> np.ndarray:
        """Place a canonical clip: rotate to the contact yaw, key frame's pelvis on the
        contact xy, pelvis height shifted by descent, first frame pinned to stand_xy."""
        placed = _place(clip, float(contact[3]), np.asarray(contact[:2], np.float64))
        desc = _descent(clip)
        pel = _BODY.pelvis(placed)
        dz = z_target - pel[key, 2]
        pel[:, 2] += dz * desc
        off = np.asarray(stand_xy, np.float64) - pel[0, :2]
        pel[:, :2] += off[None] * (1.0 - _smoothstep(desc / max(desc[key], 1e-6)))[:, None]
        _BODY.set_pelvis(placed, pel)
        return placed

    def _sit(self, ap) -> _Segment:
        lib, cfg = self.library, self.config
        return self._settle_at(ap, "sit", lib.sit, lib.sit_seated, "sitting",
                               cfg.sitting_pelvis_above_seat, cfg.sit_hold_s)  # fmt: skip

    def _lie(self, ap) -> _Segment:
        lib, cfg = self.library, self.config
        return self._settle_at(ap, "lie", lib.lie, lib.lie_down, "lying",
                               cfg.lying_pelvis_above_surface, cfg.lie_hold_s)  # fmt: skip

    def _settle_at(self, ap, action, clip, key, posture, pelvis_above, hold_s) -> _Segment:
        """Play ``clip`` placed at the approach's contact pose (pelvis ``pelvis_above``
        metres over the surface), then hold its last frame for ``hold_s`` seconds."""
        c = ap.contact_pose
        placed = self._clip_at(clip, key, c, ap.stand_pose[:2], float(c[2]) + pelvis_above)
        hold = np.repeat(placed[-1:], int(round(hold_s * FPS)), 0)
        chunk = np.concatenate([placed, hold])
        return _Segment(action, iter([chunk]), posture, stand_xy=ap.stand_pose[:2].copy())

    def _stand_up(self, state: BodyState, scene=None) -> _Segment:
        """Reverse the sit (or lie) clip, aligned to the current seated/lying frame."""
        lib = self.library
        clip = lib.sit if state.posture == "sitting" else lib.lie
        key = lib.sit_seated if state.posture == "sitting" else lib.lie_down
        rev = clip[: key + 1][::-1]
        cur = state.params
        pel_cur = _BODY.pelvis(cur)
        # yaw that maps the clip's key frame heading onto the current one
        dyaw = heading_of(cur) - heading_of(clip[key])
        placed = _place(rev, dyaw, pel_cur[:2])
        desc = _descent(rev[::-1])[::-1]  # 1 at the seated start, 0 when standing
        pel = _BODY.pelvis(placed)
        pel[:, 2] += (pel_cur[2] - pel[0, 2]) * desc
        # end where the agent stood before sitting/lying down (a free floor point), or
        # on the nearest free cell to the clip's own end
        end_xy = state.stand_xy
        if end_xy is None and scene is not None:
            grid = self.grid(scene)
            ij, _, _ = self.planner.snap(grid, pel[-1, :2], "start")
            if ij is not None:
                end_xy = grid.cell_center(ij)
        if end_xy is not None:
            off = np.asarray(end_xy, np.float64) - pel[-1, :2]
            pel[:, :2] += off[None] * _smoothstep(1.0 - desc)[:, None]
        _BODY.set_pelvis(placed, pel)
        return _Segment("stand_up", iter([placed]), "standing")

    def _hold(self, state: BodyState, seconds: float, action: str, posture: str) -> _Segment:
        n = max(1, int(round(seconds * FPS)))
        frames = np.repeat(np.asarray(state.params, np.float64)[None], n, 0)
        return _Segment(action, iter([frames]), posture)

    def _turn(self, state: BodyState, yaw: float) -> _Segment:
        d = float(_wrap(yaw - heading_of(state.params)))
        n = max(2, int(round(abs(math.degrees(d)) / self.config.turn_rate_deg * FPS)))
        w = _smoothstep(np.arange(1, n + 1) / n)
        base = np.asarray(state.params, np.float64)
        frames = np.repeat(base[None], n, 0)
        r = _rz(d * w) * Rotation.from_rotvec(np.repeat(base[None, :3], n, 0))
        frames[:, :3] = r.as_rotvec()
        return _Segment("turn", iter([frames]), "standing")

    def describe(self) -> dict:
        """Configuration and clip facts (for logs and reports)."""
        lib = self.library
        return {
            "synthesizer": self.name,
            "config": asdict(self.config),
            "walk_speed_mps": round(lib.walk_speed, 3),
            "stride_m": round(lib.stride, 3),
            "clips": lib.source,
        }
