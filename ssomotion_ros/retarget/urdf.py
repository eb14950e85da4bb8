"""URDF loading: kinematic tree, joint limits and collision capsules of a robot or avatar.

Parsing is done by ``yourdfpy`` (PyPI). Two non-standard extensions that real files use
are handled before ``yourdfpy`` sees the XML (``yourdfpy`` 0.0.60 rejects them):

- pybullet's ``<capsule length= radius=>`` collision geometry (e.g. the DeepMimic humanoid
  in ``pybullet_data/humanoid/humanoid.urdf``): the XML is pre-processed, each
  ``<capsule>`` becomes a ``<cylinder>`` of the same length and radius, and its position is
  recorded so that it is turned back into an exact capsule (segment + radius) here.
- pybullet's ``spherical`` joints (3-DoF ball joints): ``yourdfpy`` keeps the type string
  (no scene graph is built), and this module gives them 3 DoF (an axis-angle vector in the
  joint frame, radians, no limits).

The kinematic model (:class:`RobotModel`) is a list of joints in topological order. The
tree root is the link without a parent joint. A ``floating`` joint from a geometry-less
root (``world``) is absorbed into the free root pose; a floating or planar joint anywhere
else is rejected. Every collision primitive becomes one capsule (a segment and a radius
in its link frame): spheres exactly, pybullet capsules exactly, cylinders as the capsule
over their axis (caps add the radius at both ends), boxes as a set of parallel capsules
filling the box (radius = the smallest half extent, along the longest axis, side by side
along the middle axis; one capsule for rod-like boxes), meshes like the box of their
vertices along their principal axes (PCA, ``trimesh``; a missing mesh file leaves that
primitive out with a warning).
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["JointSpec", "Capsule", "RobotModel", "load_urdf", "load_urdf_string"]

log = logging.getLogger(__name__)

#: Joint types with their number of degrees of freedom.
JOINT_DOF = {"fixed": 0, "revolute": 1, "continuous": 1, "prismatic": 1, "spherical": 3}


@dataclass
class JointSpec:
    """One URDF joint (a tree edge)."""

    #: Joint name from the URDF.
    name: str
    #: revolute / continuous / prismatic / fixed / spherical.
    type: str
    #: Index of the parent link in :attr:`RobotModel.link_names`.
    parent: int
    #: Index of the child link.
    child: int
    #: (4, 4) float64 transform parent link frame -> joint frame at zero position.
    origin: np.ndarray
    #: (3,) float64 unit axis in the joint frame (revolute/continuous/prismatic).
    axis: np.ndarray
    #: First index of this joint's DoFs in the configuration vector (-1 if none).
    dof_start: int = -1
    #: Number of DoFs (0, 1 or 3).
    ndof: int = 0


@dataclass
class Capsule:
    """A collision capsule in its link frame: the set of points within ``radius`` of the
    segment ``a``-``b`` (metres / URDF length units)."""

    #: Link index.
    link: int
    #: (3,) float64 segment start, link frame.
    a: np.ndarray
    #: (3,) float64 segment end, link frame.
    b: np.ndarray
    #: Radius, URDF length units.
    radius: float
    #: What it came from: sphere / capsule / cylinder / box / mesh.
    source: str = ""


@dataclass
class RobotModel:
    """Kinematic tree of a URDF with limits and collision capsules (numpy, float64)."""

    #: Robot name from the URDF.
    name: str
    #: Link names; index 0 is the root link.
    link_names: list[str]
    #: Joints in topological order (a joint's parent link is the root or a child of an
    #: earlier joint).
    joints: list[JointSpec]
    #: Names of the configuration DoFs (length D): the joint name for 1-DoF joints,
    #: ``<joint>/x|y|z`` for spherical joints.
    dof_names: list[str]
    #: (D,) float64 lower limits (-inf where unlimited).
    lower: np.ndarray
    #: (D,) float64 upper limits (+inf where unlimited).
    upper: np.ndarray
    #: Collision capsules, link frames.
    capsules: list[Capsule] = field(default_factory=list)
    #: Source path (or "<string>").
    path: str = "<string>"
    #: Names of joints that stay angle-valued (revolute, continuous) per DoF: True for
    #: rotational DoFs, False for prismatic.
    dof_is_angle: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def num_dofs(self) -> int:
        return len(self.dof_names)

    @property
    def num_links(self) -> int:
        return len(self.link_names)

    def link_index(self, name: str) -> int:
        try:
            return self.link_names.index(name)
        except ValueError:
            raise ValueError(
                f"robot {self.name!r} has no link {name!r}; links: {', '.join(self.link_names)}"
            ) from None

    def link_parent(self) -> np.ndarray:
        """(L,) int64 parent link index per link (-1 for the root)."""
        parent = np.full(self.num_links, -1, np.int64)
        for j in self.joints:
            parent[j.child] = j.parent
        return parent

    def link_depth(self) -> np.ndarray:
        """(L,) int64 number of moving joints between the root and each link."""
        depth = np.zeros(self.num_links, np.int64)
        for j in self.joints:
            depth[j.child] = depth[j.parent] + (1 if j.ndof else 0)
        return depth

    def is_ancestor(self, a: int, b: int) -> bool:
        """True when link ``a`` is ``b`` or an ancestor of ``b``."""
        parent = self.link_parent()
        while b >= 0:
            if b == a:
                return True
            b = int(parent[b])
        return False

    def limited(self) -> np.ndarray:
        """(D,) bool: DoFs with finite lower and upper limits."""
        return np.isfinite(self.lower) & np.isfinite(self.upper)

    def rest_link_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """Link poses at the zero configuration with the root at the identity.

        Returns (rotations (L, 3, 3), positions (L, 3)) float64, root link frame."""
        rot = np.zeros((self.num_links, 3, 3))
        pos = np.zeros((self.num_links, 3))
        rot[0] = np.eye(3)
        for j in self.joints:
            t = rot[j.parent] @ j.origin[:3, :3]
            rot[j.child] = t
            pos[j.child] = pos[j.parent] + rot[j.parent] @ j.origin[:3, 3]
        return rot, pos


# ------------------------------------------------------------------ parsing helpers


def _preprocess_capsules(xml: bytes) -> tuple[bytes, list[tuple[str, int]]]:
    """Turn pybullet ``<capsule>`` tags into ``<cylinder>``; return (xml, [(link, k)])
    naming each converted collision element (link name, index among its collisions)."""
    from lxml import etree

    stripped = xml.rstrip(b"\x00\r\n\t ")
    if b"\x00" in stripped:
        raise ValueError("malformed URDF XML: NUL bytes inside the document")
    if len(stripped) < len(xml.rstrip(b"\r\n\t ")):
        log.warning("URDF ends with NUL bytes (as pybullet's humanoid.urdf does); ignored")
    xml = stripped
    try:
        root = etree.fromstring(xml, parser=etree.XMLParser(remove_blank_text=True))
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"malformed URDF XML: {exc}") from exc
    if root.tag != "robot":
        raise ValueError(f"not a URDF: the root element is <{root.tag}>, expected <robot>")
    converted = []
    for link in root.iter("link"):
        for k, col in enumerate(link.findall("collision")):
            geom = col.find("geometry")
            if geom is None:
                continue
            cap = geom.find("capsule")
            if cap is not None:
                cap.tag = "cylinder"
                converted.append((link.get("name"), k))
    return etree.tostring(root), converted


def _package_resolver(urdf_dir: Path):
    """filename handler for ``package://PKG/rest``: look for an ancestor folder named PKG
    (or holding ``share/PKG``), then ``AMENT_PREFIX_PATH`` / ``ROS_PACKAGE_PATH``."""

    def resolve(fname: str) -> str:
        if fname.startswith("file://"):
            return fname[7:]
        if not fname.startswith("package://"):
            return fname if os.path.isabs(fname) else str(urdf_dir / fname)
        pkg, _, rest = fname[len("package://") :].partition("/")
        for anc in [urdf_dir, *urdf_dir.parents]:
            if anc.name == pkg:
                return str(anc / rest)
            if (anc / "share" / pkg).is_dir():
                return str(anc / "share" / pkg / rest)
        for var in ("AMENT_PREFIX_PATH", "ROS_PACKAGE_PATH"):
            for pre in os.environ.get(var, "").split(os.pathsep):
                if pre and (Path(pre) / "share" / pkg).is_dir():
                    return str(Path(pre) / "share" / pkg / rest)
                if pre and Path(pre).name == pkg:
                    return str(Path(pre) / rest)
        return fname

    return resolve


def _rpy_matrix(rpy) -> np.ndarray:
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _segment_capsule(origin: np.ndarray, half: float, radius: float, axis: int = 2):
    """Capsule along local ``axis`` of ``origin`` (4x4), half segment length ``half``."""
    d = origin[:3, axis] * half
    c = origin[:3, 3]
    return c - d, c + d, float(radius)


def _box_capsules(center: np.ndarray, axes: np.ndarray, half: np.ndarray, max_count: int = 6):
    """Capsules filling an oriented box: radius = smallest half extent, segments along the
    longest axis, side by side along the middle axis (one capsule for a rod-like box).

    center (3,), axes (3, 3) columns = box axes, half (3,) half extents (same frame).
    Returns a list of (a (3,), b (3,), radius)."""
    order = np.argsort(-half)
    h1, h2, h3 = half[order]
    u1, u2 = axes[:, order[0]], axes[:, order[1]]
    r = float(max(h3, 1e-6))
    seg = max(h1 - r, 0.0)
    spread = max(h2 - r, 0.0)
    n = int(min(max_count, max(1, np.ceil(spread / r) + 1))) if spread > 0.25 * r else 1
    offsets = np.linspace(-spread, spread, n) if n > 1 else np.zeros(1)
    return [(center + o * u2 - seg * u1, center + o * u2 + seg * u1, r) for o in offsets]


def _mesh_capsules(path: str, scale, origin: np.ndarray):
    """Capsules of a mesh's oriented bounding box (PCA axes) in the link frame, or None if
    the mesh is unreadable (see :func:`_box_capsules`)."""
    try:
        import trimesh

        mesh = trimesh.load(path, force="mesh", process=False)
        v = np.asarray(mesh.vertices, np.float64)
    except Exception as exc:  # noqa: BLE001 - any unreadable mesh is skipped
        log.warning("collision mesh %s unreadable (%s); left out", path, exc)
        return None
    if v.size == 0:
        return None
    if scale is not None:
        v = v * np.asarray(scale, np.float64).reshape(-1)[:3]
    v = v @ origin[:3, :3].T + origin[:3, 3]
    c = v.mean(0)
    _, _, vt = np.linalg.svd(v - c, full_matrices=False)
    axes = vt.T  # columns
    proj = (v - c) @ axes
    lo, hi = proj.min(0), proj.max(0)
    center = c + axes @ (0.5 * (lo + hi))
    return _box_capsules(center, axes, 0.5 * (hi - lo))


def _collision_capsules(urdf, link_index, capsule_set, resolve) -> list[Capsule]:
    caps = []
    for lname, link in urdf.link_map.items():
        li = link_index[lname]
        for k, col in enumerate(link.collisions):
            g = col.geometry
            origin = np.eye(4) if col.origin is None else np.asarray(col.origin, np.float64)
            if g.sphere is not None:
                c = origin[:3, 3]
                caps.append(Capsule(li, c.copy(), c.copy(), float(g.sphere.radius), "sphere"))
            elif g.cylinder is not None:
                kind = "capsule" if (lname, k) in capsule_set else "cylinder"
                a, b, r = _segment_capsule(origin, 0.5 * g.cylinder.length, g.cylinder.radius)
                caps.append(Capsule(li, a, b, r, kind))
            elif g.box is not None:
                half = 0.5 * np.asarray(g.box.size, np.float64)
                for a, b, r in _box_capsules(origin[:3, 3], origin[:3, :3], half):
                    caps.append(Capsule(li, a, b, r, "box"))
            elif g.mesh is not None:
                fit = _mesh_capsules(resolve(g.mesh.filename), g.mesh.scale, origin)
                for a, b, r in fit or []:
                    caps.append(Capsule(li, a, b, r, "mesh"))
    return caps


# ------------------------------------------------------------------ public API


def load_urdf_string(xml: str | bytes, path: str = "<string>", base_dir=None) -> RobotModel:
    """Parse URDF text (see :func:`load_urdf`). ``base_dir`` resolves relative mesh paths."""
    import yourdfpy

    if isinstance(xml, str):
        xml = xml.encode()
    xml, converted = _preprocess_capsules(xml)
    try:
        urdf = yourdfpy.URDF.load(
            io.BytesIO(xml), build_scene_graph=False, load_meshes=False, mesh_dir=""
        )
    except Exception as exc:  # yourdfpy raises assorted errors on bad content
        raise ValueError(f"URDF {path}: yourdfpy could not parse it: {exc}") from exc
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return _build_model(urdf, path, set(converted), _package_resolver(base))


def load_urdf(path: str | os.PathLike) -> RobotModel:
    """Load a URDF file into a :class:`RobotModel`.

    path: URDF file. ``package://`` mesh paths are resolved against ancestor folders of
    the file (and ``AMENT_PREFIX_PATH``/``ROS_PACKAGE_PATH``).
    Raises FileNotFoundError for a missing file and ValueError for malformed XML, a file
    without joints, unknown joint types, or a tree that is not a single tree.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"URDF file not found: {p} (give the path of a .urdf file)")
    return load_urdf_string(p.read_bytes(), str(p), base_dir=p.parent)


