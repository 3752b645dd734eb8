"""``me_loss`` on logits (4, 128, 49152): time and peak memory, forward + backward.

Our path is :func:`unlearnkit.losses.me_loss` (closed form, counted rows only); the baseline
builds the uniform and softmax ``(B, T, V)`` tensors (:func:`benchmarks.baselines.naive_me_loss`).
Every position is counted (the worst case for our path: nothing is skipped). Peak memory is the
extra RSS of one forward + backward in a fresh process, on top of the logits already allocated.
"""

from __future__ import annotations

import torch

from benchmarks.baselines import naive_me_loss
from benchmarks.common import (
    MIB,
    BenchContext,
    Result,
    interleaved_times,
    median,
    run_worker,
)
from unlearnkit.losses import me_loss

SHAPE = (4, 128, 49152)  # (B, T, V)
LOGIT_SCALE = 4.0  # std of the random logits (a trained LM's logits spread over ~ +-20)


def make_inputs(
    shape: tuple[int, int, int] = SHAPE, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random logits ``(B, T, V)`` (requiring grad), labels ``(B, T)``; every position counts."""
    gen = torch.Generator().manual_seed(seed)
    b, t, v = shape
    logits = (torch.randn(shape, generator=gen) * LOGIT_SCALE).requires_grad_()  # (B, T, V)
    labels = torch.randint(0, v, (b, t), generator=gen)  # (B, T)
    return logits, labels


def fwd_bwd(which: str, logits: torch.Tensor, labels: torch.Tensor) -> float:
    """One forward + backward of the chosen path; returns the loss value."""
    logits.grad = None
    loss = (naive_me_loss if which == "baseline" else me_loss)(logits, labels)
    loss.backward()
    return float(loss.detach())


def worker(which: str) -> dict[str, float]:
    """Fresh-process measurement: extra peak RSS of one forward + backward (see common)."""
    from benchmarks.common import current_rss, max_rss_self, reset_peak_rss

    logits, labels = make_inputs()
    reset_peak_rss()
    before = current_rss()
    value = fwd_bwd(which, logits, labels)
    return {"peak_delta": max_rss_self() - before, "loss": value}


def run(ctx: BenchContext) -> list[Result]:
    logits, labels = make_inputs()
    values: dict[str, list[float]] = {"baseline": [], "ours": []}
    tb, to = interleaved_times(
        lambda: fwd_bwd("baseline", logits, labels),
        lambda: fwd_bwd("ours", logits, labels),
        repeats=max(ctx.repeats, 3),
        warmup=True,
        on_result=lambda which, v: values[which].append(v),
    )
    diffs = [abs(a - b) for a, b in zip(values["baseline"], values["ours"], strict=True)]
    equal = max(diffs) <= 1e-4
    # Gradient check on one call (the backward pass is half the work measured).
    fwd_bwd("baseline", logits, labels)
    g_base = logits.grad.clone()
    fwd_bwd("ours", logits, labels)
    grad_diff = float((g_base - logits.grad).abs().max())
    logits.grad = None
    del g_base

    n_mem = 1 if ctx.quick else 3
    mem = {
        which: median(
            [
                run_worker(["me_loss", which], threads=ctx.threads)["peak_delta"]
                for _ in range(n_mem)
            ]
        )
        / MIB
        for which in ("baseline", "ours")
    }
    bt, ot = median(tb), median(to)
    ratio, mem_ratio = bt / ot, mem["baseline"] / mem["ours"]
    return [
        Result(
            name="me_loss",
            description=f"me_loss forward+backward on logits {SHAPE}, fp32, all positions counted",
            target=">= 5x time, >= 3x memory",
            met=bool(ratio >= 5 and mem_ratio >= 3 and equal),
            baseline_s=bt,
            ours_s=ot,
            ratio=ratio,
            baseline_mem_mib=mem["baseline"],
            ours_mem_mib=mem["ours"],
            mem_ratio=mem_ratio,
            mem_method="subprocess",
            equality={
                "loss_max_abs_diff": max(diffs),
                "loss_tolerance": 1e-4,
                "grad_max_abs_diff": grad_diff,
                "passed": equal,
            },
            details={
                "baseline_times": tb,
                "ours_times": to,
                "logits_mib": logits.numel() * 4 / MIB,
            },
        )
    ]
