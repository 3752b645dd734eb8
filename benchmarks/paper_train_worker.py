"""Run the paper's own ``forget.py`` (sail-sg/closer-look-LLM-unlearning) on the CPU, recorded.

Started by :mod:`benchmarks.paper_train_side_by_side` in a subprocess, with the paper's Python
(transformers 4.43.0, as the paper's ``requirements.txt`` pins; the paper code is never imported
into unlearnkit and never copied into this repository). Only the standard library is imported at
the top: the paper's environment need not have unlearnkit. One call runs one task of the paper's
loop (its scripts start ``forget.py`` once per task, with ``TASK_LIST`` in the environment).

What is changed around the paper's code, and nothing inside it (each is a replacement of a
library call or an added recorder, made before ``forget.py`` is imported):

* **DeepSpeed and torchrun.** ``deepspeed`` is a stub module (the paper imports it) and
  ``CustomTrainerForgetting.e_prepare_deepspeed`` returns the reference model in eval mode with
  gradients off, which is what it does besides wrapping it in a DeepSpeed engine. One process:
  ``LOCAL_RANK=0`` and no ``WORLD_SIZE`` (so ``num_devices`` is 1), and ``--grad-accum 8``
  keeps the paper's effective batch of 32 (its scripts: 2 GPUs x 4 x 4). Its micro-batches are
  the same groups of 4 consecutive items of the sampler's permutation either way (accelerate's
  ``BatchSamplerShard`` deals batch k to rank k mod 2), and the update is the mean over the 8.
* **``TrainingArguments``.** ``deepspeed=None``; ``bf16=False`` (the weights are ``--dtype``);
  ``optim="adamw_torch"`` for ``paged_adamw_32bit`` (bitsandbytes' paged 32-bit AdamW: the same
  update, p(1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps); paging only moves its state between GPU
  and CPU); ``max_grad_norm=0``: the paper passes the HF default 1.0, but under DeepSpeed the HF
  Trainer leaves clipping to DeepSpeed, whose JSON here has no ``gradient_clipping`` (default 0),
  so the paper's runs do not clip; ``report_to="none"``, ``logging_steps=1``, ``use_cpu=True``.
* **Model loading.** ``attn_implementation="flash_attention_2"`` (CUDA only) becomes ``"sdpa"``,
  ``torch_dtype=torch.bfloat16`` becomes ``--dtype``.
* **float64 logits.** transformers 4.43's ``LlamaForCausalLM`` ends with ``logits.float()``: an
  upcast in the paper's bf16 runs, a downcast to float32 in a float64 run. With ``--dtype
  float64`` that call leaves float64 tensors as they are, so every loss is computed in float64.
* **Fixed length** (``--max-length``, default the paper's 500): ``forget.py`` passes
  ``max_length=500`` to ``TextForgetDatasetQA``; another value replaces it (CPU time grows with it).
* **Configuration.** A scratch working folder holds ``config/model_config.yaml`` (the paper's
  families plus ``generic``: ``Question: {q}\\nAnswer: {a}``, ``hf_key`` the model folder, no
  gradient checkpointing, which recomputes the same values) and the paper's
  ``data/idontknow.jsonl``. The rest are the paper's Hydra overrides, as its scripts pass them.
* **Recorders.** ``trainer.trainer.get_loss`` is wrapped to record each micro-batch's forget and
  regularization losses; ``TextForgetDatasetQA.__getitem__`` to record each item index it is
  asked for; a callback saves the trainable weights after every optimizer step (and the LoRA
  adapters before the first) to ``<out>/weights-<step>.pt``, and the step's gradient (the mean
  over its micro-batches, as the optimizer reads it) to ``<out>/grads-<step>.pt``.

Writes ``<out>/record.json`` (micro-batch losses, item order, learning rates, timing).
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import sys
import time
import types
from pathlib import Path

GENERIC_FAMILY = {
    "question_start_tag": "Question: ",
    "question_end_tag": "\n",
    "answer_tag": "Answer: ",
    "flash_attention2": "false",
    "gradient_checkpointing": "false",
}

# The paper's scripts (P:scripts/tofu/*.sh, P:scripts/continual_tofu/me_gd.sh): mask, forget_coeff.
SCRIPT_SETTINGS = {
    ("tofu", "ME+GD"): (False, 0.1),
    ("continual", "ME+GD"): (False, 1.0),
    ("tofu", "IDK+AP"): (True, 1.0),
    ("tofu", "GA+GD"): (True, 1.0),
    ("tofu", "NPO+KL"): (True, 1.0),
    ("tofu", "NPO+GD"): (True, 1.0),
}


def legacy_model_folder(model: Path, dst: Path) -> Path:
    """``model`` (saved by transformers 5) as transformers 4.43 reads it: the same weight and
    tokenizer files (linked), ``rope_parameters.rope_theta`` also as the older top-level
    ``rope_theta`` (else 4.43 falls back to 10000), and the generic fast tokenizer class."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in model.iterdir():
        if f.suffix in (".safetensors", ".jinja"):
            link = dst / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
    config = json.loads((model / "config.json").read_text())
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope and "rope_theta" not in config:
        config["rope_theta"] = rope["rope_theta"]
    if rope.get("rope_type", "default") != "default":
        raise SystemExit(f"{model}: rope_type {rope['rope_type']} is not mapped for 4.43")
    config.setdefault("torch_dtype", config.get("dtype", "float32"))
    (dst / "config.json").write_text(json.dumps(config, indent=1))
    fast = json.loads((model / "tokenizer.json").read_text())
    merges = fast["model"].get("merges") or []
    if merges and isinstance(merges[0], list):  # tokenizers >= 0.20 writes pairs; 0.19 "a b"
        if any(" " in part for pair in merges for part in pair):
            raise SystemExit(f"{model}: a merge holds a space; tokenizers 0.19 cannot read it")
        fast["model"]["merges"] = [" ".join(pair) for pair in merges]
    (dst / "tokenizer.json").write_text(json.dumps(fast, ensure_ascii=False))
    tok = json.loads((model / "tokenizer_config.json").read_text())
    tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    (dst / "tokenizer_config.json").write_text(json.dumps(tok, indent=1))
    if (model / "generation_config.json").is_file():
        shutil.copy(model / "generation_config.json", dst / "generation_config.json")
    return dst


