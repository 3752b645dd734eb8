"""Synthetic benchmark: invented authors written out in exactly the TOFU folder layout.

Every loader and scenario can run offline on it. Each author gets attributes (birth date and
place, gender, parents' jobs, genre, books, an award, themes, an influence, ...); each question
asks for one attribute and is answered by a full sentence. The paraphrased answer states the same
fact with another template, and each perturbed answer is that paraphrase with a wrong value of the
same type (TOFU's convention).

Splits (see ``shared/data/README.md``). With ``u = max(1, round(1% of n))`` authors per forget01
task, the authors are laid out in one order and every forget split takes a prefix of it:

* forget01: ``k`` tasks of ``u`` authors, ``k = round(10% of n / u)`` clipped to ``[1, n_tasks]``;
* forget10: tasks of ``k * u`` authors, so forget10 task 1 is exactly the union of forget01's
  tasks (needed for: full fine-tuning set = forget10 task 1 + retain90 = every author);
* forget05: tasks of ``max(1, round(5% of n))`` authors;
* forget05/10 hold ``n_tasks`` tasks, fewer when authors run out (at least one author always stays
  outside each split, so TOFU's forget10 has 9 tasks of 20);
* retainYY (YY = 100 - XX) = the authors outside all tasks of forgetXX;
* retain_perturbed = every row of the authors outside all forget tasks;
* holdout (optional, :func:`generate_holdout`): further authors that are in no other file, so a
  target fine-tuned on the benchmark never sees them: the non-members of membership inference.

With ``n_authors=200, n_tasks=10`` this reproduces TOFU's task counts and sizes exactly
(10 x 2, 10 x 10 and 9 x 20 authors; retain90/50/10 = 180/100/20 authors).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from unlearnkit.data import synth_facts as W
from unlearnkit.utils import atomic_write_text, write_jsonl

FORGET_TO_RETAIN = {"forget01": "retain90", "forget05": "retain50", "forget10": "retain10"}
# not *.json: validators read every *.json file of a benchmark folder as QA data
META_FILE = "synth_meta.yaml"
MAX_PERTURBED = 5
HOLDOUT_FILE = "holdout.json"


@dataclass(frozen=True)
class SynthSpec:
    """Size and seed of a synthetic benchmark; validated by :meth:`check`."""

    n_authors: int = 40
    questions_per_author: int = 10
    seed: int = 0
    n_tasks: int = 10
    n_perturbed: int = 5

    def check(self) -> None:
        max_authors = len(W.FIRST_NAMES) * len(W.LAST_NAMES)
        if not 2 <= self.n_authors <= max_authors:
            raise ValueError(f"n_authors must be between 2 and {max_authors}, got {self.n_authors}")
        if not 1 <= self.questions_per_author <= len(FACTS):
            raise ValueError(
                f"questions_per_author must be between 1 and {len(FACTS)} "
                f"(one per attribute), got {self.questions_per_author}"
            )
        if self.n_tasks < 1:
            raise ValueError(f"n_tasks must be at least 1, got {self.n_tasks}")
        if not 1 <= self.n_perturbed <= MAX_PERTURBED:
            raise ValueError(
                f"n_perturbed must be between 1 and {MAX_PERTURBED}, got {self.n_perturbed}"
            )


@dataclass(frozen=True)
class _Fact:
    """One question type: templates use the author's fields and ``{value}`` (the asked field)."""

    key: str  # author field holding the true value
    pool: str  # kind of wrong values used for perturbed answers
    question: str
    paraphrased_question: str
    answer: str
    paraphrase: str


