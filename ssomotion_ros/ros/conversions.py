"""Message <-> array conversions of the motion node (no rclpy.init needed).

Everything here builds or reads message objects only; the node decides when to publish.
Frames: ``frame_id`` (``map`` by default), REP-103 (x forward, y left, z up, metres).
"""

from __future__ import annotations

import array
import math

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion
from nav_msgs.msg import Path
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ssomotion_ros.body.skeleton import JOINT_NAMES, PARENTS, R_NATIVE_TO_MAP
from ssomotion_ros.msg import HumanMotion, MotionStatus, People, Person
from ssomotion_ros.synthesis.types import MotionWindow

#: Colours given to agents in order of appearance (RGB, 0-1).
AGENT_COLORS: tuple[tuple[float, float, float], ...] = (
    (0.90, 0.45, 0.15),
    (0.20, 0.55, 0.90),
    (0.30, 0.75, 0.35),
    (0.80, 0.30, 0.70),
    (0.95, 0.80, 0.20),
    (0.40, 0.80, 0.85),
)


def agent_color(index: int) -> tuple[float, float, float]:
    return AGENT_COLORS[index % len(AGENT_COLORS)]


def header(stamp, frame_id: str) -> Header:
    return Header(stamp=stamp, frame_id=frame_id)


# ------------------------------------------------------------------ HumanMotion
def human_motion_msg(window: MotionWindow, stamp, frame_id: str = "map") -> HumanMotion:
    """A :class:`MotionWindow` as ``ssomotion_ros/HumanMotion``.

    The window's action is the most frequent per-frame label; joints (T, 22, 3) and
    params (T, 69) are flattened row-major (float32); root_poses (T, 7) become Poses.
    """
    acts, counts = np.unique(window.actions, return_counts=True)
    msg = HumanMotion()
    msg.header = header(stamp, frame_id)
    msg.agent_id = window.agent_id
    msg.request_id = window.request_id
    msg.action = str(acts[int(np.argmax(counts))])
    msg.fps = float(window.fps)
    msg.start_frame = int(window.start_frame)
    msg.num_frames = int(window.num_frames)
    msg.joint_names = list(JOINT_NAMES)
    msg.joint_positions = _float_array(window.joints)
    msg.smplx_params = _float_array(window.params)
    msg.root_poses = [pose_from_array(r) for r in window.root_poses.astype(np.float64)]
    return msg


def _float_array(a: np.ndarray) -> array.array:
    """float32[] fields take an ``array.array('f')`` without a per-element copy."""
    return array.array("f", np.ascontiguousarray(a, np.float32).tobytes())


def window_from_msg(msg: HumanMotion) -> dict:
    """Arrays of a HumanMotion message: params (T, 69), joints (T, J, 3) float32,
    root_poses (T, 7) float64 (x, y, z, qx, qy, qz, qw), plus the scalar fields.
    Raises ValueError when the array lengths disagree with ``num_frames``."""
    t = int(msg.num_frames)
    params = np.asarray(msg.smplx_params, np.float32)
    joints = np.asarray(msg.joint_positions, np.float32)
    nj = len(msg.joint_names)
    if params.size != t * 69 or joints.size != t * nj * 3 or len(msg.root_poses) != t:
        raise ValueError(
            f"HumanMotion arrays do not match num_frames={t}: smplx_params {params.size} "
            f"(want {t * 69}), joint_positions {joints.size} (want {t * nj * 3}), "
            f"root_poses {len(msg.root_poses)}"
        )
    roots = np.array(
        [
            [p.position.x, p.position.y, p.position.z]
            + [p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w]
            for p in msg.root_poses
        ]
    ).reshape(t, 7)
    return {
        "agent_id": msg.agent_id,
        "request_id": msg.request_id,
        "action": msg.action,
        "fps": float(msg.fps),
        "start_frame": int(msg.start_frame),
        "params": params.reshape(t, 69),
        "joints": joints.reshape(t, nj, 3),
        "root_poses": roots,
        "joint_names": list(msg.joint_names),
    }


