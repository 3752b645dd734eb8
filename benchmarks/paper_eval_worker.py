"""Run the evaluation of the paper's public code (sail-sg/closer-look-LLM-unlearning) on TOFU.

Started by :mod:`benchmarks.paper_eval_side_by_side` in a subprocess, with the paper's Python
(the paper code is never imported into unlearnkit and never copied into this repository). Only
the standard library is imported at the top: the paper's environment need not have unlearnkit.

What is changed around the paper's code, and nothing inside it:

* ``tokenizer.batch_encode_plus`` (removed in transformers 5) is restored as a call of the
  tokenizer itself, which is what it did;
* the paper hard-codes ``device=torch.device('cuda')`` for its NLI pipeline and its sentence
  embedder: both are created on the CPU here, from local folders (no hub access): the embedding
  model our side uses and the same NLI stand-in (``--nli``), or no NLI at all;
* a ``config/model_config.yaml`` in a scratch working folder adds the generic model family
  (``Question: {q}\\nAnswer: {a}``: question_start_tag ``"Question: "``, question_end_tag
  ``"\\n"``, answer_tag ``"Answer: "``) beside the paper's own families, and the forget split's
  task data is written there as ``data/forget_perturbed.json`` (the rows of ``--task``), as
  the paper's continual loop does; every split's file is cut to its first ``--ds-size`` rows
  (see :func:`prepare_workdir`).

Writes ``<out>/<split>.json`` (the paper's ``eval_logs`` of that split) and ``<out>/timing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

GENERIC_FAMILY = {
    "hf_key": "local",
    "question_start_tag": "Question: ",
    "question_end_tag": "\n",
    "answer_tag": "Answer: ",
}

# split name -> (eval_task, data file stem, Truth Ratio base key), as in the paper's tofu.yaml.
SPLITS = {
    "retain": ("eval_log", "retain_perturbed", "paraphrased_answer"),
    "real_authors": ("eval_real_author_wo_options", "real_authors_perturbed", "answer"),
    "world_facts": ("eval_real_world_wo_options", "world_facts_perturbed", "answer"),
    "forget": ("eval_log_forget", "forget_perturbed", "paraphrased_answer"),
}


def read_rows(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def prepare_workdir(
    work: Path, paper_code: Path, data_dir: Path, split: str, task: int, ds_size: int | None
) -> Path:
    """The scratch folder the paper code runs in; returns its data folder.

    Each split's file is written there cut to its first ``ds_size`` rows (the forget split: the
    rows of ``task``). The paper's ``ds_size`` caps the items but its real-author and world-fact
    branches read the reference sentences of the whole file and pair them by position, which
    fails on fewer items than rows: cutting the files keeps subsets runnable and changes nothing
    for the full item set.
    """
    import yaml

    (work / "config").mkdir(parents=True, exist_ok=True)
    families = yaml.safe_load((paper_code / "config" / "model_config.yaml").read_text())
    families["generic"] = GENERIC_FAMILY
    (work / "config" / "model_config.yaml").write_text(yaml.safe_dump(families))
    data = work / "data"
    data.mkdir(exist_ok=True)
    for name, (_, stem, _) in SPLITS.items():
        if name == "forget":
            rows = read_rows(data_dir / f"{split}_perturbed.json")
            rows = [r for r in rows if int(json.loads(r)["task_id"]) == task]
        else:
            rows = read_rows(data_dir / f"{stem}.json")
        (data / f"{stem}.json").write_text("\n".join(rows[:ds_size]) + "\n")
    return data


def patch_paper(metrics_mod, embedding: str, nli: str | None) -> None:
    """CPU and local-folder versions of the paper's two auxiliary models, and the tokenizer shim."""
    import transformers
    from sentence_transformers import SentenceTransformer

    def batch_encode_plus(self, texts, **kwargs):  # transformers 5 removed it; same call
        return self(texts, **kwargs)

    transformers.PreTrainedTokenizerBase.batch_encode_plus = batch_encode_plus

    def embedder(_name, device=None):
        return SentenceTransformer(embedding, device="cpu")

    class NoNLI:
        def __call__(self, pairs):
            return [{"label": "none"} for _ in pairs]

    def nli_pipeline(task, model=None, device=None):
        if nli is None:
            return NoNLI()
        return transformers.pipeline(task, model=nli, device="cpu")

    metrics_mod.SentenceTransformer = embedder
    metrics_mod.pipeline = nli_pipeline


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper-code", required=True, type=Path)
    ap.add_argument("--model", required=True, type=Path, help="model folder (transformers)")
    ap.add_argument("--data-dir", required=True, type=Path, help="TOFU folder")
    ap.add_argument("--embedding", required=True, type=Path, help="sentence-transformers folder")
    ap.add_argument("--nli", type=Path, default=None, help="NLI classifier folder (default: none)")
    ap.add_argument("--split", default="forget01")
    ap.add_argument("--task", type=int, default=1)
    ap.add_argument("--ds-size", type=int, default=300)
    ap.add_argument("--splits", default=",".join(SPLITS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument(
        "--results-only",
        action="store_true",
        help="only (re)compute results.json from the split logs already in --out",
    )
    args = ap.parse_args()

    paper_code = args.paper_code.resolve()
    data_dir = args.data_dir.resolve()
    out = args.out.resolve()
    model_dir, embedding = args.model.resolve(), str(args.embedding.resolve())
    nli = str(args.nli.resolve()) if args.nli else None
    out.mkdir(parents=True, exist_ok=True)
    work = out / "workdir"
    data = prepare_workdir(work, paper_code, data_dir, args.split, args.task, args.ds_size)
    os.chdir(work)  # the paper reads config/model_config.yaml relative to the working folder
    sys.path[:] = [str(paper_code)] + [p for p in sys.path[1:] if p]
    if args.results_only:
        import metrics.metrics as paper_metrics

        write_results(paper_metrics, out)
        return 0

    import torch

    torch.set_num_threads(args.threads)
    import metrics.metrics as paper_metrics  # the paper's module
    from transformers import AutoModelForCausalLM, AutoTokenizer

    patch_paper(paper_metrics, embedding, nli)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    cfg = SimpleNamespace(
        model_family="generic",
        generation=SimpleNamespace(max_length=200, max_new_tokens=None),
        ds_size=args.ds_size,
        batch_size=30,
    )
    timing: dict[str, float] = {}
    cpu_start = time.process_time()
    for name in args.splits.split(","):
        eval_task, stem, base_key = SPLITS[name]
        folder = str(data)
        start = time.perf_counter()
        loaders = paper_metrics.get_dataloader(
            cfg, eval_task, tokenizer, folder, stem, "question", "answer", base_key,
            "perturbed_answer",
        )  # fmt: skip
        logs = paper_metrics.get_all_evals(
            cfg, model, tokenizer, folder, stem, eval_task, *loaders, True
        )
        timing[name] = time.perf_counter() - start
        (out / f"{name}.json").write_text(json.dumps(logs))
        print(f"{name}: {timing[name]:.1f} s", flush=True)
    timing["total"] = sum(timing.values())
    timing["cpu_total"] = time.process_time() - cpu_start  # this process's CPU seconds
    (out / "timing.json").write_text(json.dumps(timing))
    if all((out / f"{name}.json").is_file() for name in SPLITS):
        write_results(paper_metrics, out)
    return 0


def write_results(paper_metrics, out: Path) -> None:
    """``results.json``: the paper's own ``get_eval_results`` (split metrics, Model Utility,
    Forget Efficacy) over the four splits' logs."""
    logs = {
        f"{eval_task}.json": json.loads((out / f"{name}.json").read_text())
        for name, (eval_task, _, _) in SPLITS.items()
    }
    results = paper_metrics.get_eval_results(logs)
    (out / "results.json").write_text(json.dumps({k: float(v) for k, v in results.items()}))


if __name__ == "__main__":
    raise SystemExit(main())
