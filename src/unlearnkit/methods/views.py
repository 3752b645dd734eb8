"""Data views: each one declared once, as a :class:`View` in the :data:`VIEWS` registry.

A *view* is one tokenized (question, answer) pair per training example. The dataset
(:class:`~unlearnkit.methods.data.UnlearningDataset`: pairing, masking, encoding), the collator,
the reference-NLL cache and the composed :class:`~unlearnkit.methods.compose.Method` (which data
a run needs) all read the record, so a method that needs a new view registers it here (or with
:func:`register_view` in its own file) and nowhere else.

Batches are nested: ``batch[view]`` holds ``input_ids``, ``labels``, ``attention_mask``
``(B, T_view)`` and, when the view's reference NLLs are cached, ``ref_nll`` ``(B,)`` float64.

Pairing (``data.pairing``, see :mod:`unlearnkit.methods.data`): a view asks the forget item's
question (``side="forget"``) or its retain partner's (``side="retain"``: the retain item the
``retain`` view draws). Its answer is the item's own, a refusal, a retain item's answer or an
alternative answer (``answer``); each draw of a refusal or a retain item has its own random
stream (``salt``). Forget-side draws are fixed for the task (so the reference model's NLLs on
them can be cached once); retain-side draws are redrawn every epoch under ``data.pairing=epoch``.
The salts are part of every past run's pairing: never change a registered view's salt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from unlearnkit.registry import REGISTRIES, Registry

TENSOR_KEYS = ("input_ids", "labels", "attention_mask")  # a view's padded (B, T) tensors
REF_NLL = "ref_nll"  # a view's cached reference NLL, a float per example
Batch = dict[str, dict[str, Tensor]]  # view -> {input_ids, labels, attention_mask[, ref_nll]}

SIDES = ("forget", "retain")
ANSWERS = ("own", "refusal", "retain", "alternate")
PARTNER = "retain"  # the view whose draw is the retain partner every retain-side view asks about


@dataclass(frozen=True)
class View:
    """One data view, the whole truth about it.

    - ``side``: whose question it asks: the forget item's (``"forget"``, pairing fixed for the
      task, reference NLLs cacheable) or the retain partner's (``"retain"``, redrawn per epoch).
    - ``answer``: ``"own"`` (the question's own answer), ``"refusal"`` (a refusal template),
      ``"retain"`` (a retain item's answer) or ``"alternate"`` (``method.alternates``).
    - ``salt``: its random stream under ``data.pairing=epoch``; required when it draws.
    - ``mask_follows_method``: its question is masked only when ``method.mask_question`` says
      so; otherwise the question never counts in the loss.
    - ``pair``: ``pair(dataset, i) -> (question, answer)`` for an answer none of the sources
      above gives (it then replaces them; ``side`` still says whose data it reads).
    """

    name: str
    side: str
    answer: str = "own"
    salt: int | None = None
    mask_follows_method: bool = False
    description: str = ""
    pair: Callable[[Any, int], tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"view {self.name}: unknown side '{self.side}'; choose from {SIDES}")
        if self.answer not in ANSWERS:
            raise ValueError(
                f"view {self.name}: unknown answer '{self.answer}'; choose from {ANSWERS}"
            )
        if self.pair is None and self.draws and self.salt is None:
            raise ValueError(f"view {self.name} draws {self.pool}s, so it needs its own salt")

    @property
    def draws(self) -> bool:
        """It draws an index per example: a refusal, a retain item, or (retain side) a partner."""
        return self.answer in ("refusal", "retain") or (
            self.side == "retain" and self.answer == "own"
        )

    @property
    def pool(self) -> str:
        """What its draw indexes: ``"refusal"`` or ``"retain"`` (items)."""
        return "refusal" if self.answer == "refusal" else "retain"

    @property
    def fixed(self) -> bool:
        """Its pairing is fixed for the task (reference NLLs on it can be cached once)."""
        return self.side == "forget"

    @property
    def needs(self) -> frozenset[str]:
        """The data it reads besides the forget set: ``retain``, ``refusals``, ``alternates``."""
        out = set()
        if self.side == "retain" or (self.pair is None and self.answer == "retain"):
            out.add("retain")
        if self.pair is None and self.answer == "refusal":
            out.add("refusals")
        if self.pair is None and self.answer == "alternate":
            out.add("alternates")
        return frozenset(out)

    def masks_question(self, mask_question: bool) -> bool:
        """Whether the question is masked, given ``method.mask_question``."""
        return mask_question if self.mask_follows_method else True


class ViewRegistry(Registry[View]):
    """The registered views, in registration order: the order a step stacks them in its joint
    forward pass (so the built-ins' order is fixed too)."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def order(self, names: Iterable[str]) -> tuple[str, ...]:
        """``names`` in registration order; an unknown name raises a one-line ``ValueError``."""
        wanted = set(names)
        for name in sorted(wanted):
            if name not in self._items:
                raise ValueError(
                    f"unknown data view '{name}'; choose from {', '.join(self._items)}"
                )
        return tuple(n for n in self._items if n in wanted)

    def needs(self, names: Iterable[str]) -> frozenset[str]:
        """The data the views ``names`` read together (see :attr:`View.needs`)."""
        return frozenset().union(*(self.get(n).needs for n in names))


VIEWS = ViewRegistry("data view")
REGISTRIES["views"] = VIEWS  # `unlearn ls views`


def register_view(view: View) -> View:
    """Register ``view`` (a duplicate name is an error); returns it."""
    VIEWS.add(view.name, view, description=view.description)
    return view


def unregister_view(name: str) -> None:
    """Remove a registered view (tests and plugins that register one for a while)."""
    VIEWS.remove(name)


# The built-in views. Their order and salts are those of every earlier run: keep them.
FORGET = register_view(
    View("forget", "forget", "own", mask_follows_method=True, description="forget Q + its answer")
)
FORGET_IDK = register_view(
    View("forget_idk", "forget", "refusal", salt=1, description="forget Q + a refusal (IDK, DPO)")
)
FORGET_MISMATCH = register_view(
    View(
        "forget_mismatch",
        "forget",
        "retain",
        salt=2,
        description="forget Q + an unrelated retain answer (LLMU)",
    )
)
FORGET_ALT = register_view(
    View(
        "forget_alt",
        "forget",
        "alternate",
        salt=5,
        description="forget Q + an alternative answer from method.alternates (AltPO)",
    )
)
RETAIN = register_view(
    View("retain", "retain", "own", salt=3, description="retain Q + its answer (GD, KL, ...)")
)
RETAIN_IDK = register_view(
    View("retain_idk", "retain", "refusal", salt=4, description="retain Q + a refusal (AP)")
)
