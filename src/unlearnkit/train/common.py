"""The run harness shared by fine-tuning and unlearning: output folder, train, save.

Run folder layout (DESIGN.md): ``config.yaml`` (resolved), ``train_log.jsonl``, ``model/`` (a
plain Hugging Face folder: weights + tokenizer, LoRA merged), ``checkpoints/`` while training
(removed after success unless ``train.save_checkpoints``). Checkpoints and ``model/`` appear only
once complete (staged, then renamed; :mod:`unlearnkit.train.checkpoints`), so a run killed at
any moment continues with ``resume=True`` and reaches the weights of an uninterrupted run.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, TrainerCallback
from transformers import PreTrainedTokenizerBase as Tokenizer

from unlearnkit.config import RunConfig, save_config
from unlearnkit.models.loading import parse_dtype
from unlearnkit.runtime import is_main_process, wait_for_everyone
from unlearnkit.train.callbacks import (
    EpochPairingCallback,
    GradientGuard,
    JsonlLogCallback,
    MethodStateCallback,
    load_method_state,
)
from unlearnkit.train.checkpoints import (
    STAGING_PREFIX,
    Resume,
    check_resume,
    clean_interrupted,
    is_complete_model,
    newest_complete_checkpoint,
    publish,
    remove_tree,
)
from unlearnkit.train.lora import apply_lora, is_peft_model, merge_lora
from unlearnkit.train.trainer import (
    BatchPlan,
    LossFunction,
    UnlearnTrainer,
    mixed_precision_flags,
    training_arguments,
)
from unlearnkit.utils import crash_point

logger = logging.getLogger(__name__)

MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"


@dataclass
class Trained:
    """A finished training run: its saved model folder and, when one process trained it, the
    model itself and its tokenizer in memory (LoRA merged, in evaluation mode), so that the
    evaluation and the attacks that follow receive it instead of loading the folder again."""

    path: Path
    model: PreTrainedModel | None = None
    tokenizer: Tokenizer | None = None


@dataclass(frozen=True)
class RunPaths:
    root: Path
    model: Path
    checkpoints: Path
    config: Path
    train_log: Path

    @classmethod
    def of(cls, out_dir: str | Path) -> RunPaths:
        root = Path(out_dir)
        return cls(
            root=root,
            model=root / MODEL_DIR,
            checkpoints=root / CHECKPOINT_DIR,
            config=root / "config.yaml",
            train_log=root / "train_log.jsonl",
        )


def run_dtype(cfg: RunConfig, device: str) -> torch.dtype:
    return parse_dtype(cfg.model.dtype, device)


def trained_dtype(cfg: RunConfig, device: str) -> torch.dtype:
    """The dtype of the weights being trained: float32 whenever mixed precision is on.

    Under bf16/fp16 mixed precision the engine runs the forward pass under autocast and AdamW
    updates float32 master weights, as DeepSpeed's bf16 mode does. Loading the trained model in
    bf16 instead would make the optimizer update bf16 weights in place, where most updates at
    lr 1e-5 round away (benchmarks/gpu_bf16_check.py). Frozen models (reference, evaluation)
    keep ``model.dtype``.
    """
    bf16, fp16 = mixed_precision_flags(cfg.train, device)
    if bf16 or fp16:
        return torch.float32
    dtype = run_dtype(cfg, device)
    if dtype in (torch.bfloat16, torch.float16):
        logger.warning(
            "training %s weights without mixed precision: the optimizer updates them in place, "
            "so small updates round away; set train.mixed_precision=bf16 to keep float32 "
            "master weights",
            dtype,
        )
    return dtype


def check_out_dir(paths: RunPaths, resume: Resume) -> bool:
    """Refuse to overwrite finished or unfinished work. True when the run is already done."""
    resume = check_resume(resume)
    if paths.root.exists() and not paths.root.is_dir():
        raise ValueError(f"--out {paths.root} is a file; choose a folder")
    if is_complete_model(paths.model):
        if resume:
            return True
        raise ValueError(
            f"{paths.model} already holds a trained model; choose another --out, "
            "remove that folder, or pass --resume to reuse it"
        )
    if not resume and newest_complete_checkpoint(paths.checkpoints):
        raise ValueError(
            f"{paths.checkpoints} holds checkpoints of an unfinished run; pass --resume to "
            "continue it, or choose another --out"
        )
    return False


def write_config(cfg: RunConfig, paths: RunPaths, extra: dict[str, Any]) -> None:
    if is_main_process():
        save_config(cfg, paths.config, extra=extra)


def maybe_lora(model: PreTrainedModel, cfg: RunConfig) -> torch.nn.Module:
    if not cfg.lora.enabled:
        return model
    wrapped = apply_lora(model, cfg.lora)
    if cfg.train.gradient_checkpointing and hasattr(wrapped, "enable_input_require_grads"):
        wrapped.enable_input_require_grads()
    return wrapped


def fit(
    cfg: RunConfig,
    *,
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    dataset: torch.utils.data.Dataset,
    collator: Any,
    loss_fn: LossFunction,
    plan: BatchPlan,
    paths: RunPaths,
    device: str,
    resume: Resume,
    ref_model: torch.nn.Module | None = None,
    extra_callbacks: list[TrainerCallback] | None = None,
) -> Trained:
    """Train with the engine, save a plain model folder to ``paths.model`` (once), and return
    it with the trained model in memory (:class:`Trained`)."""
    args = training_arguments(cfg.train, plan, paths.checkpoints, device)
    if plan.max_steps > 0:
        from unlearnkit.train.schedule import EpochOrderDataset

        dataset = EpochOrderDataset(dataset, plan.max_steps * plan.effective, seed=cfg.train.seed)
    trainer = UnlearnTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        processing_class=tokenizer,
        loss_fn=loss_fn,
        ref_model=ref_model,
        callbacks=[
            GradientGuard(),
            EpochPairingCallback(dataset),
            *([MethodStateCallback(loss_fn)] if hasattr(loss_fn, "end_step") else []),
            JsonlLogCallback(paths.train_log),
            *(extra_callbacks or []),
        ],
    )
    if ref_model is not None:
        ref_model.to(args.device)
        ref_model.eval()
        ref_model.requires_grad_(False)
    if is_main_process():
        clean_interrupted(paths.checkpoints)
    wait_for_everyone()
    resume_from = newest_complete_checkpoint(paths.checkpoints) if resume else None
    if resume is True and resume_from is None and is_main_process():
        logger.warning(
            "--resume: nothing to resume in %s (no complete checkpoint); training from the start",
            paths.root,
        )
    if resume_from is not None and hasattr(loss_fn, "end_step"):
        load_method_state(loss_fn, resume_from)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    saved = save_model_folder(trainer, tokenizer, paths.model)
    if is_main_process() and not cfg.train.save_checkpoints:
        shutil.rmtree(paths.checkpoints, ignore_errors=True)
    wait_for_everyone()
    return Trained(paths.model, *_handed_over(trainer, saved, tokenizer))


def _handed_over(
    trainer: UnlearnTrainer, saved: torch.nn.Module | None, tokenizer: Tokenizer
) -> tuple[PreTrainedModel | None, Tokenizer | None]:
    """The trained model as a fresh load of its folder would be (evaluation mode, every weight
    trainable, no gradient checkpointing, no hooks of training): only when one process trained
    all of it. Under several processes (DDP, DeepSpeed, FSDP) the callers load the folder."""
    if saved is None or trainer.accelerator.num_processes > 1:
        return None, None
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        return None, None
    model = saved
    if checkpointing(model):
        # transformers 5 names it activation checkpointing; 4.x gradient checkpointing
        off = getattr(model, "activation_checkpointing_disable", None)
        (off or model.gradient_checkpointing_disable)()
    if hasattr(model, "_require_grads_hook"):  # LoRA with gradient checkpointing set it
        model.disable_input_require_grads()
    model.zero_grad(set_to_none=True)
    model.requires_grad_(True)
    model.eval()
    return model, tokenizer


def checkpointing(model: torch.nn.Module) -> bool:
    """Whether ``model`` recomputes activations in the backward pass (either name)."""
    if hasattr(type(model), "is_activation_checkpointing"):
        return bool(model.is_activation_checkpointing)
    return bool(getattr(model, "is_gradient_checkpointing", False))


def save_model_folder(
    trainer: UnlearnTrainer, tokenizer: Tokenizer, model_dir: Path
) -> torch.nn.Module | None:
    """Write weights + tokenizer to ``model_dir`` atomically: a staging folder, flushed to disk
    and renamed at the end, so ``model_dir`` exists only once complete. Returns the model that
    was saved (on the main process).

    LoRA adapters are merged first, so the folder loads as a plain model.
    """
    tmp = model_dir.with_name(STAGING_PREFIX + model_dir.name)
    if is_main_process():
        remove_tree(tmp)
    wait_for_everyone()
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    saved = unwrapped if is_main_process() else None
    if is_peft_model(unwrapped):
        if is_main_process():
            saved = merge_lora(unwrapped)
            saved.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    else:
        trainer.save_model(str(tmp))  # collective under DeepSpeed/FSDP; writes the tokenizer too
    wait_for_everyone()
    if is_main_process():
        (tmp / "training_args.bin").unlink(missing_ok=True)
        crash_point("final-model")  # test hook: the weights are written, not yet published
        publish(tmp, model_dir)
    wait_for_everyone()
    return saved
