"""Evaluate the model in training at the end of every epoch (``train.eval_every_epoch``).

The paper tracks metrics over epochs; the callback evaluates the in-memory model (no save and
reload) into ``<run>/eval/epoch<N>/`` and records the stage in the results store.

With ``train.select_checkpoint=retain_match`` it also applies MUSE's selection rule, declared
before training and recorded in ``<run>/selection.json``: the selected checkpoint is the first
epoch whose forget-split ``train.select_metric`` is at or below the retain model's value on the
same split (the model has forgotten as much as a model that never saw the forget set). That
epoch's model is saved to ``<run>/selected/`` when it is reached; when no epoch reaches it, the
last epoch is selected (the run's final model) and ``reached`` is false.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from unlearnkit.config import RunConfig
from unlearnkit.data.records import QAItem
from unlearnkit.utils import atomic_write_json, read_json

SELECTION_FILE = "selection.json"
SELECTED_DIR = "selected"


class RetainMatch:
    """MUSE's rule over the epochs' forget-split values, against the retain model's value."""

    def __init__(self, metric: str, retain_summary: dict[str, Any]) -> None:
        self.metric = metric
        target = (retain_summary.get("splits") or {}).get("forget", {}).get(metric)
        if target is None:
            raise ValueError(
                f"train.select_metric '{metric}': the retain model's evaluation has no "
                "forget-split value for it"
            )
        self.target = float(target)
        self.values: dict[str, float] = {}
        self.selected: str | None = None

    def add(self, stage: str, summary: dict[str, Any]) -> bool:
        """Record ``stage``'s value; True when this stage is the selected one (first to reach)."""
        value = (summary.get("splits") or {}).get("forget", {}).get(self.metric)
        if value is None:
            raise ValueError(f"epoch evaluation {stage} has no forget-split '{self.metric}'")
        self.values[stage] = float(value)
        if self.selected is None and float(value) <= self.target:
            self.selected = stage
            return True
        return False

    def record(self, last: bool = False) -> dict[str, Any]:
        reached = self.selected is not None
        selected = self.selected or (list(self.values)[-1] if last and self.values else None)
        return {
            "rule": "retain_match",
            "description": "the first epoch whose forget-split metric is at or below the retain "
            "model's (MUSE); else the last epoch",
            "metric": f"forget/{self.metric}",
            "retain_model_value": self.target,
            "per_epoch": self.values,
            "selected": selected,
            "reached": reached,
            "model": SELECTED_DIR if reached else ("final model" if selected else None),
        }


class EpochEvalCallback(TrainerCallback):
    def __init__(
        self,
        cfg: RunConfig,
        eval_sets: dict[str, list[QAItem]],
        rdir: Path,
        kind: str,
        retain_eval: str | None = None,
        task: int | None = None,
    ) -> None:
        self.cfg, self.eval_sets, self.rdir, self.kind = cfg, eval_sets, rdir, kind
        self.retain_eval, self.task = retain_eval, task
        self.rule: RetainMatch | None = None
        if cfg.train.select_checkpoint == "retain_match":
            if retain_eval is None:
                raise ValueError("train.select_checkpoint=retain_match needs the retain model")
            retain = read_json(Path(retain_eval) / "summary.json")
            self.rule = RetainMatch(cfg.train.select_metric, retain)

    def on_epoch_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        from unlearnkit.data.formatting import PromptFormatter
        from unlearnkit.eval.runner import evaluate
        from unlearnkit.runtime import is_main_process
        from unlearnkit.scenarios.common import log, record

        if model is None or processing_class is None or not is_main_process():
            return
        epoch = max(1, round(state.epoch or 0))
        stage = f"epoch{epoch}"
        log(f"evaluating after epoch {epoch}")
        fmt = PromptFormatter(
            processing_class, self.cfg.data.prompt_preset, self.cfg.data.system_prompt
        )
        eval_cfg = copy.deepcopy(self.cfg.eval)
        if self.retain_eval is not None:
            eval_cfg.retain_eval = self.retain_eval
        was_training = model.training
        model.eval()
        try:
            summary = evaluate(
                model,
                processing_class,
                self.eval_sets,
                eval_cfg,
                self.rdir / "eval" / stage,
                fmt,
                self.kind,
                progress=False,
                profile=self.cfg.profile,
            )
        finally:
            model.train(was_training)
        record(self.cfg, self.rdir, stage, summary, self.task)
        if self.rule is not None:
            if self.rule.add(stage, summary):
                log(f"{stage} reaches the retain model's forget {self.rule.metric}: selected")
                _save_selected(model, processing_class, self.rdir / SELECTED_DIR)
            atomic_write_json(self.rdir / SELECTION_FILE, self.rule.record())

    def on_train_end(self, args, state, control, **kwargs):
        from unlearnkit.runtime import is_main_process

        if self.rule is not None and is_main_process():
            atomic_write_json(self.rdir / SELECTION_FILE, self.rule.record(last=True))


def _save_selected(model: Any, tokenizer: Any, out: Path) -> None:
    """Save the selected epoch's model (LoRA adapters merged into a copy) as a plain HF folder,
    staged and renamed so that only a complete folder is ever visible."""
    import shutil

    from unlearnkit.train.lora import is_peft_model

    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    to_save = copy.deepcopy(model).merge_and_unload() if is_peft_model(model) else model
    to_save.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
