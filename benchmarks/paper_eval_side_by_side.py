"""Our ``paper`` profile evaluation beside the paper's own evaluation code, item by item.

    PYTHONPATH=src:. python -m benchmarks.paper_eval_side_by_side \\
        --paper-code /work/paper-code --paper-python /work/paper-venv/bin/python [--ds-size 40]

The paper's code (sail-sg/closer-look-LLM-unlearning @ b622294) runs in a subprocess with its own
Python (:mod:`benchmarks.paper_eval_worker`: the paper's ``get_dataloader`` + ``get_all_evals``
per split, on the CPU); ours is :func:`unlearnkit.eval.runner.evaluate` with ``profile="paper"``.
Both evaluate SmolLM2-135M (fp32, the packaged model: ``unlearn models pull smollm2-135m``) with
the paper's generic format (``data.prompt_preset=plain``) on TOFU forget01 task 1, retain, real
authors and world facts (``../shared/data/tofu``), each split cut to its first ``--ds-size`` items
(the paper's TOFU setting is 300), with the same embedding model (the packaged all-MiniLM-L6-v2:
the paper's paraphrase-MiniLM-L6-v2 is not available offline) and the same random BERT-base NLI
stand-in (:func:`benchmarks.bench_eval.build_nli_standin`; no NLI model is available offline).

Printed: the share of identical generations; on identical generations the largest differences of
ROUGE-L recall, Token Entropy and Cosine Similarity and the entailment labels that differ; the
largest per-item difference of the mean NLLs (answer, Truth Ratio base, perturbed answers); the
split metrics and aggregates of both (the paper's own ``get_eval_results``); both wall times and
their ratio. ``--f64`` adds the float64 evidence for the NLLs: each answer's NLL recomputed from
one unpadded forward pass, in float64 and in the paper's float32 arithmetic (``cross_entropy`` on
the transposed logits), against which both sides are measured.

Skipped (exit 0, with the reason) when the paper code or its Python is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT

SPLITS = ("forget", "retain", "real_authors", "world_facts")
TARGETS = {"identical": 0.98, "metric": 1e-6, "nll": 1e-4, "speedup": 4.0}


def run_paper(args: argparse.Namespace, data_dir: Path, nli: Path, embedding: Path, out: Path):
    """The paper's evaluation in a subprocess; returns (per-split logs, timing dict)."""
    if args.paper_results is None:
        shutil.rmtree(out, ignore_errors=True)
        cmd = [
            str(args.paper_python),
            str(REPO_ROOT / "benchmarks" / "paper_eval_worker.py"),
            "--paper-code", str(args.paper_code),
            "--model", str(args.model_dir),
            "--data-dir", str(data_dir),
            "--embedding", str(embedding),
            "--nli", str(nli),
            "--ds-size", str(args.ds_size),
            "--threads", str(args.threads),
            "--splits", ",".join(args.splits),
            "--out", str(out),
        ]  # fmt: skip
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
    else:
        out, wall = args.paper_results, None
    logs = {s: json.loads((out / f"{s}.json").read_text()) for s in args.splits}
    timing = json.loads((out / "timing.json").read_text())
    timing["process_wall"] = wall
    results = out / "results.json"  # written when all four splits ran
    return logs, timing, json.loads(results.read_text()) if results.is_file() else None


def run_ours(args: argparse.Namespace, model: Any, tok: Any, nli: Path, out: Path):
    from benchmarks.bench_eval import clear_aux_caches
    from unlearnkit.config import EvalConfig
    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.data.splits import TofuBenchmark
    from unlearnkit.eval.runner import evaluate
    from unlearnkit.utils import read_jsonl

    sets = TofuBenchmark(args.data_dir).eval_sets("forget01", 1)
    sets = {s: sets[s] for s in args.splits}
    cfg = EvalConfig(ds_size=args.ds_size, nli_model=str(nli), use_cache=False)
    clear_aux_caches()  # ours pays the auxiliary models' loading, as the paper does
    shutil.rmtree(out, ignore_errors=True)
    summary = evaluate(
        model, tok, sets, cfg, out, PromptFormatter(tok, "plain"), "tofu", progress=False,
        profile="paper",
    )  # fmt: skip
    records = {s: read_jsonl(out / f"{s}.jsonl") for s in args.splits}
    return sets, records, summary


