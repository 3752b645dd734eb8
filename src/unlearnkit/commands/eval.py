"""``unlearn eval``: evaluate any model on a benchmark's evaluation splits.

Example::

    unlearn eval --model smollm2-135m --benchmark tofu --split forget01 eval.ds_size=40
    unlearn eval --model runs/x/model --split forget01 --retain-eval runs/retain/eval/final
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from unlearnkit.commands._config import add_config_arguments, config_from_args, print_config
from unlearnkit.config import RunConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model: the six metrics per split and the aggregates",
        description=(
            "Writes <out>/<split>.jsonl (one record per item) and <out>/summary.json. "
            "Example: unlearn eval --model smollm2-135m --benchmark tofu --split forget01 "
            "eval.ds_size=40"
        ),
    )
    add_config_arguments(p)
    p.add_argument("--model", help="packaged alias, model folder or hub id (default smollm2-135m)")
    p.add_argument("--benchmark", help="tofu, real_world, synthetic or a folder (default tofu)")
    p.add_argument("--split", help="forget01, forget05 or forget10 (default forget01)")
    # not data.task directly: 'all' is no integer (dest differs so the flag table skips it)
    p.add_argument(
        "--task", dest="task_or_all", help="task id of the forget split (default 1), or 'all'"
    )
    p.add_argument("--out", help="output folder (default runs/eval/<model>_<benchmark>_<split>)")
    p.add_argument(
        "--retain-eval",
        help="evaluation folder of a retain model (its forget.jsonl), or open-unlearning's "
        "retain logs (TOFU_EVAL.json, as its retain_logs_path), for Forget Quality and PrivLeak",
    )
    p.add_argument(
        "--attacks",
        help="attacks to run after the evaluation, comma-separated (unlearn ls attacks; 'all'); "
        "same as attack.names=[...]",
    )
    p.add_argument(
        "--before-eval",
        help="evaluation folder of the model before unlearning (its forget.jsonl), for recovery",
    )
    p.add_argument("--no-cache", action="store_true", help="recompute even if cached")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def parse_task(value: str | None, default: int | None) -> int | None:
    """--task: a positive integer, 'all' (None: every task), or the config's task when absent."""
    if value is None:
        return default
    if value.lower() == "all":
        return None
    try:
        task = int(value)
    except ValueError:
        raise ValueError(f"--task must be a positive integer or 'all', got {value!r}") from None
    if task < 1:
        raise ValueError(f"--task must be >= 1, got {task}")
    return task


def default_out(cfg: RunConfig, task: int | None, named_forget_splits: bool) -> Path:
    """``runs/eval/<model>_<benchmark>_<split>_task<N|all>``; a benchmark with one forget set
    (real world) is named ``forget`` whatever ``data.split`` says."""
    model = Path(cfg.model.name.rstrip("/")).name or "model"
    bench = Path(cfg.data.benchmark.rstrip("/")).name
    split = cfg.data.split if named_forget_splits else "forget"
    return Path("runs") / "eval" / f"{model}_{bench}_{split}_task{task or 'all'}"


def run(args: argparse.Namespace) -> int:
    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.data.splits import open_benchmark
    from unlearnkit.eval.data_parallel import evaluate_data_parallel
    from unlearnkit.models.loading import load_model
    from unlearnkit.runtime import init_processes, run_device

    flag_task = parse_task(args.task_or_all, None)  # checked before anything else; None: absent/all
    if args.attacks is not None and not args.attacks.strip():
        raise ValueError("--attacks needs at least one attack name (unlearn ls attacks)")
    if args.before_eval is not None and not (Path(args.before_eval) / "forget.jsonl").is_file():
        raise ValueError(f"--before-eval: {args.before_eval} holds no forget.jsonl")
    cfg = config_from_args(
        args,
        {
            **({"data.task": flag_task} if flag_task is not None else {}),
            **({"eval.use_cache": False} if args.no_cache else {}),
        },
    )
    if print_config(args, cfg):
        return 0
    every_task = args.task_or_all is not None and args.task_or_all.lower() == "all"
    task = None if every_task else cfg.data.task
    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    eval_sets = bench.eval_sets(cfg.data.split, task)  # a real-world benchmark ignores the split
    out = Path(args.out) if args.out else default_out(cfg, task, bench.named_forget_splits)

    device = None if cfg.model.device == "auto" else cfg.model.device
    if init_processes(run_device(cfg)) > 1:  # several processes: each on its own device
        from accelerate import PartialState

        device = str(PartialState().device)
    model, tokenizer = load_model(
        cfg.model.name, device=device, dtype=cfg.model.dtype, cache_dir=cfg.model.cache_dir
    )
    formatter = PromptFormatter(tokenizer, cfg.data.prompt_preset, cfg.data.system_prompt)
    summary = evaluate_data_parallel(
        model,
        tokenizer,
        eval_sets,
        cfg.eval,
        out,
        formatter,
        bench.kind,
        model_name=cfg.model.name,
        progress=not args.quiet,
        profile=cfg.profile,
    )
    if summary is None:  # not the main process of a several-process launch
        return 0
    print(format_summary(summary))
    print(f"results: {out}")
    if cfg.attack.names:
        report = run_eval_attacks(
            args, cfg, bench, task, eval_sets, model, tokenizer, formatter, out
        )
        from unlearnkit.report.attacks import format_attacks

        print(format_attacks(report))
        print(f"attacks: {out / 'attacks'}")
    return 0


