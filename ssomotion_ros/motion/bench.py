"""``ssomotion bench motion``: generator speed, default size vs the reference size.

One *window* is the full generator step the synthesis runs per agent: canonicalise the
5 history frames, encode the local scene tri-planes (5 maps, S = 101) into scene tokens,
run DDIM sampling (``sample_steps`` denoiser calls, each with the prior, the ControlNet
copy, the direction hint and the frame-wise scene query) and convert the 25 new frames
back to 69-d map-frame parameters. Agents are batched.

Figures: milliseconds per window for 1 and 8 agents; ``realtime_factor_per_agent`` =
seconds of new motion per agent per second of wall time at 8 agents
= (25 / 30 s) / (seconds per 8-agent window). Both sizes are measured in the same run on
the same device with the same number of DDIM steps; the default size uses the shipped
checkpoint's weights when present (speed does not depend on weight values, the
reference size is randomly initialised).
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time

import torch

log = logging.getLogger(__name__)


def _random_scene(batch: int, size: int, semantic_dim: int, gen: torch.Generator):
    from ssomotion_ros.motion.model import SceneInput

    return SceneInput(
        depth=torch.rand(batch, 5, size, size, generator=gen) * 2.0,
        rgb=torch.rand(batch, 5, 3, size, size, generator=gen),
        semantic=torch.randn(batch, 5, semantic_dim, size, size, generator=gen),
        mask=torch.rand(batch, 5, size, size, generator=gen) > 0.5,
    )


def _time_windows(sampler, batch: int, steps: int, reps: int, warmup: int) -> list[float]:
    from ssomotion_ros.motion.config import ACTIONS

    gen = torch.Generator().manual_seed(0)
    cfg = sampler.config.model
    hist = sampler.seed_history("walk", batch) if sampler.extras else None
    if hist is None:
        hist = torch.zeros(batch, cfg.history, 69, device=sampler.device)
    scene = _random_scene(batch, cfg.triplane_size, cfg.semantic_dim, gen)
    direction = torch.zeros(batch, 22, 3)
    direction[:, 0, 0] = 1.0
    actions = torch.arange(batch) % len(ACTIONS)
    from ssomotion_ros.motion.rollout import SampleOptions

    opts = SampleOptions(steps=steps)
    times = []
    for i in range(warmup + reps):
        if sampler.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = sampler.sample_window(
                hist, actions, direction.to(sampler.device), scene, options=opts
            )
        if sampler.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
        hist = out[:, -cfg.history :]
    return times


def _sampler_for(size: str, device):
    from ssomotion_ros.motion.checkpoints import (
        DEFAULT_CHECKPOINT,
        LoadedCheckpoint,
        load_checkpoint,
    )
    from ssomotion_ros.motion.config import default_config, reference_config
    from ssomotion_ros.motion.model import SSOMotionDenoiser
    from ssomotion_ros.motion.rollout import MotionSampler

    if size == "default" and (DEFAULT_CHECKPOINT / "config.json").is_file():
        return MotionSampler(
            load_checkpoint(DEFAULT_CHECKPOINT, device=device)
        ), "shipped checkpoint"
    cfg = default_config() if size == "default" else reference_config()
    torch.manual_seed(0)
    model = SSOMotionDenoiser(cfg.model).to(device).eval()
    return MotionSampler(LoadedCheckpoint(model=model, config=cfg)), "random init"


def _measure(device, reps: int, warmup: int) -> dict:
    """Both sizes at the current torch thread count."""
    sizes: dict = {}
    steps = None
    for size in ("default", "reference"):
        sampler, weights = _sampler_for(size, device)
        cfg = sampler.config
        steps = steps or cfg.diffusion.sample_steps  # same step count for both sizes
        new_frames = cfg.model.window - cfg.model.history
        entry = {
            "weights": weights,
            "num_layers": cfg.model.num_layers,
            "latent_dim": cfg.model.latent_dim,
            "ff_dim": cfg.model.ff_dim,
            "parameters": sum(p.numel() for p in sampler.model.parameters()),
            "ddim_steps": steps,
            "new_frames_per_window": new_frames,
        }
        for batch in (1, 8):
            ts = _time_windows(sampler, batch, steps, reps, warmup)
            entry[f"ms_per_window_{batch}_agents"] = round(1000 * statistics.median(ts), 2)
            entry[f"ms_per_window_{batch}_agents_min"] = round(1000 * min(ts), 2)
        entry["realtime_factor_per_agent"] = round(
            (new_frames / 30.0) / (entry["ms_per_window_8_agents"] / 1000.0), 3
        )
        sizes[size] = entry
        log.info("%s: %s", size, entry)
    return sizes


def bench_motion(args) -> dict:
    """Run the benchmark (``args.quick``, ``args.device``); returns the figures as a dict.

    On CPU both sizes are measured with 1 thread and with the process's thread count
    (when that is more than 1): on a shared small CPU one thread is often faster, because
    with more threads than free cores every operation waits for descheduled threads. The
    top-level figures come from the thread count that is faster for the default size
    (``headline_threads``); all figures are reported. ``--quick`` measures one setting.
    """
    quick = bool(getattr(args, "quick", False))
    dev_name = getattr(args, "device", None)
    device = torch.device(dev_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    reps = 1 if quick else 7
    warmup = 0 if quick else 2
    base_threads = torch.get_num_threads()
    counts = [base_threads]
    if device.type == "cpu" and base_threads > 1 and not quick:
        counts = [1, base_threads]
    result: dict = {
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "quick": quick,
        "load_average_1min_start": round(os.getloadavg()[0], 2)
        if hasattr(os, "getloadavg")
        else None,
        "by_threads": {},
    }
    try:
        for n in counts:
            torch.set_num_threads(n)
            result["by_threads"][str(n)] = _measure(device, reps, warmup)
    finally:
        torch.set_num_threads(base_threads)
    best = min(
        result["by_threads"],
        key=lambda n: result["by_threads"][n]["default"]["ms_per_window_8_agents"],
    )
    sizes = result["by_threads"][best]
    d, r = sizes["default"], sizes["reference"]
    result["headline_threads"] = int(best)
    result["sizes"] = sizes
    result["realtime_factor_per_agent"] = d["realtime_factor_per_agent"]
    result["reference_realtime_factor_per_agent"] = r["realtime_factor_per_agent"]
    result["speedup_default_vs_reference_8_agents"] = round(
        r["ms_per_window_8_agents"] / d["ms_per_window_8_agents"], 2
    )
    result["goal_realtime_factor"] = 2.0
    result["meets_goal"] = d["realtime_factor_per_agent"] >= 2.0
    result["load_average_1min_end"] = (
        round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    )
    return result


#: Benchmarks of this module for ``ssomotion bench``.
BENCHMARKS = {"motion": bench_motion}
