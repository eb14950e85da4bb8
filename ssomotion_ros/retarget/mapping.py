"""Map the 22 human joints onto a robot's links: automatically by names and geometry, with
a YAML override for odd models.

A mapped human joint ``j`` is a *key point* on the robot: a point fixed in link
``map[j]``, by default the link's origin (the joint it hangs from), for the ``head`` the
centre of the link's collision geometry (robot head links often have their origin at the
neck or waist). Rules (:func:`auto_map`):

1. **Names.** Each link name is split into lower-case tokens (``_``, ``-``, ``.``,
   camelCase). Side: tokens ``left``/``l`` (or a ``left``/``l`` prefix like ``lhip``,
   ``LeftUpLeg``) vs ``right``/``r``. Body part: per human joint an ordered list of
   keyword patterns (:data:`PATTERNS`, e.g. knee: ``knee`` > ``shin|calf|tibia|shank|
   lower_leg|lowerleg``). The first pattern with any match wins; among its matches the link
   closest to the root (fewest moving joints) wins (hip pitch before hip roll before hip
   yaw, all at the hip).
   Limbs named only ``leg``/``arm`` plus a number (TALOS ``leg_left_4_link``, HRP-style
   ``LLEG_LINK3``) are split by geometry: along the side's chain of moving links, the
   first joint origin is the hip/shoulder, the farthest the ankle/wrist, the one nearest
   their middle the knee/elbow. The chest (``spine3``) must carry both shoulders (a
   ``torso`` IMU frame does not count).
2. **Geometry.** The rest-pose up axis comes from the mapped legs and upper body, the
   lateral axis from left minus right; together they give the rotation ``align`` from the
   robot's root frame to the map frame (REP-103: x forward, y left, z up). Links without
   a side in their name take the side of their rest ``y`` sign. The pelvis falls back to
   the root link.
3. **Topology.** Along each limb a mapped joint must be a descendant of the one before
   it (hip > knee > ankle > foot, collar > shoulder > elbow > wrist, pelvis > chest >
   neck > head); a link that breaks this is dropped with a warning.
4. At least the pelvis, both hips, knees, ankles, shoulders, elbows and wrists must end
   up mapped, otherwise ValueError names the missing ones and asks for a YAML override.

YAML override (``config/retarget/*.yaml``), every key optional::

    up_axis: "+y"          # robot root-frame axis that points up at rest
    forward_axis: "+x"     # robot root-frame axis the robot faces at rest
    joints:                # human joint -> link name, or {link:, point:}, or null
      pelvis: root
      head: {link: neck, point: center}    # point: origin | center | [x, y, z]
      left_foot: null                      # leave unmapped
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ssomotion_ros.body.skeleton import JOINT_NAMES, PARENTS
from ssomotion_ros.retarget.urdf import RobotModel

__all__ = [
    "PATTERNS",
    "REQUIRED",
    "KeyPoint",
    "Mapping",
    "auto_map",
    "load_override",
    "tokens",
    "side_of",
]

log = logging.getLogger(__name__)

#: Ordered keyword patterns (regex on the ``_``-joined token string) per human joint
#: (without side prefix). Earlier patterns win.
PATTERNS: dict[str, tuple[str, ...]] = {
    "pelvis": (r"(^|_)pelvis(_|$)", r"(^|_)hips?(_|$)", r"^root$", r"(^|_)base_link$"),
    "spine3": (
        r"(^|_)(chest|thorax|spine3|upper_?body)(_|$)",
        r"(^|_)torso(_|$)",
        r"(^|_)(trunk|spine)(_|$)",
    ),  # fmt: skip
    "spine1": (r"(^|_)(spine1|spine_1|abdomen|belly)(_|$)",),
    "spine2": (r"(^|_)(spine2|spine_2)(_|$)",),
    "neck": (r"(^|_)neck(_|$)",),
    "head": (r"(^|_)(head|skull)(_|$)",),
    "hip": (r"(^|_)hip(_|$)", r"(^|_)(thigh|femur|up_?leg|upper_?leg)(_|$)"),
    "knee": (r"(^|_)knee(_|$)", r"(^|_)(shin|calf|tibia|shank|lower_?leg)(_|$)"),
    "ankle": (r"(^|_)ankle(_|$)", r"(^|_)foot(_|$)"),
    "foot": (r"(^|_)(toe|toes|ball)(_|$)", r"(^|_)foot(_|$)"),
    "collar": (r"(^|_)(collar|clavicle|scapula)(_|$)",),
    "shoulder": (r"(^|_)shoulder(_|$)", r"(^|_)(up_?arm|upper_?arm|humerus|arm)(_|$)"),
    "elbow": (r"(^|_)elbow(_|$)", r"(^|_)(forearm|fore_arm|lower_?arm)(_|$)"),
    "wrist": (r"(^|_)wrist(_|$)", r"(^|_)(hand|palm)(_|$)"),
}
#: Human joints that must be mapped for retargeting to make sense.
REQUIRED: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
#: Limb chains (proximal to distal) checked for ancestry.
CHAINS: tuple[tuple[str, ...], ...] = (
    ("pelvis", "spine1", "spine2", "spine3", "neck", "head"),
    *((f"{s}_hip", f"{s}_knee", f"{s}_ankle", f"{s}_foot") for s in ("left", "right")),
    *(
        ("spine3", f"{s}_collar", f"{s}_shoulder", f"{s}_elbow", f"{s}_wrist")
        for s in ("left", "right")
    ),
)


@dataclass
class KeyPoint:
    """Where a human joint sits on the robot."""

    #: Link index in the robot model.
    link: int
    #: (3,) float64 point in the link frame (URDF units).
    offset: np.ndarray


@dataclass
class Mapping:
    """Human joint -> robot key point, plus the robot's rest orientation."""

    #: Human joint name -> key point (only mapped joints).
    points: dict[str, KeyPoint]
    #: (3, 3) float64 rotation robot root frame -> map frame at rest (x fwd, y left, z up).
    align: np.ndarray
    #: Robot link names (for reports).
    link_names: list[str] = field(default_factory=list)

    def pairs(self) -> dict[str, str]:
        """{human joint: link name} for reports."""
        return {j: self.link_names[kp.link] for j, kp in self.points.items()}

    @property
    def joints(self) -> list[str]:
        """Mapped human joint names in :data:`JOINT_NAMES` order."""
        return [n for n in JOINT_NAMES if n in self.points]

    def mapped_parent(self, name: str) -> str | None:
        """Nearest mapped ancestor of a human joint in the 22-joint tree (None at the top)."""
        j = int(PARENTS[JOINT_NAMES.index(name)])
        while j >= 0:
            if JOINT_NAMES[j] in self.points:
                return JOINT_NAMES[j]
            j = int(PARENTS[j])
        return None


