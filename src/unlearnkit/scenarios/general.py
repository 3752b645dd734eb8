"""General-task accuracy through lm-evaluation-harness, on the in-memory model.

The real-world scenario of Yuan et al. (ICLR 2025) checks that unlearning real people does not
damage general abilities: ARC-Challenge, MMLU, TruthfulQA (MC1), TriviaQA and GSM8K, scored with
``lm_eval``. Those data sets live on the Hugging Face Hub; offline (or with the Hub unreachable)
only the ones already in the local ``datasets`` cache can run. Each task is loaded on its own, so a
task that cannot be loaded is reported in :attr:`GeneralTaskResult.unavailable` with the reason,
and the others still run. No score is ever filled in for a task that did not run.

``lm_eval`` is an optional dependency (``pip install 'unlearnkit[general]'``), imported lazily.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

#: The paper's general tasks (real-world scenario), in its table order.
GENERAL_TASKS: list[str] = ["arc_challenge", "mmlu", "truthfulqa_mc1", "triviaqa", "gsm8k"]

#: The lm_eval result key the paper reports per task ("metric,filter").
PAPER_METRICS: dict[str, str] = {
    "arc_challenge": "acc_norm,none",
    "mmlu": "acc,none",
    "truthfulqa_mc1": "acc,none",
    "triviaqa": "exact_match,remove_whitespace",
    "gsm8k": "exact_match,flexible-extract",
}

# For tasks outside the paper's list: the first metric found in this order is the main one.
_METRIC_PREFERENCE = ("acc", "exact_match", "acc_norm", "f1", "mcc")
_INSTALL_HINT = "pip install 'unlearnkit[general]'"


@dataclass
class GeneralTaskResult:
    """Scores of the tasks that ran, and the reason for each task that could not run.

    ``scores[task]`` is the main accuracy metric in [0, 1] (its lm_eval key in
    ``metrics[task]``); higher is better for all of them. ``details[task]`` keeps lm_eval's raw
    results for the record (metrics with stderr, sub-task results of a group such as ``mmlu``,
    number of samples, task version). ``samples[task]`` holds lm_eval's per-example logs
    (filled only with ``log_samples=True``).
    """

    scores: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        """One line per task: its score, or why it did not run."""
        lines = [f"{t}: {s:.4f} ({self.metrics[t]})" for t, s in self.scores.items()]
        lines += [f"{t}: unavailable - {why}" for t, why in self.unavailable.items()]
        return lines


def _require_lm_eval() -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            f"general-task evaluation needs lm-evaluation-harness; install it with {_INSTALL_HINT}"
        ) from err


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub endpoint accepts a TCP connection within ``timeout``."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Put ``huggingface_hub`` and ``datasets`` in offline mode for the duration.

    Both read ``HF_HUB_OFFLINE`` once at import; setting their module constants makes cached data
    sets load from the cache and uncached ones fail at once, instead of each retrying a dead
    connection for tens of seconds.
    """
    import datasets.config
    from huggingface_hub import constants

    saved = (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    saved_env = os.environ.get("HF_HUB_OFFLINE")
    constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


def _unavailable_reason(err: Exception, offline: bool) -> str:
    text = " ".join(str(err).split())
    if len(text) > 300:
        text = text[:297] + "..."
    reason = f"could not load its data ({type(err).__name__}: {text})"
    if offline and isinstance(err, (ConnectionError, OSError)):
        reason = "data set not in the local cache and the Hugging Face Hub is offline; " + reason
    return reason


def main_metric(task: str, task_results: dict[str, Any]) -> str:
    """The lm_eval result key ("metric,filter") taken as ``task``'s main score.

    The paper's key for its five tasks; otherwise the first of acc / exact_match / acc_norm / f1
    / mcc, preferring the unfiltered value ("none"), then "strict-match", then any filter.
    """
    keys = [k for k in task_results if "," in k and "_stderr" not in k.split(",")[0]]
    if task in PAPER_METRICS and PAPER_METRICS[task] in task_results:
        return PAPER_METRICS[task]
    for metric in _METRIC_PREFERENCE:
        found = sorted(k for k in keys if k.split(",")[0] == metric)
        for filt in ("none", "strict-match"):
            if f"{metric},{filt}" in found:
                return f"{metric},{filt}"
        if found:
            return found[0]
    raise ValueError(
        f"task '{task}' reports no accuracy-like metric ({_METRIC_PREFERENCE}); got {keys}"
    )


@functools.lru_cache(maxsize=4)
def _task_manager(include_path: str | None) -> Any:
    """lm_eval's task index (scanning its ~10k YAML files takes seconds), built once per path."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path)


def _load_tasks(
    manager: Any, tasks: list[str], offline: bool, result: GeneralTaskResult
) -> tuple[list[Any], dict[str, list[str]]]:
    """Load each task on its own; collect the loaded Task/Group objects and their leaf tasks."""
    loaded: list[Any] = []
    leaves: dict[str, list[str]] = {}
    ctx = _hub_offline() if offline else contextlib.nullcontext()
    with ctx:
        for name in tasks:
            try:
                out = manager.load([name])
            except Exception as err:  # any failure to fetch/build the data set: report, go on
                result.unavailable[name] = _unavailable_reason(err, offline)
                print(
                    f"[unlearnkit] general task {name} unavailable: {result.unavailable[name]}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            leaves[name] = sorted(out["tasks"])
            if name in out["groups"]:
                loaded.append(out["groups"][name])
            elif name in out["tasks"]:
                loaded.append(out["tasks"][name])
            else:  # a tag: a bare list of tasks
                loaded.extend(out["tasks"].values())
    return loaded, leaves


def check_task_names(tasks: list[str], include_path: str | None = None) -> Any:
    """Raise ValueError for a name lm_eval does not know (before any expensive work);
    returns the task manager."""
    _require_lm_eval()
    manager = _task_manager(str(include_path) if include_path is not None else None)
    known = set(manager.all_tasks)
    for name in tasks:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown lm_eval task '{name}'{hint}")
    return manager


def run_general_tasks(
    model: Any,
    tokenizer: Any,
    tasks: list[str],
    *,
    limit: int | None = None,
    include_path: str | None = None,
    batch_size: int = 8,
    log_samples: bool = False,
    num_fewshot: int | None = None,
    add_bos_token: bool | None = None,
) -> GeneralTaskResult:
    """Evaluate the in-memory ``model`` on lm_eval ``tasks``; unloadable tasks are reported.

    Args:
        model: a ``transformers`` causal LM (left in the train/eval mode it came in).
        tokenizer: its tokenizer.
        tasks: lm_eval task, group or tag names (e.g. :data:`GENERAL_TASKS`).
        limit: at most this many examples per (sub)task; ``None`` = all (the paper's setting).
        include_path: a folder of extra task YAML files (local tasks, e.g. from a JSON file).
        batch_size: examples per forward pass.
        log_samples: keep lm_eval's per-example logs in ``result.samples``.
        num_fewshot: override the tasks' default number of few-shot examples.
        add_bos_token: passed to lm_eval's ``HFLM`` (None: the tokenizer's own behaviour; the
            paper profile passes True, as the paper's ``lm_eval`` command line does, which
            matters for tokenizers that add no BOS by themselves, e.g. Llama-3's).

    Raises:
        ValueError: a name is neither a known lm_eval task nor one under ``include_path``.
        ImportError: lm_eval is not installed (``pip install 'unlearnkit[general]'``).
    """
    if not tasks:
        raise ValueError("no general tasks given; choose from e.g. " + ", ".join(GENERAL_TASKS))
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")
    _require_lm_eval()
    manager = check_task_names(tasks, include_path)

    result = GeneralTaskResult()
    offline = not hub_reachable()
    loaded, leaves = _load_tasks(manager, list(dict.fromkeys(tasks)), offline, result)
    if not loaded:
        return result

    out = _simple_evaluate(model, tokenizer, loaded, manager, limit, num_fewshot, log_samples,
                           batch_size=batch_size, add_bos_token=add_bos_token)  # fmt: skip
    if out is None:  # pragma: no cover - only on non-zero ranks of a distributed run
        return result
    all_results: dict[str, dict[str, Any]] = out["results"]
    for name, leaf_names in leaves.items():
        task_results = all_results.get(name) or out.get("groups", {}).get(name)
        if task_results is None:  # a tag: score each of its tasks separately
            for leaf in leaf_names:
                _record(result, leaf, all_results[leaf], out, [leaf], log_samples)
            continue
        _record(result, name, task_results, out, leaf_names, log_samples)
    return result


def _simple_evaluate(
    model: Any,
    tokenizer: Any,
    loaded: list[Any],
    manager: Any,
    limit: int | None,
    num_fewshot: int | None,
    log_samples: bool,
    *,
    batch_size: int,
    add_bos_token: bool | None,
) -> dict[str, Any] | None:
    """lm_eval's ``simple_evaluate`` on the in-memory model (its train/eval mode restored)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    was_training = model.training
    try:
        lm = HFLM(
            pretrained=model,
            tokenizer=tokenizer,
            batch_size=batch_size,
            add_bos_token=add_bos_token,
        )
        return simple_evaluate(
            model=lm,
            tasks=loaded,
            task_manager=manager,
            limit=limit,
            num_fewshot=num_fewshot,
            log_samples=log_samples,
            bootstrap_iters=1000,
        )
    finally:
        model.train(was_training)


def _record(
    result: GeneralTaskResult,
    name: str,
    task_results: dict[str, Any],
    out: dict[str, Any],
    leaf_names: list[str],
    log_samples: bool,
) -> None:
    key = main_metric(name, task_results)
    result.scores[name] = float(task_results[key])
    result.metrics[name] = key
    result.details[name] = {
        "results": dict(task_results),
        "subtasks": {
            leaf: out["results"][leaf]
            for leaf in leaf_names
            if leaf != name and leaf in out["results"]
        },
        "n_samples": {leaf: out.get("n-samples", {}).get(leaf) for leaf in leaf_names},
        "versions": {leaf: out.get("versions", {}).get(leaf) for leaf in leaf_names},
        "higher_is_better": out.get("higher_is_better", {}).get(name),
    }
    if log_samples:
        result.samples[name] = [
            s for leaf in leaf_names for s in out.get("samples", {}).get(leaf, [])
        ]
