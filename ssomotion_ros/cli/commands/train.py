"""``ssomotion train --config FILE --data DIR --out DIR``: train a motion generator.

Two stages (motion prior, then scene controller), progress bars, resumable checkpoints
in ``OUT/checkpoint`` (run the same command again to resume), ``OUT/losses.csv``,
``OUT/loss_curve.png`` and the final checkpoint in ``OUT/model``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "train"
HELP = "train the motion generator (prior, then scene controller) on mocap clips"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="training YAML")
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="CMU BVH folder with INDEX.tsv, or a folder of .npz clips (params, actions)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after")
    parser.add_argument("--prior-steps", type=int, default=None, help="override train.prior_steps")
    parser.add_argument(
        "--control-steps", type=int, default=None, help="override train.control_steps"
    )
    parser.add_argument(
        "--init-from", type=Path, default=None, help="fine-tune: start from this checkpoint"
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import logging

    from ssomotion_ros.motion.train import load_run_config, train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_cfg = load_run_config(args.config)
    if args.prior_steps is not None:
        run_cfg.train.prior_steps = args.prior_steps
    if args.control_steps is not None:
        run_cfg.train.control_steps = args.control_steps
    if args.device:
        run_cfg.train.device = args.device
    if args.init_from:
        run_cfg.train.init_from = str(args.init_from)
    max_wall = args.max_minutes * 60 if args.max_minutes else None
    summary = train(run_cfg, args.data, args.out, progress=not args.quiet, max_wall_s=max_wall)
    print(json.dumps(summary, indent=2, default=str))
    if not summary.get("complete"):
        print(f"stopped early; run the same command again to resume from {args.out}/checkpoint")
    return 0