def tokens(name: str) -> list[str]:
    """Lower-case tokens of a link name: split at ``_-. /`` and camelCase boundaries."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z])([A-Z][a-z])", r"\1_\2", s)
    return [t for t in re.split(r"[^A-Za-z0-9]+", s.lower()) if t]


def side_of(name: str) -> str | None:
    """'left', 'right' or None from a link name (tokens ``left``/``l``/``right``/``r`` or a
    ``l``/``r``/``left``/``right`` prefix glued to a body-part word, e.g. ``lhip``)."""
    toks = tokens(name)
    found = set()
    for t in toks:
        if t in ("left", "l", "lft", "lt"):
            found.add("left")
        elif t in ("right", "r", "rgt", "rt"):
            found.add("right")
        elif t.startswith("left"):
            found.add("left")
        elif t.startswith("right"):
            found.add("right")
        elif re.fullmatch(r"l(hip|knee|ankle|foot|toe|shoulder|elbow|wrist|hand|arm|leg|"
                          r"collar|clavicle|thigh|shin|forearm|uparm|upleg)\w*", t):  # fmt: skip
            found.add("left")
        elif re.fullmatch(r"r(hip|knee|ankle|foot|toe|shoulder|elbow|wrist|hand|arm|leg|"
                          r"collar|clavicle|thigh|shin|forearm|uparm|upleg)\w*", t):  # fmt: skip
            found.add("right")
    return found.pop() if len(found) == 1 else None


def _strip_side(name: str) -> str:
    toks = tokens(name)
    out = []
    for t in toks:
        if t in ("left", "l", "lft", "lt", "right", "r", "rgt", "rt"):
            continue
        t = re.sub(r"^(left|right)", "", t)
        t = re.sub(r"^[lr](?=(hip|knee|ankle|foot|toe|shoulder|elbow|wrist|hand|arm|leg|collar"
                   r"|clavicle|thigh|shin|forearm|uparm|upleg))", "", t)  # fmt: skip
        if t:
            out.append(t)
    return "_".join(out)


def _axis(spec: str) -> np.ndarray:
    m = re.fullmatch(r"\s*([+-]?)\s*([xyzXYZ])\s*", str(spec))
    if not m:
        raise ValueError(f"axis must look like '+x', '-y', 'z'; got {spec!r}")
    v = np.zeros(3)
    v["xyz".index(m.group(2).lower())] = -1.0 if m.group(1) == "-" else 1.0
    return v


def _geometry_center(robot: RobotModel, link: int) -> tuple[int, np.ndarray] | None:
    """Centre of a link's collision capsules in its frame; a link without geometry looks
    down its single-child chain of coincident joints (multi-DoF joints built from
    revolute joints and dummy links)."""
    while True:
        caps = [c for c in robot.capsules if c.link == link]
        if caps:
            return link, np.mean([0.5 * (c.a + c.b) for c in caps], axis=0)
        kids = [j for j in robot.joints if j.parent == link]
        if len(kids) != 1 or np.linalg.norm(kids[0].origin[:3, 3]) > 1e-9:
            return None
        link = kids[0].child


def load_override(path: str | Path) -> dict:
    """Read a YAML override file (see module doc) into a dict; ValueError on bad content."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"retarget override not found: {p}")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping at the top level")
    unknown = set(data) - {"up_axis", "forward_axis", "joints", "match", "description"}
    if unknown:
        raise ValueError(f"{p}: unknown keys {sorted(unknown)}; allowed: up_axis, "
                         "forward_axis, joints, match, description")  # fmt: skip
    for j in data.get("joints") or {}:
        if j not in JOINT_NAMES:
            raise ValueError(f"{p}: unknown human joint {j!r}; use one of {JOINT_NAMES}")
    return data


