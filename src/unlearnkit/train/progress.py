"""Training progress on the terminal: a progress bar and one compact line per logging step.

The Hugging Face engine's own progress callback writes each log dictionary as it is
(``{'loss': '2.31', 'grad_norm': '10.4', 'learning_rate': '0.0001', 'loss_forget': ...}``),
dozens of lines per run. :class:`LossLineProgress` replaces it: the same tqdm bar, and for each
training-step log one line such as ``step 3/6  loss 2.310  forget 1.200  regularizer 1.110``
(the total loss, then each logged part ``loss_<part>``). The full dictionary still goes to
``train_log.jsonl`` and to any ``report_to`` tracker.
"""

from __future__ import annotations

import math
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

PART_PREFIX = "loss_"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if not math.isfinite(v) or v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.3f}" if math.isfinite(v) else str(v)
    return f"{v:.2e}"


def loss_line(step: int, max_steps: int, logs: dict[str, Any]) -> str | None:
    """``step 3/6  loss 2.310  forget 1.200  ...`` for a training-step log; None for any other
    log (the end-of-training summary, evaluation logs)."""
    if "loss" not in logs:
        return None
    total = f"/{max_steps}" if max_steps > 0 else ""
    fields = [f"step {step}{total}", f"loss {_number(logs['loss'])}"]
    fields += [
        f"{key[len(PART_PREFIX) :]} {_number(value)}"
        for key, value in logs.items()
        if key.startswith(PART_PREFIX)
    ]
    return "  ".join(fields)


def summary_line(steps: int, logs: dict[str, Any]) -> str | None:
    """``trained 6 steps in 31 s (mean loss 2.050)`` from the engine's end-of-training log."""
    if "train_runtime" not in logs:
        return None
    mean = logs.get("train_loss")
    tail = f" (mean loss {_number(mean)})" if isinstance(mean, (int, float)) else ""
    plural = "" if steps == 1 else "s"
    return f"trained {steps} step{plural} in {float(logs['train_runtime']):.0f} s{tail}"


class LossLineProgress(ProgressCallback):
    """The engine's progress bar, with compact loss lines instead of raw log dictionaries."""

    def __init__(self, desc: str | None = None, show_bar: bool = True) -> None:
        super().__init__()
        self.desc = desc
        self.show_bar = show_bar

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.current_step = state.global_step  # a resumed run starts part-way
        if self.show_bar and state.is_world_process_zero:
            self.training_bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc=self.desc,
                dynamic_ncols=True,
            )

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if self.training_bar is not None:
            super().on_step_end(args, state, control, **kw)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        line = loss_line(state.global_step, state.max_steps, logs) or summary_line(
            state.global_step, logs
        )
        if line is None:
            return
        if self.training_bar is not None:
            self.training_bar.write(line)  # above the bar, which stays at the bottom
        else:
            print(line, flush=True)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if self.training_bar is not None:
            super().on_train_end(args, state, control, **kw)


def install_progress(trainer: Any, desc: str | None = None) -> LossLineProgress:
    """Replace the engine's printing callbacks on ``trainer`` by :class:`LossLineProgress`
    (the bar follows ``args.disable_tqdm``)."""
    # remove_callback matches by isinstance: remove the engine's before adding ours (a subclass).
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    cb = LossLineProgress(desc, show_bar=not trainer.args.disable_tqdm)
    trainer.add_callback(cb)
    return cb


__all__ = ["LossLineProgress", "install_progress", "loss_line", "summary_line"]
