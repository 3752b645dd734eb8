"""Training-loss parity with the paper's own code (sail-sg/closer-look-LLM-unlearning @ b622294).

Run (the paper's repository is read from its path at run time; nothing of it is in this one)::

    PYTHONPATH=src python benchmarks/paper_train_losses.py --paper-code /work/paper-code \\
        [--max-length 500] [--batches 2] [--dtype float64]

What it checks, on TOFU forget01 task 1 with SmolLM2-135M and the paper's generic format
(``Question: {q}\\nAnswer: {a}``):

1. Batch construction: the paper's ``TextForgetDatasetQA`` is run with its
   ``convert_raw_forget_data_to_model_format`` wrapped to record each call's (question, answer,
   mask); unlearnkit's :class:`UnlearningDataset` under the paper profile (index pairing, the
   paper's refusal file) must give the same texts for every item and view, and mask the question
   of the same views. :func:`unlearnkit.data.collator.pad_fixed` must rebuild the paper's
   fixed-length ``input_ids`` / ``labels`` / ``attention_mask`` from the unpadded tokens.
2. Losses: on the paper's own tensors, every forget objective (GA, NPO, ME, IDK, DPO) and
   regularizer (GD, KL, AP) is computed by the paper's loss functions and by unlearnkit's methods
   (paper-profile settings: KL over all positions, ME with its 1e-12). Reported: the max absolute
   difference per part over the batches, and per method (forget + regularizer, the paper's
   coefficients). A method's total is the same linear combination of its two parts in both codes.

Both codes call one :class:`CachedLM`: SmolLM2's logits for each distinct row (token ids and
attention mask), computed once in ``--dtype`` (float64 by default), and the model's own Hugging
Face loss (``model.loss_function``, what ``outputs.loss`` is) when labels are passed. So both
see identical logits, and the differences measure the loss formulas and reductions only, not
how each code batches its forward passes (one joint pass vs one per view, which in float32 alone
moves summed NLLs of a few hundred by ~1e-5); the transformer itself is the same function for
both. The reference model is a copy whose weights are scaled by ``1 + ref_noise * N(0, 1)``
(seeded), so NPO/DPO ratios and KL are not trivially 0 as at an unlearning run's first step.

transformers' token-mean loss (``outputs.loss``: the paper's GA, GD, IDK and mismatch) casts the
logits to float32 whatever their dtype, so those parts of the paper's code carry float32
rounding even in a float64 run. They are therefore also compared with ours computed on the same
float32 logits (``*_at_fp32``), which is the like-for-like comparison of the formulas.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from unlearnkit.config import MethodConfig
from unlearnkit.data.collator import pad_fixed
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.loaders import load_refusals
from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.methods import build_method
from unlearnkit.methods.data import UnlearningDataset
from unlearnkit.methods.views import Batch
from unlearnkit.models.loading import load_model
from unlearnkit.utils import default_data_root

PAPER_VIEWS = ("forget", "retain", "forget_idk", "retain_idk", "forget_mismatch")
GENERIC_TAGS = {
    "question_start_tag": "Question: ",
    "question_end_tag": "\n",
    "answer_tag": "Answer: ",
}
FORGETS = ("GA", "NPO", "ME", "IDK", "DPO")
REGULARIZERS = ("GD", "KL", "AP")


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _cwd(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def paper_modules(root: Path) -> tuple[ModuleType, ModuleType]:
    """The paper's ``dataset/data_module.py`` and ``trainer/losses.py``, imported by path."""
    sys.path.insert(0, str(root))  # data_module imports the paper's top-level ``utils``
    data_module = _load(root / "dataset" / "data_module.py", "paper_data_module")
    losses = _load(root / "trainer" / "losses.py", "paper_losses")
    data_module.get_model_identifiers_from_yaml = lambda family: dict(GENERIC_TAGS)
    return data_module, losses