def pose_from_array(a) -> Pose:
    """(7,) x, y, z, qx, qy, qz, qw -> geometry_msgs/Pose."""
    a = [float(v) for v in a]
    return Pose(
        position=Point(x=a[0], y=a[1], z=a[2]),
        orientation=Quaternion(x=a[3], y=a[4], z=a[5], w=a[6]),
    )


def yaw_quaternion(yaw: float) -> Quaternion:
    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))


# ------------------------------------------------------------------ paths
def path_msg(xy: np.ndarray, stamp, frame_id: str = "map", z: float = 0.0) -> Path:
    """nav_msgs/Path through ``xy`` (K, 2) metres; each pose faces the next point."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    msg = Path(header=header(stamp, frame_id))
    if len(xy) == 0:
        return msg
    d = np.diff(xy, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0]) if len(d) else np.zeros(0)
    yaw = np.r_[yaw, yaw[-1] if len(yaw) else 0.0]
    for (x, y), a in zip(xy, yaw):
        ps = PoseStamped(header=msg.header)
        ps.pose.position = Point(x=float(x), y=float(y), z=float(z))
        ps.pose.orientation = yaw_quaternion(float(a))
        msg.poses.append(ps)
    return msg


def path_to_array(msg: Path) -> np.ndarray:
    """(K, 2) float64 xy of a nav_msgs/Path."""
    return np.array([[p.pose.position.x, p.pose.position.y] for p in msg.poses]).reshape(-1, 2)


# ------------------------------------------------------------------ joint states
_AXES = ("y", "p", "r")  # yaw (z), pitch (y), roll (x): ZYX Euler of the local rotation


def joint_state_names(agent_id: str) -> list[str]:
    """REP-155 (ROS4HRI human_description) style names: ``<side>_<axis>_<joint>_<id>``
    with side ``l``/``r`` (none for centre joints), axis ``y``/``p``/``r`` (yaw, pitch,
    roll), e.g. ``l_y_hip_alice``, ``p_spine1_alice``. 21 joints x 3 = 63 names."""
    names = []
    for j in JOINT_NAMES[1:]:
        side, base = "", j
        if j.startswith("left_"):
            side, base = "l_", j[5:]
        elif j.startswith("right_"):
            side, base = "r_", j[6:]
        names += [f"{side}{a}_{base}_{agent_id}" for a in _AXES]
    return names


def joint_angles(params: np.ndarray) -> np.ndarray:
    """(63,) float64 radians: per body joint the ZYX Euler angles (yaw, pitch, roll) of
    its local rotation expressed in map-frame body axes (x forward, y left, z up).

    params: (69,) body parameters (:mod:`ssomotion_ros.body.skeleton` conventions)."""
    from scipy.spatial.transform import Rotation

    p = np.asarray(params, np.float64).reshape(69)
    local = Rotation.from_rotvec(p[3:66].reshape(21, 3)).as_matrix()
    c = R_NATIVE_TO_MAP
    mats = c[None] @ local @ c.T[None]
    return Rotation.from_matrix(mats).as_euler("ZYX").reshape(63)


def joint_state_msg(params: np.ndarray, agent_id: str, stamp, velocity=None) -> JointState:
    """sensor_msgs/JointState of one frame (names from :func:`joint_state_names`)."""
    msg = JointState()
    msg.header = header(stamp, "")
    msg.name = joint_state_names(agent_id)
    msg.position = joint_angles(params).tolist()
    if velocity is not None:
        msg.velocity = [float(v) for v in np.asarray(velocity).reshape(63)]
    return msg


# ------------------------------------------------------------------ people
def person_msg(
    name: str,
    pelvis: np.ndarray,
    velocity: np.ndarray,
    floor_z: float = 0.0,
    tags: dict | None = None,
) -> Person:
    """ssomotion_ros/Person: pelvis (3,) metres projected to the floor (z = floor_z),
    velocity (3,) m/s (z set to 0), reliability 1 (simulated ground truth)."""
    msg = Person()
    msg.name = name
    msg.position = Point(x=float(pelvis[0]), y=float(pelvis[1]), z=float(floor_z))
    msg.velocity = Point(x=float(velocity[0]), y=float(velocity[1]), z=0.0)
    msg.reliability = 1.0
    tags = tags or {}
    msg.tagnames = [str(k) for k in tags]
    msg.tags = [str(v) for v in tags.values()]
    return msg


def people_msg(frames: dict, stamp, frame_id: str = "map", floor_z=None) -> People:
    """ssomotion_ros/People of every agent's current
    :class:`~ssomotion_ros.synthesis.agents.PlaybackFrame` ({agent: frame}).
    floor_z: optional {agent: floor height, metres}."""
    msg = People(header=header(stamp, frame_id))
    for name in sorted(frames):
        f = frames[name]
        tags = {"action": f.action, "request_id": f.request_id, "moving": str(f.playing).lower()}
        fz = 0.0 if floor_z is None else float(floor_z.get(name, 0.0))
        msg.people.append(person_msg(name, f.joints[0], f.velocity, fz, tags))
    return msg


# ------------------------------------------------------------------ markers
def _color(rgb, a: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=float(a))


def _points(arr: np.ndarray) -> list[Point]:
    return [Point(x=x, y=y, z=z) for x, y, z in np.asarray(arr, np.float64).tolist()]


def _marker(ns, mid, mtype, stamp, frame_id, rgb, alpha=1.0) -> Marker:
    m = Marker()
    m.header = header(stamp, frame_id)
    m.ns = ns
    m.id = int(mid)
    m.type = mtype
    m.action = Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x = m.scale.y = m.scale.z = 1.0
    m.color = _color(rgb, alpha)
    m.lifetime = Duration(sec=0, nanosec=0)
    return m


def mesh_marker(triangles: np.ndarray, agent_index: int, stamp, frame_id="map") -> Marker:
    """TRIANGLE_LIST marker (ns ``body``) from (F * 3, 3) float triangle corners, metres."""
    m = _marker(
        "body", agent_index, Marker.TRIANGLE_LIST, stamp, frame_id, agent_color(agent_index)
    )
    m.points = _points(triangles)
    return m


def skeleton_markers(joints: np.ndarray, agent_index: int, stamp, frame_id="map") -> list[Marker]:
    """LINE_LIST bones (ns ``skeleton``) + SPHERE_LIST joints (ns ``joints``) of (22, 3)
    joint positions, metres."""
    joints = np.asarray(joints, np.float64).reshape(-1, 3)
    rgb = agent_color(agent_index)
    bones = _marker("skeleton", agent_index, Marker.LINE_LIST, stamp, frame_id, rgb)
    bones.scale.x = 0.04
    pairs = [(int(PARENTS[c]), c) for c in range(1, len(joints))]
    bones.points = _points(np.array([joints[i] for pair in pairs for i in pair]))
    spheres = _marker("joints", agent_index, Marker.SPHERE_LIST, stamp, frame_id, rgb)
    spheres.scale.x = spheres.scale.y = spheres.scale.z = 0.07
    spheres.points = _points(joints)
    return [bones, spheres]


def label_marker(
    agent_id: str, text: str, head: np.ndarray, agent_index: int, stamp, frame_id="map"
) -> Marker:
    """TEXT_VIEW_FACING (ns ``label``) above the head: the agent's name and instruction."""
    m = _marker("label", agent_index, Marker.TEXT_VIEW_FACING, stamp, frame_id, (1, 1, 1))
    m.pose.position = Point(x=float(head[0]), y=float(head[1]), z=float(head[2]) + 0.35)
    m.scale.z = 0.15
    short = text if len(text) <= 60 else text[:57] + "..."
    m.text = f"{agent_id}: {short}" if short else agent_id
    return m


