"""Unlearning runs of the paper's own ``forget.py`` beside ``--profile paper``, step by step.

    PYTHONPATH=src:. python -m benchmarks.paper_train_side_by_side \\
        --paper-code /work/ext/paper-code --paper-python /work/ext/paper-venv/bin/python \\
        [--cases ME+GD,IDK+AP,NPO+KL,GA+GD,GA+GD:lora,ME+GD:continual] \\
        [--epochs 2] [--max-length 500] [--dtype float64]

The paper's code (sail-sg/closer-look-LLM-unlearning @ b622294) runs in a subprocess with its own
Python and transformers 4.43.0, as its ``requirements.txt`` pins (:mod:`benchmarks.
paper_train_worker`: its ``forget.py`` on the CPU in one process, without DeepSpeed or torchrun;
the shims around it are listed there). Ours is :func:`unlearnkit.train.unlearn.run_unlearning`
with ``profile=paper``, in this process. Both train SmolLM2-135M (the packaged model, in
``--dtype``) with the paper's generic format (``data.prompt_preset=plain``) on TOFU forget01
task 1 (``../shared/data/tofu``), the paper's refusal file (``data/idontknow.jsonl`` of its
repository), batch 4 x 8 accumulation steps (the paper's 32: 2 GPUs x 4 x 4), lr 1e-5, and the
method settings of the paper's scripts (ME+GD: no question mask, forget_coeff 0.1; the others
masked, 1.0; the continual ME+GD 1.0 with the reference the previous task's model, since its
script leaves ``fix_ref_model`` empty).

Cases: a method name; ``<method>:lora`` (LoRA r 8, alpha 32, on every linear layer, dropout
``--lora-dropout``, default 0: the two codes draw their dropout masks from different random
streams; the paper's initial adapters, also drawn from its own stream, are copied into ours
before the first step, and their difference is reported); ``ME+GD:continual`` (tasks 1 then 2
of the continual script, ``TASK_LIST=1,2``: the paper's second run starts from its first run's
checkpoint, ours from our first run's model).

Compared, per micro-batch: the forget and regularization losses (the paper's ``get_loss``
values against our method's parts); per optimizer step: every trainable weight (the paper's
saved after each step, read back by a callback of ours after the same step), and the item order
(the indices the paper's dataset was asked for against our ``EpochOrderDataset``). Printed and
written as JSON: the largest loss difference, the largest weight difference per step beside the
largest change of any weight in that step, and both wall times.

Skipped (exit 0, with the reason) when the paper's code or its Python is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT

DEFAULT_CASES = "ME+GD,IDK+AP,NPO+KL,GA+GD,GA+GD:lora,ME+GD:continual"


def parse_case(case: str) -> dict[str, Any]:
    method, _, kind = case.partition(":")
    if kind not in ("", "lora", "continual"):
        raise ValueError(f"case '{case}': the suffix must be :lora or :continual")
    if kind == "continual" and method != "ME+GD":
        raise ValueError("only ME+GD has a continual script in the paper's code")
    return {
        "name": case,
        "method": method,
        "lora": kind == "lora",
        "continual": kind == "continual",
    }


def run_paper(args: argparse.Namespace, case: dict, out: Path, task: int) -> dict:
    """The paper's ``forget.py`` for one task in a subprocess; returns its record."""
    record = out / "record.json"
    if args.reuse and record.is_file():
        return json.loads(record.read_text())
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [
        str(args.paper_python), str(REPO_ROOT / "benchmarks" / "paper_train_worker.py"),
        "--paper-code", str(args.paper_code),
        "--model", str(args.model_dir),
        "--data-dir", str(args.data_dir),
        "--out", str(out),
        "--method", case["method"],
        "--scenario", "continual" if case["continual"] else "tofu",
        "--tasks", "1,2" if case["continual"] else "1",
        "--task", str(task),
        "--epochs", str(args.epochs),
        "--max-length", str(args.max_length),
        "--dtype", args.dtype,
        "--save-root", str(out.parent / "paper-results"),
        "--threads", str(args.threads),
        "--lora-dropout", str(args.lora_dropout),
    ]  # fmt: skip
    if case["lora"]:
        cmd.append("--lora")
    if task > 1:  # the first task's run already wrote the 4.43 model folder
        cmd += ["--legacy-model", str(out.parent / "paper-task1" / "workdir" / "model")]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="false")
    start = time.perf_counter()
    with open(out.parent / f"paper-task{task}.log", "w") as log:
        subprocess.run(cmd, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
    rec = json.loads(record.read_text())
    rec["process_wall_s"] = time.perf_counter() - start
    record.write_text(json.dumps(rec, indent=1))
    return rec


def _weights(model: Any) -> dict[str, Any]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def make_recorder(paper_dir: Path, lora: bool) -> tuple[Any, dict]:
    """A callback comparing our trainable weights with the paper's after every step."""
    import torch
    from transformers import TrainerCallback

    result: dict[str, Any] = {"steps": []}

    class Compare(TrainerCallback):
        before: dict[str, torch.Tensor] = {}

        def on_train_begin(self, targs, state, control, model=None, **kw):
            result["t_train_begin"] = time.perf_counter()
            ours = _weights(model)
            if lora:  # start from the paper's adapters (each code draws them from its own RNG)
                theirs = torch.load(paper_dir / "weights-0.pt")
                if set(theirs) != set(ours):
                    raise SystemExit(f"LoRA names differ: {sorted(set(theirs) ^ set(ours))[:4]}")
                diff = max(float((theirs[n] - p).abs().max()) for n, p in ours.items())
                result["lora_init_max_abs_diff_before_copy"] = diff
                with torch.no_grad():
                    for n, p in ours.items():
                        p.copy_(theirs[n])
            self.before = {n: p.detach().clone() for n, p in ours.items()}

        def on_optimizer_step(self, targs, state, control, model=None, lr_scheduler=None, **kw):
            step = state.global_step + 1  # counted after this event
            path = paper_dir / f"grads-{step}.pt"
            theirs = torch.load(path)
            ours = {n: p.grad for n, p in _weights(model).items() if p.grad is not None}
            if set(theirs) != set(ours):
                raise SystemExit(f"gradient names differ: {sorted(set(theirs) ^ set(ours))[:4]}")
            result.setdefault("grads", []).append(
                {
                    "step": step,
                    "max_abs_grad_diff": max(
                        float((theirs[n] - g).abs().max()) for n, g in ours.items()
                    ),
                    "max_abs_grad": max(float(g.abs().max()) for g in ours.values()),
                    "lr_used": lr_scheduler.get_last_lr()[0],
                }
            )

        def on_step_end(self, targs, state, control, model=None, lr_scheduler=None, **kw):
            step = state.global_step
            theirs = torch.load(paper_dir / f"weights-{step}.pt")
            ours = _weights(model)
            if set(theirs) != set(ours):
                raise SystemExit(f"weight names differ: {sorted(set(theirs) ^ set(ours))[:4]}")
            worst, where, moved = 0.0, "", 0.0
            for n, p in ours.items():
                d = float((theirs[n] - p.detach()).abs().max())
                if d > worst:
                    worst, where = d, n
                moved = max(moved, float((p.detach() - self.before[n]).abs().max()))
            self.before = {n: p.detach().clone() for n, p in ours.items()}
            lr = lr_scheduler.get_last_lr()[0] if lr_scheduler is not None else None
            result["steps"].append(
                {
                    "step": step,
                    "max_abs_weight_diff": worst,
                    "where": where,
                    "max_abs_weight_change_this_step": moved,
                    "lr_next": lr,
                    "t": time.perf_counter(),
                }
            )
            print(f"  step {step}: max |paper - ours| weight {worst:.3e} ({where}); "
                  f"largest change this step {moved:.3e}", flush=True)  # fmt: skip

    return Compare(), result


def run_ours(args: argparse.Namespace, case: dict, paper_dir: Path, out: Path, task: int) -> dict:
    """``run_unlearning`` under the paper profile; returns the recorded figures."""
    from unlearnkit.data.splits import TofuBenchmark
    from unlearnkit.methods.compose import Method
    from unlearnkit.settings import load_config
    from unlearnkit.train.schedule import EpochOrderDataset
    from unlearnkit.train.unlearn import reference_for_task, run_unlearning

    overrides = [
        "profile=paper",
        f"method.name={case['method']}",
        "data.prompt_preset=plain",
        f"data.refusals={args.paper_code / 'data' / 'idontknow.jsonl'}",
        f"data.max_length={args.max_length}",
        f"train.epochs={args.epochs}",
        "train.batch_size=32",
        "train.per_device_batch_size=4",
        "train.learning_rate=1e-5",
        "train.mixed_precision=no",
        "model.device=cpu",
        f"model.dtype={args.dtype}",
    ]
    if case["continual"]:
        overrides += ["scenario=continual", "method.fix_ref_model=false"]
    if case["lora"]:
        overrides += ["lora.enabled=true", f"lora.dropout={args.lora_dropout}"]
    cfg = load_config(None, overrides)
    tofu = TofuBenchmark(args.data_dir)
    forget = tofu.forget("forget01", task)
    retain = tofu.retain("forget01", task, unlearned=list(range(1, task + 1)))
    original = str(args.model_dir)
    current = original if task == 1 else str(out.parent / "ours-task1" / "model")
    ref = reference_for_task(cfg, current, original)
    shutil.rmtree(out, ignore_errors=True)
    callback, result = make_recorder(paper_dir, case["lora"])
    parts: list[dict[str, float]] = []
    real_compute = Method.compute

    def compute(self, model, batch, ref_model):
        total, p = real_compute(self, model, batch, ref_model)
        parts.append({k: float(v) for k, v in p.items()})
        return total, p

    items: list[int] = []
    real_getitem = EpochOrderDataset.__getitem__

    def getitem(self, k):
        items.append(int(self.order[k]))
        return real_getitem(self, k)

    Method.compute = compute  # record each micro-batch's parts
    EpochOrderDataset.__getitem__ = getitem  # and the order the items are read in
    start, cpu = time.perf_counter(), time.process_time()
    try:
        run_unlearning(cfg, forget, retain, out, current, ref, extra_callbacks=[callback])
    finally:
        Method.compute = real_compute
        EpochOrderDataset.__getitem__ = real_getitem
    result["wall_s"] = time.perf_counter() - start
    result["cpu_s"] = time.process_time() - cpu
    result["t0"] = start
    result["micro_batches"] = parts
    result["items"] = items
    result["seed"] = cfg.train.seed
    return result


def weight_bounds(
    grads: list[dict], beta1: float, beta2: float, eps: float, wd: float
) -> list[dict]:
    """The largest weight difference the gradient differences allow after each AdamW step.

    Both codes run the same AdamW (torch's, same dtype) from the same weights, so the weights
    part only through the gradients. AdamW's step t sets
    ``w_t = w_{t-1} (1 - lr_t wd) - lr_t u_t`` with ``u = m_hat / (sqrt(v_hat) + eps)``, where
    ``m_hat = sum_s a_s g_s`` and ``v_hat = sum_s b_s g_s^2`` are bias-corrected averages
    (``sum a_s = sum b_s = 1``). To first order in a gradient change dg (per element):
    ``|d m_hat| <= max_s |dg_s|``; ``|d sqrt(v_hat)| <= max_s |dg_s|`` (Cauchy-Schwarz); so
    ``|d u| <= max_s |dg_s| (1 + rho_t) / (sqrt(v_hat) + eps) <= max_s |dg_s| (1 + rho_t) / eps``
    with ``rho_t = max |m_hat| / sqrt(v_hat) <= sqrt(sum_s a_s^2 / b_s)`` (Cauchy-Schwarz again).
    Hence ``B_t = (1 + lr_t wd) B_{t-1} + lr_t (1 + rho_t) max_{s<=t} dG_s / eps``, with dG_s
    the largest element of |g_paper - g_ours| measured at step s (it includes the effect of the
    weights' own earlier difference), plus the rounding of w itself, 2 ulp of the largest weight
    per step (left out below 1e-15). The 1/eps is the worst case, an element whose gradient is
    near 0: there a gradient rounding difference changes the sign of Adam's step.
    """
    out, bound, worst_dg = [], 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        a = [(1 - beta1) * beta1 ** (t - s) / (1 - beta1**t) for s in range(1, t + 1)]
        b = [(1 - beta2) * beta2 ** (t - s) / (1 - beta2**t) for s in range(1, t + 1)]
        rho = math.sqrt(sum(x * x / y for x, y in zip(a, b, strict=True)))
        worst_dg = max(worst_dg, g["max_abs_grad_diff"])
        lr = g["lr_used"]
        bound = (1 + lr * wd) * bound + lr * (1 + rho) * worst_dg / eps
        out.append(
            {
                "max_abs_grad_diff": g["max_abs_grad_diff"],
                "max_abs_grad": g["max_abs_grad"],
                "lr_used": lr,
                "rho": rho,
                "weight_bound": bound,
            }
        )
    return out


def compare(paper: dict, ours: dict, micro_per_step: int) -> dict:
    """Per micro-batch loss differences, per step weight differences, order, times."""
    pm, om = paper["micro_batches"], ours["micro_batches"]
    if len(pm) != len(om):
        raise SystemExit(f"{len(pm)} micro-batches in the paper's run, {len(om)} in ours")
    loss_diffs = []
    for t, o in zip(pm, om, strict=True):
        row = {"forget": abs(t["forget"] - o["forget"])}
        if "regularizer" in o:
            row["regularizer"] = abs(t["regularizer"] - o["regularizer"])
        loss_diffs.append(row)
    n_items = len(pm) * 4
    steps = []
    for s in ours["steps"]:
        k = s["step"]
        batch = range((k - 1) * micro_per_step, k * micro_per_step)
        steps.append(
            {
                **{key: s[key] for key in ("step", "max_abs_weight_diff", "where")},
                "max_abs_weight_change_this_step": s["max_abs_weight_change_this_step"],
                "max_abs_loss_diff": max(max(loss_diffs[j].values()) for j in batch),
                "paper_loss_mean": {
                    key: sum(pm[j][key] for j in batch) / len(batch) for key in pm[0]
                },
            }
        )
    bounds = weight_bounds(ours.get("grads", []), beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01)
    for s, b in zip(steps, bounds, strict=False):
        s.update(b)
    t_paper = paper["steps"][-1]["t"] - paper["t_train_begin"]
    t_ours = ours["steps"][-1]["t"] - ours["t_train_begin"]
    return {
        "same_item_order": paper["items"][:n_items] == ours["items"][:n_items],
        "items_compared": n_items,
        "micro_batches": len(pm),
        "max_abs_loss_diff": max(max(r.values()) for r in loss_diffs),
        "max_abs_loss_diff_per_part": {
            key: max(r.get(key, 0.0) for r in loss_diffs) for key in loss_diffs[0]
        },
        "steps": steps,
        "paper_losses": pm,
        "our_losses": om,
        "wall_s": {
            "paper_process": paper.get("process_wall_s"),
            "paper_forget_py": paper["wall_s"],
            "ours_run_unlearning": ours["wall_s"],
            "paper_training_loop": t_paper,
            "ours_training_loop": t_ours,
        },
        "cpu_s": {"paper_forget_py": paper["cpu_s"], "ours_run_unlearning": ours["cpu_s"]},
    }


def token_check(paper_code: Path, data_dir: Path, model_dir: Path, max_length: int) -> dict:
    """Our paper-profile dataset against the paper's ``TextForgetDatasetQA``, token by token.

    The paper's module is imported here by path (tokenization only, no model): every view of
    every forget01 task-1 item, question masked and not. A view padded to the fixed length is
    compared whole; a dynamically padded one on its real tokens and the label after them (the
    EOS label; what follows is padding that neither loss counts).
    """
    from benchmarks.paper_train_losses import PAPER_VIEWS, _cwd, paper_modules
    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.data.loaders import load_refusals
    from unlearnkit.data.splits import TofuBenchmark
    from unlearnkit.methods.data import UnlearningDataset
    from unlearnkit.models.loading import load_tokenizer

    data_module, _ = paper_modules(paper_code)
    tok = load_tokenizer(str(model_dir))
    tofu = TofuBenchmark(data_dir)
    forget, retain = tofu.forget("forget01", 1), tofu.retain("forget01", 1)
    rows = [{"question": it.question, "answer": it.answer} for it in retain]
    frows = [{"question": it.question, "answer": it.answer} for it in forget]
    with _cwd(paper_code):
        theirs = data_module.TextForgetDatasetQA(
            tok, "generic", frows, rows, max_length=max_length, mask=True
        )
    ours = UnlearningDataset(
        forget, retain, load_refusals(paper_code / "data" / "idontknow.jsonl"),
        PromptFormatter(tok, "plain"), PAPER_VIEWS, mask_question=True, max_length=max_length,
        pairing="index", fixed_length_views=("forget", "retain"), joint_tokenization=True,
    )  # fmt: skip
    checked, differing = 0, []
    for mask in (True, False):
        theirs.mask, ours.mask_question = mask, mask
        for i in range(len(theirs)):
            for view, (ids, labels, attn) in zip(PAPER_VIEWS, theirs[i], strict=True):
                enc = ours.encode(i, view)
                n = int(attn.sum())
                if len(enc["input_ids"]) == max_length:
                    same = enc["input_ids"] == ids.tolist() and enc["labels"] == labels.tolist()
                    same = same and enc["attention_mask"] == attn.tolist()
                else:
                    same = enc["input_ids"][:n] == ids[:n].tolist()
                    same = same and enc["labels"][: n + 1] == labels[: n + 1].tolist()
                checked += 1
                if not same:
                    differing.append(f"item {i} {view} mask={mask}")
    return {"views_checked": checked, "views_differing": len(differing), "first": differing[:5]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper-code", type=Path, default=Path("/work/ext/paper-code"))
    ap.add_argument("--paper-python", type=Path, default=Path("/work/ext/paper-venv/bin/python"))
    ap.add_argument("--data-dir", type=Path, default=None, help="TOFU folder (default: shared)")
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--epochs", type=int, default=2, help="2: 2 steps of 32 = epoch 1 and 24 more")
    ap.add_argument("--max-length", type=int, default=500, help="fixed length (paper: 500)")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--lora-dropout", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/paper-train-side-by-side"))
    ap.add_argument("--reuse", action="store_true", help="reuse the paper's finished runs")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--token-check-only", action="store_true", help="only compare the tokens")
    args = ap.parse_args(argv)
    if not (args.paper_code / "forget.py").is_file() or not args.paper_python.is_file():
        print(f"skipped: {args.paper_code}/forget.py or {args.paper_python} is absent")
        return {"skipped": True}
    import torch

    from unlearnkit.models.packaged import pull
    from unlearnkit.utils import default_data_root

    torch.set_num_threads(args.threads)
    args.paper_code = args.paper_code.resolve()
    args.data_dir = (args.data_dir or default_data_root() / "tofu").resolve()
    args.model_dir = pull("smollm2-135m")
    tokens = token_check(args.paper_code, args.data_dir, args.model_dir, args.max_length)
    print(f"tokens: {tokens['views_differing']} of {tokens['views_checked']} views differ "
          "from the paper's", flush=True)  # fmt: skip
    if args.token_check_only:
        return {"tokens": tokens}
    cases = [parse_case(c) for c in args.cases.split(",") if c]
    report: dict[str, Any] = {
        "settings": {
            "model": "smollm2-135m",
            "dtype": args.dtype,
            "max_length": args.max_length,
            "epochs": args.epochs,
            "batch": "4 x 8 accumulation = 32",
            "lora_dropout": args.lora_dropout,
            "threads": args.threads,
            "paper_code": "sail-sg/closer-look-LLM-unlearning @ b622294",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average_at_start": os.getloadavg(),
        },
        "tokens": tokens,
        "cases": {},
    }
    if args.json and args.json.is_file():  # keep the cases measured earlier
        report["cases"] = json.loads(args.json.read_text()).get("cases", {})
    for case in cases:
        tasks = (1, 2) if case["continual"] else (1,)
        for task in tasks:
            name = case["name"] + (f":task{task}" if case["continual"] else "")
            base = args.work / case["name"].replace(":", "-")
            paper_dir, our_dir = base / f"paper-task{task}", base / f"ours-task{task}"
            print(f"{name}: the paper's forget.py ...", flush=True)
            paper = run_paper(args, case, paper_dir, task)
            print(f"{name}: ours (profile=paper) ...", flush=True)
            ours = run_ours(args, case, paper_dir, our_dir, task)
            res = compare(paper, ours, micro_per_step=8)
            res["load_average_at_end"] = os.getloadavg()
            if case["lora"]:
                res["lora_init_max_abs_diff_before_copy"] = ours.get(
                    "lora_init_max_abs_diff_before_copy"
                )
            report["cases"][name] = res
            print(
                f"{name}: same order {res['same_item_order']}; max |loss diff| "
                f"{res['max_abs_loss_diff']:.2e}; max |weight diff| per step "
                + ", ".join(f"{s['max_abs_weight_diff']:.2e}" for s in res["steps"])
                + " (bound "
                + ", ".join(f"{s.get('weight_bound', float('nan')):.2e}" for s in res["steps"])
                + f"); wall paper {res['wall_s']['paper_forget_py']:.0f} s, "
                f"ours {res['wall_s']['ours_run_unlearning']:.0f} s",
                flush=True,
            )
            if args.json:
                args.json.write_text(json.dumps(report, indent=1))
            for f in [*paper_dir.glob("weights-*.pt"), *paper_dir.glob("grads-*.pt")]:
                f.unlink()  # about 1 GB each in float64
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
