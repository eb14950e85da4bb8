"""``ssomotion generate --action walk --seconds 4 --out motion.npz``: sample a motion.

Writes ``FILE`` (npz: ``params`` (N, 69) body parameters, ``joints`` (N, 22, 3) metres,
map frame z up, ``fps``, ``action``, ``joint_names``) and a PNG filmstrip of the skeleton
next to it (``FILE`` with suffix ``.png``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "generate"
HELP = "generate a motion for an action with the motion model (npz + PNG filmstrip)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--action", required=True, choices=["walk", "sit", "stand_up", "lie"], help="action"
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the motion, s")
    parser.add_argument("--out", type=Path, required=True, help="output .npz file")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: shipped")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: ckpt)")
    parser.add_argument(
        "--direction",
        default=None,
        help="walk only: 'x,y' pelvis direction per window in the map frame (metres, "
        "capped at 1); default: the prior alone decides",
    )
    parser.add_argument("--frames", type=int, default=8, help="frames in the filmstrip")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")


def filmstrip(joints, path: Path, frames: int = 8, title: str = "") -> None:
    """Side-view PNG of the skeleton at ``frames`` evenly spaced times.

    joints: (N, 22, 3) metres, map frame. Each panel shows x-z (side) with the panel's
    own x offset removed; a last panel shows the pelvis path seen from above.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ssomotion_ros.body.skeleton import PARENTS

    j = np.asarray(joints)
    n = len(j)
    idx = np.linspace(0, n - 1, min(frames, n)).round().astype(int)
    fig, axes = plt.subplots(1, len(idx) + 1, figsize=(1.6 * (len(idx) + 1) + 1, 3.2))
    zmax = max(1.9, float(j[..., 2].max()) + 0.1)
    for ax, k in zip(axes, idx):
        p = j[k]
        cx = p[0, 0]
        for c, par in enumerate(PARENTS):
            if par < 0:
                continue
            side = "tab:blue" if "left" in _name(c) else "tab:red" if "right" in _name(c) else "k"
            ax.plot([p[c, 0] - cx, p[par, 0] - cx], [p[c, 2], p[par, 2]], color=side, lw=2)
        ax.axhline(0.0, color="0.6", lw=1)
        ax.set_xlim(-1.0, 1.0)
        ax.set_ylim(-0.05, zmax)
        ax.set_aspect("equal")
        ax.set_title(f"{k / 30.0:.2f} s", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[-1]
    ax.plot(j[:, 0, 0], j[:, 0, 1], "k-", lw=1.5)
    ax.plot(j[0, 0, 0], j[0, 0, 1], "go")
    ax.plot(j[-1, 0, 0], j[-1, 0, 1], "rs")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("pelvis path (top)", fontsize=8)
    ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _name(j: int) -> str:
    from ssomotion_ros.body.skeleton import JOINT_NAMES

    return JOINT_NAMES[j]


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np
    import torch

    from ssomotion_ros.body.skeleton import JOINT_NAMES, forward_kinematics
    from ssomotion_ros.motion.checkpoints import CheckpointError
    from ssomotion_ros.motion.rollout import MotionSampler, SampleOptions

    if args.seconds <= 0 or args.seconds > 600:
        print(f"error: --seconds must be in (0, 600], got {args.seconds}", file=sys.stderr)
        return 2
    direction_fn = None
    if args.direction:
        try:
            dx, dy = (float(v) for v in args.direction.split(","))
        except ValueError:
            print(f"error: --direction must be 'x,y', got {args.direction!r}", file=sys.stderr)
            return 2
        if args.action != "walk":
            print("error: --direction applies to --action walk only", file=sys.stderr)
            return 2

        def direction_fn(hist):
            d = torch.zeros(hist.shape[0], 22, 3, device=hist.device)
            d[:, 0, 0], d[:, 0, 1] = dx, dy
            return d

    try:
        sampler = MotionSampler.from_checkpoint(args.checkpoint, device=args.device)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    gen = torch.Generator(device=sampler.device).manual_seed(args.seed)
    torch.manual_seed(args.seed)
    params = sampler.rollout(
        args.action,
        args.seconds,
        direction_fn=direction_fn,
        options=SampleOptions(steps=args.steps),
        generator=gen,
        progress=True,
    )[0]
    joints = forward_kinematics(params.double()).float()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = args.out if args.out.suffix == ".npz" else args.out.with_suffix(".npz")
    np.savez(
        out,
        params=params.cpu().numpy().astype(np.float32),
        joints=joints.cpu().numpy(),
        fps=np.float32(30.0),
        action=np.array(args.action),
        joint_names=np.array(JOINT_NAMES),
    )
    png = out.with_suffix(".png")
    filmstrip(joints.cpu().numpy(), png, args.frames, f"{args.action}, {args.seconds:g} s")
    print(f"wrote {out} ({params.shape[0]} frames at 30 fps) and {png}")
    return 0