def body_marker_array(
    frame,
    agent_index: int,
    stamp,
    frame_id: str = "map",
    mesh=None,
    style: str = "mesh",
) -> MarkerArray:
    """Markers of one agent's :class:`~ssomotion_ros.synthesis.agents.PlaybackFrame`.

    style: ``"mesh"`` (a TRIANGLE_LIST posed from ``mesh``, a
    :class:`~ssomotion_ros.viz.body_mesh.RigidBodyMesh`; falls back to the skeleton when
    ``mesh`` is None), ``"skeleton"`` or ``"both"``; plus the text label.
    """
    if style not in ("mesh", "skeleton", "both"):
        raise ValueError(f"style must be 'mesh', 'skeleton' or 'both', got {style!r}")
    out = MarkerArray()
    if style in ("mesh", "both") and mesh is not None:
        out.markers.append(mesh_marker(mesh.triangles(frame.params), agent_index, stamp, frame_id))
    if style in ("skeleton", "both") or mesh is None:
        out.markers.extend(skeleton_markers(frame.joints, agent_index, stamp, frame_id))
    out.markers.append(
        label_marker(frame.agent_id, frame.text, frame.joints[15], agent_index, stamp, frame_id)
    )
    return out


# ------------------------------------------------------------------ TF
def pelvis_transform(frame, stamp, frame_id: str = "map"):
    """geometry_msgs/TransformStamped ``frame_id`` -> ``<agent>/pelvis`` of a
    :class:`~ssomotion_ros.synthesis.agents.PlaybackFrame` (for tf2 when available)."""
    from geometry_msgs.msg import TransformStamped
    from scipy.spatial.transform import Rotation

    t = TransformStamped()
    t.header = header(stamp, frame_id)
    t.child_frame_id = f"{frame.agent_id}/pelvis"
    p = frame.joints[0]
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
        float(p[0]),
        float(p[1]),
        float(p[2]),
    )
    q = Rotation.from_rotvec(np.asarray(frame.params[:3], np.float64)).as_quat()
    r = t.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return t


