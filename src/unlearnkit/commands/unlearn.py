"""``unlearn unlearn``: make a model forget one task of a benchmark with a composed method.

Examples (dotted overrides go last)::

    unlearn unlearn --model runs/target/model --benchmark tofu --split forget01 --method ME+GD \
        --out runs/me_gd
    unlearn unlearn --config configs/methods/npo_gd.yaml --model runs/target/model method.beta=0.2
    unlearn unlearn --model M --method NPO+GD --out runs/npo --resume     # after an interruption

Several processes (GPUs; or CPUs when no GPU is visible, gloo backend)::

    accelerate launch --multi_gpu --num_processes 2 -m unlearnkit unlearn --model M ...
    torchrun --nproc_per_node 2 -m unlearnkit unlearn --model M ...

(``accelerate launch --cpu --num_processes 2`` starts a single process unless an MPI hostfile
is given; the effective batch is the same either way: train.batch_size.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unlearnkit.commands._config import add_config_arguments, config_from_args, print_config
from unlearnkit.config import RunConfig


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``finetune`` and ``unlearn`` (precedence: commands/_config.py)."""
    add_config_arguments(p)
    p.add_argument("--model", help="packaged alias, model folder or hub id")
    p.add_argument("--benchmark", help="tofu, real_world, synthetic or a folder in TOFU layout")
    p.add_argument("--split", help="forget01, forget05 or forget10")
    p.add_argument("--out", help="run folder (default <output_dir>/<derived name>)")
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --out"
    )


def default_out(cfg: RunConfig, stage: str) -> Path:
    if cfg.name:
        return Path(cfg.output_dir) / cfg.name
    bench = Path(cfg.data.benchmark).name or cfg.data.benchmark
    if stage == "finetune":
        return Path(cfg.output_dir) / f"finetune_{bench}_seed{cfg.train.seed}"
    method = cfg.method.name.replace("+", "_")
    return Path(cfg.output_dir) / (
        f"{method}_{bench}_{cfg.data.split}_task{cfg.data.task}_seed{cfg.train.seed}"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "unlearn",
        help="unlearn one task of a benchmark from a model (e.g. --method ME+GD)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(p)
    p.add_argument("--task", type=int, help="task id of the forget split (default 1)")
    p.add_argument(
        "--method", help="FORGET+REGULARIZER (ME+GD, NPO+KL, IDK+AP, ...), FORGET or LLMU"
    )
    p.add_argument("--ref-model", help="reference model for NPO/DPO/KL/LLMU (default: --model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unlearnkit.data.splits import open_benchmark
    from unlearnkit.runtime import is_main_process
    from unlearnkit.train.unlearn import run_unlearning

    cfg = config_from_args(args)
    if print_config(args, cfg):
        return 0
    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    forget = bench.forget(cfg.data.split, cfg.data.task)
    retain = bench.retain(cfg.data.split, cfg.data.task)
    out = Path(args.out) if args.out else default_out(cfg, "unlearn")
    path = run_unlearning(
        cfg, forget, retain, out, cfg.model.name, ref_model_path=args.ref_model, resume=args.resume
    )
    if is_main_process():
        print(f"model: {path}")
        print(f"log:   {out / 'train_log.jsonl'}")
    return 0
