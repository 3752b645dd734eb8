"""Pieces every scenario shares: run folders, the target model, evaluation, the results store."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from unlearnkit.config import RunConfig, save_config, to_dict
from unlearnkit.data.records import QAItem
from unlearnkit.data.splits import Benchmark, open_benchmark
from unlearnkit.utils import atomic_write_json, atomic_write_text, cache_root

if TYPE_CHECKING:
    from unlearnkit.train.common import Trained

# A model a stage uses: its folder or hub name, or a training stage's result (in memory).
ModelRef = Union[str, Path, "Trained"]


def log(msg: str) -> None:
    print(f"[unlearnkit {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_name(cfg: RunConfig) -> str:
    if cfg.name:
        return cfg.name
    bench = Path(cfg.data.benchmark).name or cfg.data.benchmark
    split = "" if cfg.scenario == "real_world" else f"-{cfg.data.split}"
    lr, seed = cfg.train.learning_rate, cfg.train.seed
    profile = "" if cfg.profile == "default" else f"-{cfg.profile}"
    raw = f"{cfg.scenario}-{bench}{split}-{cfg.method.name}-lr{lr:g}-s{seed}{profile}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", raw)


def run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.output_dir) / run_name(cfg)


def items_fingerprint(items: list[QAItem]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(it.question.encode())
        h.update(b"\x00")
        h.update(it.answer.encode())
        h.update(b"\x01")
    return h.hexdigest()[:16]


def finetune_config(cfg: RunConfig) -> RunConfig:
    """The TOFU fine-tuning recipe: the run's training settings with the target's lr/epochs."""
    ft = copy.deepcopy(cfg)
    ft.train.learning_rate = cfg.target.learning_rate
    ft.train.epochs = cfg.target.epochs
    ft.lora.enabled = False
    return ft


def finetuned_cache_dir(cfg: RunConfig, items: list[QAItem], role: str) -> Path:
    """The cache folder of ``cfg.model.name`` fine-tuned on ``items`` (the same for every run
    whose model, data and fine-tuning settings are the same)."""
    ft = finetune_config(cfg)
    key_src = json.dumps(
        {
            "model": cfg.model.name,
            "data": items_fingerprint(items),
            "train": to_dict(ft.train),
            "data_cfg": {
                k: v
                for k, v in to_dict(cfg.data).items()
                if k in ("prompt_preset", "system_prompt", "max_length")
            },
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    return cache_root() / "targets" / f"{Path(cfg.model.name).name}-{role}-{key}"


def _finetuned(cfg: RunConfig, items: list[QAItem], role: str) -> Path:
    """Fine-tune ``cfg.model.name`` on ``items`` once; later calls reuse the cached model."""
    from unlearnkit.train.finetune import run_finetune

    ft = finetune_config(cfg)
    base = finetuned_cache_dir(cfg, items, role)
    done = base / "DONE"
    if done.is_file():
        model_dir = Path(done.read_text().strip())
        if model_dir.is_dir():
            log(f"reusing fine-tuned {role} model {model_dir}")
            return model_dir
    log(f"fine-tuning the {role} model on {len(items)} QA pairs ({ft.train.epochs:g} epochs)")
    t0 = time.time()
    model_dir = run_finetune(ft, items, base, resume="auto")  # a killed fine-tune continues
    atomic_write_text(done, str(model_dir))
    log(f"{role} model ready in {time.time() - t0:.0f} s: {model_dir}")
    return Path(model_dir)


def target_model(cfg: RunConfig, bench: Benchmark) -> str:
    """The model to unlearn: ``model.name`` as is, or fine-tuned on every author first."""
    if not cfg.target.finetune:
        return cfg.model.name
    if not hasattr(bench, "finetune_set"):
        raise ValueError("target.finetune needs a benchmark in TOFU layout (fictitious authors)")
    return str(_finetuned(cfg, bench.finetune_set(), "target"))


def retain_model(cfg: RunConfig, bench: Benchmark) -> str | None:
    """The retain model of Forget Quality: trained on every author but the forget task's."""
    if not (cfg.target.retain_model and hasattr(bench, "retain_model_set")):
        return None
    split, task = cfg.data.split, cfg.data.task
    items = bench.retain_model_set(split, task)
    return str(_finetuned(cfg, items, f"retain-{split}-task{task}"))


