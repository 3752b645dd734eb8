"""``unlearn finetune``: build the model to unlearn (TOFU protocol).

The target model is trained on every fictitious author (``finetune_set``); with
``--retain-model`` on every author but those of ``--split``'s task 1 (or ``data.task``): the
retain model that anchors Forget Quality, as TOFU's retain99/95/90. Defaults from TOFU: lr
1e-5, 5 epochs, batch 32, weight decay 0.01.

Examples::

    unlearn finetune --model smollm2-135m --benchmark tofu --out runs/target
    unlearn finetune --model smollm2-135m --benchmark tofu --split forget01 --retain-model \\
        --out runs/retain99
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unlearnkit.commands._config import config_from_args, print_config
from unlearnkit.commands.unlearn import add_common_arguments, default_out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a base model on a fictitious benchmark (the model to unlearn)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(p)
    p.add_argument(
        "--retain-model",
        action="store_true",
        help="train on every author but those of --split's task (the retain model of Forget "
        "Quality)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unlearnkit.data.splits import TofuBenchmark, open_benchmark
    from unlearnkit.runtime import is_main_process
    from unlearnkit.train.finetune import run_finetune

    cfg = config_from_args(args)
    if print_config(args, cfg):
        return 0
    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    if not isinstance(bench, TofuBenchmark):
        raise ValueError(
            f"finetune needs a fictitious benchmark in TOFU layout (tofu, synthetic or a folder); "
            f"'{cfg.data.benchmark}' is a {bench.kind} benchmark"
        )
    items = (
        bench.retain_model_set(cfg.data.split, cfg.data.task)
        if args.retain_model
        else bench.finetune_set()
    )
    out = Path(args.out) if args.out else default_out(cfg, "finetune")
    path = run_finetune(cfg, items, out, resume=args.resume)
    if is_main_process():
        print(f"model: {path}")
        print(f"log:   {out / 'train_log.jsonl'}")
    return 0
