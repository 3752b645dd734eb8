"""Entailment Score (Yuan et al. 2025): share of items an NLI model labels ``entailment``.

ES = 1/N sum_i 1[ROUGE-L recall_i >= 0.1 and NLI(premise_i, hypothesis_i) = entailment], with
(premise, hypothesis) = (generation, reference) on the forget set and in the real-world scenario,
(reference, generation) elsewhere. Items with ROUGE-L recall < 0.1 count as not entailed and are not
sent to the NLI model.

The NLI model is any ``AutoModelForSequenceClassification`` (hub id or folder; paper:
``sileod/deberta-v3-base-tasksource-nli``) whose ``config.id2label`` names an entailment class.

Unavailability contract: :func:`get_entailment_scorer` never returns None; it raises
:class:`NLIUnavailable` (``.reason`` holds the one-line reason) when no model is configured or the
model cannot be loaded (e.g. a hub id offline). Callers report the metric as missing with that
reason; nothing is substituted. A model that loads but has no entailment label is a
configuration error: ``ValueError`` naming its labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from unlearnkit.eval.metrics._hub import (
    AuxModelUnavailable,
    detect_device,
    hub_offline_reason,
    looks_like_path,
)

ROUGE_GATE = 0.1  # below this ROUGE-L recall an item counts as not entailed (paper)
Order = Literal["gen_ref", "ref_gen"]


class NLIUnavailable(AuxModelUnavailable):
    """No NLI model could be loaded; ``reason`` says why."""


def find_entailment_label(id2label: dict[int, str]) -> int:
    """Index of the entailment class: the label containing 'entail' (case-insensitive).

    Negated labels such as ``not_entailment`` / ``non-entailment`` are not it. No match, or more
    than one, is a ValueError that lists the model's labels.
    """
    labels = {int(i): str(label) for i, label in id2label.items()}
    matches = []
    for idx, label in labels.items():
        low = label.lower().replace("-", "_").replace(" ", "_")
        if "entail" in low and not low.startswith(("not", "non", "no_")):
            matches.append(idx)
    if len(matches) != 1:
        what = "no" if not matches else "more than one"
        raise ValueError(
            f"NLI model has {what} entailment label in config.id2label {labels}; "
            "use a sequence-classification NLI model whose labels name 'entailment'"
        )
    return matches[0]


class EntailmentScorer:
    """An NLI sequence classifier loaded once; labels (premise, hypothesis) pairs in batches."""

    def __init__(
        self, model_path_or_id: str, device: str | None = None, max_length: int = 512
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = model_path_or_id
        self.device = device or detect_device()
        source = model_path_or_id
        local_only = True
        if looks_like_path(model_path_or_id):
            path = Path(model_path_or_id).expanduser()
            if not path.is_dir():
                raise NLIUnavailable(f"NLI model folder '{model_path_or_id}' not found")
            source = str(path)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=local_only
            )
        except Exception as cached_error:  # noqa: BLE001 - OSError, ValueError, ImportError...
            if source != model_path_or_id:  # a folder that is not a model
                raise NLIUnavailable(
                    f"could not load NLI model from '{model_path_or_id}': {cached_error}"
                ) from cached_error
            offline = hub_offline_reason()
            if offline is not None:
                raise NLIUnavailable(
                    f"NLI model '{model_path_or_id}' is not in the local Hugging Face cache and "
                    f"cannot be downloaded: {offline}"
                ) from cached_error
            try:
                tokenizer = AutoTokenizer.from_pretrained(source)
                model = AutoModelForSequenceClassification.from_pretrained(source)
            except Exception as err:  # noqa: BLE001
                raise NLIUnavailable(
                    f"could not load NLI model '{model_path_or_id}': {err}"
                ) from err
        self.entailment_id = find_entailment_label(model.config.id2label)
        self.tokenizer = tokenizer
        self.model = model.to(self.device).eval()
        limits = [max_length, getattr(model.config, "max_position_embeddings", None)]
        model_max = getattr(tokenizer, "model_max_length", None)
        if model_max is not None and model_max < 1e9:  # "unset" is a huge sentinel value
            limits.append(int(model_max))
        self.max_length = min(int(x) for x in limits if x)

    def entailed(
        self, premises: Sequence[str], hypotheses: Sequence[str], batch_size: int = 16
    ) -> list[bool]:
        """True where argmax of the NLI logits is the entailment class, per pair.

        Pairs are sorted by length before batching (less padding) and returned in input order.
        """
        if len(premises) != len(hypotheses):
            raise ValueError(f"entailed: {len(premises)} premises but {len(hypotheses)} hypotheses")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        import torch

        order = sorted(range(len(premises)), key=lambda i: len(premises[i]) + len(hypotheses[i]))
        result = [False] * len(premises)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [premises[i] for i in idx],
                [hypotheses[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                logits = self.model(**enc).logits  # (B, num_labels)
            labels = logits.argmax(dim=-1).tolist()  # (B,)
            for i, label in zip(idx, labels, strict=True):
                result[i] = label == self.entailment_id
        return result

    def entailment_score(
        self,
        generations: Sequence[str],
        references: Sequence[str],
        rouge_recalls: Sequence[float],
        order: Order,
        batch_size: int = 16,
    ) -> tuple[float, list[float]]:
        """(ES, per-item 1.0/0.0); see the module docstring for the rule and the pair order."""
        return self.entailment_scores(
            {"items": (generations, references, rouge_recalls, order)}, batch_size
        )["items"]

    def entailment_scores(
        self,
        groups: dict[str, tuple[Sequence[str], Sequence[str], Sequence[float], Order]],
        batch_size: int = 16,
    ) -> dict[str, tuple[float, list[float]]]:
        """:meth:`entailment_score` of several splits, their pairs labelled in ONE batched call.

        ``groups``: name -> (generations, references, ROUGE-L recalls, pair order).
        """
        premises: list[str] = []
        hypotheses: list[str] = []
        slots: list[tuple[str, int]] = []  # (group, item) of each gated pair
        per_item: dict[str, list[float]] = {}
        for name, (generations, references, rouge_recalls, order) in groups.items():
            n = len(generations)
            if not (len(references) == len(rouge_recalls) == n):
                raise ValueError(
                    f"entailment_score ({name}): {n} generations, {len(references)} references, "
                    f"{len(rouge_recalls)} ROUGE recalls: one each per item"
                )
            if n == 0:
                raise ValueError(f"entailment_score ({name}): no items")
            if order == "gen_ref":
                prem, hyp = generations, references
            elif order == "ref_gen":
                prem, hyp = references, generations
            else:
                raise ValueError(
                    f"unknown entailment order '{order}'; choose from gen_ref, ref_gen"
                )
            per_item[name] = [0.0] * n
            for i in range(n):
                if rouge_recalls[i] >= ROUGE_GATE:
                    premises.append(prem[i])
                    hypotheses.append(hyp[i])
                    slots.append((name, i))
        labels = self.entailed(premises, hypotheses, batch_size) if slots else []
        for (name, i), ok in zip(slots, labels, strict=True):
            per_item[name][i] = 1.0 if ok else 0.0
        return {name: (sum(v) / len(v), v) for name, v in per_item.items()}


_NLI_CACHE: dict[tuple[str | None, str | None], EntailmentScorer | NLIUnavailable] = {}


def get_entailment_scorer(name: str | None, device: str | None = None) -> EntailmentScorer:
    """The process-wide NLI scorer for ``name`` (loaded once; a failure is remembered too).

    Raises :class:`NLIUnavailable` with the reason when ``name`` is None/empty (metric disabled)
    or the model cannot be loaded; ``ValueError`` when it has no entailment label.
    """
    key = (name, device)
    if key not in _NLI_CACHE:
        if not name:
            _NLI_CACHE[key] = NLIUnavailable("no NLI model configured (eval.nli_model is empty)")
        else:
            try:
                _NLI_CACHE[key] = EntailmentScorer(name, device=device)
            except NLIUnavailable as err:
                _NLI_CACHE[key] = err
    cached = _NLI_CACHE[key]
    if isinstance(cached, NLIUnavailable):
        raise NLIUnavailable(cached.reason)
    return cached
