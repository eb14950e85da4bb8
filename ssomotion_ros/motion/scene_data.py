"""Stage-2 training scenes from the project's procedural rooms, seen through the real SSO.

Training windows are placed collision-free in rooms generated from text prompts
(``ssomotion_ros.scenes``), fused into a :class:`~ssomotion_ros.sso.scene.SceneModel`
(``synthesis.scene_source.scene_model_from_prompt``), and the tri-planes the scene branch
reads are the SceneModel's own ``local_triplanes`` at the window-frame pose — exactly what
the generator sees at run time.

Placement of one window (joints in its window frame):

* sit / stand_up windows whose pelvis goes low are first tried on the room's ``sit``
  affordances: the pelvis at its lowest frame goes over the seat point and the body's
  heading at that frame turns to the affordance's facing;
* otherwise (and when that fails) a random walkable cell and a random yaw;
* a placement is kept when every joint but the feet is at least ``margin`` from
  occupied space (SSO signed distance) in every frame; on a seat, the pelvis, hips and
  knees may touch it and the other joints must be outside occupied space.

The result, a :class:`Stage2Pool`, stores labels, depth and colour compactly and turns rows
into :class:`~ssomotion_ros.motion.model.SceneInput` batches with the features of one
semantic reduction (the checkpoint's), so semantics match whatever vocabulary a room uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ssomotion_ros.motion import representation as rep
from ssomotion_ros.motion.config import ACTIONS
from ssomotion_ros.motion.model import SceneInput

log = logging.getLogger(__name__)

#: Room prompts of the default stage-2 set.
DEFAULT_PROMPTS = (
    "a living room with a sofa, a chair and a table",
    "a bedroom with a bed, a chair and a desk",
    "an office with two chairs, a desk and a cabinet",
    "a kitchen with a table and three chairs",
)

_FEET = (7, 8, 10, 11)
_SEATED_FREE = (0, 1, 2, 4, 5)  # pelvis, hips, knees rest on / at the edge of the seat


@dataclass
class Stage2Pool:
    """Placed windows and their tri-planes.

    window: (M,) int64 index into the training WindowSet. pose: (M, 3) float64 (x, y, yaw)
    map frame of the room. room: (M,) int64 room index. on_seat: (M,) bool, placed on a
    seat affordance. label: (M, 5, S, S) int16 (-1 none).
    depth: (M, 5, S, S) float16 metres. rgb: (M, 5, 3, S, S) uint8. table: (L, F) float32
    semantic feature per label id (row L-1 = none).
    """

    window: torch.Tensor
    pose: torch.Tensor
    room: torch.Tensor
    on_seat: torch.Tensor
    label: torch.Tensor
    depth: torch.Tensor
    rgb: torch.Tensor
    table: torch.Tensor

    def __len__(self) -> int:
        return int(self.window.shape[0])

    def batch(self, rows: torch.Tensor) -> SceneInput:
        """SceneInput (float32) of pool rows (B,)."""
        lab = self.label[rows].long()
        mask = lab >= 0
        n = self.table.shape[0]
        idx = torch.where(mask & (lab < n - 1), lab, torch.full_like(lab, n - 1))
        sem = self.table[idx].permute(0, 1, 4, 2, 3) * mask[:, :, None]
        return SceneInput(
            depth=self.depth[rows].float(),
            rgb=self.rgb[rows].float() / 255.0,
            semantic=sem.contiguous(),
            mask=mask,
        )

    def save(self, path) -> None:
        from safetensors.torch import save_file

        save_file({k: getattr(self, k).contiguous() for k in self.__dataclass_fields__}, str(path))

    @classmethod
    def load(cls, path) -> Stage2Pool:
        from safetensors.torch import load_file

        t = load_file(str(path))
        return cls(**{k: t[k] for k in cls.__dataclass_fields__})


def _seat_pose(joints: np.ndarray, feats: torch.Tensor, aff) -> tuple[float, float, float]:
    """Window-frame pose that puts the lowest pelvis over a seat affordance, facing it."""
    k = int(np.argmin(joints[:, 0, 2]))
    params = rep.features_to_params(feats[None, k : k + 1].double())
    h = float(rep.heading(params[0, 0]))
    yaw = float(aff.facing) - h
    q = joints[k, 0, :2]
    c, s = np.cos(yaw), np.sin(yaw)
    xy = np.asarray(aff.position[:2]) - np.array([c * q[0] - s * q[1], s * q[0] + c * q[1]])
    return float(xy[0]), float(xy[1]), yaw


def _world(joints: np.ndarray, pose) -> np.ndarray:
    x, y, yaw = pose
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return joints @ R.T + np.array([x, y, 0.0])


def build_stage2_pool(
    feats: torch.Tensor,
    actions: torch.Tensor,
    count: int,
    prompts=DEFAULT_PROMPTS,
    rooms_per_prompt: int = 2,
    reduction=None,
    margin: float = 0.08,
    tries: int = 12,
    seed: int = 0,
    progress: bool = True,
) -> Stage2Pool:
    """Place ``count`` random training windows in generated rooms and take their tri-planes.

    feats: (N, T, 135) window-frame features; actions: (N,) indices. reduction: the
    ``LinearReduction`` for the semantic features (None: the SSO default PCA of the rooms'
    vocabulary). Windows that find no collision-free placement in ``tries`` attempts are
    replaced by other random windows.
    """
    from tqdm import tqdm

    from ssomotion_ros.synthesis.scene_source import scene_model_from_prompt

    rng = np.random.default_rng(seed)
    rooms = []
    for p in prompts:
        for r in range(rooms_per_prompt):
            model, scene = scene_model_from_prompt(p, seed=seed * 100 + r)
            if reduction is not None:
                model.set_reduction(reduction)
            free, origin, res = model.walkable_grid()
            cells = np.argwhere(free)
            seats = [a for inst in scene.instances for a in inst.affordances if a.kind == "sit"]
            rooms.append((model, cells, origin, res, seats))
    sit_like = {ACTIONS.index("sit"), ACTIONS.index("stand_up")}
    placed: list[tuple[int, int, tuple, bool]] = []
    bar = tqdm(total=count, desc="stage-2 placements", disable=not progress)
    attempts = 0
    while len(placed) < count and attempts < count * 20:
        attempts += 1
        w = int(rng.integers(0, len(feats)))
        j = rep.features_to_joints(feats[w : w + 1].double())[0].numpy()
        ri = int(rng.integers(0, len(rooms)))
        model, cells, origin, res, seats = rooms[ri]
        seated = int(actions[w]) in sit_like and j[:, 0, 2].min() < 0.75
        check = [i for i in range(22) if i not in _FEET]
        on_seat_check = [i for i in check if i not in _SEATED_FREE]
        for t in range(tries):
            on_seat = bool(seated and seats and t < tries // 2)
            if on_seat:
                pose = _seat_pose(j, feats[w], seats[int(rng.integers(0, len(seats)))])
            else:
                i, jj = cells[int(rng.integers(0, len(cells)))]
                x, y = origin + (np.array([jj, i]) + 0.5) * res
                pose = (float(x), float(y), float(rng.uniform(-np.pi, np.pi)))
            pts = _world(j[:, on_seat_check if on_seat else check].reshape(-1, 3), pose)
            d = model.signed_distance(torch.as_tensor(pts, dtype=torch.float32))
            if float(d.min()) > (0.0 if on_seat else margin):
                placed.append((w, ri, pose, on_seat))
                bar.update(1)
                break
    bar.close()
    if not placed:
        raise ValueError("no window could be placed collision-free in the generated rooms")
    labels, depths, rgbs = [], [], []
    for ri, (model, *_rest) in enumerate(rooms):
        sel = [p for p in placed if p[1] == ri]
        for k in range(0, len(sel), 16):
            chunk = sel[k : k + 16]
            poses = np.array([p[2] for p in chunk])
            tp = model.local_triplanes(poses)
            labels.append(tp.label.to(torch.int16).cpu())
            depths.append(tp.depth.to(torch.float16).cpu())
            rgbs.append((tp.rgb * 255).round().to(torch.uint8).cpu())
    order = [p for ri in range(len(rooms)) for p in placed if p[1] == ri]
    table = torch.as_tensor(rooms[0][0].features().table, dtype=torch.float32)
    log.info(
        "stage-2 pool: %d placements in %d rooms (%d attempts)", len(order), len(rooms), attempts
    )
    return Stage2Pool(
        window=torch.tensor([p[0] for p in order], dtype=torch.long),
        pose=torch.tensor([p[2] for p in order], dtype=torch.float64),
        room=torch.tensor([p[1] for p in order], dtype=torch.long),
        on_seat=torch.tensor([p[3] for p in order], dtype=torch.bool),
        label=torch.cat(labels),
        depth=torch.cat(depths),
        rgb=torch.cat(rgbs),
        table=table,
    )
