"""bf16 training keeps float32 master weights: the share of weights an update moves.

Run (CUDA when available, CPU otherwise; bf16 autocast works on both)::

    PYTHONPATH=src python benchmarks/gpu_bf16_check.py [--steps 4] [--lr 1e-5]

Two unlearning runs of the same tiny Llama through ``run_unlearning`` (GA, ``--steps`` steps at
``--lr``), differing only in precision:

- ``mixed``: ``train.mixed_precision=bf16`` - the trained weights are loaded in float32
  (:func:`unlearnkit.train.common.trained_dtype`), the forward pass runs under bf16 autocast and
  AdamW updates the float32 weights;
- ``pure_bf16``: ``model.dtype=bfloat16``, ``train.mixed_precision=no`` - bf16 weights updated in
  place by AdamW, what unlearnkit did on accelerators before.

Printed: the fraction of weights whose value changed, and the mean |change|. With weights of
scale ~0.02 a bf16 value has a spacing of ~1e-4, so an AdamW step of ~lr = 1e-5 rounds away for
most weights in pure bf16, while float32 keeps every update.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.models.tiny import save_tiny_model
from unlearnkit.settings import load_config
from unlearnkit.train import run_unlearning


def _bench(root: Path) -> Path:
    bench = root / "bench"
    bench.mkdir()
    rows = [
        {"task_id": 1, "question": f"Who wrote book {i}?", "answer": f"Ann {i}."} for i in range(8)
    ]
    (bench / "forget01.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (bench / "retain90.json").write_text(
        json.dumps({"question": "Where?", "answer": "Here."}) + "\n"
    )
    return bench


def moved(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict[str, float]:
    changed, total, delta = 0, 0, 0.0
    for name, w0 in before.items():
        # the start as the run held it (bf16-rounded for pure bf16), so loading is not a move
        w1 = after[name].to(torch.float64)
        diff = (w1 - w0.to(after[name].dtype).to(torch.float64)).abs()
        changed += int((diff > 0).sum())
        total += diff.numel()
        delta += float(diff.sum())
    return {"fraction_moved": changed / total, "mean_abs_change": delta / total, "weights": total}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-5)
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "tiny"
        save_tiny_model(model, seed=0)
        bench = _bench(root)
        forget = TofuBenchmark(bench).forget("forget01", 1)
        start = load_file(str(model / "model.safetensors"))
        settings = {
            "mixed": ["train.mixed_precision=bf16", "model.dtype=bfloat16"],
            "pure_bf16": ["train.mixed_precision=no", "model.dtype=bfloat16"],
        }
        for name, extra in settings.items():
            cfg = load_config(
                None,
                [
                    "method.name=GA",
                    f"model.device={device}",
                    "train.batch_size=4",
                    "train.per_device_batch_size=4",
                    f"train.max_steps={args.steps}",
                    "train.warmup_epochs=0",
                    f"train.learning_rate={args.lr}",
                    *extra,
                ],
            )
            path = run_unlearning(cfg, forget, [], root / name, model)
            after = load_file(str(path / "model.safetensors"))
            out[name] = moved(start, after)
            out[name]["saved_dtype"] = str(next(iter(after.values())).dtype)  # type: ignore[assignment]
    print(f"device {device}, {args.steps} GA steps at lr {args.lr:g}")
    for name, r in out.items():
        print(
            f"{name:10s} moved {100 * r['fraction_moved']:.1f}% of {r['weights']} weights, "
            f"mean |change| {r['mean_abs_change']:.2e} (saved {r['saved_dtype']})"
        )
    return out


if __name__ == "__main__":
    main()