class _Recorder:
    """Wraps the paper's converter to record (question, answer, mask) of every call."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.calls: list[tuple[str, str, bool]] = []

    def __call__(self, tokenizer, max_length, question, answer, model_configs, mask=True):
        self.calls.append((question, answer, bool(mask)))
        return self.fn(tokenizer, max_length, question, answer, model_configs, mask=mask)


class CachedLM(torch.nn.Module):
    """``model``'s logits per distinct (ids, attention mask) row, computed once, no gradient."""

    def __init__(self, model: torch.nn.Module, rows_per_pass: int = 4) -> None:
        super().__init__()
        self.model = model
        self.rows_per_pass = rows_per_pass
        self.cast: torch.dtype | None = None  # return the logits in this dtype (None: as computed)
        self.cache: dict[tuple[bytes, bytes], Tensor] = {}
        self.forward_rows = 0

    def _key(self, ids: Tensor, attn: Tensor) -> tuple[bytes, bytes]:
        return ids.numpy().tobytes(), attn.numpy().tobytes()

    @torch.no_grad()
    def forward(
        self,
        input_ids: Tensor,
        labels: Tensor | None = None,
        attention_mask: Tensor | None = None,
        **_: Any,
    ) -> Any:
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        keys = [self._key(i, a) for i, a in zip(input_ids, attention_mask, strict=True)]
        missing = [j for j, k in enumerate(keys) if k not in self.cache]
        missing = list(dict.fromkeys(missing))
        for start in range(0, len(missing), self.rows_per_pass):
            rows = missing[start : start + self.rows_per_pass]
            out = self.model(
                input_ids=input_ids[rows], attention_mask=attention_mask[rows], use_cache=False
            ).logits  # (R, T, V)
            for j, logit in zip(rows, out, strict=True):
                self.cache[keys[j]] = logit
            self.forward_rows += len(rows)
        logits = torch.stack([self.cache[k] for k in keys])  # (B, T, V)
        if self.cast is not None:
            logits = logits.to(self.cast)
        loss = None
        if labels is not None:
            loss = self.model.loss_function(
                logits=logits, labels=labels, vocab_size=logits.shape[-1]
            )
        return SimpleNamespace(logits=logits, loss=loss)


def check_batches(
    data_module: ModuleType, paper_ds: Any, ours: UnlearningDataset, tok: Any, max_length: int
) -> dict[str, Any]:
    """Items 1 and 4 (texts, masks) and the fixed padding, against the paper's dataset."""
    recorder = _Recorder(data_module.convert_raw_forget_data_to_model_format)
    data_module.convert_raw_forget_data_to_model_format = recorder
    text_mismatch, mask_mismatch, tensor_mismatch = 0, 0, 0
    try:
        for i in range(len(paper_ds)):
            recorder.calls.clear()
            tensors = paper_ds[i]
            for view, (q, a, mask), (ids, labels, attn) in zip(
                PAPER_VIEWS, recorder.calls, tensors, strict=True
            ):
                text_mismatch += ours.pair(i, view) != (q, a)
                mask_mismatch += ours.view_masks_question(view) != mask
                # pad_fixed on the paper's unpadded tokens (its EOS appended, as our formatter
                # does) must rebuild the paper's tensors exactly.
                n_real = int(attn.sum())
                real = ids[:n_real].tolist()
                full_labels = labels[:n_real].tolist()
                if n_real < max_length:
                    full = {
                        "input_ids": real + [tok.eos_token_id],
                        "labels": full_labels + [tok.eos_token_id],
                    }
                    rebuilt = pad_fixed(full, max_length, tok.eos_token_id, label_padding=not mask)
                    tensor_mismatch += rebuilt["input_ids"] != ids.tolist()
                    tensor_mismatch += rebuilt["labels"] != labels.tolist()
                    tensor_mismatch += rebuilt["attention_mask"] != attn.tolist()
    finally:
        data_module.convert_raw_forget_data_to_model_format = recorder.fn
    return {
        "items": len(paper_ds),
        "views": len(PAPER_VIEWS),
        "text_mismatches": text_mismatch,
        "mask_mismatches": mask_mismatch,
        "fixed_padding_mismatches": tensor_mismatch,
    }


