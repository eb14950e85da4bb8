"""``ssomotion scene``: generate a semantic room (mesh, spec, occupancy, picture, scans).

    ssomotion scene "a living room with a sofa and two armchairs" --seed 3 --out out/living
    ssomotion scene --spec out/living/scene.yaml --out out/again
    ssomotion scene --suite locomotion --out out/suites

Writes into ``--out``: ``scene.ply`` (triangle mesh, per-vertex ``label`` and
``instance``), ``scene.yaml`` (the spec; rebuild with ``--spec``), ``instances.json``
(ground-truth instances and affordances), ``occupancy.npz`` (sparse semantic voxels),
``compact_occ.npy`` + ``compact_occ_info.json`` (the reference's format),
``layout.png`` (top-down picture), ``scans_depth.npz`` / ``scans_lidar.npz`` (structured
clouds + sensor poses) and ``scans/*.pcd``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

NAME = "scene"
HELP = "generate a semantic room from text (mesh, occupancy, picture, simulated scans)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="?", help='room description, e.g. "a bedroom with a bed"')
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=False, help="output folder")
    parser.add_argument("--spec", type=Path, help="build from a scene spec (YAML/JSON) instead")
    parser.add_argument("--suite", help="write a benchmark suite (locomotion, interaction)")
    parser.add_argument("--clutter", type=int, default=None, help="add N random objects")
    parser.add_argument("--voxel", type=float, default=0.04, help="occupancy voxel, metres")
    parser.add_argument("--scans", type=int, default=6, help="scans per sensor (0: none)")
    parser.add_argument(
        "--sensor", choices=("depth", "lidar", "both"), default="both", help="simulated sensors"
    )
    parser.add_argument(
        "--layout", choices=("label", "rgb"), default="label",
        help="cloud layout: integer label/instance fields, or palette rgb",
    )  # fmt: skip
    parser.add_argument(
        "--pcd-data", choices=("ascii", "binary", "binary_compressed"),
        default="binary_compressed", help="PCD encoding of the written scans",
    )  # fmt: skip


def _instances_json(scene) -> list[dict]:
    out = []
    for i in scene.instances:
        out.append(
            {
                "instance_id": i.instance_id,
                "label": i.label,
                "name": i.name,
                "centroid": [round(float(v), 4) for v in i.centroid],
                "bbox_min": [round(float(v), 4) for v in i.bbox_min],
                "bbox_max": [round(float(v), 4) for v in i.bbox_max],
                "yaw": round(float(i.yaw), 4),
                "affordances": [
                    {
                        "kind": a.kind,
                        "position": [round(float(v), 4) for v in a.position],
                        "facing": round(float(a.facing), 4),
                        "extent": [round(float(v), 4) for v in a.extent],
                    }
                    for a in i.affordances
                ],
            }
        )
    return out


def write_scene(scene, out: Path, args: argparse.Namespace) -> list[str]:
    """Write every output of one scene into ``out``; returns the written file names."""
    import numpy as np

    from ssomotion_ros.scenes.loaders import write_pcd
    from ssomotion_ros.scenes.sensors import scans_to_npz, simulate_scans, survey_poses

    out.mkdir(parents=True, exist_ok=True)
    written = []
    scene.mesh().save_ply(out / "scene.ply")
    scene.spec.save(out / "scene.yaml")
    (out / "instances.json").write_text(json.dumps(_instances_json(scene), indent=1))
    written += ["scene.ply", "scene.yaml", "instances.json"]
    occ = scene.occupancy(voxel_size=args.voxel)
    occ.save_npz(out / "occupancy.npz")
    written.append("occupancy.npz")
    from ssomotion_ros.sso.compact_occ import save_compact_occ

    save_compact_occ(occ.to_compact_occ(), out)
    written += ["compact_occ.npy", "compact_occ_info.json"]
    poses = None
    if args.scans > 0:
        poses = survey_poses(scene, num=args.scans, rng=np.random.default_rng(scene.spec.seed))
        sensors = ("depth", "lidar") if args.sensor == "both" else (args.sensor,)
        for sensor in sensors:
            scans = simulate_scans(
                scene, poses, sensor=sensor, layout=args.layout, seed=scene.spec.seed
            )
            scans_to_npz(scans, out / f"scans_{sensor}.npz")
            written.append(f"scans_{sensor}.npz")
            for k, s in enumerate(scans):
                name = f"scans/{sensor}_{k:04d}.pcd"
                write_pcd(out / name, s.points, data=args.pcd_data)
                written.append(name)
    scene.save_png(out / "layout.png", path_xy=None if poses is None else poses[:, :2])
    written.append("layout.png")
    return written


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        print("error: --out DIR is required", file=sys.stderr)
        return 2
    given = [x for x in (args.prompt, args.spec, args.suite) if x]
    if len(given) != 1:
        print("error: give exactly one of PROMPT, --spec FILE or --suite NAME", file=sys.stderr)
        return 2
    from ssomotion_ros.scenes.layout import SceneSpec
    from ssomotion_ros.scenes.scene import Scene, generate_scene

    t0 = time.perf_counter()
    try:
        if args.suite:
            from ssomotion_ros.scenes.suites import build_suite

            cases = build_suite(args.suite)
            root = args.out / args.suite
            done: dict[int, str] = {}
            index = []
            from tqdm import tqdm

            for case in tqdm(cases, desc=f"suite {args.suite}", unit="case"):
                key = id(case.scene)
                if key not in done:
                    folder = f"scene_{len(done):03d}"
                    write_scene(case.scene, root / folder, args)
                    done[key] = folder
                d = case.to_dict()
                d.pop("scene")
                d["scene_dir"] = done[key]
                index.append(d)
            (root / "suite.json").write_text(
                json.dumps({"suite": args.suite, "cases": index}, indent=1)
            )
            print(f"wrote suite {args.suite!r}: {len(cases)} cases, {len(done)} scenes in {root} "
                  f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
            return 0
        if args.spec:
            scene = Scene(SceneSpec.load(args.spec))
        else:
            scene = generate_scene(args.prompt, seed=args.seed, clutter=args.clutter)
        files = write_scene(scene, args.out, args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = ", ".join(f"{i.name} #{i.instance_id}" for i in scene.instances)
    print(f"room {scene.spec.room.width:.2f} x {scene.spec.room.depth:.2f} m: {names}")
    print(f"wrote {len(files)} files to {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0
