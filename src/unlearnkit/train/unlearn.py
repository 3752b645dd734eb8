"""Unlearning entry point: one task of forget data, one composed method, one saved model.

The reference model (NPO, DPO, KL, LLMU) is loaded only by methods that use it. Its
per-sequence NLLs on the forget data are computed once per task, before training, and cached in
``<out_dir>/ref_nll.pt`` (keyed by the reference and the exact token sequences, so a resumed run
reuses them). Methods that need reference *logits* every step (KL, LLMU) keep it loaded.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import PreTrainedModel, TrainerCallback

from unlearnkit.config import RunConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.loaders import load_refusals
from unlearnkit.data.records import QAItem
from unlearnkit.methods import build_method, select_trainable
from unlearnkit.methods.altpo import load_alternates
from unlearnkit.methods.compose import Method
from unlearnkit.methods.data import (
    UnlearningCollator,
    UnlearningDataset,
    attach_reference_nlls,
    compute_reference_nlls,
    load_reference_cache,
    reference_cache_key,
    save_reference_cache,
)
from unlearnkit.models.loading import load_model, resolve_model_path
from unlearnkit.train.checkpoints import Resume
from unlearnkit.train.common import (
    RunPaths,
    check_out_dir,
    fit,
    init_processes,
    is_main_process,
    maybe_lora,
    run_device,
    run_dtype,
    trained_dtype,
    write_config,
)
from unlearnkit.train.trainer import plan_batches
from unlearnkit.utils import seed_everything

logger = logging.getLogger(__name__)

REF_CACHE = "ref_nll.pt"


def reference_for_task(cfg: RunConfig, current_model: str, original_model: str) -> str:
    """Continual unlearning: the reference is the original model when ``method.fix_ref_model``,
    else the model being unlearned (the previous task's result)."""
    return original_model if cfg.method.fix_ref_model else current_model


def _load_reference(
    method: Method, path: str, cfg: RunConfig, dtype: torch.dtype
) -> PreTrainedModel:
    try:
        ref, _ = load_model(path, device="cpu", dtype=dtype, cache_dir=cfg.model.cache_dir)
    except (ValueError, OSError) as exc:
        raise ValueError(
            f"method {method.name} needs a reference model, but '{path}' could not be loaded "
            f"({str(exc).splitlines()[0][:160]}); pass a loadable --ref-model, or choose a method "
            "without one (GA, ME or IDK, with GD or AP)"
        ) from None
    ref.eval()
    ref.requires_grad_(False)
    return ref


def _fingerprint(path: str) -> str:
    """Reference identity for the NLL cache: its path and, for a folder, its weight files' stats."""
    p = Path(path)
    if not p.is_dir():
        return path
    stats = sorted(
        f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}"
        for f in p.iterdir()
        if f.suffix in (".safetensors", ".bin", ".json")
    )
    return f"{p.resolve()}|{'|'.join(stats)}"


def _reference_nlls(
    method: Method,
    dataset: UnlearningDataset,
    ref: PreTrainedModel,
    ref_path: str,
    cache_path: Path,
    batch_size: int,
    pad_id: int,
) -> None:
    """Attach cached reference NLLs to ``dataset``: load from disk or compute once (main first)."""
    from accelerate import PartialState

    state = PartialState()
    views = method.cached_ref_views
    key = reference_cache_key(dataset, views, _fingerprint(ref_path))
    with state.main_process_first():
        nlls = load_reference_cache(cache_path, key)
        if nlls is None:
            ref.to(state.device)
            nlls = compute_reference_nlls(
                ref, dataset, views, batch_size=batch_size, device=state.device, pad_id=pad_id
            )
            if state.is_main_process:
                save_reference_cache(cache_path, key, nlls)
    attach_reference_nlls(dataset, nlls)