def f64_evidence(model: Any, tok: Any, sets: dict, cap: int) -> dict[str, list[tuple]]:
    """Per split, per item: (float64 NLL, the paper's float32 transposed NLL) of the answer, both
    from one unpadded forward pass of the joint sequence in float32."""
    import torch
    import torch.nn.functional as F

    from unlearnkit.data.formatting import PromptFormatter

    fmt = PromptFormatter(tok, "plain")
    out: dict[str, list[tuple]] = {}
    with torch.inference_mode():
        for name, items in sets.items():
            rows = []
            for it in items[:cap]:
                ids, n_q = fmt.encode_joint(it.question, it.answer)
                logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]  # (T - 1, V)
                target = torch.tensor(ids[1:])
                target[: n_q - 1] = -100  # position t predicts token t + 1
                keep = target != -100
                nll64 = -torch.log_softmax(logits.double(), -1)[keep].gather(1, target[keep, None])
                f32 = F.cross_entropy(
                    logits[None].transpose(1, 2), target[None], reduction="none"
                ).sum()  # the paper's layout: (1, V, T - 1), float32
                rows.append((float(nll64.mean()), float(f32) / int(keep.sum())))
            out[name] = rows
    return out


def compare(paper: dict, ours: dict, cap: int, f64: dict | None) -> dict[str, Any]:
    n = same = 0
    worst = {"rouge_l": 0.0, "token_entropy": 0.0, "cosine_similarity": 0.0}
    nll = {"answer": 0.0, "base": 0.0, "perturbed": 0.0}
    nli_diff: list[str] = []
    over = 0  # NLL values more than 1e-4 apart
    ev = {"paper_vs_f64": 0.0, "ours_vs_f64": 0.0, "f32T_vs_f64": 0.0}
    for s in ours:
        p, o = paper[s], ours[s]
        for i, rec in enumerate(o[:cap]):
            n += 1
            pairs = [
                ("answer", p["avg_gt_loss"][i], rec["nll_answer"]),
                ("base", p["avg_paraphrased_loss"][i], rec["nll_base"]),
            ] + [
                ("perturbed", a, b)
                for a, b in zip(p["average_perturb_loss"][i], rec["nll_perturbed"], strict=True)
            ]
            for key, a, b in pairs:
                nll[key] = max(nll[key], abs(a - b))
                over += abs(a - b) > TARGETS["nll"]
            if f64 is not None:
                ref, f32t = f64[s][i]
                ev["paper_vs_f64"] = max(ev["paper_vs_f64"], abs(p["avg_gt_loss"][i] - ref))
                ev["ours_vs_f64"] = max(ev["ours_vs_f64"], abs(rec["nll_answer"] - ref))
                ev["f32T_vs_f64"] = max(ev["f32T_vs_f64"], abs(f32t - ref))
            if p["generated_text"][i][1] != rec["generation"]:
                continue
            same += 1
            for key, pkey in (
                ("rouge_l", "rougeL_recall"),
                ("token_entropy", "token_entropy"),
                ("cosine_similarity", "cosine_similarity"),
            ):
                worst[key] = max(worst[key], abs(float(p[pkey][i]) - float(rec[key])))
            if (p["entailment_labels"][i] == "entailment") != bool(rec["entailment"]):
                nli_diff.append(f"{s}[{i}]")
    return {
        "items": n,
        "identical": same,
        "metric_max_diff": worst,
        "nll_max_diff": nll,
        "nll_values_over_1e-4": over,
        "entailment_differs": nli_diff,
        "f64": ev if f64 is not None else None,
    }


PAPER_NAMES = {"forget": "Forget", "retain": "Retain", "real_authors": "Real Authors",
               "world_facts": "Real World"}  # fmt: skip
METRIC_NAMES = {"rouge_l": "ROUGE", "probability": "Probability", "truth_ratio": "Truth Ratio",
                "token_entropy": "Token Entropy", "cosine_similarity": "Cosine Similarity",
                "entailment": "Entailment Score"}  # fmt: skip


def aggregate_diff(paper_results: dict[str, float], summary: dict[str, Any]) -> dict[str, float]:
    diffs = {}
    for split, values in summary["splits"].items():
        for metric, value in values.items():
            if metric not in METRIC_NAMES:  # ours only (ROUGE-1, ...): the paper has no column
                continue
            key = f"{PAPER_NAMES[split]} {METRIC_NAMES[metric]}"
            if value is not None and key in paper_results:
                diffs[key] = abs(float(paper_results[key]) - value)
    for ours_key, key in (
        ("model_utility", "Model Utility"),
        ("forget_efficacy", "Forget Efficacy"),
    ):
        diffs[key] = abs(float(paper_results[key]) - summary["aggregates"][ours_key])
    return diffs


