"""Evaluate the model in training at the end of every epoch (``train.eval_every_epoch``).

The paper tracks metrics over epochs; the callback evaluates the in-memory model (no save and
reload) into ``<run>/eval/epoch<N>/`` and records the stage in the results store.
"""

from __future__ import annotations

import copy
from pathlib import Path

from transformers import TrainerCallback

from unlearnkit.config import RunConfig
from unlearnkit.data.records import QAItem


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
