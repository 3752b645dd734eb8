"""Measured effect of the field's last-token rule (``default`` profile) on SmolLM2.

    PYTHONPATH=src:. python -m benchmarks.ou_eos_effect [--data /work/ext/ou-run/data/locuslab/TOFU]

On TOFU forget01 (members) and holdout01 (non-members) of the side-by-side's folder
(:mod:`benchmarks.ou_setup`), with SmolLM2's chat preset: exact memorization, extraction strength
and the Min-K% / Min-K%++ / GradNorm AUCs with the answer's final EOS counted (unlearnkit before
the rule) and left out (the field's rule, now the default), per item and aggregated.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import torch

    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.data.splits import TofuBenchmark
    from unlearnkit.eval.metrics import exact_memorization, extraction_strength, mia_auc
    from unlearnkit.eval.metrics.mia import min_k_plus_plus_score, min_k_score
    from unlearnkit.eval.token_stats import answer_grad_norms, answer_token_stats
    from unlearnkit.models.loading import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/ext/ou-run/data/locuslab/TOFU"))
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--gradnorm", action="store_true", help="also GradNorm (a backward per item)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    model, tok = load_model(args.model, dtype="float32")
    model.eval()
    fmt = PromptFormatter(tok, "chat")
    sets = TofuBenchmark(args.data).eval_sets("forget01", 1)
    items = sets["forget"] + sets["holdout"]
    n = len(sets["forget"])
    qs, ans = [it.question for it in items], [it.answer for it in items]
    stats = answer_token_stats(model, fmt, qs, ans, batch_size=16, pad_id=tok.pad_token_id)

    def with_eos(t):  # noqa: ANN001, ANN202 - the statistics with the EOS counted (the old rule)
        # A copy whose field_view keeps every token: one more position, a dummy, is appended.
        pad = dataclasses.replace(
            t,
            logp=np.append(t.logp, 0.0),
            greedy_hit=np.append(t.greedy_hit, True),
            mean_logp=np.append(t.mean_logp, 0.0),
            var_logp=np.append(t.var_logp, 1.0),
        )
        return pad

    out: dict[str, dict] = {}
    for name, fn in (("exact_memorization", exact_memorization),
                     ("extraction_strength", extraction_strength)):  # fmt: skip
        new = [fn(t) for t in stats[:n]]
        old = [fn(with_eos(t)) for t in stats[:n]]
        diff = np.abs(np.subtract(new, old))
        out[name] = {
            "mean_new": float(np.mean(new)),
            "mean_old": float(np.mean(old)),
            "max_item_diff": float(diff.max()),
            "items_changed": int((diff > 0).sum()),
        }
    # extraction strength's last position: our k* = A against open-unlearning's loop (k <= A - 1)
    ours = [extraction_strength(t) for t in stats[:n]]
    loop = [extraction_strength(dataclasses.replace(t, rule="open-unlearning")) for t in stats[:n]]
    diff = np.abs(np.subtract(loop, ours))
    out["extraction_strength_loop"] = {
        "mean_ours": float(np.mean(ours)),
        "mean_open_unlearning_loop": float(np.mean(loop)),
        "items_changed": int((diff > 0).sum()),
        "max_item_diff": float(diff.max()),
    }
    scores = {"mia_min_k": min_k_score, "mia_min_k_plus_plus": min_k_plus_plus_score}
    for name, fn in scores.items():
        new = [fn(t) for t in stats]
        old = [fn(with_eos(t)) for t in stats]
        out[name] = {
            "auc_new": mia_auc(new[:n], new[n:]),
            "auc_old": mia_auc(old[:n], old[n:]),
            "max_item_diff": float(np.max(np.abs(np.subtract(new, old)))),
        }
    if args.gradnorm:
        new = answer_grad_norms(model, fmt, qs, ans, pad_id=tok.pad_token_id)
        out["mia_gradnorm"] = {"auc_new": mia_auc([-g for g in new[:n]], [-g for g in new[n:]])}
    out["wall_s"] = time.perf_counter() - start  # type: ignore[assignment]
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
