"""``unlearn run``: a whole scenario (fine-tune or load, unlearn, evaluate, record)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario end to end: fictitious, continual, real_world or sweep",
        description="Example: unlearn run --config configs/tofu_forget01_me_gd.yaml train.seed=1",
    )
    p.add_argument("--config", help="YAML experiment file (see configs/)")
    p.add_argument("--scenario", choices=["fictitious", "continual", "real_world", "sweep"])
    p.add_argument("--method", help="e.g. ME+GD, IDK+AP, NPO+KL")
    p.add_argument("--model", help="packaged alias, folder or hub id")
    p.add_argument("--benchmark", help="tofu, real_world, synthetic or a folder")
    p.add_argument("--split", help="forget01, forget05 or forget10")
    p.add_argument("--out", help="output folder for runs (default runs/)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. method.beta=0.2")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from unlearnkit.config import load_config

    shortcuts = {
        "scenario": "scenario",
        "method": "method.name",
        "model": "model.name",
        "benchmark": "data.benchmark",
        "split": "data.split",
        "out": "output_dir",
    }
    overrides = [
        f"{key}={getattr(args, attr)}"
        for attr, key in shortcuts.items()
        if getattr(args, attr, None)
    ]
    return load_config(args.config, overrides + list(args.overrides))


def run(args: argparse.Namespace) -> int:
    from unlearnkit.scenarios import run_scenario

    cfg = config_from_args(args)
    result = run_scenario(cfg, resume=args.resume)
    paths = result if isinstance(result, list) else [result]
    for path in paths:
        print(f"results: {path}")
    print(f"report:  unlearn report {cfg.output_dir} --out {cfg.output_dir}/report")
    return 0