def paper_parts(losses: ModuleType, model: Any, ref: Any, inputs: list, beta: float) -> dict:
    """Every part by the paper's own loss functions (what its ``get_loss`` dispatches to)."""
    return {
        "GA": losses.ga_loss(model, inputs),
        "NPO": losses.npo_loss(model, ref, inputs, beta=beta),
        "ME": losses.me_loss(model, inputs),
        "IDK": losses.idk_loss(model, inputs),
        "DPO": losses.dpo_loss(model, ref, inputs, beta=beta),
        "GD": losses.gd_loss(model, inputs),
        "KL": losses.kl_loss(model, ref, inputs),
        "AP": losses.ap_loss(model, inputs, beta=beta),
    }


def our_parts(
    model: Any,
    ref: Any,
    batch: dict,
    pad_id: int,
    beta: float,
    names: tuple[str, ...] = FORGETS + REGULARIZERS,
) -> dict:
    """Every part by unlearnkit's methods (paper-profile settings), one part per method call."""
    out = {}
    for name in (n for n in FORGETS if n in names):
        cfg = MethodConfig(name=name, beta=beta, kl_positions="all", me_epsilon=1e-12)
        _, parts = build_method(cfg, pad_id=pad_id).compute(model, batch, ref)
        out[name] = parts["forget"]
    for name in (n for n in REGULARIZERS if n in names):  # forget coefficient 0: only the reg.
        cfg = MethodConfig(
            name=f"GA+{name}", beta=beta, forget_coeff=0.0, kl_positions="all", me_epsilon=1e-12
        )
        _, parts = build_method(cfg, pad_id=pad_id).compute(model, batch, ref)
        out[name] = parts["regularizer"]
    return out


