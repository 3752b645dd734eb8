"""The one record type for question-answer items."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class QAItem:
    """A question with its answer and the optional fields TOFU-style evaluation needs."""

    question: str
    answer: str
    paraphrased_answer: str | None = None
    perturbed_answers: list[str] = field(default_factory=list)
    paraphrased_question: str | None = None
    original_answer: str | None = None  # real authors / world facts: the full sentence
    golden_answer: str | None = None  # real-world: the short golden answer
    task_id: int | None = None
    name: str | None = None  # subject (real-world person)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
