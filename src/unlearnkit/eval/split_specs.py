"""Which reference each metric uses on each evaluation split (Yuan et al. 2025; TOFU); the
benchmarks' protocols (:mod:`unlearnkit.eval.protocol`) are built from these tables.

| benchmark  | split                     | ROUGE-L ref   | cosine ref      | NLI ref         | Probability | TR base     | TR form | NLI pair   |
|------------|---------------------------|---------------|-----------------|-----------------|-------------|-------------|---------|------------|
| tofu       | forget                    | answer        | answer          | answer          | plain       | paraphrased | forget  | (gen, ref) |
| tofu       | retain                    | answer        | answer          | answer          | plain       | paraphrased | other   | (ref, gen) |
| tofu       | real_authors, world_facts | answer (short)| original_answer | original_answer | normalized  | answer      | other   | (ref, gen) |
| real_world | forget                    | golden_answer | answer (long)   | golden_answer   | plain       | paraphrased | forget  | (gen, ref) |
| real_world | neighbor                  | golden_answer | answer (long)   | golden_answer   | plain       | paraphrased | other   | (gen, ref) |

Probability scores the item's ``answer`` field; "normalized" divides by the perturbed
answers' probabilities too. Under the ``paper`` profile the real-world splits' Probability scores
``golden_answer`` (the short reference the paper's code scores; ``answer`` there is the model's
original long answer, 514 to 656 characters on average against about 75). The Entailment Score's ROUGE-L gate (recall < 0.1 = not entailed)
always uses the ROUGE-L reference; the paper's code (sail-sg/closer-look-LLM-unlearning,
``get_entailment_results``) gates on the same ROUGE-L recall.
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from unlearnkit.data.records import QAItem

Order = Literal["gen_ref", "ref_gen"]


@dataclass(frozen=True)
class SplitSpec:
    rouge_reference: str  # QAItem field compared with the generation by ROUGE-L recall
    cosine_reference: str  # QAItem field compared by embedding cosine similarity
    entailment_reference: str  # QAItem field paired with the generation for the NLI model
    normalized_probability: bool
    truth_ratio_base: str  # QAItem field whose NLL is the Truth Ratio's base
    forget: bool  # forget-set Truth Ratio formula (1 - mean min(R, 1/R))
    entailment_order: Order  # (premise, hypothesis) = (generation, reference) or the reverse
    probability_reference: str = "answer"  # QAItem field whose NLL gives Probability


TOFU_SPLITS: dict[str, SplitSpec] = {
    "forget": SplitSpec("answer", "answer", "answer", False, "paraphrased_answer", True, "gen_ref"),
    "retain": SplitSpec(
        "answer", "answer", "answer", False, "paraphrased_answer", False, "ref_gen"
    ),
    "real_authors": SplitSpec(
        "answer", "original_answer", "original_answer", True, "answer", False, "ref_gen"
    ),
    "world_facts": SplitSpec(
        "answer", "original_answer", "original_answer", True, "answer", False, "ref_gen"
    ),
}
REAL_WORLD_SPLITS: dict[str, SplitSpec] = {
    "forget": SplitSpec(
        "golden_answer", "answer", "golden_answer", False, "paraphrased_answer", True, "gen_ref"
    ),
    "neighbor": SplitSpec(
        "golden_answer", "answer", "golden_answer", False, "paraphrased_answer", False, "gen_ref"
    ),
}


def validate_split(name: str, items: list[QAItem], spec: SplitSpec) -> int:
    """Check that every item has what the split's metrics need; return K (perturbed per item).

    A missing field is a ValueError naming the split, the item and the field, raised before any
    model work starts.
    """
    if not items:
        raise ValueError(f"evaluation split '{name}' has no items")
    needed = {
        spec.probability_reference,
        spec.rouge_reference,
        spec.cosine_reference,
        spec.entailment_reference,
        spec.truth_ratio_base,
    }
    for field in sorted(needed):
        for i, it in enumerate(items):
            value = getattr(it, field)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(
                    f"evaluation split '{name}': item {i} ({it.question[:60]!r}) has no "
                    f"'{field}', which this split's metrics need"
                )
    missing = [i for i, it in enumerate(items) if not it.perturbed_answers]
    if missing:
        raise ValueError(
            f"evaluation split '{name}' has no perturbed answers for {len(missing)} of "
            f"{len(items)} items (first: item {missing[0]}); Truth Ratio"
            f"{' and normalized Probability' if spec.normalized_probability else ''} need them: "
            "use the *_perturbed.json files of the benchmark"
        )
    k = len(items[0].perturbed_answers)
    for i, it in enumerate(items):
        if len(it.perturbed_answers) != k:
            raise ValueError(
                f"evaluation split '{name}': item {i} has {len(it.perturbed_answers)} perturbed "
                f"answers but item 0 has {k}; every item needs the same number"
            )
        empty = [j for j, p in enumerate(it.perturbed_answers) if not str(p).strip()]
        if empty:
            raise ValueError(
                f"evaluation split '{name}': item {i} has an empty perturbed answer (#{empty[0]})"
            )
    return k
