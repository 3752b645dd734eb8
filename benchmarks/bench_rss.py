"""Peak RSS of an ME+GD unlearning run on SmolLM2-135M, CPU fp32, in a fresh process.

The run goes through :func:`unlearnkit.train.unlearn.run_unlearning` (loading, training with the
paper's effective batch 32 = 8 micro-batches of 4, AdamW state, saving the model). One optimizer
step is enough to reach the steady-state peak: weights, gradients and both AdamW moments all
exist from the first step on. ``--quick`` uses one micro-batch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from benchmarks.common import GIB, BenchContext, Result, max_rss_self, run_worker


def worker(quick: bool, out_dir: str, model: str = "smollm2-135m") -> dict[str, float]:
    os.environ.setdefault("TQDM_DISABLE", "1")
    from benchmarks.common import open_tofu
    from unlearnkit.config import RunConfig
    from unlearnkit.train.unlearn import run_unlearning

    bench, _ = open_tofu()
    cfg = RunConfig()
    cfg.model.device = "cpu"
    cfg.model.dtype = "float32"
    cfg.method.name = "ME+GD"
    cfg.train.per_device_batch_size = 4
    cfg.train.batch_size = 4 if quick else 32
    cfg.train.max_steps = 1
    cfg.train.logging_steps = 1
    run_unlearning(cfg, bench.forget("forget01"), bench.retain("forget01"), out_dir, model)
    return {"peak_rss": max_rss_self(), "micro_batches": cfg.train.batch_size // 4}


def run(ctx: BenchContext) -> list[Result]:
    tmp = Path(tempfile.mkdtemp(dir=ctx.workdir))
    try:
        out = run_worker(
            ["unlearn_run", "quick" if ctx.quick else "full", str(tmp / "run"), ctx.model_name]
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    gib = out["peak_rss"] / GIB
    return [
        Result(
            name="rss",
            description=f"peak RSS of an ME+GD run (SmolLM2-135M, CPU fp32, "
            f"{out['micro_batches']} micro-batch(es) of 4 + AdamW step + save)",
            target="<= 4 GiB",
            met=bool(gib <= 4.0),
            value=gib,
            unit="GiB",
            mem_method="subprocess",
            details=out,
        )
    ]