def run_unlearning(
    cfg: RunConfig,
    forget: Sequence[QAItem],
    retain: Sequence[QAItem],
    out_dir: str | Path,
    model_path: str | Path,
    ref_model_path: str | Path | None = None,
    *,
    resume: Resume = False,
    extra_callbacks: list[TrainerCallback] | None = None,
) -> Path:
    """Unlearn ``forget`` from ``model_path`` with ``cfg.method``; returns ``<out_dir>/model``.

    ``ref_model_path`` is the frozen reference (None = ``model_path``); see
    :func:`reference_for_task` for continual unlearning. Every bad input raises a one-line
    ``ValueError`` saying what to change, before anything is written. ``resume``: True continues
    from the newest complete checkpoint in ``out_dir`` (said once when there is none), ``"auto"``
    the same without a word when there is nothing to resume, False refuses an unfinished run.
    """
    method = build_method(cfg.method)  # pad id set once the tokenizer is loaded
    method.seed = cfg.train.seed
    alternates = None
    if method.needs_alternates:
        if not cfg.method.alternates:
            raise ValueError(
                f"method {method.name} needs alternative answers: pass method.alternates=<file> "
                '(JSON lines {"question": ..., "alternate": ...})'
            )
        alternates = load_alternates(cfg.method.alternates)
    if method.trainable_params is not None and cfg.lora.enabled:
        raise ValueError(
            "method.trainable_params and lora.enabled both choose what is trained; set only one"
        )
    if not forget:
        raise ValueError("the forget set is empty; check --benchmark, --split and --task")
    if method.needs_retain and not retain:
        raise ValueError(
            f"method {method.name} needs retain data but the retain set is empty; "
            "use a method without a regularizer (e.g. --method GA) or another split"
        )
    device = run_device(cfg)
    processes = init_processes(device)
    plan = plan_batches(cfg.train, len(forget), what="forget set", processes=processes)
    paths = RunPaths.of(out_dir)
    if check_out_dir(paths, resume):
        logger.info("%s already holds the finished model; nothing to do", paths.model)
        return paths.model
    seed_everything(cfg.train.seed)
    dtype = run_dtype(cfg, device)

    ref_path = str(ref_model_path if ref_model_path is not None else model_path)
    ref_model = None
    if method.needs_reference:
        try:
            ref_path = resolve_model_path(ref_path, cfg.model.cache_dir)
        except ValueError as exc:
            raise ValueError(
                f"method {method.name} needs a reference model: {exc}; pass --ref-model"
            ) from None
        ref_model = _load_reference(method, ref_path, cfg, dtype)

    model, tok = load_model(
        str(model_path),
        device="cpu",
        dtype=trained_dtype(cfg, device),
        cache_dir=cfg.model.cache_dir,
    )
    method.pad_id = int(tok.pad_token_id)
    formatter = PromptFormatter(tok, cfg.data.prompt_preset, cfg.data.system_prompt)
    refusals = load_refusals(cfg.data.refusals) if method.needs_refusals else []
    dataset = UnlearningDataset(
        forget,
        retain,
        refusals,
        formatter,
        method.views,
        mask_question=method.mask_question,
        max_length=cfg.data.max_length,
        seed=cfg.train.seed,
        pairing=cfg.data.pairing,
        fixed_length_views=method.fixed_length_views() if cfg.data.fixed_padding else (),
        alternates=alternates,
        # the paper's code tokenizes question and answer as one string (P:data_module.py:22-52)
        joint_tokenization=cfg.profile == "paper",
    )
    if method.trainable_params is not None:
        chosen = select_trainable(model, method.trainable_params)
        logger.info(
            "training %d parameter tensors matching %s", len(chosen), method.trainable_params
        )
    write_config(
        cfg,
        paths,
        extra={
            "stage": "unlearn",
            "template": formatter.template_info(),
            "method": method.describe(),
            "model_path": str(model_path),
            "reference": ref_path if method.needs_reference else None,
            "n_forget": len(forget),
            "n_retain": len(retain),
            "n_refusals": len(refusals),
            "profile": cfg.profile,
            "fixed_length_views": sorted(dataset.fixed_length_views),
            "batch": {
                "effective": plan.effective,
                "per_device": plan.per_device,
                "processes": plan.processes,
                "grad_accum": plan.grad_accum,
                "steps_per_epoch": plan.steps_per_epoch,
                "warmup_steps": plan.warmup_steps,
                "max_steps": plan.max_steps,
            },
        },
    )
    if ref_model is not None and method.cached_ref_views:
        _reference_nlls(
            method,
            dataset,
            ref_model,
            ref_path,
            paths.root / REF_CACHE,
            batch_size=max(1, cfg.train.per_device_batch_size),
            pad_id=method.pad_id,
        )
        if not method.per_step_reference:
            # Only cached NLLs are needed from now on: free the reference's memory.
            ref_model = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    if is_main_process():
        logger.info("unlearning with %s: %s", method.name, method.describe())
    return fit(
        cfg,
        model=maybe_lora(model, cfg),
        tokenizer=tok,
        dataset=dataset,
        collator=UnlearningCollator(method.pad_id),
        loss_fn=method,
        plan=plan,
        paths=paths,
        device=device,
        resume=resume,
        ref_model=ref_model,
        extra_callbacks=extra_callbacks,
    )
