"""Evaluation protocols: what each benchmark evaluates, with which references, and how it
aggregates. The one place that knows a benchmark kind; callers read the protocol.

A protocol declares, for one benchmark kind (``Benchmark.kind``):

* its evaluation splits and, per split, the reference each metric uses (:class:`SplitSpec`, the
  table of :mod:`unlearnkit.eval.split_specs`);
* ``utility_splits``: the splits that count toward Model Utility (their absence is reported; any
  other non-forget split that was evaluated counts too);
* ``forget_split``: Forget Efficacy's split, the members of the membership-inference attacks and
  the split of the memorization metrics; ``holdout_split``: the attacks' non-members;
* ``forget_quality``: whether Forget Quality applies (a retain model exists for the benchmark);
* ``paper``: what the ``paper`` profile changes (:class:`PaperRules`); the ``open-unlearning``
  profile compares every TOFU split's generation with its ``answer`` field (ROUGE).

| kind       | splits                                    | Model Utility                     | FQ  | paper profile                                 |
|------------|-------------------------------------------|-----------------------------------|-----|-----------------------------------------------|
| tofu       | forget, retain, real_authors, world_facts | retain, real_authors, world_facts | yes | -                                             |
| synthetic  | as tofu (TOFU layout)                     | as tofu                           | yes | -                                             |
| real_world | forget, neighbor                          | neighbor                          | no  | Probability on golden_answer; every item      |
"""  # noqa: E501

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from unlearnkit.config import PROFILES, EvalConfig
from unlearnkit.eval.split_specs import REAL_WORLD_SPLITS, TOFU_SPLITS, SplitSpec
from unlearnkit.registry import Registry

FORGET_SPLIT = "forget"
HOLDOUT_SPLIT = "holdout"


@dataclass(frozen=True)
class PaperRules:
    """What the ``paper`` profile changes for a benchmark (the paper code's evaluation)."""

    # Every split's Probability scores this item field instead of its own reference.
    probability_reference: str | None = None
    # Every item is evaluated: eval.ds_size does not apply (the paper's config sets ds_size: null).
    every_item: bool = False


@dataclass(frozen=True)
class EvalProtocol:
    kind: str
    splits: Mapping[str, SplitSpec]
    utility_splits: tuple[str, ...]
    forget_quality: bool = True
    forget_split: str = FORGET_SPLIT
    holdout_split: str = HOLDOUT_SPLIT
    paper: PaperRules = field(default_factory=PaperRules)

    def split_spec(self, split: str, profile: str = "default") -> SplitSpec:
        """The spec of ``split`` under ``profile``; an unknown split is a ValueError listing the
        choices."""
        if split not in self.splits:
            raise ValueError(
                f"unknown evaluation split '{split}' for benchmark kind '{self.kind}'; "
                f"choose from {', '.join(self.splits)}"
            )
        spec = self.splits[split]
        if profile == "open-unlearning" and self.kind in ("tofu", "synthetic"):
            # open-unlearning's TOFU ROUGE (ra/wf_Q_A_ROUGE) compares with the short answer
            return dataclasses.replace(spec, rouge_reference="answer")
        if profile == "paper" and self.paper.probability_reference:
            return dataclasses.replace(spec, probability_reference=self.paper.probability_reference)
        return spec

    def effective_config(self, cfg: EvalConfig, profile: str) -> EvalConfig:
        """The evaluation settings ``profile`` implies for this benchmark."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile '{profile}'; choose from {', '.join(PROFILES)}")
        if profile == "paper" and self.paper.every_item and cfg.ds_size is not None:
            return dataclasses.replace(cfg, ds_size=None)
        return cfg


PROTOCOLS: Registry = Registry("benchmark kind")

_TOFU_UTILITY = ("retain", "real_authors", "world_facts")
PROTOCOLS.add("tofu", EvalProtocol("tofu", TOFU_SPLITS, _TOFU_UTILITY))
PROTOCOLS.add("synthetic", EvalProtocol("synthetic", TOFU_SPLITS, _TOFU_UTILITY))  # TOFU layout
PROTOCOLS.add(
    "real_world",
    EvalProtocol(
        "real_world",
        REAL_WORLD_SPLITS,
        ("neighbor",),
        # no retain model is trained for real people: Forget Quality does not apply
        forget_quality=False,
        # the paper's real-world code scores the short golden answer ("answer" there is the
        # model's original long answer) and its config sets ds_size: null
        paper=PaperRules(probability_reference="golden_answer", every_item=True),
    ),
)


def protocol_for(benchmark: str | EvalProtocol) -> EvalProtocol:
    """The protocol of a benchmark kind (a protocol is returned as it is); an unknown kind is a
    ValueError listing the choices."""
    return benchmark if isinstance(benchmark, EvalProtocol) else PROTOCOLS.get(benchmark)


def split_spec(benchmark_kind: str, split: str, profile: str = "default") -> SplitSpec:
    """The spec of ``split`` under ``profile`` in the benchmark's protocol
    (:meth:`EvalProtocol.split_spec`)."""
    return protocol_for(benchmark_kind).split_spec(split, profile)


def known_splits() -> list[str]:
    """Every evaluation split some protocol declares (for checking eval.splits early)."""
    return sorted({s for kind in PROTOCOLS.names() for s in PROTOCOLS.get(kind).splits})
