"""Simulated depth-camera and lidar scans of a :class:`~.scene.Scene` (Open3D ray casting).

Sensors ride on a robot that drives along a path through the scene's reachable floor
(:func:`survey_poses`). Each scan is cast against the scene's labelled mesh with
``open3d.t.geometry.RaycastingScene``; the hit triangle gives the point's class and
instance. Realism: range noise (depth camera: the Kinect axial model
``sigma(z) = 0.0012 + 0.0019 (z - 0.4)^2`` m, Nguyen et al. 2012; lidar: constant sigma),
random dropouts, dropouts at grazing incidence, min/max range, limited fields of view.

Output clouds are numpy structured arrays in the layouts the SSO ingests
(:mod:`ssomotion_ros.sso.ingest`), points in the **map frame** (metres, z up):

* ``layout="label"``: ``x y z`` float32, ``label`` uint32 (class id of
  ``config/labels/ssomotion_indoor.csv``), ``instance`` uint32 (0 = floor/wall/none),
  ``rgb`` float32 (appearance colour, PCL packing); lidar adds ``ring`` uint16.
* ``layout="rgb"``: ``x y z`` float32 and ``rgb`` float32 holding the class's palette
  colour (segmentation colours, decoded through the CSV); lidar adds ``ring``.

The depth camera returns organised clouds of shape (H, W) (row-major image layout, NaN
coordinates and label 0 where there is no return, as PCL/ROS drivers do); the lidar
returns unorganised (N,) clouds of valid returns. :class:`Scan` carries the sensor pose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ssomotion_ros.scenes.labels import pack_rgb
from ssomotion_ros.scenes.scene import Scene

log = logging.getLogger(__name__)

LAYOUTS = ("label", "rgb")


@dataclass
class DepthCameraConfig:
    """A pinhole depth camera (RGB-D style) on the robot."""

    #: Image width, pixels.
    width: int = 320
    #: Image height, pixels.
    height: int = 240
    #: Horizontal field of view, degrees (fx = width / 2 / tan(hfov / 2); fy = fx).
    hfov_deg: float = 69.0
    #: Camera height above the floor, metres.
    mount_height: float = 1.2
    #: Downward tilt, degrees (positive looks down).
    tilt_deg: float = 15.0
    #: Returns closer than this are dropped, metres.
    min_range: float = 0.3
    #: Returns farther than this (depth) are dropped, metres.
    max_range: float = 6.0
    #: Scale of the axial noise model sigma(z) = 0.0012 + 0.0019 (z - 0.4)^2 (0: none).
    noise_scale: float = 1.0
    #: Probability that a valid pixel drops out at random.
    dropout: float = 0.02
    #: Pixels whose ray meets the surface at more than this incidence angle drop out, deg.
    max_incidence_deg: float = 80.0


@dataclass
class LidarConfig:
    """A multi-ring spinning lidar on the robot."""

    #: Number of rings (lasers).
    rings: int = 16
    #: Lowest and highest ring elevation, degrees.
    elevation_deg: tuple[float, float] = (-15.0, 15.0)
    #: Samples per revolution.
    azimuth_samples: int = 900
    #: Sensor height above the floor, metres.
    mount_height: float = 0.45
    #: Returns closer than this are dropped, metres.
    min_range: float = 0.2
    #: Returns farther than this are dropped, metres.
    max_range: float = 30.0
    #: Range noise standard deviation, metres.
    range_sigma: float = 0.01
    #: Probability that a return drops out at random.
    dropout: float = 0.01
    #: Returns at more than this incidence angle drop out, degrees.
    max_incidence_deg: float = 85.0
    #: Add the ``ring`` field (laser index). Turn off for consumers that read an integer
    #: ``ring`` field as the semantic label (Hydra style).
    ring_field: bool = True


@dataclass
class Scan:
    """One simulated scan.

    points: structured array (see the module docstring): (H, W) for the depth camera,
        (N,) for the lidar; map frame, metres.
    sensor_pose: (4, 4) float64 transform sensor -> map. The sensor frame is REP-103
        body style (x forward, y left, z up); for the camera, its optical axis is +x.
    kind: ``"depth"`` or ``"lidar"``.
    stamp: seconds since the start of the survey (poses are 1 / rate apart).
    """

    points: np.ndarray
    sensor_pose: np.ndarray
    kind: str
    stamp: float = 0.0

    def valid(self) -> np.ndarray:
        """Bool mask (same shape as ``points``) of finite points."""
        p = self.points
        return np.isfinite(p["x"]) & np.isfinite(p["y"]) & np.isfinite(p["z"])


class Raycaster:
    """The scene mesh in an Open3D RaycastingScene with per-triangle label/instance/colour."""

    def __init__(self, scene: Scene):
        import open3d as o3d

        self._o3d = o3d
        m = scene.mesh()
        self.scene = scene
        self.rc = o3d.t.geometry.RaycastingScene()
        self.rc.add_triangles(
            o3d.core.Tensor(m.vertices.astype(np.float32)),
            o3d.core.Tensor(m.faces.astype(np.uint32)),
        )
        self.face_label = m.face_label.astype(np.uint32)
        self.face_instance = m.face_instance.astype(np.uint32)
        self.face_rgb = pack_rgb(m.colors[m.faces[:, 0]])
        self.face_palette = pack_rgb(scene.labels.lut()[m.face_label])

    def cast(
        self, origins: np.ndarray, dirs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cast rays.

        origins, dirs: (N, 3) float, map frame (dirs need not be unit length).
        Returns t (N,) float64 (hit distance in units of |dir|, inf on miss),
        face ids (N,) int64 (-1 on miss), normals (N, 3) float64 (unit, map frame).
        """
        rays = np.concatenate([origins, dirs], axis=1).astype(np.float32)
        ans = self.rc.cast_rays(self._o3d.core.Tensor(rays))
        t = ans["t_hit"].numpy().astype(np.float64)
        ids = ans["primitive_ids"].numpy().astype(np.int64)
        ids[~np.isfinite(t)] = -1
        ids[ids >= len(self.face_label)] = -1
        return t, ids, ans["primitive_normals"].numpy().astype(np.float64)