def shared_models(cfg: RunConfig, bench: Benchmark) -> list[tuple[str, Path]]:
    """The fine-tuned models a run of ``cfg`` builds before unlearning, as (``target`` or
    ``retain``, cache folder): what several runs of a grid share, built once before them."""
    needed: list[tuple[str, Path]] = []
    if cfg.scenario in ("fictitious", "continual") and cfg.target.finetune:
        if hasattr(bench, "finetune_set"):
            needed.append(("target", finetuned_cache_dir(cfg, bench.finetune_set(), "target")))
    if cfg.scenario == "fictitious" and cfg.target.retain_model:
        if hasattr(bench, "retain_model_set"):
            split, task = cfg.data.split, cfg.data.task
            items = bench.retain_model_set(split, task)
            needed.append(("retain", finetuned_cache_dir(cfg, items, f"retain-{split}-task{task}")))
    return needed


def loaded(model: ModelRef, cfg: RunConfig) -> Trained:
    """``model`` in memory, on ``model.device`` in ``model.dtype``: a model a training stage
    handed over (:class:`~unlearnkit.train.common.Trained`) as it is, else its folder (or hub
    name) loaded once. Pass the result to every stage that uses the model."""
    from unlearnkit.models.loading import detect_device, load_model, parse_dtype
    from unlearnkit.train.common import Trained

    if isinstance(model, Trained) and model.model is not None:
        device = cfg.model.device
        device = detect_device() if device in (None, "auto") else device
        model.model.to(device=device, dtype=parse_dtype(cfg.model.dtype, device))
        return model
    path = str(model.path if isinstance(model, Trained) else model)
    net, tok = load_model(
        path, device=cfg.model.device, dtype=cfg.model.dtype, cache_dir=cfg.model.cache_dir
    )
    net.eval()
    return Trained(Path(path), net, tok)


def evaluate_model(
    model: ModelRef,
    cfg: RunConfig,
    eval_sets: dict[str, list[QAItem]],
    out_dir: Path,
    kind: str,
    retain_eval: str | None = None,
) -> dict[str, Any]:
    """Run the evaluation runner on ``eval_sets`` with ``model`` (in memory, or loaded once
    from its folder: :func:`loaded`)."""
    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.eval.runner import evaluate

    held = loaded(model, cfg)
    model, tok = held.model, held.tokenizer
    formatter = PromptFormatter(tok, cfg.data.prompt_preset, cfg.data.system_prompt)
    eval_cfg = copy.deepcopy(cfg.eval)
    if retain_eval is not None:
        eval_cfg.retain_eval = retain_eval
    return evaluate(model, tok, eval_sets, eval_cfg, out_dir, formatter, kind, profile=cfg.profile)


def record(
    cfg: RunConfig, rdir: Path, stage: str, summary: dict[str, Any], task: int | None
) -> None:
    """Index a finished stage in the results store (``results.db`` beside the runs)."""
    from unlearnkit.report.store import ResultsStore

    meta = {
        "scenario": cfg.scenario,
        "profile": cfg.profile,
        "method": cfg.method.name,
        "benchmark": cfg.data.benchmark,
        "split": cfg.data.split if cfg.scenario != "real_world" else None,
        "task": task,
        "seed": cfg.train.seed,
        "lr": cfg.train.learning_rate,
    }
    ResultsStore(Path(cfg.output_dir) / "results.db").record(rdir, stage, summary, meta)


def save_run_config(cfg: RunConfig, rdir: Path, extra: dict[str, Any] | None = None) -> None:
    save_config(cfg, rdir / "config.yaml", extra=extra)


def mark_done(rdir: Path, facts: dict[str, Any]) -> None:
    atomic_write_json(rdir / "DONE.json", facts)


def is_done(rdir: Path) -> bool:
    return (rdir / "DONE.json").is_file()


__all__ = [
    "ModelRef",
    "evaluate_model",
    "is_done",
    "loaded",
    "log",
    "mark_done",
    "open_benchmark",
    "record",
    "retain_model",
    "run_dir",
    "run_name",
    "save_run_config",
    "target_model",
]