def _estimate_align(robot: RobotModel, pts: dict[str, np.ndarray]) -> np.ndarray:
    """Rotation root frame -> map from rest key points (up from legs, left from sides)."""
    low = [pts[n] for n in ("left_ankle", "right_ankle", "left_knee", "right_knee") if n in pts]
    high = [pts[n] for n in ("left_shoulder", "right_shoulder", "neck", "head", "spine3")
            if n in pts]  # fmt: skip
    if not low or not high:
        return np.eye(3)
    up = np.mean(high, 0) - np.mean(low, 0)
    rights = [pts[n.replace("left_", "right_")] for n in pts
              if n.startswith("left_") and n.replace("left_", "right_") in pts]  # fmt: skip
    lefts = [pts[n] for n in pts if n.startswith("left_") and n.replace("left_", "right_") in pts]
    if not lefts:
        return np.eye(3)
    left = np.mean(lefts, 0) - np.mean(rights, 0)
    up = up / np.linalg.norm(up)
    left = left - up * (left @ up)
    left = left / np.linalg.norm(left)
    fwd = np.cross(left, up)
    align = np.stack([fwd, left, up])  # rows: map axes in robot coordinates
    # snap to an axis permutation when within ~15 degrees (typical URDFs are axis-aligned)
    snapped = np.zeros((3, 3))
    for i in range(3):
        k = int(np.argmax(np.abs(align[i])))
        snapped[i, k] = np.sign(align[i, k])
    if np.linalg.det(snapped) > 0.5 and np.all(np.sum(align * snapped, 1) > np.cos(0.26)):
        return snapped
    return align


