"""LoRA via peft: target modules detected from the model, adapters merged on save."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from unlearnkit.config import LoraConfig


def detect_target_modules(model: torch.nn.Module) -> list[str]:
    """Names (last path component) of the linear projections inside the transformer blocks.

    Every ``nn.Linear`` (and GPT-2 style ``Conv1D``) counts except the output head, so this works
    for Llama (q/k/v/o/gate/up/down_proj), GPT-2 (c_attn, c_proj, c_fc), Gemma, Qwen and others.
    """
    from transformers.pytorch_utils import Conv1D

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names: set[str] = set()
    for full_name, module in model.named_modules():
        if module is head:
            continue
        if isinstance(module, torch.nn.Linear | Conv1D):
            names.add(full_name.rsplit(".", 1)[-1])
    names.discard("lm_head")
    if not names:
        raise ValueError(
            "no linear layers found for LoRA; set lora.target_modules (e.g. [q_proj, v_proj])"
        )
    return sorted(names)


def apply_lora(model: PreTrainedModel, cfg: LoraConfig) -> torch.nn.Module:
    """Wrap ``model`` with LoRA adapters (only the adapters are trained)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import TaskType, get_peft_model

    if cfg.r <= 0:
        raise ValueError(f"lora.r must be > 0, got {cfg.r}")
    if not 0 <= cfg.dropout < 1:
        raise ValueError(f"lora.dropout must be in [0, 1), got {cfg.dropout}")
    targets = cfg.target_modules or detect_target_modules(model)
    peft_cfg = PeftLoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
    )
    try:
        return get_peft_model(model, peft_cfg)
    except ValueError as exc:
        raise ValueError(f"lora.target_modules {targets} do not fit this model: {exc}") from None


def is_peft_model(model: torch.nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a declared dependency
        return False
    return isinstance(model, PeftModel)


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """Fold the adapters into the base weights and return the plain model (no-op otherwise)."""
    if is_peft_model(model):
        return model.merge_and_unload()  # type: ignore[operator]
    return model