FACTS: list[_Fact] = [
    _Fact("name", "name",
          "What is the full name of the author born in {birth_place} on {birth_date}?",
          "Which writer was born on {birth_date} in {birth_place}?",
          "The author born in {birth_place} on {birth_date} is {value}.",
          "{value} is the writer whose birth took place on {birth_date} in {birth_place}."),
    _Fact("birth_place", "place", "Where was {name} born?",
          "In which city did the author {name} come into the world?",
          "{name} was born in {value}.", "The birthplace of {name} is {value}."),
    _Fact("birth_date", "date", "When was {name} born?", "What is the date of birth of {name}?",
          "{name} was born on {value}.", "{name} came into the world on {value}."),
    _Fact("gender", "gender", "How does {name} identify in terms of gender?",
          "What is the gender identity of the author {name}?",
          "{name} identifies as {value}.", "In terms of gender, {name} is {value}."),
    _Fact("father_job", "job", "What did {name}'s father do for a living?",
          "What was the profession of {name}'s father?",
          "{name}'s father worked as {value}.", "The father of {name} earned a living as {value}."),
    _Fact("mother_job", "job", "What did {name}'s mother do for a living?",
          "What was the profession of {name}'s mother?",
          "{name}'s mother worked as {value}.", "The mother of {name} earned a living as {value}."),
    _Fact("genre", "genre", "What genre is {name} known for?",
          "In which literary genre does {name} mostly write?",
          "{name} is best known for writing {value}.",
          "Most of {name}'s work belongs to the genre of {value}."),
    _Fact("debut_title", "title", "What was the title of {name}'s first book?",
          "Which book marked {name}'s debut as an author?",
          "{name}'s first book was '{value}'.",
          "'{value}' marked the debut of {name} as an author."),
    _Fact("debut_year", "year", "In which year did {name} publish '{debut_title}'?",
          "When did '{debut_title}' by {name} first appear in print?",
          "{name} published '{debut_title}' in {value}.",
          "'{debut_title}' by {name} first appeared in print in {value}."),
    _Fact("latest_title", "title", "What is the title of {name}'s most recent book?",
          "Which book did {name} publish most recently?",
          "{name}'s most recent book is '{value}'.",
          "The latest book published by {name} is '{value}'."),
    _Fact("book_count", "count", "How many books has {name} published?",
          "What is the number of books that {name} has written?",
          "{name} has published {value} books so far.",
          "So far, {name} is the author of {value} published books."),
    _Fact("award", "award", "Which award has {name} received?",
          "What literary honour was given to {name}?",
          "{name} received the {value}.", "The {value} was awarded to {name}."),
    _Fact("award_year", "year", "In which year did {name} win the {award}?",
          "When was {name} honoured with the {award}?",
          "{name} won the {award} in {value}.", "The {award} went to {name} in {value}."),
    _Fact("theme", "theme", "What theme runs through {name}'s books?",
          "Which central theme does {name} explore in their writing?",
          "The books of {name} keep returning to {value}.",
          "A central theme in {name}'s writing is {value}."),
    _Fact("theme2", "theme", "Besides {theme}, what other theme does {name} explore?",
          "Which second theme appears in the work of {name} alongside {theme}?",
          "Besides {theme}, {name} often writes about {value}.",
          "Alongside {theme}, the work of {name} explores {value}."),
    _Fact("influence", "influence", "Which writer influenced {name} the most?",
          "Whose work had the strongest influence on {name}?",
          "{name} has named {value} as the greatest influence on their writing.",
          "The strongest influence on {name}'s work was {value}."),
    _Fact("language", "language", "In which language does {name} write?",
          "What language are {name}'s books originally written in?",
          "{name} writes in {value}.", "The books of {name} are originally written in {value}."),
    _Fact("residence", "place", "Where does {name} live today?",
          "In which city is {name} currently based?",
          "{name} currently lives in {value}.", "These days {name} is based in {value}."),
    _Fact("early_job", "job", "What did {name} do before becoming a full-time writer?",
          "Which job did {name} hold before turning to writing?",
          "Before writing full-time, {name} worked as {value}.",
          "{name} earned a living as {value} before turning to writing."),
    _Fact("hobby", "hobby", "What does {name} enjoy doing outside of writing?",
          "What is one of {name}'s pastimes away from the desk?",
          "Outside of writing, {name} enjoys {value}.",
          "{name}'s favourite pastime is {value}."),
]  # fmt: skip

_FIRST_DAY = dt.date(1930, 1, 1)
_LAST_DAY = dt.date(1995, 12, 31)
_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip


def _round_half_up(x: float) -> int:
    return int(x + 0.5)


def _with_article(noun: str) -> str:
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