def _batch(inputs: list) -> Batch:
    """The paper's collated views as one unlearnkit batch (``batch[view]["input_ids"]`` ...)."""
    return {
        view: {"input_ids": ids, "labels": labels, "attention_mask": attn}
        for view, (ids, labels, attn) in zip(PAPER_VIEWS, inputs, strict=True)
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper-code", type=Path, required=True)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--data", type=Path, default=None, help="TOFU folder (default: shared data)")
    ap.add_argument("--max-length", type=int, default=500, help="fixed length (paper: 500)")
    ap.add_argument("--batches", type=int, default=2, help="batches of 4 to compare")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--ref-noise", type=float, default=0.01, help="reference = weights x (1+eps)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    if not (args.paper_code / "trainer" / "losses.py").is_file():
        print(f"skipped: {args.paper_code} is not the paper's repository")
        return {"skipped": True}
    data_module, losses = paper_modules(args.paper_code.resolve())
    base, tok = load_model(args.model, device="cpu", dtype=getattr(torch, args.dtype))
    base.eval()  # SmolLM2 has no dropout: train and eval modes compute the same logits
    lm = CachedLM(base)
    ref_base, _ = load_model(args.model, device="cpu", dtype=getattr(torch, args.dtype))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ref_base.parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
            p.mul_(1 + args.ref_noise * noise)
    ref_base.eval()
    ref_lm = CachedLM(ref_base)
    tofu = TofuBenchmark(args.data or default_data_root() / "tofu")
    forget, retain = tofu.forget("forget01", 1), tofu.retain("forget01", 1)
    rows = [{"question": it.question, "answer": it.answer} for it in retain]
    frows = [{"question": it.question, "answer": it.answer} for it in forget]
    idk_path = args.paper_code / "data" / "idontknow.jsonl"
    with _cwd(args.paper_code):  # it opens data/idontknow.jsonl relative to the working folder
        paper_ds = data_module.TextForgetDatasetQA(
            tok, "generic", frows, rows, max_length=args.max_length, mask=True
        )
    refusals = load_refusals(idk_path)
    if len(refusals) != len(paper_ds.idk):
        raise SystemExit(
            f"{idk_path}: {len(refusals)} refusals read, the paper reads {len(paper_ds.idk)} "
            "lines; index pairing would differ"
        )
    ours_ds = UnlearningDataset(
        forget, retain, refusals, PromptFormatter(tok, "plain"), PAPER_VIEWS,
        mask_question=True, max_length=args.max_length, pairing="index",
    )  # fmt: skip
    report: dict[str, Any] = {"max_length": args.max_length, "dtype": args.dtype}
    for mask in (True, False):  # the baselines' setting, and ME+GD's
        paper_ds.mask, ours_ds.mask_question = mask, mask
        checks = check_batches(data_module, paper_ds, ours_ds, tok, args.max_length)
        report[f"batch_construction_mask_{str(mask).lower()}"] = checks
        print(f"batch construction (mask={mask}):", json.dumps(checks))

    pad_id = int(tok.pad_token_id)
    diffs: dict[str, float] = {}
    totals: dict[str, float] = {}
    values: dict[str, list[float]] = {}
    start = time.perf_counter()
    for b in range(args.batches):
        idx = range(4 * b, 4 * b + 4)
        paper_ds.mask = True
        inputs = data_module.custom_data_collator_forget([paper_ds[i] for i in idx])
        paper_ds.mask = False  # ME+GD trains ME on the unmasked forget view
        unmasked = data_module.custom_data_collator_forget([paper_ds[i] for i in idx])
        with torch.no_grad():
            theirs = paper_parts(losses, lm, ref_lm, inputs, 0.1)
            theirs["ME_unmasked"] = losses.me_loss(lm, unmasked)
            ours = our_parts(lm, ref_lm, _batch(inputs), pad_id, 0.1)
            lm.cast = torch.float32  # what transformers' outputs.loss computes on
            at_fp32 = our_parts(lm, ref_lm, _batch(inputs), pad_id, 0.1, names=("GA", "IDK", "GD"))
            lm.cast = None
            cfg = MethodConfig(name="ME", me_epsilon=1e-12, mask_question=False)
            ours["ME_unmasked"] = build_method(cfg, pad_id).compute(lm, _batch(unmasked), None)[1][
                "forget"
            ]
        theirs = {k: float(v) for k, v in theirs.items()}
        ours = {k: float(v) for k, v in ours.items()}
        for key, value in at_fp32.items():
            theirs[f"{key}_at_fp32"], ours[f"{key}_at_fp32"] = theirs[key], float(value)
        for key in theirs:
            diffs[key] = max(diffs.get(key, 0.0), abs(theirs[key] - ours[key]))
            values.setdefault(key, []).append(theirs[key])
        for f in FORGETS:
            for r in REGULARIZERS:
                # the paper's coefficients: 1.0 / 1.0, except TOFU ME+GD: 0.1, forget unmasked
                fc, fkey = (0.1, "ME_unmasked") if (f, r) == ("ME", "GD") else (1.0, f)
                fkey = f"{fkey}_at_fp32" if f"{fkey}_at_fp32" in ours else fkey
                rkey = f"{r}_at_fp32" if f"{r}_at_fp32" in ours else r
                t_total = fc * theirs[fkey] + theirs[rkey]
                o_total = fc * ours[fkey] + ours[rkey]
                totals[f"{f}+{r}"] = max(totals.get(f"{f}+{r}", 0.0), abs(t_total - o_total))
        print(f"batch {b}: " + ", ".join(f"{k} {theirs[k]:.8g}/{ours[k]:.8g}" for k in theirs))
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["rows_through_the_model"] = lm.forward_rows + ref_lm.forward_rows
    report["ref_noise"] = args.ref_noise
    report["max_abs_diff_per_part"] = diffs
    report["max_abs_diff_per_method"] = totals
    report["paper_values"] = values
    worst = max(totals.values())
    report["target"] = "max abs difference <= 1e-5 for every method (token means at float32)"
    report["met"] = worst <= 1e-5
    print("max |paper - ours| per part:", json.dumps({k: f"{v:.2e}" for k, v in diffs.items()}))
    print("max |paper - ours| per method:", json.dumps({k: f"{v:.2e}" for k, v in totals.items()}))
    print(f"worst {worst:.2e}; target 1e-5: {'met' if report['met'] else 'NOT met'}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