def run_eval_attacks(
    args: argparse.Namespace,
    cfg: RunConfig,
    bench: Any,
    task: int | None,
    eval_sets: dict[str, Any],
    model: Any,
    tokenizer: Any,
    formatter: Any,
    out: Path,
) -> dict[str, Any]:
    """``--attacks``: each attack into ``<out>/attacks/<name>/``, recovery in
    ``<out>/attacks/attacks.json`` (against ``--before-eval`` and ``--retain-eval``)."""
    from unlearnkit.attacks import AttackContext, resolve_attacks
    from unlearnkit.attacks.runner import run_attacks
    from unlearnkit.eval.runner import select_splits

    specs = resolve_attacks(cfg.attack.names)
    sets = select_splits(eval_sets, _all_splits(cfg))
    ctx = AttackContext(
        model, tokenizer, formatter, sets, cfg.attack,
        retain_items=bench.retain(cfg.data.split, task or 1),
    )  # fmt: skip
    retain_dir = Path(cfg.eval.retain_eval) if cfg.eval.retain_eval else None
    if retain_dir is not None and retain_dir.is_file():
        retain_dir = retain_dir.parent
    return run_attacks(
        specs, ctx, cfg.eval, lambda name: out / "attacks" / name, bench.kind,
        unlearned_dir=out, before_dir=Path(args.before_eval) if args.before_eval else None,
        retain_dir=retain_dir, report_path=out / "attacks" / "attacks.json",
        profile=cfg.profile, progress=not args.quiet,
    )  # fmt: skip


def _all_splits(cfg: RunConfig) -> Any:
    """``cfg.eval`` with every split selected (ds_size kept): what the attacks may evaluate."""
    import copy

    ecfg = copy.deepcopy(cfg.eval)
    ecfg.splits = None
    return ecfg


def _fmt(value: Any) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def format_summary(summary: dict[str, Any]) -> str:
    """A plain-text table of the split metrics, the aggregates, missing metrics and timings."""
    from unlearnkit.eval.metrics import METRIC_SPECS, metric_label

    present = {m for values in summary["splits"].values() for m in values}
    names = [m for m in METRIC_SPECS if m in present]  # registry order: the paper's six first
    width = max(len(s) for s in summary["splits"]) + 2
    cell = max(6, *(len(metric_label(m)) for m in names))
    lines = [" " * width + " ".join(f"{metric_label(m):>{cell}s}" for m in names)]
    for split, values in summary["splits"].items():
        row = " ".join(f"{_fmt(values.get(m)):>{cell}s}" for m in names)
        lines.append(f"{split:<{width}}" + row)
    agg = summary["aggregates"]
    lines.append("")
    for name, spec in METRIC_SPECS.items():
        if spec.kind in ("aggregate", "mia") and name in agg:
            lines.append(f"{name:<30s}{spec.label:<14s}{_fmt(agg[name])}")
    privacy = summary.get("privacy") or {}
    if privacy:
        lines.append(f"privacy leakage: {privacy['attack']} AUC vs {privacy['auc_retain_source']}")
    for metric, reason in summary.get("missing", {}).items():
        lines.append(f"missing {metric}: {reason}")
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in summary.get("timings", {}).items())
    lines.append(f"timings: {timings}")
    return "\n".join(lines)