def _moving_parent(robot: RobotModel, link: int) -> bool:
    return any(j.child == link and j.ndof for j in robot.joints)


def _limb_fallback(robot, chosen, stripped, sides, rest_pos, depth) -> None:
    """Limbs named only by ``leg``/``arm`` and a number (TALOS ``leg_left_4_link``, HRP
    ``LLEG_LINK3``): walk the side's chain of links moved by joints, cluster coincident
    joint origins, and take first = hip/shoulder, farthest = ankle/wrist, the one nearest
    the middle = knee/elbow."""
    for side in ("left", "right"):
        for limb, parts in (
            ("leg", ("hip", "knee", "ankle")),
            ("arm", ("shoulder", "elbow", "wrist")),
        ):
            names = [f"{side}_{p}" for p in parts]
            if all(n in chosen for n in names):
                continue
            chain = [i for i, st in enumerate(stripped)
                     if re.search(rf"(^|_){limb}(_|\d|$)", st) and sides[i] == side
                     and _moving_parent(robot, i)]  # fmt: skip
            chain.sort(key=lambda i: depth[i])
            if len(chain) < 3 or not all(
                robot.is_ancestor(a, b) for a, b in zip(chain[:-1], chain[1:])
            ):
                continue
            pts = rest_pos[chain]
            extent = np.linalg.norm(pts - pts[0], axis=1).max()
            if extent <= 0:
                continue
            clusters: list[int] = [0]
            for k in range(1, len(chain)):
                if np.linalg.norm(pts[k] - pts[clusters[-1]]) > 0.05 * extent:
                    clusters.append(k)
            if len(clusters) < 3:
                continue
            first = clusters[0]
            far = max(clusters, key=lambda k: np.linalg.norm(pts[k] - pts[first]))
            mids = [k for k in clusters if first < k < far]
            if not mids:
                continue
            centre = 0.5 * (pts[first] + pts[far])
            mid = min(mids, key=lambda k: np.linalg.norm(pts[k] - centre))
            for n, k in zip(names, (first, mid, far)):
                chosen.setdefault(n, chain[k])


def _pick_chest(robot, chosen, stripped, sides, depth) -> None:
    """The chest must carry the arms: among the spine3 name matches that are ancestors of
    both mapped shoulders take the deepest; none -> the deepest common ancestor of the
    shoulders below the pelvis, if any."""
    sh = [chosen[n] for n in ("left_shoulder", "right_shoulder") if n in chosen]
    if len(sh) < 2:
        return
    ok = lambda i: all(robot.is_ancestor(i, s) for s in sh)  # noqa: E731
    cur = chosen.get("spine3")
    if cur is not None and ok(cur):
        cands = [i for i, st in enumerate(stripped) if sides[i] is None and ok(i)
                 and any(re.search(p, st) for p in PATTERNS["spine3"])]  # fmt: skip
        chosen["spine3"] = max(cands, key=lambda i: (depth[i], -i)) if cands else cur
        return
    chosen.pop("spine3", None)
    pelvis = chosen.get("pelvis", 0)
    anc = [
        i for i in range(robot.num_links) if ok(i) and robot.is_ancestor(pelvis, i) and i != pelvis
    ]
    if anc:
        chosen["spine3"] = max(anc, key=lambda i: (depth[i], -i))


