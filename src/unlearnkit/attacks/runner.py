"""Run attacks: each attack's copy evaluated by the ordinary evaluation runner, then recovery.

:func:`run_attacks` runs each attack, evaluates what it returns with
:func:`unlearnkit.eval.runner.evaluate` (the same engine, metrics and result cache as any
evaluation; the splits of ``attack.splits``, no Forget Quality: the retain model's truth ratios
belong to the plain questions), adds the attack's facts to its ``summary.json`` (``attack``:
budget, kernels, seconds spent attacking and evaluating, the source item of each evaluated forget
item; ``aggregates.recovery_<metric>``) and writes the run's recovery report
(:func:`unlearnkit.attacks.recovery.attacks_report`) to ``attacks.json``. The model under
evaluation is fingerprinted before and after every attack; a change is an error.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unlearnkit.attacks.base import AttackContext, AttackSpec
from unlearnkit.attacks.prompts import mc_accuracy
from unlearnkit.attacks.recovery import RECOVERY_METRICS, attacks_report
from unlearnkit.config import EvalConfig
from unlearnkit.eval.cache import weights_fingerprint
from unlearnkit.utils import atomic_write_json, read_json, read_jsonl


def attack_eval_config(eval_cfg: EvalConfig, splits: list[str], available: list[str]) -> EvalConfig:
    cfg = copy.deepcopy(eval_cfg)
    cfg.splits = [s for s in splits if s in available]
    if not cfg.splits:
        raise ValueError(
            f"attack.splits {splits} names none of the evaluation splits {', '.join(available)}"
        )
    cfg.retain_eval = None
    cfg.mia_gradnorm = False
    return cfg


def run_attack(
    spec: AttackSpec,
    ctx: AttackContext,
    eval_cfg: EvalConfig,
    out_dir: Path,
    benchmark_kind: str,
    *,
    profile: str = "default",
    progress: bool = True,
) -> dict[str, Any]:
    """Run one attack and evaluate its outcome into ``out_dir``; returns the summary."""
    from unlearnkit.eval.runner import evaluate

    t0 = time.perf_counter()
    attacked = spec.run(ctx)
    t_attack = time.perf_counter() - t0
    cfg = attack_eval_config(eval_cfg, ctx.settings.splits, list(attacked.eval_sets))
    t1 = time.perf_counter()
    summary = evaluate(
        attacked.model, ctx.tokenizer, attacked.eval_sets, cfg, out_dir, ctx.formatter,
        benchmark_kind, model_name=f"{spec.name} attack", progress=progress, profile=profile,
    )  # fmt: skip
    t_eval = time.perf_counter() - t1
    # Drop the copy now (reference counting frees it: a gc.collect() here would cost seconds
    # with transformers' many objects loaded, more than a small model's whole attack).
    attacked.model = None  # type: ignore[assignment]
    forget = ctx.forget
    summary["attack"] = {
        "name": spec.name,
        "kind": spec.kind,
        "description": spec.description,
        "phrase": spec.phrase,
        "budget": attacked.budget,
        "kernels": attacked.kernels,
        "seconds_attack": round(t_attack, 3),
        "seconds_eval": round(t_eval, 3),
        "source_questions": [forget[i].question for i in attacked.sources],
    }
    if spec.name == "mcq":
        records = read_jsonl(Path(out_dir) / f"{ctx.forget_split}.jsonl")
        summary["splits"][ctx.forget_split]["mc_accuracy"] = mc_accuracy(records)
    atomic_write_json(Path(out_dir) / "summary.json", summary)
    return summary


def run_attacks(
    specs: list[AttackSpec],
    ctx: AttackContext,
    eval_cfg: EvalConfig,
    out_for: Callable[[str], Path],
    benchmark_kind: str,
    *,
    unlearned_dir: Path,
    before_dir: Path | None = None,
    retain_dir: Path | None = None,
    report_path: Path | None = None,
    profile: str = "default",
    progress: bool = True,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``specs`` on ``ctx.model`` (never changed), then the recovery report.

    ``out_for(name)``: the evaluation folder of attack ``name``. ``unlearned_dir`` /
    ``before_dir`` / ``retain_dir``: evaluation folders (their ``forget.jsonl``) of the attacked
    model, the model before unlearning and the retain model. ``on_done(name, summary)`` is called
    with each attack's final summary (e.g. to record it in the results store).
    """
    fingerprint = weights_fingerprint(ctx.model)
    dirs: dict[str, Path] = {}
    for spec in specs:
        dirs[spec.name] = Path(out_for(spec.name))
        run_attack(
            spec, ctx, eval_cfg, dirs[spec.name], benchmark_kind, profile=profile,
            progress=progress,
        )  # fmt: skip
        if weights_fingerprint(ctx.model) != fingerprint:
            raise RuntimeError(f"attack '{spec.name}' changed the model under evaluation")
    return write_attacks_report(
        dirs, unlearned_dir, before_dir, retain_dir, report_path, ctx.forget_split, on_done
    )


def write_attacks_report(
    dirs: dict[str, Path],
    unlearned_dir: Path,
    before_dir: Path | None = None,
    retain_dir: Path | None = None,
    report_path: Path | None = None,
    forget_split: str = "forget",
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The recovery report of evaluated attacks (``dirs``: name -> evaluation folder), written
    into each attack's ``summary.json`` and to ``report_path``; also recomputes it from disk."""
    from unlearnkit.attacks.base import ATTACK_SPECS

    report = attacks_report(dirs, unlearned_dir, before_dir, retain_dir)
    for name, folder in dirs.items():
        path = folder / "summary.json"
        summary = read_json(path)
        summary["attack"]["recovery"] = report["attacks"][name]
        for metric in RECOVERY_METRICS:
            recovered = report["attacks"][name][metric]["recovery"]
            summary["aggregates"][f"recovery_{metric}"] = recovered
        atomic_write_json(path, summary)
        if on_done is not None:
            on_done(name, summary)
    summaries = {name: read_json(d / "summary.json") for name, d in dirs.items()}
    report["phrases"] = {
        name: s["attack"].get("phrase")
        or (ATTACK_SPECS[name].phrase if name in ATTACK_SPECS else f"the {name} attack")
        for name, s in summaries.items()
    }
    report["extra_metrics"] = {}  # an attack's own metrics (mcq: mc_accuracy)
    for name, s in summaries.items():
        forget = s["splits"].get(forget_split, {})
        if "mc_accuracy" in forget:
            report["extra_metrics"][name] = {"mc_accuracy": forget["mc_accuracy"]}
    report["seconds"] = {
        name: {"attack": s["attack"]["seconds_attack"], "eval": s["attack"]["seconds_eval"]}
        for name, s in summaries.items()
    }
    if report_path is not None:
        atomic_write_json(report_path, report)
    return report