def _build_model(urdf, path: str, capsule_set, resolve) -> RobotModel:
    robot = urdf.robot
    names = [lk.name for lk in robot.links]
    if not robot.joints:
        raise ValueError(
            f"URDF {path}: has no <joint> elements; a robot to retarget onto needs a "
            "kinematic chain"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"URDF {path}: duplicate link names")
    children = {j.child for j in robot.joints}
    for j in robot.joints:
        for ln in (j.parent, j.child):
            if ln not in names:
                raise ValueError(f"URDF {path}: joint {j.name!r} refers to unknown link {ln!r}")
    roots = [n for n in names if n not in children]
    if len(roots) != 1:
        raise ValueError(f"URDF {path}: expected one root link, found {roots or 'none'}")
    root = roots[0]
    by_parent: dict[str, list] = {}
    for j in robot.joints:
        by_parent.setdefault(j.parent, []).append(j)
    # absorb a floating joint from a geometry-less root (world -> pelvis)
    root_link = next(lk for lk in robot.links if lk.name == root)
    kids = by_parent.get(root, [])
    if (
        len(kids) == 1
        and kids[0].type == "floating"
        and not root_link.collisions
        and not root_link.visuals
    ):
        root = kids[0].child
    order_links = [root]
    joints_sorted = []
    queue = [root]
    while queue:
        ln = queue.pop(0)
        for j in by_parent.get(ln, []):
            joints_sorted.append(j)
            order_links.append(j.child)
            queue.append(j.child)
    link_index = {n: i for i, n in enumerate(order_links)}
    specs, dof_names, lower, upper, is_angle = [], [], [], [], []
    for j in joints_sorted:
        jt = j.type
        if jt not in JOINT_DOF:
            raise ValueError(
                f"URDF {path}: joint {j.name!r} has type {jt!r}; supported: "
                f"{', '.join(JOINT_DOF)} (and floating from a world root)"
            )
        origin = np.eye(4) if j.origin is None else np.asarray(j.origin, np.float64)
        axis = np.array([1.0, 0.0, 0.0]) if j.axis is None else np.asarray(j.axis, np.float64)
        n = np.linalg.norm(axis)
        if jt in ("revolute", "continuous", "prismatic") and n < 1e-9:
            raise ValueError(f"URDF {path}: joint {j.name!r} has a zero axis")
        axis = axis / max(n, 1e-12)
        nd = JOINT_DOF[jt]
        spec = JointSpec(
            j.name, jt, link_index[j.parent], link_index[j.child], origin, axis,
            len(dof_names) if nd else -1, nd,
        )  # fmt: skip
        specs.append(spec)
        if nd == 1:
            dof_names.append(j.name)
            lim = j.limit
            lo = lim.lower if (lim is not None and lim.lower is not None) else None
            hi = lim.upper if (lim is not None and lim.upper is not None) else None
            if jt == "continuous" or lo is None or hi is None or hi <= lo:
                if jt in ("revolute", "prismatic") and (lo is None or hi is None):
                    log.warning("joint %s (%s) has no limits; treated as unlimited", j.name, jt)
                lo, hi = -np.inf, np.inf
            lower.append(float(lo))
            upper.append(float(hi))
            is_angle.append(jt != "prismatic")
        elif nd == 3:
            for ax in "xyz":
                dof_names.append(f"{j.name}/{ax}")
                lower.append(-np.inf)
                upper.append(np.inf)
                is_angle.append(True)
    model = RobotModel(
        name=robot.name or Path(path).stem,
        link_names=order_links,
        joints=specs,
        dof_names=dof_names,
        lower=np.array(lower, np.float64),
        upper=np.array(upper, np.float64),
        path=path,
        dof_is_angle=np.array(is_angle, bool),
    )
    if not any(s.ndof for s in specs):
        raise ValueError(f"URDF {path}: has no movable joints (all fixed)")
    filtered = {k: v for k, v in urdf.link_map.items() if k in link_index}

    class _U:  # the subset of yourdfpy.URDF used by _collision_capsules
        link_map = filtered

    model.capsules = _collision_capsules(_U, link_index, capsule_set, resolve)
    log.info(
        "URDF %s: %d links, %d joints, %d DoFs, %d collision capsules",
        path, len(order_links), len(specs), len(dof_names), len(model.capsules),
    )  # fmt: skip
    return model
