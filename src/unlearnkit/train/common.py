"""The run harness shared by fine-tuning and unlearning: output folder, train, save.

Run folder layout (DESIGN.md): ``config.yaml`` (resolved), ``train_log.jsonl``, ``model/`` (a
plain Hugging Face folder: weights + tokenizer, LoRA merged), ``checkpoints/`` while training
(removed after success unless ``train.save_checkpoints``).
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
from unlearnkit.models.loading import detect_device, parse_dtype
from unlearnkit.train.callbacks import (
    EpochPairingCallback,
    GradientGuard,
    JsonlLogCallback,
    MethodStateCallback,
    last_checkpoint,
    load_method_state,
)
from unlearnkit.train.lora import apply_lora, is_peft_model, merge_lora
from unlearnkit.train.trainer import BatchPlan, LossFunction, UnlearnTrainer, training_arguments

logger = logging.getLogger(__name__)

MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"


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


def init_processes(device: str) -> int:
    """Set up the process group once (gloo on CPU, NCCL on GPUs); returns the process count.

    Accelerate's state is a singleton: the first call decides whether a multi-process CPU run
    (``torchrun`` or ``accelerate launch --multi_gpu`` with no GPU visible) uses gloo.
    """
    import os

    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")
    if (
        os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
        and "WORLD_SIZE" not in os.environ
        and state.is_main_process
    ):
        logger.warning(
            "running in a single process: `accelerate launch --cpu` starts one process unless an "
            "MPI hostfile is given; for N CPU processes use `accelerate launch --multi_gpu "
            "--num_processes N` with no GPU visible, or `torchrun --nproc_per_node N -m unlearnkit`"
        )
    return state.num_processes


def is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def wait_for_everyone() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def run_device(cfg: RunConfig) -> str:
    """The device kind this run trains on (the engine picks the local index per process)."""
    device = cfg.model.device
    if device in ("auto", None):
        return detect_device()
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"unknown model.device '{device}'; choose from auto, cpu, cuda, mps")
    return device


def run_dtype(cfg: RunConfig, device: str) -> torch.dtype:
    return parse_dtype(cfg.model.dtype, device)


def check_out_dir(paths: RunPaths, resume: bool) -> bool:
    """Refuse to overwrite finished or unfinished work. True when the run is already done."""
    if paths.root.exists() and not paths.root.is_dir():
        raise ValueError(f"--out {paths.root} is a file; choose a folder")
    done = (paths.model / "config.json").is_file()
    if done:
        if resume:
            return True
        raise ValueError(
            f"{paths.model} already holds a trained model; choose another --out, "
            "remove that folder, or pass --resume to reuse it"
        )
    if not resume and last_checkpoint(paths.checkpoints):
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
    resume: bool,
    ref_model: torch.nn.Module | None = None,
    extra_callbacks: list[TrainerCallback] | None = None,
) -> Path:
    """Train with the engine, then save a plain model folder to ``paths.model`` and return it."""
    args = training_arguments(cfg.train, plan, paths.checkpoints, device)
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
    resume_from = last_checkpoint(paths.checkpoints) if resume else None
    if resume and resume_from is None:
        logger.warning(
            "--resume: no checkpoint in %s; starting from the beginning", paths.checkpoints
        )
    if resume_from is not None and hasattr(loss_fn, "end_step"):
        load_method_state(loss_fn, resume_from)
    trainer.train(resume_from_checkpoint=resume_from)
    save_model_folder(trainer, tokenizer, paths.model)
    if is_main_process() and not cfg.train.save_checkpoints:
        shutil.rmtree(paths.checkpoints, ignore_errors=True)
    wait_for_everyone()
    return paths.model


def save_model_folder(trainer: UnlearnTrainer, tokenizer: Tokenizer, model_dir: Path) -> None:
    """Write weights + tokenizer to ``model_dir`` atomically (a temp folder renamed at the end).

    LoRA adapters are merged first, so the folder loads as a plain model.
    """
    tmp = model_dir.with_name(model_dir.name + ".tmp")
    if is_main_process() and tmp.exists():
        shutil.rmtree(tmp)
    wait_for_everyone()
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    if is_peft_model(unwrapped):
        if is_main_process():
            merged = merge_lora(unwrapped)
            merged.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    else:
        trainer.save_model(str(tmp))  # collective under DeepSpeed/FSDP; writes the tokenizer too
    wait_for_everyone()
    if is_main_process():
        (tmp / "training_args.bin").unlink(missing_ok=True)
        if model_dir.exists():
            shutil.rmtree(model_dir)
        tmp.replace(model_dir)
    wait_for_everyone()
