"""Generate an avatar URDF from our own 22-joint skeleton (``default_skeleton()``).

Layout (standard URDF, loads in ``robot_state_publisher``, RViz and :func:`load_urdf`):

- root link ``pelvis`` at the rest pelvis (the free root pose is the retargeting root);
- every other human joint ``j`` is a ball joint built from three revolute joints
  ``j_<a1>``, ``j_<a2>``, ``j_<a3>`` (axes of the map frame, see :data:`AXIS_ORDER`) with two
  massless dummy links ``j_dof1``, ``j_dof2`` between them; the last link is named ``j``.
  All link frames are parallel to the map frame at rest (x forward, y left, z up), so the
  rest pose is the skeleton's rest pose (T-pose, facing +x);
- collision: one URDF ``<cylinder>`` per capsule of :mod:`ssomotion_ros.body.collision`
  (bone parent -> joint, same radius; the head capsule runs 0.12 m beyond the head
  joint). :func:`load_urdf` turns each cylinder back into the capsule over its axis;
- joint limits: human range of motion per body part (:data:`LIMITS`, radians, left side;
  the right side mirrors them), wide enough for everyday motion.

``scale`` per body part stretches bones (e.g. a cartoon avatar with long arms).
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from ssomotion_ros.body.collision import CAPSULES
from ssomotion_ros.body.skeleton import JOINT_NAMES, PARENTS, Skeleton, default_skeleton

__all__ = ["AXIS_ORDER", "LIMITS", "avatar_urdf", "write_avatar_urdf", "body_part"]

#: Axis order of the three revolute joints per body part (parent side first). The middle
#: axis is the one that rarely reaches 90 degrees (no gimbal lock in everyday motion).
AXIS_ORDER: dict[str, str] = {"leg": "yxz", "spine": "yxz", "arm": "xyz", "hand": "xyz"}

#: (lower, upper) radians per body part and map axis, left side (x fwd, y left, z up).
LIMITS: dict[str, dict[str, tuple[float, float]]] = {
    "hip": {"x": (-0.7, 1.3), "y": (-2.6, 0.9), "z": (-1.0, 1.0)},
    "knee": {"x": (-0.35, 0.35), "y": (-0.2, 2.8), "z": (-0.7, 0.7)},
    "ankle": {"x": (-0.7, 0.7), "y": (-1.0, 1.0), "z": (-0.8, 0.8)},
    "foot": {"x": (-0.5, 0.5), "y": (-1.0, 1.0), "z": (-0.5, 0.5)},
    "spine": {"x": (-0.7, 0.7), "y": (-1.0, 1.2), "z": (-0.9, 0.9)},
    "neck": {"x": (-0.8, 0.8), "y": (-1.0, 1.2), "z": (-1.2, 1.2)},
    "collar": {"x": (-0.8, 0.8), "y": (-0.8, 0.8), "z": (-0.8, 0.8)},
    "shoulder": {"x": (-2.0, 2.0), "y": (-2.0, 2.0), "z": (-2.4, 1.6)},
    "elbow": {"x": (-0.6, 0.6), "y": (-2.0, 2.0), "z": (-2.8, 0.3)},
    "wrist": {"x": (-1.4, 1.4), "y": (-1.6, 1.6), "z": (-1.4, 1.4)},
}


def body_part(name: str) -> str:
    """Limit table key of a human joint name (``left_knee`` -> ``knee``)."""
    base = name.split("_", 1)[1] if name.startswith(("left_", "right_")) else name
    if base.startswith("spine"):
        return "spine"
    if base in ("neck", "head"):
        return "neck"
    return base


def _group(part: str) -> str:
    if part in ("hip", "knee", "ankle", "foot"):
        return "leg"
    if part in ("spine", "neck"):
        return "spine"
    if part == "wrist":
        return "hand"
    return "arm"


def _rpy_from_z(d: np.ndarray) -> tuple[float, float, float]:
    """rpy (URDF: R = Rz(yaw) Ry(pitch) Rx(roll)) of a rotation taking +z onto ``d``."""
    d = d / np.linalg.norm(d)
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(z, d)
    s, c = np.linalg.norm(v), float(z @ d)
    if s < 1e-9:
        r = np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        k = v / s
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        r = np.eye(3) + s * kx + (1 - c) * kx @ kx
    pitch = -np.arcsin(np.clip(r[2, 0], -1, 1))
    roll = np.arctan2(r[2, 1], r[2, 2])
    yaw = np.arctan2(r[1, 0], r[0, 0])
    return float(roll), float(pitch), float(yaw)


def _f(x) -> str:
    return " ".join(f"{float(v):.6f}" for v in np.atleast_1d(x))


def avatar_urdf(
    skeleton: Skeleton | None = None,
    name: str = "ssomotion_avatar",
    scale: dict[str, float] | None = None,
    mass: float = 70.0,
) -> str:
    """URDF text of an avatar built from ``skeleton`` (default :func:`default_skeleton`).

    scale: optional per-body-part bone length factors, keys of :data:`LIMITS` (e.g.
        ``{"shoulder": 1.2, "elbow": 1.2}`` lengthens the upper arm and forearm: the bone
        *ending* at that joint's child is scaled by the factor of the joint it hangs from).
    mass: total mass (kg) spread over the links by bone length (for simulators; the
        retargeting ignores it).
    Returns the XML as a string."""
    skel = skeleton if skeleton is not None else default_skeleton()
    scale = dict(scale or {})
    bad = set(scale) - set(LIMITS)
    if bad:
        raise ValueError(f"scale: unknown body parts {sorted(bad)}; use {sorted(LIMITS)}")
    off = np.array(skel.offsets, np.float64)
    for j in range(1, 22):
        parent_part = body_part(JOINT_NAMES[PARENTS[j]]) if PARENTS[j] > 0 else None
        if parent_part in scale:
            off[j] = off[j] * float(scale[parent_part])
    lines = ['<?xml version="1.0"?>', f'<robot name="{escape(name)}">']
    lengths = np.linalg.norm(off[1:], axis=1)
    m_per = mass / (len(JOINT_NAMES) + 1)
    caps: dict[str, list[tuple[np.ndarray, float]]] = {n: [] for n in JOINT_NAMES}
    idx = {n: i for i, n in enumerate(JOINT_NAMES)}
    for s, e, r in CAPSULES:
        if e == "head_top":
            d = off[idx["head"]] / np.linalg.norm(off[idx["head"]]) * 0.12
        else:
            d = off[idx[e]]
        caps[s].append((d, r))
    del lengths

    def link(nm: str, with_geometry: bool) -> None:
        lines.append(f'  <link name="{nm}">')
        lines.append("    <inertial>")
        lines.append('      <origin xyz="0 0 0" rpy="0 0 0"/>')
        m = m_per if with_geometry else 0.001
        lines.append(f'      <mass value="{m:.4f}"/>')
        i = 0.01 if with_geometry else 1e-6
        lines.append(f'      <inertia ixx="{i}" ixy="0" ixz="0" iyy="{i}" iyz="0" izz="{i}"/>')
        lines.append("    </inertial>")
        if with_geometry:
            for tag in ("visual", "collision"):
                for d, r in caps[nm]:
                    ln = float(np.linalg.norm(d))
                    rpy = _rpy_from_z(d)
                    lines.append(f"    <{tag}>")
                    lines.append(f'      <origin xyz="{_f(d / 2)}" rpy="{_f(rpy)}"/>')
                    lines.append(
                        f'      <geometry><cylinder length="{ln:.6f}" radius="{r:.4f}"/></geometry>'
                    )
                    lines.append(f"    </{tag}>")
        lines.append("  </link>")

    link("pelvis", True)
    for j in range(1, 22):
        nm = JOINT_NAMES[j]
        part = body_part(nm)
        order = AXIS_ORDER[_group(part)]
        right = nm.startswith("right_")
        parent = JOINT_NAMES[PARENTS[j]]
        chain = [f"{nm}_dof1", f"{nm}_dof2", nm]
        prev = parent
        for k, ax in enumerate(order):
            lo, hi = LIMITS[part][ax]
            if right and ax in "xz":  # mirror y -> -y: x and z rotations change sign
                lo, hi = -hi, -lo
            child = chain[k]
            link(child, child == nm)
            xyz = off[j] if k == 0 else np.zeros(3)
            axis = {"x": "1 0 0", "y": "0 1 0", "z": "0 0 1"}[ax]
            lines.append(f'  <joint name="{nm}_{ax}" type="revolute">')
            lines.append(f'    <parent link="{prev}"/>')
            lines.append(f'    <child link="{child}"/>')
            lines.append(f'    <origin xyz="{_f(xyz)}" rpy="0 0 0"/>')
            lines.append(f'    <axis xyz="{axis}"/>')
            lines.append(
                f'    <limit lower="{lo:.4f}" upper="{hi:.4f}" effort="200" velocity="10"/>'
            )
            lines.append("  </joint>")
            prev = child
    lines.append("</robot>")
    return "\n".join(lines) + "\n"


def write_avatar_urdf(path: str | Path, skeleton: Skeleton | None = None, **kwargs) -> Path:
    """Write :func:`avatar_urdf` to ``path`` (parents created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(avatar_urdf(skeleton, **kwargs))
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m ssomotion_ros.retarget.avatar OUT.urdf``: write the neutral avatar (for
    ``robot_state_publisher``'s ``robot_description`` next to the retarget node)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out", type=Path, help="URDF file to write")
    ap.add_argument("--name", default="ssomotion_avatar", help="robot name")
    args = ap.parse_args(argv)
    print(write_avatar_urdf(args.out, name=args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
