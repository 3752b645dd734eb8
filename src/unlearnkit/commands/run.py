"""``unlearn run``: a whole scenario (fine-tune or load, unlearn, evaluate, record)."""

from __future__ import annotations

import argparse

from unlearnkit.commands._config import add_config_arguments, config_from_args, print_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario end to end: fictitious, continual, real_world or sweep",
        description="Example: unlearn run --config configs/tofu_forget01_me_gd.yaml train.seed=1",
    )
    add_config_arguments(p)
    p.add_argument("--scenario", choices=["fictitious", "continual", "real_world", "sweep"])
    p.add_argument("--method", help="e.g. ME+GD, IDK+AP, NPO+KL")
    p.add_argument("--model", help="packaged alias, folder or hub id")
    p.add_argument("--benchmark", help="tofu, real_world, synthetic or a folder")
    p.add_argument("--split", help="forget01, forget05 or forget10")
    p.add_argument("--out", help="output folder for runs (default runs/)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unlearnkit.scenarios import run_scenario

    cfg = config_from_args(args, {"output_dir": args.out} if args.out else None)
    if print_config(args, cfg):
        return 0
    result = run_scenario(cfg, resume=args.resume)
    paths = result if isinstance(result, list) else [result]
    for path in paths:
        print(f"results: {path}")
    print(f"report:  unlearn report {cfg.output_dir} --out {cfg.output_dir}/report")
    return 0
