"""Reproducible benchmark suites of scenes with tasks (built in memory, or written by the CLI).

``build_suite(name)`` returns a list of :class:`SuiteCase`; the same name always gives the
same scenes, starts and targets (every random choice is seeded from the case index).

* ``locomotion``: cluttered rooms (8-14 random objects, like the reference's cluttered
  evaluation rooms); per room two cases, each a start pose on reachable floor and a goal
  point on reachable free floor (an approach point of a target object, at least 2 m of
  path away). Action ``walk``.
* ``interaction``: furnished rooms with sit/lie targets (chair, sofa, armchair, bed,
  stool, bench); the start is just inside the door, the target is one sit or lie
  affordance of one instance. Actions ``sit`` and ``lie``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssomotion_ros.scenes.layout import generate_spec
from ssomotion_ros.scenes.scene import Scene
from ssomotion_ros.sso.types import Affordance


@dataclass
class SuiteCase:
    """One evaluation case.

    name: unique id within the suite, e.g. ``"interaction/004"``.
    scene: the built :class:`Scene` (``scene.spec`` reproduces it; ``scene.instances``
        is the ground truth).
    start: (3,) float64 start pose x, y (metres, map frame, on reachable floor), yaw (rad).
    action: ``"walk"``, ``"sit"`` or ``"lie"``.
    instruction: an English instruction for the case (e.g. ``"sit on the sofa"``).
    target_instance: instance id of the target object (walk: the object whose approach
        point is the goal), or None.
    goal: (2,) float64 goal x, y on reachable free floor (walk cases; for sit/lie the
        floor approach point of the target), metres.
    target: the sit/lie :class:`Affordance` to use (None for walk).
    path_length: metres of the shortest grid path from start to goal (body-radius clear).
    """

    name: str
    scene: Scene
    start: np.ndarray
    action: str
    instruction: str
    target_instance: int | None = None
    goal: np.ndarray | None = None
    target: Affordance | None = None
    path_length: float = 0.0
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-friendly summary (the scene as its spec dict)."""
        t = self.target
        return {
            "name": self.name,
            "action": self.action,
            "instruction": self.instruction,
            "start": [round(float(v), 4) for v in self.start],
            "goal": None if self.goal is None else [round(float(v), 4) for v in self.goal],
            "target_instance": self.target_instance,
            "target": None
            if t is None
            else {
                "kind": t.kind,
                "position": [round(float(v), 4) for v in t.position],
                "facing": round(float(t.facing), 4),
                "extent": [round(float(v), 4) for v in t.extent],
            },
            "path_length": round(float(self.path_length), 3),
            "scene": self.scene.spec.to_dict(),
        }


def _path_len(scene: Scene, a, b) -> float:
    p = scene.free.path(np.asarray(a)[:2], np.asarray(b)[:2])
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def _locomotion() -> list[SuiteCase]:
    cases = []
    for room in range(6):
        rng = np.random.default_rng(1000 + room)
        n_clutter = int(rng.integers(8, 15))
        spec = generate_spec(f"a cluttered room with {n_clutter} random objects", seed=100 + room)
        scene = Scene(spec)
        cells = np.argwhere(scene.free.reachable)
        made = 0
        for _ in range(200):
            if made == 2:
                break
            start_xy = scene.free.center(cells[rng.integers(len(cells))])
            objs = [i for i in scene.instances if i.name not in ("door", "window")]
            inst = objs[int(rng.integers(len(objs)))]
            goals = [a for a in inst.affordances if a.kind == "approach"]
            if not goals:
                continue
            goal = goals[int(rng.integers(len(goals)))].position[:2]
            try:
                length = _path_len(scene, start_xy, goal)
            except ValueError:
                continue
            if length < 2.0:
                continue
            yaw = float(rng.uniform(-np.pi, np.pi))
            cases.append(
                SuiteCase(
                    name=f"locomotion/{len(cases):03d}",
                    scene=scene,
                    start=np.array([start_xy[0], start_xy[1], yaw]),
                    action="walk",
                    instruction=f"walk to the {inst.name}",
                    target_instance=inst.instance_id,
                    goal=np.asarray(goal, float),
                    path_length=length,
                )
            )
            made += 1
        if made < 2:  # pragma: no cover - guarded by the test of the suite
            raise RuntimeError(f"locomotion room {room}: could not find 2 start/goal pairs")
    return cases


#: (prompt, target class, action) of the interaction suite; each row is built twice.
INTERACTION_ROWS = (
    ("a living room with a sofa, a coffee table and a plant", "sofa", "sit"),
    ("a living room with a sofa and a tv", "sofa", "lie"),
    ("a bedroom with a bed, a nightstand and a wardrobe", "bed", "lie"),
    ("a bedroom with a bed and a lamp", "bed", "sit"),
    ("a dining room with a table and four chairs", "chair", "sit"),
    ("an office with a desk, a chair and a bookshelf", "chair", "sit"),
    ("a kitchen with a counter, a fridge and two stools", "stool", "sit"),
    ("a room with a bench, a plant and a cabinet", "bench", "sit"),
    ("a living room with an armchair, a lamp and a bookshelf", "armchair", "sit"),
)

_VERB = {"sit": "sit on the {}", "lie": "lie down on the {}"}


def _interaction() -> list[SuiteCase]:
    cases = []
    for row, (prompt, target, action) in enumerate(INTERACTION_ROWS):
        for rep in range(2):
            seed = 200 + 10 * row + rep
            scene = Scene(generate_spec(prompt, seed=seed))
            rng = np.random.default_rng(seed)
            start = scene.start_pose()
            cands = [
                (inst, a)
                for inst in scene.instances_of(target)
                for a in inst.affordances
                if a.kind == action
            ]
            if not cands:  # pragma: no cover - every row's class has the affordance
                raise RuntimeError(f"{prompt!r}: no {action} affordance on a {target}")
            inst, aff = cands[int(rng.integers(len(cands)))]
            approaches = [a for a in inst.affordances if a.kind == "approach"]
            goal = min(approaches, key=lambda a: np.linalg.norm(a.position[:2] - aff.position[:2]))
            cases.append(
                SuiteCase(
                    name=f"interaction/{len(cases):03d}",
                    scene=scene,
                    start=start,
                    action=action,
                    instruction=_VERB[action].format(target),
                    target_instance=inst.instance_id,
                    goal=goal.position[:2].copy(),
                    target=aff,
                    path_length=_path_len(scene, start, goal.position),
                )
            )
    return cases


SUITES = {"locomotion": _locomotion, "interaction": _interaction}


def build_suite(name: str) -> list[SuiteCase]:
    """Build the suite ``name`` (see the module docstring); ValueError if unknown."""
    if name not in SUITES:
        raise ValueError(f"unknown scene suite {name!r}; available: {', '.join(SUITES)}")
    return SUITES[name]()
