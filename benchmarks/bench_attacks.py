"""What an attack costs: at most its own work (training steps, quantization) plus one
evaluation of what it returns.

On SmolLM2-135M (CPU, fp32) and the first ``--items`` forget items of TOFU forget01 (the
project's synthetic data when ``../shared/data`` is absent), this measures:

- ``plain``: one evaluation of the forget split (result cache off), the reference;
- for each attack: the wall time of :func:`unlearnkit.attacks.runner.run_attacks` for that attack
  alone (fingerprints before and after, the attack, its evaluation, the summary), split into
  ``attack`` (the attack's own work: relearning steps on a copy, quantizing a copy, rewriting
  the questions) and ``eval`` (evaluating the attacked model / questions);
- for ``relearn``: the same training steps alone (:func:`relearn_copy`), as the attack's budget.

The target holds when ``total <= own work + its evaluation + overhead`` with the overhead (the
copy is inside the attack's own work; what remains is two weight fingerprints and writing the
summary) under 10% of the total. Run::

    PYTHONPATH=src:. python -m benchmarks.bench_attacks --items 20 \
        --json benchmarks/results-attacks.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

from benchmarks.common import load_bench_model, machine_info, open_tofu

ATTACKS = ("relearn", "quant8", "quant4", "paraphrase", "mcq")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=20)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from unlearnkit.attacks import AttackContext, resolve_attacks
    from unlearnkit.attacks.runner import run_attacks
    from unlearnkit.attacks.weights import relearn_copy
    from unlearnkit.config import AttackConfig, EvalConfig
    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.eval.runner import evaluate

    bench, source = open_tofu()
    forget = bench.eval_sets("forget01", 1)["forget"][: args.items]
    model, tok = load_bench_model(args.model)
    model.eval()
    fmt = PromptFormatter(tok)
    cfg = EvalConfig(
        ds_size=None, max_new_tokens=args.max_new_tokens, nli_model=None, use_cache=False,
        splits=["forget"], mia_gradnorm=False, threads=args.threads,
    )  # fmt: skip
    settings = AttackConfig(relearn_steps=4, relearn_lr=1e-5, relearn_batch_size=4)
    results: dict[str, dict[str, float]] = {}
    with TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        evaluate(model, tok, {"forget": forget}, cfg, root / "plain", fmt, progress=False)
        plain = time.perf_counter() - t
        t = time.perf_counter()
        relearn_copy(model, fmt, forget[::2], steps=4, lr=1e-5, batch_size=4, seed=0)
        train_alone = time.perf_counter() - t
        for name in ATTACKS:
            ctx = AttackContext(model, tok, fmt, {"forget": forget}, settings)
            t = time.perf_counter()
            run_attacks(
                resolve_attacks([name]), ctx, cfg, lambda n: root / n, "tofu",
                unlearned_dir=root / "plain", progress=False,
            )  # fmt: skip
            total = time.perf_counter() - t
            info = json.loads((root / name / "summary.json").read_text())["attack"]
            own, ev = info["seconds_attack"], info["seconds_eval"]
            results[name] = {
                "total_s": round(total, 2),
                "attack_s": own,
                "eval_s": ev,
                "overhead_s": round(total - own - ev, 2),
                "overhead_share": round((total - own - ev) / total, 3),
                "eval_vs_plain": round(ev / plain, 2),
                "items_evaluated": len(info["source_questions"]),
            }
    out = {
        "item": "attacks",
        "data": source,
        "items": len(forget),
        "plain_eval_s": round(plain, 2),
        "relearn_training_alone_s": round(train_alone, 2),
        "attacks": results,
        "target_met": all(r["overhead_share"] < 0.10 for r in results.values()),
        "machine": machine_info(),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if out["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
