"""Unlearning time vs forget-set size: TOFU forget01 / forget05 / forget10 task 1 (40, 200, 400
items), ME+GD, the same fraction of an epoch for each size, through the real entry point
:func:`unlearnkit.train.unlearn.run_unlearning` (load, train, save).

Fit ``t = a + b * n`` by least squares and report the slope ``b`` (seconds per forget item per
epoch fraction), the intercept ``a`` (fixed costs: loading, engine set-up, saving) and R^2. Linear
growth: R^2 >= 0.97 (3 points, noisy shared CPU). Fractional epochs keep the run short on a CPU;
the number of optimizer steps is ``ceil(epochs * n / batch)`` in every case.
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np

from benchmarks.common import BenchContext, Result, open_tofu
from unlearnkit.config import RunConfig
from unlearnkit.train.unlearn import run_unlearning

SPLITS = {"forget01": 40, "forget05": 200, "forget10": 400}


def linear_fit(sizes: list[int], times: list[float]) -> dict[str, float]:
    """Least-squares ``t = a + b n``: slope, intercept and R^2."""
    x, y = np.asarray(sizes, float), np.asarray(times, float)
    slope, intercept = np.polyfit(x, y, 1)
    pred = intercept + slope * x
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"slope_s_per_item": float(slope), "intercept_s": float(intercept), "r2": r2}


def run(ctx: BenchContext) -> list[Result]:
    os.environ.setdefault("TQDM_DISABLE", "1")
    bench, _ = open_tofu()
    epochs = 0.1 if ctx.quick else 0.2
    max_length = 48 if ctx.quick else 512
    sizes, times, steps = [], [], []
    for split in SPLITS:
        forget, retain = bench.forget(split), bench.retain(split)
        cfg = RunConfig()
        cfg.model.name = ctx.model_name
        cfg.model.device = "cpu"
        cfg.model.dtype = "float32"
        cfg.method.name = "ME+GD"
        cfg.data.max_length = max_length
        cfg.train.batch_size = 4
        cfg.train.per_device_batch_size = 4
        cfg.train.epochs = epochs
        cfg.train.logging_steps = 1000
        out = ctx.workdir / f"scaling_{split}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        run_unlearning(cfg, forget, retain, out, ctx.model_name)
        times.append(time.perf_counter() - start)
        sizes.append(len(forget))
        steps.append(-(-int(np.ceil(epochs * len(forget))) // 4))
        shutil.rmtree(out, ignore_errors=True)
        ctx.log(f"  scaling: {len(forget)} items -> {times[-1]:.1f}s")
    fit = linear_fit(sizes, times)
    marginal = [
        (times[i + 1] - times[i]) / (sizes[i + 1] - sizes[i]) for i in range(len(sizes) - 1)
    ]
    return [
        Result(
            name="scaling",
            description=f"ME+GD unlearning wall time vs forget size {sizes}, {epochs} epoch, "
            f"batch 4+4{', sequences cut at 48 tokens' if ctx.quick else ''}",
            target="linear (R^2 >= 0.97)",
            met=bool(fit["r2"] >= 0.97),
            value=fit["slope_s_per_item"],
            unit="s/item",
            details={
                "sizes": sizes,
                "times_s": times,
                "approx_optimizer_steps": steps,
                "marginal_s_per_item": marginal,
                **fit,
            },
            note=f"t = {fit['intercept_s']:.1f}s + {fit['slope_s_per_item']:.3f}s x n, "
            f"R^2 = {fit['r2']:.4f}",
        )
    ]
