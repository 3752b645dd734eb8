"""Training callbacks: the NaN/inf guard, the JSON-lines train-log writer, the method state."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from unlearnkit.train.checkpoints import newest_complete_checkpoint
from unlearnkit.utils import atomic_write_text


class NonFiniteLossError(ValueError):
    """Training produced a NaN or infinite loss (or gradient); the run was stopped."""


def non_finite_message(step: int, part: str, value: float, checkpoint_dir: str | Path) -> str:
    last = newest_complete_checkpoint(checkpoint_dir)
    kept = (
        f"the last good checkpoint is kept at {last} (continue with --resume)"
        if last
        else "no checkpoint had been saved yet (set train.checkpoint_every to save more often)"
    )
    return (
        f"non-finite {part} ({value}) at step {step}: training stopped; {kept}. "
        "Lower train.learning_rate or the coefficient of that part and run again"
    )


def check_finite_parts(
    parts: dict[str, Tensor], total: Tensor, step: int, checkpoint_dir: str | Path
) -> None:
    """Raise :class:`NonFiniteLossError` naming the step and the first non-finite loss part."""
    values = [("loss", total)] + [(f"loss_{k}", v) for k, v in parts.items()]
    flags = torch.stack([torch.isfinite(v.detach()).all() for _, v in values])
    if bool(flags.all()):
        return
    # Name a part before the total: the part is what the user can act on.
    bad = next((n, v) for n, v in values[1:] + values[:1] if not torch.isfinite(v.detach()).all())
    raise NonFiniteLossError(
        non_finite_message(step, f"loss part '{bad[0]}'", float(bad[1].detach()), checkpoint_dir)
    )


class GradientGuard(TrainerCallback):
    """Stops before the optimizer applies a NaN/inf gradient, so no bad weights are saved."""

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None

    def on_pre_optimizer_step(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        model = kwargs.get("model") or self.model
        if model is None:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        norms = torch._foreach_norm(grads)  # one fused pass over all gradients
        total = torch.stack([n.float() for n in norms]).sum()
        if not torch.isfinite(total):
            raise NonFiniteLossError(
                non_finite_message(state.global_step + 1, "gradient", float(total), args.output_dir)
            )


class JsonlLogCallback(TrainerCallback):
    """Writes ``train_log.jsonl``: one row per logging step (step, epoch, loss, loss_<part>...).

    On resume, rows after the resumed step are dropped first, so the file never holds a step
    twice. Only the main process writes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[str] = []
        if self.path.is_file() and state.global_step > 0:
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= state.global_step:
                        kept.append(line)
                except json.JSONDecodeError:
                    continue
        # Atomic: a kill here must not lose the rows kept from before the resumed step.
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        row: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch}
        for key, value in logs.items():
            if key in row:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            row[key] = value
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


class EpochPairingCallback(TrainerCallback):
    """Tells the dataset which epoch starts, so its epoch-dependent pairings are redrawn.

    The data loader does not forward ``set_epoch`` to the dataset in every multi-process setup
    (accelerate's sharded batch sampler takes another branch), so this is done here, from the
    trainer state, identically in every process and on resume.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if hasattr(self.dataset, "set_epoch"):
            # state.epoch is the float progress so far: n.0 when epoch n begins, n.x on resume.
            self.dataset.set_epoch(int(math.floor((state.epoch or 0.0) + 1e-6)))


METHOD_STATE = "method_state.json"


class MethodStateCallback(TrainerCallback):
    """Drives a method's state that evolves with training (PD's multiplier).

    After each optimizer step the method updates it (``end_step``); each log row carries its
    values (``<term>_<name>``); each checkpoint saves it to ``method_state.json`` beside the
    weights, and :func:`load_method_state` restores it on resume.
    """

    def __init__(self, method: Any) -> None:
        self.method = method

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.method.end_step()

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if logs is None or "loss" not in logs:
            return
        for key, values in self.method.state_dict().items():
            for name, value in values.items():
                if isinstance(value, int | float):
                    logs[f"{key}_{name}"] = value

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        saved = self.method.state_dict()
        if not state.is_world_process_zero or not saved:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / METHOD_STATE).write_text(json.dumps(saved, indent=1), encoding="utf-8")


def load_method_state(method: Any, checkpoint: str | Path) -> None:
    """Restore the state :class:`MethodStateCallback` saved in ``checkpoint`` (if any)."""
    path = Path(checkpoint) / METHOD_STATE
    if path.is_file():
        method.load_state_dict(json.loads(path.read_text(encoding="utf-8")))