def main() -> int:
    from unlearnkit.utils import default_data_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper-code", type=Path, default=Path("/work/paper-code"))
    ap.add_argument("--paper-python", type=Path, default=Path(sys.executable))
    ap.add_argument("--ds-size", type=int, default=300, help="items per split (paper: 300)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=default_data_root() / "tofu")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/paper_side_by_side"))
    ap.add_argument(
        "--paper-results",
        type=Path,
        help="reuse a finished worker output folder instead of running the paper's code again "
        "(its wall time is then the one recorded there)",
    )
    ap.add_argument("--f64", action="store_true", help="float64 evidence for the NLLs")
    ap.add_argument("--splits", default=",".join(SPLITS), help="a subset of " + ",".join(SPLITS))
    args = ap.parse_args()
    args.splits = args.splits.split(",")
    if not set(args.splits) <= set(SPLITS):
        ap.error(f"--splits: choose from {','.join(SPLITS)}")
    if not (args.paper_code / "metrics" / "metrics.py").is_file():
        print(f"skipped: no paper code at {args.paper_code}")
        return 0
    if not args.paper_python.is_file():
        print(f"skipped: no Python at {args.paper_python}")
        return 0
    if not (args.data_dir / "forget01_perturbed.json").is_file():
        print(f"skipped: no TOFU data at {args.data_dir}")
        return 0

    import torch

    from benchmarks.bench_eval import build_nli_standin
    from benchmarks.common import load_bench_model
    from unlearnkit.eval.metrics.similarity import resolve_embedding_model
    from unlearnkit.models.packaged import pull

    torch.set_num_threads(args.threads)
    args.model_dir = pull("smollm2-135m")
    args.data_dir = args.data_dir.resolve()
    out = args.out.resolve()
    nli = build_nli_standin(out / "nli-standin", "base")
    embedding = Path(resolve_embedding_model("all-minilm-l6-v2"))
    paper, paper_timing, paper_results = run_paper(
        args, args.data_dir, nli, embedding, out / "paper"
    )
    model, tok = load_bench_model(str(args.model_dir))
    cpu_start = time.process_time()
    sets, ours, summary = run_ours(args, model, tok, nli, out / "ours")
    ours_cpu = time.process_time() - cpu_start
    cap = args.ds_size
    f64 = f64_evidence(model, tok, sets, cap) if args.f64 else None
    report = compare(paper, ours, cap, f64)
    if paper_results is not None:
        report["aggregate_max_diff"] = max(aggregate_diff(paper_results, summary).values())
    report["paper_s"] = paper_timing["total"]
    report["ours_s"] = summary["timings"]["total"]
    report["speedup"] = report["paper_s"] / report["ours_s"]
    # CPU seconds too: on a shared machine the wall times depend on the other processes' load.
    report["paper_cpu_s"] = paper_timing.get("cpu_total")
    report["ours_cpu_s"] = ours_cpu
    report["paper_timing"] = paper_timing
    report["ours_timing"] = summary["timings"]
    (out / "report.json").write_text(json.dumps(report, indent=2))

    n, same = report["items"], report["identical"]
    print(f"items {n} ({', '.join(f'{s} {len(ours[s][:cap])}' for s in args.splits)})")
    print(f"identical generations: {same}/{n} = {same / n:.1%} (target >= 98%)")
    for key, value in report["metric_max_diff"].items():
        print(f"max |diff| {key} on identical generations: {value:.2e} (target 1e-6)")
    print(f"entailment labels differing on identical generations: {report['entailment_differs']}")
    for key, value in report["nll_max_diff"].items():
        print(f"max |diff| mean NLL {key}: {value:.2e} (target 1e-4)")
    print(f"NLL values more than 1e-4 apart: {report['nll_values_over_1e-4']}")
    if f64 is not None:
        ev = report["f64"]
        print(
            "answer NLL vs float64 of an unpadded pass: paper {paper_vs_f64:.2e}, ours "
            "{ours_vs_f64:.2e}, the paper's float32 transposed arithmetic {f32T_vs_f64:.2e}".format(
                **ev
            )
        )
    if "aggregate_max_diff" in report:
        print(f"max |diff| split metrics and aggregates: {report['aggregate_max_diff']:.2e}")
    print(
        f"wall: paper {report['paper_s']:.1f} s, ours {report['ours_s']:.1f} s, "
        f"ours {report['speedup']:.2f}x faster (target >= 4x)"
    )
    if report["paper_cpu_s"]:
        print(
            f"CPU: paper {report['paper_cpu_s']:.1f} s, ours {ours_cpu:.1f} s, "
            f"ratio {report['paper_cpu_s'] / ours_cpu:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