def _rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _rot_y(pitch: float) -> np.ndarray:
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _empty(shape, layout: str, ring: bool) -> np.ndarray:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if layout == "label":
        fields += [("label", "<u4"), ("instance", "<u4"), ("rgb", "<f4")]
    else:
        fields += [("rgb", "<f4")]
    if ring:
        fields += [("ring", "<u2")]
    return np.zeros(shape, dtype=fields)


def _fill(out, sel, pts, ids, caster: Raycaster, layout: str) -> None:
    out["x"][sel], out["y"][sel], out["z"][sel] = pts[:, 0], pts[:, 1], pts[:, 2]
    if layout == "label":
        out["label"][sel] = caster.face_label[ids]
        out["instance"][sel] = caster.face_instance[ids]
        out["rgb"][sel] = caster.face_rgb[ids]
    else:
        out["rgb"][sel] = caster.face_palette[ids]


def depth_scan(
    caster: Raycaster,
    pose_xyyaw: np.ndarray,
    config: DepthCameraConfig | None = None,
    layout: str = "label",
    rng: np.random.Generator | None = None,
    stamp: float = 0.0,
) -> Scan:
    """One organised depth-camera scan from a robot pose.

    pose_xyyaw: (3,) robot x, y (metres, map frame) and yaw (radians).
    Returns a :class:`Scan` with points of shape (height, width); pixels without a
    valid return have NaN x, y, z (and label/instance 0, rgb 0).
    """
    cfg = config or DepthCameraConfig()
    rng = rng or np.random.default_rng(0)
    pose_xyyaw = np.asarray(pose_xyyaw, dtype=np.float64)
    if pose_xyyaw.shape != (3,):
        raise ValueError(f"pose must be (3,) x, y, yaw; got shape {pose_xyyaw.shape}")
    H, W = cfg.height, cfg.width
    f = W / 2 / np.tan(np.radians(cfg.hfov_deg) / 2)
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    # optical (x right, y down, z forward) -> body (x forward, y left, z up), depth = 1
    d_body = np.stack([np.ones_like(u), -(u - W / 2) / f, -(v - H / 2) / f], -1).reshape(-1, 3)
    R = _rot_z(pose_xyyaw[2]) @ _rot_y(np.radians(cfg.tilt_deg))
    origin = np.array([pose_xyyaw[0], pose_xyyaw[1], cfg.mount_height])
    dirs = d_body @ R.T
    t, ids, nrm = caster.cast(np.broadcast_to(origin, dirs.shape), dirs)
    depth = t  # |d_body . x| = 1, so t is the depth along the optical axis
    ok = ids >= 0
    ok &= (depth >= cfg.min_range) & (depth <= cfg.max_range)
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    cos_inc = np.abs(np.einsum("ij,ij->i", unit, nrm))
    ok &= cos_inc >= np.cos(np.radians(cfg.max_incidence_deg))
    ok &= rng.random(len(ok)) >= cfg.dropout
    if cfg.noise_scale > 0:
        sigma = cfg.noise_scale * (0.0012 + 0.0019 * (np.where(ok, depth, 0.4) - 0.4) ** 2)
        depth = depth + rng.normal(size=depth.shape) * sigma
    out = _empty(H * W, layout, ring=False)
    for k in ("x", "y", "z"):
        out[k] = np.nan
    sel = np.flatnonzero(ok)
    pts = origin + dirs[sel] * depth[sel, None]
    _fill(out, sel, pts, ids[sel], caster, layout)
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = origin
    return Scan(out.reshape(H, W), T, "depth", stamp)