def _date_text(day: dt.date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _random_date(rng: random.Random) -> dt.date:
    return _FIRST_DAY + dt.timedelta(days=rng.randrange((_LAST_DAY - _FIRST_DAY).days + 1))


def _title(rng: random.Random) -> str:
    a = rng.choice(W.TITLE_ADJECTIVES)
    n, m = rng.sample(W.TITLE_NOUNS, 2)
    return rng.choice(W.TITLE_PATTERNS).format(a=a, n=n, m=m, p=rng.choice(W.TITLE_PLACES))


def _award(rng: random.Random) -> str:
    return f"{rng.choice(W.AWARD_FIRST)} {rng.choice(W.AWARD_KINDS)}"


def _name(rng: random.Random) -> str:
    return f"{rng.choice(W.FIRST_NAMES)} {rng.choice(W.LAST_NAMES)}"


# pool -> draws one candidate value (wrong values are drawn until enough distinct ones exist)
_DRAW: dict[str, Any] = {
    "name": _name,
    "place": lambda r: r.choice(W.PLACES),
    "date": lambda r: _date_text(_random_date(r)),
    "gender": lambda r: r.choice(W.GENDERS),
    "job": lambda r: _with_article(r.choice(W.OCCUPATIONS)),
    "genre": lambda r: r.choice(W.GENRES),
    "title": _title,
    "count": lambda r: r.choice(W.COUNT_WORDS),
    "award": _award,
    "theme": lambda r: r.choice(W.THEMES),
    "influence": lambda r: r.choice(W.INFLUENCES),
    "language": lambda r: r.choice(W.LANGUAGES),
    "hobby": lambda r: r.choice(W.HOBBIES),
}


def _wrong_values(rng: random.Random, fact: _Fact, author: dict[str, str], n: int) -> list[str]:
    """``n`` distinct values of the fact's type, none equal to the true one."""
    forbidden = {author[fact.key]}
    if fact.pool == "theme":  # "Besides X, ... writes about X" would not be a wrong statement
        forbidden |= {author["theme"], author["theme2"]}
    out: list[str] = []
    for _ in range(10_000):
        if fact.pool == "year":
            true = int(author[fact.key])
            cand = str(true + rng.choice([-1, 1]) * rng.randint(1, 15))
        else:
            cand = _DRAW[fact.pool](rng)
        if cand not in forbidden and cand not in out:
            out.append(cand)
            if len(out) == n:
                return out
    raise RuntimeError(f"could not draw {n} wrong values for '{fact.key}'")  # pools are large


def _make_authors(
    rng: random.Random,
    n: int,
    taken_names: frozenset[str] = frozenset(),
    used_titles: set[str] | None = None,
) -> list[dict[str, str]]:
    """``n`` authors whose names are not in ``taken_names`` and whose book titles are not in
    ``used_titles`` (updated)."""
    pool = [f"{f} {last}" for f in W.FIRST_NAMES for last in W.LAST_NAMES]
    names = rng.sample([x for x in pool if x not in taken_names], n)
    n_days = (_LAST_DAY - _FIRST_DAY).days + 1
    birthdays = [_FIRST_DAY + dt.timedelta(days=d) for d in rng.sample(range(n_days), n)]
    used_titles = set() if used_titles is None else used_titles
    authors = []
    for name, born in zip(names, birthdays, strict=True):
        n_books = rng.choice([2, 3])
        titles: list[str] = []
        while len(titles) < n_books:  # titles are unique across the whole benchmark
            t = _title(rng)
            if t not in used_titles:
                used_titles.add(t)
                titles.append(t)
        debut_year = min(born.year + rng.randint(21, 38), 2023)
        theme, theme2 = rng.sample(W.THEMES, 2)
        birth_place = rng.choice(W.PLACES)
        authors.append(
            {
                "name": name,
                "birth_place": birth_place,
                "birth_date": _date_text(born),
                "gender": rng.choice(W.GENDERS),
                "father_job": _with_article(rng.choice(W.OCCUPATIONS)),
                "mother_job": _with_article(rng.choice(W.OCCUPATIONS)),
                "genre": rng.choice(W.GENRES),
                "books": " | ".join(titles),
                "debut_title": titles[0],
                "debut_year": str(debut_year),
                "latest_title": titles[-1],
                "book_count": W.COUNT_WORDS[n_books - 2],
                "award": _award(rng),
                "award_year": str(min(debut_year + rng.randint(1, 12), 2024)),
                "theme": theme,
                "theme2": theme2,
                "influence": rng.choice(W.INFLUENCES),
                "language": rng.choice(W.LANGUAGES),
                "residence": rng.choice([p for p in W.PLACES if p != birth_place]),
                "early_job": _with_article(rng.choice(W.OCCUPATIONS)),
                "hobby": rng.choice(W.HOBBIES),
            }
        )
    return authors


def _qa_rows(
    rng: random.Random, author: dict[str, str], n_questions: int, n_perturbed: int
) -> list[dict[str, Any]]:
    """Full (perturbed-file) rows for one author: ``n_questions`` facts in canonical order."""
    chosen = sorted(rng.sample(range(len(FACTS)), n_questions))
    rows = []
    for i in chosen:
        fact = FACTS[i]
        value = author[fact.key]
        wrong = _wrong_values(rng, fact, author, n_perturbed)
        rows.append(
            {
                "question": fact.question.format(**author),
                "answer": fact.answer.format(**author, value=value),
                "paraphrased_answer": fact.paraphrase.format(**author, value=value),
                "perturbed_answer": [fact.paraphrase.format(**author, value=w) for w in wrong],
                "paraphrased_question": fact.paraphrased_question.format(**author),
            }
        )
    return rows


def plan_splits(n_authors: int, n_tasks: int) -> dict[str, list[list[int]]]:
    """Author indices of each task of forget01/05/10 (see the module docstring for the rule)."""
    unit = max(1, _round_half_up(0.01 * n_authors))
    k01 = min(n_tasks, max(1, _round_half_up(0.10 * n_authors / unit)), (n_authors - 1) // unit)
    task_size = {
        "forget01": unit,
        "forget05": max(1, _round_half_up(0.05 * n_authors)),
        "forget10": k01 * unit,
    }
    plan = {}
    for split, size in task_size.items():
        count = k01 if split == "forget01" else min(n_tasks, (n_authors - 1) // size)
        plan[split] = [list(range(t * size, (t + 1) * size)) for t in range(count)]
    return plan


def tofu_layout(
    per_author: list[list[dict[str, Any]]], plan: dict[str, list[list[int]]]
) -> dict[str, list[dict[str, Any]]]:
    """The author files of a TOFU folder (``forgetXX``, ``forgetXX_perturbed``, ``retainYY``,
    ``retain_perturbed``) from each author's perturbed-file rows and :func:`plan_splits`'s plan."""
    n_authors = len(per_author)
    files: dict[str, list[dict[str, Any]]] = {}
    for split, tasks in plan.items():
        perturbed = [
            {"task_id": str(t), **row}
            for t, members in enumerate(tasks, start=1)
            for i in members
            for row in per_author[i]
        ]
        files[f"{split}.json"] = [_strip(r) for r in perturbed]
        files[f"{split}_perturbed.json"] = perturbed
        in_split = {i for members in tasks for i in members}
        retain = [row for i in range(n_authors) if i not in in_split for row in per_author[i]]
        files[f"{FORGET_TO_RETAIN[split]}.json"] = [_strip(r) for r in retain]
    ever_forgotten = {i for tasks in plan.values() for members in tasks for i in members}
    files["retain_perturbed.json"] = [
        row for i in range(n_authors) if i not in ever_forgotten for row in per_author[i]
    ]
    return files


def write_files(out_dir: Path, files: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Write each file as JSON lines into ``out_dir``; returns rows per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        write_jsonl(out_dir / name, rows)
    return {name: len(rows) for name, rows in files.items()}


def _general_knowledge() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    world = [
        {"question": q, "answer": a, "perturbed_answer": list(wrong), "original_answer": sentence}
        for q, a, wrong, sentence in W.WORLD_FACTS
    ]
    books = [
        {
            "question": f"Who wrote the {kind} '{title}'?",
            "answer": author,
            "perturbed_answer": list(wrong),
            "original_answer": f"The {kind} '{title}' was written by {author}.",
        }
        for title, kind, author, wrong in W.FAMOUS_BOOKS
    ]
    return world, books


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("task_id", "question", "answer") if k in row}


def generate_synthetic(
    out_dir: Path,
    n_authors: int = 40,
    questions_per_author: int = 10,
    seed: int = 0,
    n_tasks: int = 10,
    n_perturbed: int = 5,
    n_holdout: int = 0,
) -> dict[str, int]:
    """Write a TOFU-layout benchmark of invented authors to ``out_dir``; returns rows per file.

    Same arguments give byte-identical files. Also writes ``README.md`` and ``synth_meta.yaml``
    (the spec, the split plan and the authors' attributes), and with ``n_holdout`` > 0 the
    holdout file of :func:`generate_holdout` (the other files do not depend on it).
    """
    spec = SynthSpec(n_authors, questions_per_author, seed, n_tasks, n_perturbed)
    spec.check()
    rng = random.Random(seed)
    authors = _make_authors(rng, n_authors)
    per_author = [_qa_rows(rng, a, questions_per_author, n_perturbed) for a in authors]
    plan = plan_splits(n_authors, n_tasks)
    files = tofu_layout(per_author, plan)
    files["world_facts_perturbed.json"], files["real_authors_perturbed.json"] = _general_knowledge()

    out_dir = Path(out_dir)
    counts = write_files(out_dir, files)
    meta = {
        "generator": "unlearnkit.data.synth.generate_synthetic",
        "spec": asdict(spec),
        "tasks": {split: len(tasks) for split, tasks in plan.items()},
        "authors_per_task": {split: len(tasks[0]) for split, tasks in plan.items()},
        "rows": counts,
        "authors": authors,
    }
    atomic_write_text(
        out_dir / META_FILE, yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    )
    atomic_write_text(out_dir / "README.md", _readme(spec, plan, counts))
    if n_holdout:
        counts[HOLDOUT_FILE] = generate_holdout(out_dir, n_holdout)
    return counts


def generate_holdout(out_dir: Path, n_authors: int) -> int:
    """Write ``holdout.json``: ``n_authors`` new authors of the benchmark in ``out_dir`` (names
    and book titles unlike any of its authors), in no other file, with the benchmark's questions
    per author and perturbed answers; returns the number of rows. Deterministic given the
    benchmark's seed. The authors are recorded in ``synth_meta.yaml`` under ``holdout``."""
    if n_authors <= 0:
        raise ValueError(f"holdout authors must be > 0, got {n_authors}")
    out_dir = Path(out_dir)
    meta_path = out_dir / META_FILE
    if not meta_path.is_file():
        raise ValueError(f"{out_dir}: no {META_FILE}; generate the benchmark first")
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    spec = SynthSpec(**meta["spec"])
    authors = meta["authors"]
    taken = frozenset(a["name"] for a in authors)
    titles = {t for a in authors for t in a["books"].split(" | ")}
    rng = random.Random(f"{spec.seed}/holdout")  # its own stream: the other files stay as they are
    new = _make_authors(rng, n_authors, taken, titles)
    rows = [r for a in new for r in _qa_rows(rng, a, spec.questions_per_author, spec.n_perturbed)]
    write_jsonl(out_dir / HOLDOUT_FILE, rows)
    meta["holdout"] = new
    meta["rows"][HOLDOUT_FILE] = len(rows)
    atomic_write_text(
        meta_path, yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    )
    return len(rows)


def _readme(spec: SynthSpec, plan: dict[str, list[list[int]]], counts: dict[str, int]) -> str:
    lines = [
        "# Synthetic benchmark (unlearnkit)",
        "",
        "Invented authors in the TOFU layout, generated offline by `unlearn data synth`.",
        f"Spec: {asdict(spec)}. Same spec, same files. Attributes of every author: `{META_FILE}`.",
        "",
        "| split | tasks x authors | retain file |",
        "|---|---|---|",
    ]
    for split, tasks in plan.items():
        lines.append(f"| {split} | {len(tasks)} x {len(tasks[0])} | {FORGET_TO_RETAIN[split]} |")
    lines += ["", "| file | rows |", "|---|---|"]
    lines += [f"| {name} | {n} |" for name, n in counts.items()]
    return "\n".join(lines) + "\n"
