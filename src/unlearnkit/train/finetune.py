"""Fine-tuning (building the model to unlearn): TOFU protocol with the shared trainer.

The TOFU target model sees every fictitious author; the retain model sees only the retain
authors (it anchors Forget Quality). Defaults from TOFU: lr 1e-5, 5 epochs, batch 32, wd 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from transformers import TrainerCallback

from unlearnkit.config import RunConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.losses import gd_loss
from unlearnkit.methods.data import QADataset, UnlearningCollator
from unlearnkit.methods.views import Batch
from unlearnkit.models.loading import load_model
from unlearnkit.runtime import init_processes, run_device
from unlearnkit.train.checkpoints import Resume
from unlearnkit.train.common import (
    RunPaths,
    check_out_dir,
    fit,
    maybe_lora,
    trained_dtype,
    write_config,
)
from unlearnkit.train.trainer import plan_batches
from unlearnkit.utils import seed_everything

VIEW = "train"


class NLLLoss:
    """Plain supervised loss: token-mean NLL of the answers (the HF causal-LM loss)."""

    def compute(
        self, model: torch.nn.Module, batch: Batch, ref_model: torch.nn.Module | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        view = batch[VIEW]
        logits = model(
            input_ids=view["input_ids"], attention_mask=view["attention_mask"], use_cache=False
        ).logits  # (B, T, V)
        loss = gd_loss(logits, view["labels"])
        return loss, {"nll": loss}


def run_finetune(
    cfg: RunConfig,
    train_items: Sequence[QAItem],
    out_dir: str | Path,
    *,
    resume: Resume = False,
    extra_callbacks: list[TrainerCallback] | None = None,
) -> Path:
    """Fine-tune ``cfg.model.name`` on ``train_items``; returns ``<out_dir>/model``.

    Question tokens are masked unless ``cfg.method.mask_question`` is False. Raises a one-line
    ``ValueError`` for bad input before anything is written. ``resume`` as in
    :func:`unlearnkit.train.unlearn.run_unlearning`.
    """
    device = run_device(cfg)
    processes = init_processes(device)
    plan = plan_batches(cfg.train, len(train_items), what="training set", processes=processes)
    paths = RunPaths.of(out_dir)
    if check_out_dir(paths, resume):
        return paths.model
    seed_everything(cfg.train.seed)
    model, tok = load_model(
        cfg.model.name,
        device="cpu",
        dtype=trained_dtype(cfg, device),
        cache_dir=cfg.model.cache_dir,
    )
    formatter = PromptFormatter(tok, cfg.data.prompt_preset, cfg.data.system_prompt)
    mask = True if cfg.method.mask_question is None else bool(cfg.method.mask_question)
    dataset = QADataset(
        train_items, formatter, view=VIEW, mask_question=mask, max_length=cfg.data.max_length
    )
    record = {
        "stage": "finetune",
        "template": formatter.template_info(),
        "mask_question": mask,
        "n_train": len(train_items),
        "batch": plan.describe(
            ("effective", "per_device", "processes", "grad_accum", "warmup_steps")
        ),
    }
    write_config(cfg, paths, extra=record)
    return fit(
        cfg,
        model=maybe_lora(model, cfg),
        tokenizer=tok,
        dataset=dataset,
        collator=UnlearningCollator(int(tok.pad_token_id)),
        loss_fn=NLLLoss(),
        plan=plan,
        paths=paths,
        device=device,
        resume=resume,
        extra_callbacks=extra_callbacks,
    ).path