def lidar_scan(
    caster: Raycaster,
    pose_xyyaw: np.ndarray,
    config: LidarConfig | None = None,
    layout: str = "label",
    rng: np.random.Generator | None = None,
    stamp: float = 0.0,
) -> Scan:
    """One lidar revolution from a robot pose (see :func:`depth_scan` for ``pose_xyyaw``).

    Returns a :class:`Scan` with an unorganised (N,) cloud of valid returns and a
    ``ring`` field (0 = lowest ring).
    """
    cfg = config or LidarConfig()
    rng = rng or np.random.default_rng(0)
    pose_xyyaw = np.asarray(pose_xyyaw, dtype=np.float64)
    if pose_xyyaw.shape != (3,):
        raise ValueError(f"pose must be (3,) x, y, yaw; got shape {pose_xyyaw.shape}")
    if cfg.rings < 1 or cfg.azimuth_samples < 1:
        raise ValueError("lidar needs rings >= 1 and azimuth_samples >= 1")
    el = np.radians(np.linspace(cfg.elevation_deg[0], cfg.elevation_deg[1], cfg.rings))
    az = np.linspace(-np.pi, np.pi, cfg.azimuth_samples, endpoint=False)
    E, A = np.meshgrid(el, az, indexing="ij")
    ring = np.repeat(np.arange(cfg.rings, dtype=np.uint16), cfg.azimuth_samples)
    d_body = np.stack([np.cos(E) * np.cos(A), np.cos(E) * np.sin(A), np.sin(E)], -1).reshape(-1, 3)
    R = _rot_z(pose_xyyaw[2])
    origin = np.array([pose_xyyaw[0], pose_xyyaw[1], cfg.mount_height])
    dirs = d_body @ R.T
    t, ids, nrm = caster.cast(np.broadcast_to(origin, dirs.shape), dirs)
    ok = (ids >= 0) & (t >= cfg.min_range) & (t <= cfg.max_range)
    cos_inc = np.abs(np.einsum("ij,ij->i", dirs, nrm))
    ok &= cos_inc >= np.cos(np.radians(cfg.max_incidence_deg))
    ok &= rng.random(len(ok)) >= cfg.dropout
    rng_m = t + rng.normal(size=t.shape) * cfg.range_sigma
    sel = np.flatnonzero(ok)
    out = _empty(len(sel), layout, ring=cfg.ring_field)
    pts = origin + dirs[sel] * rng_m[sel, None]
    _fill(out, slice(None), pts, ids[sel], caster, layout)
    if cfg.ring_field:
        out["ring"] = ring[sel]
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = origin
    return Scan(out, T, "lidar", stamp)