def prepare_workdir(work: Path, paper_code: Path, model: Path) -> None:
    import yaml

    (work / "config").mkdir(parents=True, exist_ok=True)
    families = yaml.safe_load((paper_code / "config" / "model_config.yaml").read_text())
    families["generic"] = dict(GENERIC_FAMILY, hf_key=str(model))
    (work / "config" / "model_config.yaml").write_text(yaml.safe_dump(families))
    (work / "data").mkdir(exist_ok=True)
    shutil.copy(paper_code / "data" / "idontknow.jsonl", work / "data" / "idontknow.jsonl")


def install_shims(args: argparse.Namespace, record: dict) -> None:
    """Everything listed in the module docstring, before ``forget.py`` is imported."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, TrainerCallback

    dtype = getattr(torch, args.dtype)

    real_args = transformers.TrainingArguments

    def training_arguments(**kw):
        # forget.py has read LOCAL_RANK by now (its rank-0 branches); accelerate must not see it,
        # or it sets up a process group for a distributed CPU run.
        os.environ.pop("LOCAL_RANK", None)
        kw.update(
            deepspeed=None,
            bf16=False,
            bf16_full_eval=False,
            optim="adamw_torch",
            max_grad_norm=0.0,
            report_to="none",
            logging_steps=1,
            use_cpu=True,
            save_safetensors=True,
        )
        return real_args(**kw)

    transformers.TrainingArguments = training_arguments

    real_from_pretrained = AutoModelForCausalLM.from_pretrained.__func__

    def from_pretrained(cls, *a, **kw):
        kw["attn_implementation"] = "sdpa"
        kw["torch_dtype"] = dtype
        return real_from_pretrained(cls, *a, **kw)

    AutoModelForCausalLM.from_pretrained = classmethod(from_pretrained)

    if dtype == torch.float64:
        real_float = torch.Tensor.float

        def keep_float64(self, *a, **kw):
            return self if self.dtype == torch.float64 else real_float(self, *a, **kw)

        torch.Tensor.float = keep_float64

    import dataset as paper_dataset  # the paper's package (its repository is on sys.path)

    transformers.Trainer  # noqa: B018 - imported before the stub, which transformers must not see
    sys.modules["deepspeed"] = types.ModuleType("deepspeed")  # trainer/trainer.py imports it
    import trainer as paper_trainer
    import trainer.trainer as paper_trainer_module

    del sys.modules["deepspeed"]

    items: list[int] = record.setdefault("items", [])
    real_cls = paper_dataset.TextForgetDatasetQA

    class RecordedDataset(real_cls):
        def __init__(self, *a, **kw):
            kw["max_length"] = args.max_length
            super().__init__(*a, **kw)

        def __getitem__(self, idx):
            items.append(int(idx))
            return super().__getitem__(idx)

    paper_dataset.TextForgetDatasetQA = RecordedDataset

    micro: list[dict] = record.setdefault("micro_batches", [])
    real_get_loss = paper_trainer_module.get_loss

    def get_loss(model, ref_model, inputs, loss_type, beta=0.1):
        forget, reg = real_get_loss(model, ref_model, inputs, loss_type, beta)
        micro.append({"forget": float(forget), "regularizer": float(reg)})
        return forget, reg

    paper_trainer_module.get_loss = get_loss

    out = args.out
    steps: list[dict] = record.setdefault("steps", [])

    class SaveWeights(TrainerCallback):
        def _save(self, model, name):
            weights = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
            torch.save(weights, out / name)

        def on_train_begin(self, targs, state, control, model=None, **kw):
            record["t_train_begin"] = time.perf_counter()
            if args.lora:
                self._save(model, "weights-0.pt")

        def on_optimizer_step(self, targs, state, control, model=None, **kw):
            grads = {
                n: p.grad.detach()
                for n, p in model.named_parameters()
                if p.requires_grad and p.grad is not None
            }  # the step's mean gradient (global_step is counted after this event)
            torch.save(grads, out / f"grads-{state.global_step + 1}.pt")

        def on_step_end(self, targs, state, control, model=None, lr_scheduler=None, **kw):
            lr = lr_scheduler.get_last_lr()[0] if lr_scheduler is not None else None
            steps.append({"step": state.global_step, "lr_next": lr, "t": time.perf_counter()})
            self._save(model, f"weights-{state.global_step}.pt")

    real_trainer = paper_trainer.CustomTrainerForgetting

    def e_prepare_deepspeed(self, model):
        model.eval()
        for param in model.parameters():
            param.requires_grad = False
        return model

    class RecordedTrainer(real_trainer):
        def __init__(self, *a, **kw):
            kw["callbacks"] = [SaveWeights()]
            super().__init__(*a, **kw)

    RecordedTrainer.e_prepare_deepspeed = e_prepare_deepspeed
    paper_trainer.CustomTrainerForgetting = RecordedTrainer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper-code", required=True, type=Path)
    ap.add_argument("--model", required=True, type=Path, help="model folder (transformers)")
    ap.add_argument("--data-dir", required=True, type=Path, help="TOFU folder")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--method", default="ME+GD")
    ap.add_argument("--scenario", default="tofu", choices=("tofu", "continual"))
    ap.add_argument("--tasks", default="1", help="TASK_LIST (continual: e.g. 1,2)")
    ap.add_argument("--task", type=int, default=1, help="the task of TASK_LIST this call runs")
    ap.add_argument("--epochs", type=float, default=5)
    ap.add_argument("--grad-accum", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=500)
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--lora-dropout", type=float, default=0.05)
    ap.add_argument("--save-root", type=Path, required=True, help="the paper's save_root")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--legacy-model", type=Path, default=None,
        help="a model folder 4.43 reads as it is (continual: the previous task's checkpoint "
        "is found by the paper itself; this is the original model)",
    )  # fmt: skip
    args = ap.parse_args()

    paper_code = args.paper_code.resolve()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "workdir"
    if args.legacy_model is None:
        args.model = legacy_model_folder(args.model.resolve(), work / "model")
    else:
        args.model = args.legacy_model
    prepare_workdir(work, paper_code, args.model.resolve())
    os.chdir(work)  # the paper reads config/ and data/idontknow.jsonl relative to it
    sys.path[:] = [str(paper_code)] + [p for p in sys.path[1:] if p]
    os.environ.update(LOCAL_RANK="0", TASK_LIST=args.tasks, TOKENIZERS_PARALLELISM="false")
    os.environ.pop("WORLD_SIZE", None)

    import torch

    torch.set_num_threads(args.threads)
    record: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    install_shims(args, record)
    mask, forget_coeff = SCRIPT_SETTINGS[(args.scenario, args.method)]
    overrides = [
        "--config-name=tofu.yaml",
        f"task_id={args.task}",
        "save_steps=last",
        f"use_LoRA={str(args.lora).lower()}",
        f"LoRA.dropout={args.lora_dropout}",
        f"forget_coeff={forget_coeff}",
        "regularization_coeff=1.0",
        "lr=1e-5",
        "split=forget01",
        f"forget_loss={args.method}",
        f"num_epochs={args.epochs:g}",
        f"mask={str(mask).lower()}",
        "fix_ref_model=",  # the scripts pass $fix_ref_model, which none of them sets
        f"save_root={args.save_root.resolve()}",
        "save_checkpoint=false",
        "model_family=generic",
        f"model_path={args.model.resolve()}",
        f"data_path={args.data_dir.resolve()}",
        "batch_size=4",
        f"gradient_accumulation_steps={args.grad_accum}",
        f"hydra.run.dir={work / 'hydra'}",
    ]
    record["overrides"] = overrides
    sys.argv = [str(paper_code / "forget.py"), *overrides]
    start, cpu = time.perf_counter(), time.process_time()
    runpy.run_path(sys.argv[0], run_name="__main__")  # the paper's script, as its own file
    record["wall_s"] = time.perf_counter() - start
    record["cpu_s"] = time.process_time() - cpu
    record["t0"] = start
    (args.out / "record.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
