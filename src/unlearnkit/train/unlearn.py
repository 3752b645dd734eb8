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
from unlearnkit.runtime import init_processes, is_main_process, run_device
from unlearnkit.train.checkpoints import Resume
from unlearnkit.train.common import (
    RunPaths,
    Trained,
    check_out_dir,
    fit,
    maybe_lora,
    run_dtype,
    trained_dtype,
    write_config,
)
from unlearnkit.train.trainer import BatchPlan, plan_batches
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
                ref,
                dataset,
                views,
                batch_size=batch_size,
                device=state.device,
                pad_id=method.pad_id,
            )
            if state.is_main_process:
                save_reference_cache(cache_path, key, nlls)
    attach_reference_nlls(dataset, nlls)


def _cache_reference(
    method: Method,
    dataset: UnlearningDataset,
    ref_model: PreTrainedModel,
    ref_path: str,
    cfg: RunConfig,
    paths: RunPaths,
) -> bool:
    """Attach the reference's NLLs of the cached views to ``dataset``; True when training still
    needs the reference model itself (views scored at every step)."""
    if method.cached_ref_views:
        batch = max(1, cfg.train.per_device_batch_size)
        _reference_nlls(method, dataset, ref_model, ref_path, paths.root / REF_CACHE, batch)
        return method.per_step_reference
    return True


def _reference_for_training(
    method: Method,
    dataset: UnlearningDataset,
    ref_model: PreTrainedModel | None,
    ref_path: str,
    cfg: RunConfig,
    paths: RunPaths,
) -> PreTrainedModel | None:
    """Attach the reference's cached NLLs to ``dataset``; the reference model itself when
    training still scores it at every step, else None (the caller then frees its memory)."""
    if ref_model is None or _cache_reference(method, dataset, ref_model, ref_path, cfg, paths):
        return ref_model
    return None


def _free_memory() -> None:
    """Release a dropped model's memory (CPU and accelerator)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _check_inputs(
    cfg: RunConfig, method: Method, forget: Sequence[QAItem], retain: Sequence[QAItem]
) -> dict[str, list[str]] | None:
    """Every one-line error a run's inputs can raise, before anything is written; returns the
    alternative answers of a method that needs them (AltPO), else None."""
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
    return alternates


def _reference_model(
    method: Method, cfg: RunConfig, ref_path: str, dtype: torch.dtype
) -> tuple[str, torch.nn.Module | None]:
    """The frozen reference a method needs (resolved path, model), or (path as given, None)."""
    if not method.needs_reference:
        return ref_path, None
    try:
        resolved = resolve_model_path(ref_path, cfg.model.cache_dir)
    except ValueError as exc:
        raise ValueError(
            f"method {method.name} needs a reference model: {exc}; pass --ref-model"
        ) from None
    return resolved, _load_reference(method, resolved, cfg, dtype)


def _select_trainable(model: torch.nn.Module, method: Method) -> None:
    """Freeze every parameter outside ``method.trainable_params`` (when the method sets it)."""
    if method.trainable_params is not None:
        chosen = select_trainable(model, method.trainable_params)
        logger.info(
            "training %d parameter tensors matching %s", len(chosen), method.trainable_params
        )


def _dataset(
    cfg: RunConfig,
    method: Method,
    forget: Sequence[QAItem],
    retain: Sequence[QAItem],
    formatter: PromptFormatter,
    alternates: dict[str, list[str]] | None,
) -> tuple[UnlearningDataset, list[str]]:
    """The views' dataset of the run and the refusals it draws from."""
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
    return dataset, refusals


def _run_record(
    cfg: RunConfig,
    method: Method,
    formatter: PromptFormatter,
    dataset: UnlearningDataset,
    plan: BatchPlan,
    sizes: dict[str, int],
    model_path: str | Path,
    ref_path: str,
) -> dict[str, object]:
    """What the run's ``config.yaml`` records beside the settings."""
    return {
        "stage": "unlearn",
        "template": formatter.template_info(),
        "method": method.describe(),
        "model_path": str(model_path),
        "reference": ref_path if method.needs_reference else None,
        **sizes,
        "profile": cfg.profile,
        "fixed_length_views": sorted(dataset.fixed_length_views),
        "batch": plan.describe(),
    }


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
    """Unlearn ``forget`` from ``model_path`` with ``cfg.method``; returns ``<out_dir>/model``
    (the saved folder only: :func:`unlearn` also hands over the model in memory)."""
    return unlearn(cfg, forget, retain, out_dir, model_path, ref_model_path, resume=resume,
                   extra_callbacks=extra_callbacks).path  # fmt: skip


def unlearn(
    cfg: RunConfig,
    forget: Sequence[QAItem],
    retain: Sequence[QAItem],
    out_dir: str | Path,
    model_path: str | Path,
    ref_model_path: str | Path | None = None,
    *,
    resume: Resume = False,
    extra_callbacks: list[TrainerCallback] | None = None,
) -> Trained:
    """Unlearn ``forget`` from ``model_path`` with ``cfg.method``: saved once, to
    ``<out_dir>/model``, and returned in memory too (:class:`Trained`: only the folder when
    several processes trained it or the run had finished before). ``ref_model_path``: the
    frozen reference (None = ``model_path``; continual: :func:`reference_for_task`). Every bad
    input raises a one-line ``ValueError`` saying what to change, before anything is written.
    ``resume``: True continues from the newest complete checkpoint in ``out_dir`` (said once
    when there is none), ``"auto"`` the same silently, False refuses an unfinished run."""
    method = build_method(cfg.method)  # pad id set once the tokenizer is loaded
    method.seed, alternates = cfg.train.seed, _check_inputs(cfg, method, forget, retain)
    device = run_device(cfg)
    plan = plan_batches(cfg.train, len(forget), "forget set", processes=init_processes(device))
    paths = RunPaths.of(out_dir)
    if check_out_dir(paths, resume):
        logger.info("%s already holds the finished model; nothing to do", paths.model)
        return Trained(paths.model)
    seed_everything(cfg.train.seed)
    ref_path = str(ref_model_path if ref_model_path is not None else model_path)
    ref_path, ref_model = _reference_model(method, cfg, ref_path, run_dtype(cfg, device))
    dtype = trained_dtype(cfg, device)
    model, tok = load_model(
        str(model_path), device="cpu", dtype=dtype, cache_dir=cfg.model.cache_dir
    )
    method.pad_id = int(tok.pad_token_id)
    formatter = PromptFormatter(tok, cfg.data.prompt_preset, cfg.data.system_prompt)
    dataset, refusals = _dataset(cfg, method, forget, retain, formatter, alternates)
    _select_trainable(model, method)
    sizes = {"n_forget": len(forget), "n_retain": len(retain), "n_refusals": len(refusals)}
    record = _run_record(cfg, method, formatter, dataset, plan, sizes, model_path, ref_path)
    write_config(cfg, paths, extra=record)
    ref_model = _reference_for_training(method, dataset, ref_model, ref_path, cfg, paths)
    _free_memory()  # a reference only its cached NLLs are needed of is released here
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