def survey_poses(
    scene: Scene,
    num: int = 6,
    step: float = 0.5,
    rng: np.random.Generator | None = None,
    waypoints: int = 3,
) -> np.ndarray:
    """Robot poses along a path through the reachable floor, starting at the door.

    num: poses wanted. step: metres between poses along the path.
    waypoints: random reachable goals (far from each other) the path visits in turn.
    Returns (num, 3) float64 x, y (metres, map frame), yaw (radians, path heading).
    Raises ValueError when the scene has no reachable floor.
    """
    rng = rng or np.random.default_rng(0)
    fs = scene.free
    cells = np.argwhere(fs.reachable)
    if len(cells) == 0:
        raise ValueError("scene has no reachable floor to drive on")
    # keep some distance from obstacles so the robot does not graze furniture
    cur = scene.start_pose()[:2]
    pts = [cur]
    for _ in range(waypoints):
        cand = fs.center(cells[rng.choice(len(cells), size=min(64, len(cells)), replace=False)])
        far = cand[np.argmax(np.linalg.norm(cand - cur, axis=1) + rng.random(len(cand)) * 0.5)]
        seg = fs.path(cur, far)
        pts.extend(seg[1:])
        cur = far
    path = np.asarray(pts)
    seg_len = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.r_[0, np.cumsum(seg_len)]
    targets = np.arange(num) * step
    if s[-1] > 0:
        targets = np.minimum(targets, s[-1])
    x = np.interp(targets, s, path[:, 0])
    y = np.interp(targets, s, path[:, 1])
    ahead = np.minimum(targets + 0.3, s[-1])
    hx, hy = np.interp(ahead, s, path[:, 0]) - x, np.interp(ahead, s, path[:, 1]) - y
    yaw = np.arctan2(hy, hx)
    still = np.hypot(hx, hy) < 1e-6
    yaw[still] = scene.start_pose()[2]
    return np.stack([x, y, yaw], 1)


def simulate_scans(
    scene: Scene,
    poses: np.ndarray | None = None,
    sensor: str = "depth",
    layout: str = "label",
    seed: int = 0,
    depth_config: DepthCameraConfig | None = None,
    lidar_config: LidarConfig | None = None,
    rate: float = 2.0,
    num: int = 6,
) -> list[Scan]:
    """Scans from a sequence of robot poses.

    poses: (K, 3) x, y, yaw (map frame); default :func:`survey_poses` (``num`` poses).
    sensor: ``"depth"`` or ``"lidar"``. layout: ``"label"`` or ``"rgb"``.
    rate: scans per second (sets ``Scan.stamp``). seed: noise/dropout/path RNG seed.
    """
    if sensor not in ("depth", "lidar"):
        raise ValueError(f"sensor must be 'depth' or 'lidar', got {sensor!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    rng = np.random.default_rng(seed)
    if poses is None:
        poses = survey_poses(scene, num=num, rng=rng)
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 3:
        raise ValueError(f"poses must be (K, 3) x, y, yaw; got shape {poses.shape}")
    caster = Raycaster(scene)
    out = []
    for k, p in enumerate(poses):
        if sensor == "depth":
            out.append(depth_scan(caster, p, depth_config, layout, rng, k / rate))
        else:
            out.append(lidar_scan(caster, p, lidar_config, layout, rng, k / rate))
    return out


def scans_to_npz(scans: list[Scan], path) -> None:
    """Save scans as one npz: ``points_<k>`` (structured), ``pose_<k>`` (4, 4), ``kind_<k>``,
    ``stamp_<k>``; read back with :func:`scans_from_npz`."""
    arrays = {}
    for k, s in enumerate(scans):
        arrays[f"points_{k:04d}"] = s.points
        arrays[f"pose_{k:04d}"] = s.sensor_pose
        arrays[f"kind_{k:04d}"] = np.array(s.kind)
        arrays[f"stamp_{k:04d}"] = np.float64(s.stamp)
    np.savez_compressed(path, **arrays)


def scans_from_npz(path) -> list[Scan]:
    """Inverse of :func:`scans_to_npz`."""
    out = []
    with np.load(path, allow_pickle=False) as z:
        keys = sorted(k for k in z.files if k.startswith("points_"))
        for key in keys:
            k = key.split("_")[1]
            out.append(Scan(z[key], z[f"pose_{k}"], str(z[f"kind_{k}"]), float(z[f"stamp_{k}"])))
    return out