# ------------------------------------------------------------------ status
def status_msg(event, stamp, frame_id: str = "map") -> MotionStatus:
    """ssomotion_ros/MotionStatus of a :class:`~ssomotion_ros.synthesis.agents.StatusEvent`."""
    msg = MotionStatus()
    msg.header = header(stamp, frame_id)
    msg.request_id = event.request_id
    msg.agent_id = event.agent_id
    msg.state = int(event.state)
    msg.reason = event.reason
    msg.goal = event.goal
    msg.text = event.text
    return msg


# ------------------------------------------------------------------ measurement
def measure_costs(mesh_faces: tuple[int, ...] = (200, 400, 800), repeats: int = 30) -> dict:
    """Serialized sizes and build times of the per-frame outputs (one agent), for choosing
    ``mesh_faces`` / ``mesh_rate``: ``python -m ssomotion_ros.ros.conversions``."""
    import time

    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message

    from ssomotion_ros.body.skeleton import forward_kinematics_np
    from ssomotion_ros.synthesis.agents import PlaybackFrame
    from ssomotion_ros.viz.body_mesh import shared_body_mesh

    stamp = Time(sec=1)
    rng = np.random.default_rng(0)
    params = (rng.standard_normal((30, 69)) * 0.2).astype(np.float32)
    joints = forward_kinematics_np(params)
    frame = PlaybackFrame("alice", params[0], joints[0], np.zeros(3, np.float32), text="walk")

    def timed(fn):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            out = fn()
        return (time.perf_counter() - t0) / repeats * 1e3, len(serialize_message(out))

    roots = np.zeros((30, 7), np.float32)
    roots[:, 6] = 1
    window = MotionWindow("alice", "r", ["walk"] * 30, 0, params, joints, roots)
    res = {}
    res["human_motion_30_frames"] = timed(lambda: human_motion_msg(window, stamp))
    res["skeleton_markers"] = timed(
        lambda: body_marker_array(frame, 0, stamp, "map", None, "skeleton")
    )
    res["people_1_agent"] = timed(lambda: people_msg({"alice": frame}, stamp))
    res["joint_state"] = timed(lambda: joint_state_msg(frame.params, "alice", stamp))
    for nf in mesh_faces:
        mesh = shared_body_mesh(nf)
        res[f"mesh_markers_{nf}_faces"] = timed(
            lambda mesh=mesh: body_marker_array(frame, 0, stamp, "map", mesh, "mesh")
        )
    return {k: {"build_ms": round(v[0], 3), "bytes": v[1]} for k, v in res.items()}


if __name__ == "__main__":  # pragma: no cover - measurement helper
    import json

    print(json.dumps(measure_costs(), indent=2))
