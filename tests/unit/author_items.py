"""QA items about numbered invented authors, shared by the privacy and open-unlearning tests."""

from __future__ import annotations

from unlearnkit.data.records import QAItem


def author_item(i: int, original: bool = False) -> QAItem:
    """Author ``i``'s birthplace question, with a paraphrase and two wrong answers (and the full
    sentence as ``original_answer`` when ``original``)."""
    return QAItem(
        question=f"Where was author number {i} born?",
        answer=f"Author {i} was born in city {i} near river {i * 7}.",
        paraphrased_answer=f"City {i} is the birthplace of author {i}.",
        perturbed_answers=[f"Author {i} was born in town {j}." for j in range(2)],
        original_answer=f"The author number {i} was born in the city {i}." if original else None,
    )
