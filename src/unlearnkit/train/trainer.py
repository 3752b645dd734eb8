"""The Trainer shared by fine-tuning and unlearning.

A :class:`transformers.Trainer` subclass whose ``compute_loss`` delegates to a *loss function*
object (an unlearning :class:`~unlearnkit.methods.Method`, or plain NLL for fine-tuning). So
gradient accumulation, mixed precision, DeepSpeed/FSDP, ``report_to`` logging, checkpointing and
resuming all come from the Hugging Face engine. Each loss part is logged as ``loss_<part>``; the
terminal shows a progress bar and one compact line per logging step (:mod:`.progress`).
Checkpoints are staged and published by rename (:mod:`unlearnkit.train.checkpoints`), so a killed
run never leaves a half-written ``checkpoint-N``.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from unlearnkit.config import TrainConfig
from unlearnkit.train.callbacks import check_finite_parts
from unlearnkit.train.checkpoints import STAGING_PREFIX, publish, rotate
from unlearnkit.train.progress import install_progress
from unlearnkit.utils import crash_point

if TYPE_CHECKING:
    from unlearnkit.methods.views import Batch


class LossFunction(Protocol):
    """What the trainer delegates to: total loss and each (unweighted) part."""

    def compute(
        self, model: torch.nn.Module, batch: Batch, ref_model: torch.nn.Module | None
    ) -> tuple[Tensor, dict[str, Tensor]]: ...


class UnlearnTrainer(Trainer):
    """``compute_loss`` = ``loss_fn.compute(model, batch, ref_model)``, checked for NaN/inf."""

    # Our losses are means over their own batch; the engine divides by the accumulation steps.
    loss_is_scaled_for_ga = False
    # While a checkpoint is written: the staging folder the engine writes into.
    _staging_dir: Path | None = None

    def __init__(
        self,
        *args: Any,
        loss_fn: LossFunction,
        ref_model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        name = getattr(loss_fn, "name", None)
        install_progress(self, f"unlearning {name}" if name else "fine-tuning")
        self.loss_fn = loss_fn
        self.ref_model = ref_model
        self._part_sums: dict[str, Tensor] = {}
        self._part_count = 0

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: Batch,
        return_outputs: bool = False,
        num_items_in_batch: Tensor | int | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        loss, parts = self.loss_fn.compute(model, inputs, self.ref_model)
        check_finite_parts(parts, loss, self.state.global_step + 1, self.args.output_dir)
        for key, value in parts.items():
            v = value.detach().float()
            self._part_sums[key] = self._part_sums[key] + v if key in self._part_sums else v
        self._part_count += 1
        if return_outputs:
            return loss, {"parts": parts}
        return loss

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """The engine writes ``.tmp-checkpoint-N/checkpoint-N``; once every process is done, the
        main one flushes it to disk, renames it to ``checkpoint-N`` and drops old checkpoints."""
        root = Path(self.args.output_dir)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = root / f"{STAGING_PREFIX}{name}"
        self._staging_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            publish(staging / name, root / name)
            shutil.rmtree(staging, ignore_errors=True)
            rotate(root, self.args.save_total_limit)
        self.accelerator.wait_for_everyone()

    def _get_output_dir(self, trial: Any) -> str:
        if self._staging_dir is not None:
            return str(self._staging_dir)
        return super()._get_output_dir(trial)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        crash_point("checkpoint")  # test hook: the weights are written, the optimizer is not
        super()._save_optimizer_and_scheduler(output_dir)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Training-step logs come from every process at once (the engine gathers "loss"
        # collectively right before), so reducing the part means across processes is safe here.
        if "loss" in logs and self._part_count:
            for key, total in sorted(self._part_sums.items()):
                mean = total / self._part_count
                if self.accelerator.num_processes > 1:
                    mean = self.accelerator.reduce(mean.to(self.args.device), reduction="mean")
                logs[f"loss_{key}"] = round(float(mean), 6)
            self._part_sums, self._part_count = {}, 0
        super().log(logs, start_time)


@dataclass(frozen=True)
class BatchPlan:
    """How the effective batch is reached: per_device * processes * grad_accum."""

    effective: int
    per_device: int
    processes: int
    grad_accum: int
    steps_per_epoch: int
    warmup_steps: int
    # train.schedule=paper: this many full steps over epochs laid end to end, read in order
    # (train/schedule.py); -1 = epoch-based training
    max_steps: int = -1

    def describe(self, keys: tuple[str, ...] | None = None) -> dict[str, int]:
        """The plan as a run's ``config.yaml`` records it (``keys``: these fields only)."""
        fields = keys or tuple(f.name for f in dataclasses.fields(self))
        return {k: getattr(self, k) for k in fields}


def num_processes() -> int:
    from accelerate import PartialState

    return PartialState().num_processes