def auto_map(robot: RobotModel, override: dict | str | Path | None = None) -> Mapping:
    """Map the human joints to ``robot``'s links (module doc); ``override``: dict or YAML path.

    Returns a :class:`Mapping`. Raises ValueError when a required joint stays unmapped or
    an override names an unknown link."""
    if override is not None and not isinstance(override, dict):
        override = load_override(override)
    override = override or {}
    depth = robot.link_depth()
    stripped = [_strip_side(n) for n in robot.link_names]
    sides = [side_of(n) for n in robot.link_names]
    _, rest_pos = robot.rest_link_poses()
    chosen: dict[str, int] = {}
    for joint in JOINT_NAMES:
        side = (
            "left" if joint.startswith("left_") else "right" if joint.startswith("right_") else None
        )
        part = joint.split("_", 1)[1] if side else joint
        for pat in PATTERNS.get(part, ()):
            cands = [
                i for i, s in enumerate(stripped)
                if re.search(pat, s) and (side is None or sides[i] in (side, None))
                and (side is not None or sides[i] is None)
            ]  # fmt: skip
            cands = [i for i in cands if i not in chosen.values()]
            if side is not None:
                named = [i for i in cands if sides[i] == side]
                cands = named if named else cands
            if cands:
                chosen[joint] = min(cands, key=lambda i: (depth[i], i))
                break
    if "pelvis" not in chosen:
        chosen["pelvis"] = 0
    _limb_fallback(robot, chosen, stripped, sides, rest_pos, depth)
    _pick_chest(robot, chosen, stripped, sides, depth)
    # links matched without a side name: resolve by geometry (rest y sign after alignment)
    pts0 = {j: rest_pos[i] for j, i in chosen.items()}
    align = (
        np.stack(
            [
                _axis(override.get("forward_axis", "+x")),
                np.cross(_axis(override["up_axis"]), _axis(override.get("forward_axis", "+x"))),
                _axis(override["up_axis"]),
            ]
        )  # fmt: skip
        if "up_axis" in override
        else _estimate_align(robot, pts0)
    )
    for j, i in list(chosen.items()):
        if j.startswith(("left_", "right_")) and sides[i] is None:
            y = (align @ rest_pos[i])[1]
            want = "left" if j.startswith("left_") else "right"
            if abs(y) < 1e-6 or (y > 0) != (want == "left"):
                del chosen[j]
    # overrides
    points: dict[str, KeyPoint] = {}
    spec_point: dict[str, object] = {}
    for j, v in (override.get("joints") or {}).items():
        if v is None:
            chosen.pop(j, None)
            continue
        link, point = (
            (v.get("link"), v.get("point", "origin")) if isinstance(v, dict) else (v, "origin")
        )
        chosen[j] = robot.link_index(str(link))
        spec_point[j] = point
    # topology: each chain must descend
    for chain in CHAINS:
        prev = None
        for j in chain:
            if j not in chosen:
                continue
            if prev is not None and not robot.is_ancestor(chosen[prev], chosen[j]):
                log.warning(
                    "mapping: %s -> %s is not below %s -> %s; dropped",
                    j, robot.link_names[chosen[j]], prev, robot.link_names[chosen[prev]],
                )  # fmt: skip
                del chosen[j]
                continue
            prev = j
    for j, i in chosen.items():
        point = spec_point.get(j, "origin")
        if j == "head" and j not in spec_point and "left_shoulder" in chosen:
            # head links often have their origin at the neck or even the waist (G1): use the
            # geometry centre when the origin is below the shoulders at rest
            up = align[2]
            sh = [rest_pos[chosen[s]] @ up for s in ("left_shoulder", "right_shoulder")
                  if s in chosen]  # fmt: skip
            if rest_pos[i] @ up < np.mean(sh):
                point = "center"
        if isinstance(point, str) and point == "center":
            c = _geometry_center(robot, i)
            if c is not None:
                i, off = c
            else:
                off = np.zeros(3)
        elif isinstance(point, str) and point == "origin":
            off = np.zeros(3)
        else:
            off = np.asarray(point, np.float64).reshape(3)
        points[j] = KeyPoint(i, off)
    missing = [j for j in REQUIRED if j not in points]
    if missing:
        raise ValueError(
            f"robot {robot.name!r} ({robot.path}): could not map human joints {missing} to "
            f"links by name or geometry (links: {', '.join(robot.link_names)}). Write a YAML "
            "override (config/retarget/, key 'joints: {human_joint: link_name}') and pass it."
        )
    if "up_axis" not in override:
        pts = {j: rest_pos[kp.link] + 0 for j, kp in points.items()}
        align = _estimate_align(robot, pts)
    return Mapping(points=points, align=align, link_names=list(robot.link_names))
