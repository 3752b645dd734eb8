"""One unlearning step of ME+GD and of NPO+GD: batch 4 forget + 4 retain, TOFU forget01.

A step = loss, backward, gradient clipping (max norm 1.0) and an AdamW update, on the same model,
the same (forget, retain) pairs and the same coefficients for both paths.

- ours: :class:`unlearnkit.methods.data.UnlearningDataset` + ``UnlearningCollator`` (dynamic
  padding) and ``Method.compute`` (one joint forward pass; NPO reads the reference NLLs cached
  once per task by ``compute_reference_nlls``);
- baseline: :func:`benchmarks.baselines.naive_step_loss` on batches padded to 500 tokens (two
  forward passes; NPO runs the reference model at every step).

The learning rate is 0, so the weights stay fixed and every repeat computes comparable losses
(AdamW does the same arithmetic whatever the rate). NPO's per-task reference cache is reported
and amortized over the micro-steps of one forget01 task (5 epochs x 10 micro-batches of 4).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.baselines import TRAIN_LENGTH, naive_step_loss, pad_fixed
from benchmarks.common import (
    MIB,
    BenchContext,
    Result,
    interleaved_times,
    load_bench_model,
    median,
    open_tofu,
    safe_ratio,
    sampled_peak,
)
from unlearnkit.config import MethodConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.methods import build_method
from unlearnkit.methods.data import (
    UnlearningCollator,
    UnlearningDataset,
    attach_reference_nlls,
    compute_reference_nlls,
)
from unlearnkit.methods.views import Batch

BATCH = 4
EPOCHS_PER_TASK = 5  # paper default: the reference cache is amortized over one task


def init_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW with lr 0 and its state already allocated (so no timed call pays for that)."""
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt


def train_step(loss: torch.Tensor, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def build_batches(
    method_name: str, tok: Any, forget: list, retain: list, n: int = BATCH
) -> tuple[Any, UnlearningDataset, Batch, dict[str, dict[str, torch.Tensor]]]:
    """The method, its dataset, our collated batch and the naive fixed-length batches."""
    method = build_method(MethodConfig(name=method_name), pad_id=int(tok.pad_token_id))
    formatter = PromptFormatter(tok)
    dataset = UnlearningDataset(
        forget, retain, [], formatter, method.views, mask_question=method.mask_question, seed=0
    )
    ours = UnlearningCollator(method.pad_id)([dataset[i] for i in range(n)])
    naive = {}
    for view in ("forget", "retain"):
        mask = dataset.view_masks_question(view)  # only the forget view may be unmasked
        feats = [formatter.encode(*dataset.pair(i, view), mask_question=mask) for i in range(n)]
        naive[view] = pad_fixed(feats, TRAIN_LENGTH, method.pad_id)  # (n, 500)
    return method, dataset, ours, naive


def coefficients(method: Any) -> dict[str, float]:
    coeff = {t.key: t.coeff for t in method.terms}
    return {
        "forget_coeff": coeff["forget"],
        "regularization_coeff": coeff.get("regularizer", 0.0),
        # every part with a beta resolves it (the paper's parts: 0.1 unless method.beta is set)
        "beta": next((t.settings["beta"] for t in method.terms if "beta" in t.settings), None),
    }


def step_item(
    ctx: BenchContext, name: str, model: Any, ref_model: Any, tok: Any, forget: list, retain: list
) -> Result:
    batch = 2 if ctx.quick else BATCH  # --quick: a smoke run, not the target's measurement
    method, dataset, ours_batch, naive = build_batches(name, tok, forget, retain, n=batch)
    cache_s = 0.0
    if method.cached_ref_views:
        start = time.perf_counter()
        nlls = compute_reference_nlls(
            ref_model, dataset, method.cached_ref_views, batch_size=BATCH, pad_id=method.pad_id
        )
        cache_s = time.perf_counter() - start
        attach_reference_nlls(dataset, nlls)
        ours_batch = UnlearningCollator(method.pad_id)([dataset[i] for i in range(batch)])
    kw = coefficients(method)
    opt = init_optimizer(model)
    model.train()
    peaks: dict[str, list[int]] = {"baseline": [], "ours": []}

    def baseline() -> tuple[float, dict[str, float]]:
        with sampled_peak() as s:
            loss, parts = naive_step_loss(
                name, model, ref_model, naive["forget"], naive["retain"], **kw
            )
            train_step(loss, model, opt)
        peaks["baseline"].append(s.peak_delta)
        return float(loss.detach()), {k: float(v.detach()) for k, v in parts.items()}

    def ours() -> tuple[float, dict[str, float]]:
        with sampled_peak() as s:
            loss, parts = method.compute(model, ours_batch, None)
            train_step(loss, model, opt)
        peaks["ours"].append(s.peak_delta)
        return float(loss.detach()), {k: float(v.detach()) for k, v in parts.items()}

    values: dict[str, list] = {"baseline": [], "ours": []}
    tb, to = interleaved_times(
        baseline,
        ours,
        repeats=ctx.repeats,
        warmup=not ctx.quick,
        on_result=lambda which, v: values[which].append(v),
    )
    diffs = []
    for (lb, pb), (lo, po) in zip(values["baseline"], values["ours"], strict=True):
        diffs.append(abs(lb - lo))
        diffs.extend(abs(pb[k] - po[k]) for k in po)
    equal = max(diffs) <= 1e-4
    micro_steps = EPOCHS_PER_TASK * -(-len(dataset) // batch)
    bt, ot = median(tb), median(to)
    ot_amortized = ot + cache_s / micro_steps
    ratio = bt / ot_amortized
    mem_b, mem_o = max(peaks["baseline"]) / MIB, max(peaks["ours"]) / MIB
    f_len, r_len = (ours_batch[v]["input_ids"].shape[1] for v in ("forget", "retain"))
    shapes = {
        "ours_joint_forward": [2 * batch, int(max(f_len, r_len))],
        "baseline_forwards": [[batch, TRAIN_LENGTH], [batch, TRAIN_LENGTH]],
    }
    return Result(
        name=f"step_{name.lower().replace('+', '_')}",
        description=f"one {name} step (fwd+bwd+clip+AdamW), batch {batch} forget + {batch} "
        "retain, TOFU forget01",
        target=">= 3x",
        met=bool(ratio >= 3 and equal),
        baseline_s=bt,
        ours_s=ot_amortized,
        ratio=ratio,
        baseline_mem_mib=mem_b,
        ours_mem_mib=mem_o,
        mem_ratio=safe_ratio(mem_b, mem_o),
        mem_method="sampled",
        equality={
            "loss_and_parts_max_abs_diff": max(diffs),
            "tolerance": 1e-4,
            "passed": equal,
            "values": values,
        },
        details={
            "baseline_times": tb,
            "ours_times": to,
            "ours_step_s_without_cache": ot,
            "ratio_without_cache": bt / ot,
            "reference_cache_s": cache_s,
            "cache_amortized_over_micro_steps": micro_steps,
            "shapes": shapes,
        },
        note="NPO: ours includes the reference-NLL cache amortized over one task"
        if cache_s
        else "",
    )


def run(ctx: BenchContext) -> list[Result]:
    bench, _ = open_tofu()
    forget, retain = bench.forget("forget01"), bench.retain("forget01")
    model, tok = load_bench_model(ctx.model_name)
    results = [step_item(ctx, "ME+GD", model, None, tok, forget, retain)]
    ctx.log(f"  step ME+GD: {results[-1].ratio:.2f}x")
    ref_model, _ = load_bench_model(ctx.model_name)
    ref_model.eval().requires_grad_(False)
    results.append(step_item(ctx, "NPO+GD", model, ref_model, tok, forget, retain))
    return results