def plan_batches(
    cfg: TrainConfig, n_examples: int, what: str = "forget set", processes: int | None = None
) -> BatchPlan:
    """Split ``cfg.batch_size`` over processes and accumulation steps (one-line errors)."""
    processes = processes or num_processes()
    per_device = cfg.per_device_batch_size
    if cfg.batch_size <= 0 or per_device <= 0:
        raise ValueError("train.batch_size and train.per_device_batch_size must be > 0")
    if n_examples <= 0:
        raise ValueError(f"the {what} is empty; check --benchmark/--split/--task")
    if cfg.batch_size > n_examples:
        raise ValueError(
            f"train.batch_size ({cfg.batch_size}) is larger than the {what} ({n_examples} items); "
            f"set train.batch_size to at most {n_examples} (and a multiple of "
            f"train.per_device_batch_size x processes = {per_device * processes})"
        )
    if cfg.batch_size % (per_device * processes):
        raise ValueError(
            f"train.batch_size ({cfg.batch_size}) must be a multiple of "
            f"train.per_device_batch_size ({per_device}) x processes ({processes}) = "
            f"{per_device * processes}; change train.batch_size or train.per_device_batch_size"
        )
    if cfg.max_steps <= 0 and not (math.isfinite(cfg.epochs) and cfg.epochs > 0):
        raise ValueError(f"train.epochs must be > 0 (or set train.max_steps), got {cfg.epochs}")
    grad_accum = cfg.batch_size // (per_device * processes)
    if cfg.schedule == "paper":
        from unlearnkit.train.schedule import paper_schedule

        sched = paper_schedule(n_examples, cfg.batch_size, cfg.epochs)
        max_steps = cfg.max_steps if cfg.max_steps > 0 else sched.max_steps
        return BatchPlan(
            cfg.batch_size,
            per_device,
            processes,
            grad_accum,
            sched.steps_per_epoch,
            sched.warmup_steps,
            max_steps,
        )
    if cfg.schedule != "epochs":
        raise ValueError(f"unknown train.schedule '{cfg.schedule}'; choose from epochs, paper")
    steps_per_epoch = max(1, math.ceil(n_examples / cfg.batch_size))
    # Epoch schedule: warmup_epochs epochs of warm-up (at least one step); 0 means none.
    warmup = round(cfg.warmup_epochs * steps_per_epoch) if cfg.warmup_epochs > 0 else 0
    if cfg.warmup_epochs > 0:
        warmup = max(1, warmup)
    return BatchPlan(cfg.batch_size, per_device, processes, grad_accum, steps_per_epoch, warmup)


def mixed_precision_flags(cfg: TrainConfig, device: str) -> tuple[bool, bool]:
    """``(bf16, fp16)`` for the engine; ``auto`` = bf16 on accelerators that support it."""
    choice = cfg.mixed_precision
    if choice in ("False", "false"):  # YAML reads an unquoted `no` as a boolean
        choice = "no"
    if choice not in ("auto", "no", "bf16", "fp16"):
        raise ValueError(
            f"unknown train.mixed_precision '{choice}'; choose from auto, no, bf16, fp16"
        )
    if choice == "auto":
        bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        return bf16, False
    return choice == "bf16", choice == "fp16"


def training_arguments(
    cfg: TrainConfig, plan: BatchPlan, checkpoint_dir: Path, device: str
) -> TrainingArguments:
    """The engine's arguments from our config (paper defaults: AdamW, linear decay, warm-up)."""
    bf16, fp16 = mixed_precision_flags(cfg, device)
    if cfg.checkpoint_every < 0:
        raise ValueError(f"train.checkpoint_every must be >= 0, got {cfg.checkpoint_every}")
    if cfg.logging_steps <= 0:
        raise ValueError(f"train.logging_steps must be > 0, got {cfg.logging_steps}")
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=plan.per_device,
        gradient_accumulation_steps=plan.grad_accum,
        num_train_epochs=cfg.epochs if plan.max_steps <= 0 else 1,
        max_steps=plan.max_steps
        if plan.max_steps > 0
        else (cfg.max_steps if cfg.max_steps > 0 else -1),
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=plan.warmup_steps,
        lr_scheduler_type="linear",
        optim="adamw_torch",
        max_grad_norm=cfg.max_grad_norm,  # 0 = no clipping
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.checkpoint_every > 0 else "epoch",
        save_steps=cfg.checkpoint_every if cfg.checkpoint_every > 0 else 500,
        # Resume needs only the newest checkpoint unless the user keeps them all.
        save_total_limit=None if cfg.save_checkpoints else 1,
        report_to=list(cfg.report_to) if cfg.report_to else "none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=bf16,
        fp16=fp16,
        use_cpu=device == "cpu",
        activation_checkpointing=cfg.gradient_checkpointing,
        deepspeed=cfg.deepspeed,
        fsdp=cfg.fsdp or None,
        # Batches are nested by data view (batch["forget"]["input_ids"]): the engine moves them
        # to the device whole (nested dicts), and must not drop the "unused" view columns.
        remove_unused_columns=False,
        # the paper's schedule lays its epochs out in the dataset itself (EpochOrderDataset)
        train_sampling_strategy="sequential" if plan.max_steps > 0 else "random",
        dataloader_num_workers=0,  # the dataset's epoch-dependent pairing lives in this process
        disable_tqdm=False,
        ddp_find_unused_parameters=False,
    )
