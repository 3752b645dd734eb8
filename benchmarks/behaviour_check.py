"""Behaviour unchanged? Hashes of what a refactoring must not change, to compare two commits.

On the tiny random model (no download) and a synthetic benchmark with holdout authors:

- the saved model of ``unlearn unlearn`` for ME+GD, IDK+AP, NPO+KL and GA+GD (3 steps,
  seed 0), and for ME+GD and NPO+KL under the paper profile: sha256 of ``model.safetensors``;
- every split's JSONL of ``unlearn eval`` under the three profiles (default, paper,
  open-unlearning), GradNorm and membership inference included: sha256 of each file;
- with ``--scenarios``, every evaluated stage's JSONL of three ``unlearn run`` scenarios
  (fictitious ME+GD with a relearning and a prompt attack; fictitious NPO+KL with LoRA and
  gradient checkpointing; continual GA+GD over tasks 1 and 2): what the scenarios hand from
  training to evaluation and attacks.

Run it on the commit before and the commit after a change, and compare:

    PYTHONPATH=src python -m benchmarks.behaviour_check --out /tmp/before.json
    git checkout <after>
    PYTHONPATH=src python -m benchmarks.behaviour_check --out /tmp/after.json
    diff /tmp/before.json /tmp/after.json

One thread, float32, on the same machine: the figures are equal byte for byte or the change
changed behaviour (a different CPU may round differently, so compare on one machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

METHODS = ("ME+GD", "IDK+AP", "NPO+KL", "GA+GD")
PROFILES = ("default", "paper", "open-unlearning")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _setup(work: Path) -> tuple[Path, Path]:
    from unlearnkit.data.synth import generate_holdout, generate_synthetic
    from unlearnkit.models.tiny import save_tiny_model

    model, data = work / "tiny", work / "synth"
    save_tiny_model(model, seed=0)
    generate_synthetic(data, n_authors=10, questions_per_author=4, seed=0)
    generate_holdout(data, 2)
    return model, data


def unlearned_weights(work: Path, model: Path, data: Path) -> dict[str, str]:
    """sha256 of the saved model of each method (``unlearn unlearn``, 3 steps), under the
    default profile and (ME+GD, NPO+KL: ME's epsilon, KL over every position) the paper's."""
    out: dict[str, str] = {}
    runs = [(m, "default") for m in METHODS] + [("ME+GD", "paper"), ("NPO+KL", "paper")]
    for method, profile in runs:
        key = method if profile == "default" else f"{profile}/{method}"
        run = work / "unlearn" / key.replace("/", "-")
        cmd = [
            sys.executable, "-m", "unlearnkit", "unlearn", "--model", str(model),
            "--benchmark", str(data), "--split", "forget10", "--method", method, "--out", str(run),
            "train.max_steps=3", "train.batch_size=2", "train.per_device_batch_size=2",
            f"profile={profile}", "data.max_length=64",
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        out[key] = _sha(run / "model" / "model.safetensors")
    return out


def eval_records(work: Path, model_dir: Path, data: Path) -> dict[str, str]:
    """sha256 of every split's JSONL under each profile."""
    from unlearnkit.config import EvalConfig
    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.data.splits import TofuBenchmark
    from unlearnkit.eval.runner import evaluate
    from unlearnkit.models.loading import load_model

    model, tok = load_model(str(model_dir), dtype="float32")
    sets = TofuBenchmark(data).eval_sets("forget10", 1)
    out: dict[str, str] = {}
    for profile in PROFILES:
        cfg = EvalConfig(
            ds_size=6, nli_model=None, use_cache=False, threads=1, max_new_tokens=8,
            mia_gradnorm=True,
        )  # fmt: skip
        folder = work / "eval" / profile
        fmt = PromptFormatter(tok, "chat")
        evaluate(model, tok, sets, cfg, folder, fmt, "tofu", progress=False, profile=profile)
        for f in sorted(folder.glob("*.jsonl")):
            out[f"{profile}/{f.name}"] = _sha(f)
    return out


SCENARIO_RUNS = {
    "fictitious-ME+GD": ["--scenario", "fictitious", "--method", "ME+GD",
                         "attack.names=[relearn,hint]", "attack.relearn_steps=2"],
    "fictitious-NPO+KL-lora": ["--scenario", "fictitious", "--method", "NPO+KL",
                               "lora.enabled=true", "train.gradient_checkpointing=true"],
    "continual-GA+GD": ["--scenario", "continual", "--method", "GA+GD", "--split", "forget05",
                        "tasks=[1,2]"],
}  # fmt: skip


def scenario_records(work: Path, model: Path, data: Path) -> dict[str, str]:
    """sha256 of every evaluated stage's JSONL of a few ``unlearn run`` scenarios."""
    out: dict[str, str] = {}
    for name, extra in SCENARIO_RUNS.items():
        runs = work / "runs" / name
        cmd = [
            sys.executable, "-m", "unlearnkit", "run", "--model", str(model), "--benchmark",
            str(data), "--split", "forget10", "--out", str(runs), *extra,
            "train.max_steps=3", "train.batch_size=2", "train.per_device_batch_size=2",
            "eval.ds_size=4", "eval.max_new_tokens=8", "eval.nli_model=null",
            "eval.use_cache=false", "eval.threads=1",
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        for f in sorted(runs.glob("*/eval/*/*.jsonl")):
            out[f"{name}/{f.parent.name}/{f.name}"] = _sha(f)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file of the hashes")
    ap.add_argument("--skip-training", action="store_true", help="only the evaluation hashes")
    ap.add_argument("--scenarios", action="store_true", help="also hash scenario runs' JSONL")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, data = _setup(work)
        result = {"eval_jsonl": eval_records(work, model, data)}
        if not args.skip_training:
            result["unlearned_weights"] = unlearned_weights(work, model, data)
        if args.scenarios:
            result["scenario_jsonl"] = scenario_records(work, model, data)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
