"""Our evaluation beside open-unlearning's own evaluator, item by item, under each profile.

    PYTHONPATH=src:. python -m benchmarks.ou_side_by_side \\
        --ou-code /work/ext/open-unlearning --ou-python /work/ext/ou-venv/bin/python \\
        --work /work/ext/ou-run [--n-utility 20] [--profiles default,open-unlearning]

open-unlearning (locuslab/open-unlearning @ d3d7cf9) runs unmodified: its ``src/eval.py`` with its
own Python (a venv with its requirements), given a config dir of our own
(:mod:`benchmarks.ou_setup`: SmolLM2-135M in fp32 on the CPU, SmolLM2's chat template written as
its tags, every TOFU metric). It evaluates first the reference model (a perturbed copy of the
target), whose ``TOFU_EVAL.json`` then serves as ``retain_logs_path`` (Forget Quality, PrivLeak)
and whose weights serve the Reference attack; then the target. Ours is
:func:`unlearnkit.eval.runner.evaluate` on the same hub-layout folder with the same reference logs
as ``retain_eval`` (our reader of open-unlearning's logs). Items: TOFU forget01 (40, members)
against holdout01 (the last 2 retain90 authors, 40), and the first ``--n-utility`` items of
retain, real authors and world facts (all with ``--n-utility 0``).

Printed and written (``--out``): per metric, the number of items compared, the largest per-item
difference, how many are within 1e-4, and both aggregates; the share of identical generations;
both wall times. open-unlearning's results are reused when its logs are complete (resumable).

Skipped (exit 0, with the reason) when open-unlearning's code, its Python or the data is absent.
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

from benchmarks import ou_setup as S
from benchmarks.common import REPO_ROOT

TOL = 1e-4
SPLIT_KEYS = {"retain": "retain", "real_authors": "ra", "world_facts": "wf"}
# our attack score s (higher = member) -> open-unlearning's (it negates, labels the holdout 1)
ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm")
ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


# our prompt preset for open-unlearning's template mode (apply_chat_template false / true)
PRESET = {False: "chat", True: "chat_conversation"}


def prepare(args: argparse.Namespace) -> dict[str, Path]:
    w = args.work
    paths = {
        "data": w / "data",
        "target": w / "model-target",
        "ref": w / "model-ref",
        "configs": w / "configs",
        "ou_ref": w / "ou-ref",
        "ou_target": w / "ou-target",
    }
    if not (paths["data"] / "locuslab" / "TOFU" / "README.md").is_file():
        S.write_data(args.data_dir, paths["data"], args.n_utility or None)
    if not (paths["target"] / "model.safetensors").is_file():
        S.write_model(args.model_dir, paths["target"])
    if not (paths["ref"] / "model.safetensors").is_file():
        S.write_model(args.model_dir, paths["ref"], perturb=0.01)
    S.write_configs(paths["configs"], paths["target"], args.apply_chat_template)
    return paths


def complete(logs_path: Path, keys: tuple[str, ...]) -> bool:
    if not logs_path.is_file():
        return False
    logs = json.loads(logs_path.read_text())
    return all(k in logs for k in keys)


def run_ou(args: argparse.Namespace, paths: dict[str, Path]) -> dict[str, float | None]:
    """open-unlearning on the reference model, then on the target; returns the wall times."""
    env = dict(os.environ, **ENV, HF_DATASETS_CACHE=str(args.work / "hf-cache"))
    walls: dict[str, float | None] = {}
    jobs = [
        ("ou_ref", "tofu_retain_logs", {"model_dir": paths["ref"]}, ("forget_truth_ratio",)),
        (
            "ou_target",
            "tofu_all",
            {
                "retain_logs": paths["ou_ref"] / "TOFU_EVAL.json",
                "reference_model": paths["ref"],
            },
            ("model_utility", "mia_reference", "privleak", "forget_quality"),
        ),
    ]
    for name, suite, kw, keys in jobs:
        logs = paths[name] / "TOFU_EVAL.json"
        if complete(logs, keys):
            walls[name] = None  # reused
            continue
        cmd = S.ou_command(args.ou_python, args.ou_code, paths["configs"], suite, paths[name], **kw)
        start = time.perf_counter()
        with open(args.work / f"{name}.log", "w") as log:
            subprocess.run(cmd, check=True, env=env, cwd=paths["data"], stdout=log, stderr=log)
        walls[name] = time.perf_counter() - start
    return walls


def run_ours(args: argparse.Namespace, paths: dict[str, Path], profile: str) -> dict[str, Any]:
    import torch

    from unlearnkit.config import EvalConfig
    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.data.splits import TofuBenchmark
    from unlearnkit.eval.runner import evaluate
    from unlearnkit.models.loading import load_model
    from unlearnkit.utils import read_jsonl

    torch.set_num_threads(1)
    model, tok = load_model(str(args.model_dir), dtype="float32")  # model-target's weights
    sets = TofuBenchmark(paths["data"] / "locuslab" / "TOFU").eval_sets("forget01", 1)
    cfg = EvalConfig(
        ds_size=args.ds_size,
        nli_model=None,
        embedding_model=args.embedding,
        use_cache=False,
        # the reference logs cover every item: a capped smoke run goes without them
        retain_eval=None if args.ds_size else str(paths["ou_ref"] / "TOFU_EVAL.json"),
        threads=1,
        splits=args.splits.split(",") if args.splits else None,
        mia_gradnorm=not args.no_gradnorm,
    )
    out = args.work / f"ours-{profile}"
    names = [*sets, "holdout"] if "holdout" not in sets else list(sets)
    if args.splits:
        names = [s for s in names if s in args.splits.split(",")]
    if args.reuse_ours and (out / "summary.json").is_file():
        saved = json.loads((out / "summary.json").read_text())
        records = {s: read_jsonl(out / f"{s}.jsonl") for s in names}
        return {"summary": saved, "records": records, "wall": saved.get("ou_side_by_side_wall")}
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    fmt = PromptFormatter(tok, PRESET[args.apply_chat_template])
    summary = evaluate(
        model, tok, sets, cfg, out, fmt, "tofu", progress=False, profile=profile,
    )  # fmt: skip
    wall = time.perf_counter() - start
    summary["ou_side_by_side_wall"] = wall
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    records = {s: read_jsonl(out / f"{s}.jsonl") for s in names}
    return {"summary": summary, "records": records, "wall": wall}


def _rows(logs: dict, key: str) -> dict[int, Any]:
    return {int(k): v for k, v in logs[key]["value_by_index"].items()}


def compare(ou: dict, ours: dict[str, Any], profile: str) -> dict[str, Any]:
    """Per metric: items, max |theirs - ours|, items within TOL, aggregates."""
    rec, agg = ours["records"], ours["summary"]["aggregates"]
    splits = ours["summary"]["splits"]
    table: dict[str, dict[str, Any]] = {}

    def add(name: str, theirs: list[float], mine: list[float], a_theirs=None, a_ours=None) -> None:
        diffs = [abs(float(t) - float(o)) for t, o in zip(theirs, mine, strict=True)]
        table[name] = {
            "items": len(diffs),
            "max_diff": max(diffs) if diffs else None,
            "within_tol": sum(d <= TOL for d in diffs),
            "agg_theirs": a_theirs,
            "agg_ours": a_ours,
        }

    f = rec["forget"]
    n = len(f)
    h = rec["holdout"]
    gens: dict[str, tuple[int, int]] = {}
    missing: list[str] = []
    for section in (_forget_section, _attack_section, _utility_section):
        section(ou, rec, splits, agg, add, gens, missing, n, h)
    for key, ours_key in (("forget_quality", "forget_quality"), ("privleak", "privacy_leakage"),
                          ("model_utility", "model_utility_open_unlearning")):  # fmt: skip
        table[key] = {"agg_theirs": ou.get(key, {}).get("agg_value"), "agg_ours": agg.get(ours_key)}
    total = [sum(v[0] for v in gens.values()), sum(v[1] for v in gens.values())]
    out = {"profile": profile, "metrics": table, "generations": gens, "identical": total}
    return {**out, "missing_in_open_unlearning_logs": missing}


def _forget_section(ou, rec, splits, agg, add, gens, missing, n, h) -> None:  # noqa: ANN001
    f = rec["forget"]
    try:
        prob = _rows(ou, "forget_Q_A_Prob")
        add("forget Probability", [prob[i]["prob"] for i in range(n)],
            [r["answer_probability"] for r in f], ou["forget_Q_A_Prob"]["agg_value"],
            splits["forget"]["probability"])  # fmt: skip
        add("forget answer NLL", [prob[i]["avg_loss"] for i in range(n)],
            [r["nll_answer"] for r in f])  # fmt: skip
        para = _rows(ou, "forget_Q_A_PARA_Prob")
        add("forget paraphrase NLL", [para[i]["avg_loss"] for i in range(n)],
            [r["nll_base"] for r in f])  # fmt: skip
        pert = _rows(ou, "forget_Q_A_PERT_Prob")
        add("forget perturbed NLLs", [x for i in range(n) for x in pert[i]["avg_loss"]],
            [x for r in f for x in r["nll_perturbed"]])  # fmt: skip
        tr = _rows(ou, "forget_truth_ratio")
        add("forget Truth Ratio s = 1/R", [tr[i]["score"] for i in range(n)],
            [1 / r["truth_ratio_raw"] for r in f], ou["forget_truth_ratio"]["agg_value"],
            splits["forget"]["truth_ratio"])  # fmt: skip
        rouge = _rows(ou, "forget_Q_A_ROUGE")
        gens["forget"] = (sum(rouge[i]["generation"] == f[i]["generation"] for i in range(n)), n)
        add("forget ROUGE-L recall", [rouge[i]["rougeL_recall"] for i in range(n)],
            [r["rouge_l"] for r in f], ou["forget_Q_A_ROUGE"]["agg_value"],
            splits["forget"]["rouge_l"])  # fmt: skip
        for key in ("exact_memorization", "extraction_strength"):
            rows = _rows(ou, key)
            add(key, [rows[i]["score"] for i in range(n)], [r[key] for r in f],
                ou[key]["agg_value"], splits["forget"][key])  # fmt: skip
    except KeyError as err:
        missing.append(str(err))


def _attack_section(ou, rec, splits, agg, add, gens, missing, n, h) -> None:  # noqa: ANN001
    f = rec["forget"]
    for attack in ATTACKS:
        ou_key = f"mia_{attack}"
        if ou_key not in ou:
            missing.append(ou_key)
            continue
        theirs = [_rows(ou[ou_key], "forget")[i]["score"] for i in range(n)]
        theirs += [_rows(ou[ou_key], "holdout")[i]["score"] for i in range(len(h))]
        mine = [-r[f"{ou_key}_score"] for r in (*f, *h)]  # open-unlearning's sign
        add(f"{ou_key} score", theirs, mine, ou[ou_key]["agg_value"], agg.get(ou_key))


def _utility_section(ou, rec, splits, agg, add, gens, missing, n, h) -> None:  # noqa: ANN001
    """Utility splits on their first m items, m = the smaller of the two item counts; our
    aggregates are recomputed over those m items (and open-unlearning's 9-value MU from them)."""
    from unlearnkit.eval.metrics import model_utility_open_unlearning

    values: dict[str, dict[str, float | None]] = {}
    for split, pre in SPLIT_KEYS.items():
        if split not in rec:
            continue
        try:
            p_key = f"{pre}_Q_A_Prob" if split == "retain" else f"{pre}_Q_A_Prob_normalised"
            m = min(len(rec[split]), len(ou[p_key]["value_by_index"]))
            r_ = rec[split][:m]
            mine = {k: sum(r[k] for r in r_) / m for k in ("probability", "rouge_l", "truth_ratio")}
            values[split] = dict(mine)
            rows = _rows(ou, p_key)
            add(f"{split} Probability", [rows[i]["prob"] for i in range(m)],
                [r["probability"] for r in r_], ou[p_key]["agg_value"],
                mine["probability"])  # fmt: skip
            rows = _rows(ou, f"{pre}_Q_A_ROUGE")
            gens[split] = (sum(rows[i]["generation"] == r_[i]["generation"] for i in range(m)), m)
            add(f"{split} ROUGE-L recall", [rows[i]["rougeL_recall"] for i in range(m)],
                [r["rouge_l"] for r in r_], ou[f"{pre}_Q_A_ROUGE"]["agg_value"],
                mine["rouge_l"])  # fmt: skip
            rows = _rows(ou, f"{pre}_Truth_Ratio")
            add(f"{split} Truth Ratio s = 1/R", [rows[i]["score"] for i in range(m)],
                [1 / r["truth_ratio_raw"] for r in r_], ou[f"{pre}_Truth_Ratio"]["agg_value"],
                mine["truth_ratio"])  # fmt: skip
        except KeyError as err:
            missing.append(str(err))
    if len(values) == len(SPLIT_KEYS):
        agg["model_utility_open_unlearning"] = model_utility_open_unlearning(values)[0]


def markdown(result: dict[str, Any]) -> str:
    def fmt(x: Any) -> str:
        return "-" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))

    lines = [
        f"### profile `{result['profile']}`",
        "",
        f"identical generations: {result['identical'][0]}/{result['identical'][1]} "
        + ", ".join(f"{k} {a}/{b}" for k, (a, b) in result["generations"].items()),
        "",
        "| metric | items | max per-item diff | within 1e-4 | open-unlearning | ours |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, v in result["metrics"].items():
        lines.append(
            f"| {name} | {fmt(v.get('items'))} | {fmt(v.get('max_diff'))} | "
            f"{fmt(v.get('within_tol'))} | {fmt(v.get('agg_theirs'))} | {fmt(v.get('agg_ours'))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    home = Path.home() / ".cache" / "unlearnkit" / "models" / "smollm2-135m"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ou-code", type=Path, default=Path("/work/ext/open-unlearning"))
    ap.add_argument("--ou-python", type=Path, default=Path("/work/ext/ou-venv/bin/python"))
    ap.add_argument("--work", type=Path, default=Path("/work/ext/ou-run"))
    ap.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared/data/tofu")
    ap.add_argument("--model-dir", type=Path, default=home)
    ap.add_argument("--embedding", default="all-minilm-l6-v2")
    ap.add_argument("--n-utility", type=int, default=20, help="0: every utility item")
    ap.add_argument("--profiles", default="default,open-unlearning")
    ap.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks/results-ou-side-by-side.json"
    )
    ap.add_argument("--ds-size", type=int, default=None, help="cap ours (a smoke run)")
    ap.add_argument("--skip-ou", action="store_true", help="only reuse open-unlearning's logs")
    ap.add_argument("--splits", default=None, help="our splits, e.g. forget,holdout")
    ap.add_argument("--no-gradnorm", action="store_true", help="ours without GradNorm")
    ap.add_argument("--reuse-ours", action="store_true", help="reuse our saved evaluations")
    ap.add_argument("--ours-only", action="store_true", help="run ours only (no comparison)")
    ap.add_argument(
        "--apply-chat-template",
        action="store_true",
        help="open-unlearning's apply_chat_template: true; ours: preset chat_conversation",
    )
    args = ap.parse_args(argv)
    for what, p in (("open-unlearning's code", args.ou_code / "src" / "eval.py"),
                    ("open-unlearning's Python", args.ou_python),
                    ("TOFU data", args.data_dir / "forget01.json"),
                    ("SmolLM2 (unlearn models pull smollm2-135m)", args.model_dir)):  # fmt: skip
        if not p.exists():
            print(f"skipped: {what} not found at {p}")
            return 0
    paths = prepare(args)
    if args.ours_only:
        for profile in args.profiles.split(","):
            print(profile, f"{run_ours(args, paths, profile)['wall']:.0f} s", flush=True)
        return 0
    walls = {} if args.skip_ou else run_ou(args, paths)
    ou = json.loads((paths["ou_target"] / "TOFU_EVAL.json").read_text())
    results: dict[str, Any] = {"ou_walls": walls, "load": os.getloadavg(), "profiles": {}}
    for profile in args.profiles.split(","):
        ours = run_ours(args, paths, profile)
        res = compare(ou, ours, profile)
        res["wall_ours"] = ours["wall"]
        results["profiles"][profile] = res
        print(markdown(res), f"\nours: {ours['wall']:.0f} s", flush=True)
    print("open-unlearning walls (s):", walls)
    args.out.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
