"""``ssomotion data --source cmu|deepmimic|default|amass|humanise --out DIR``: convert motion
data to the ``.npz`` clip folder that ``ssomotion train --data DIR`` reads (69-d SMPL body
parameters, map frame, 30 fps, per-frame action labels)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "data"
HELP = "convert mocap (CMU BVH, DeepMimic, AMASS, HUMANISE) to 30 fps .npz training clips"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        required=True,
        choices=["cmu", "deepmimic", "default", "amass", "humanise"],
        help="data source (default = CMU + DeepMimic when pybullet is installed)",
    )
    parser.add_argument(
        "--input",
        type=Path,
        default=None,
        help="source folder (required for amass/humanise; default CMU folder otherwise)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder for .npz clips")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import sys

    from ssomotion_ros.motion.datasets.export import clip_stats, export_clips, load_source

    try:
        clips = load_source(args.source, args.input, progress=not args.quiet)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stats = clip_stats(clips)
    if args.out is not None:
        paths = export_clips(clips, args.out)
        stats["written"] = len(paths)
        stats["out"] = str(args.out)
    print(json.dumps(stats, indent=2))
    return 0
