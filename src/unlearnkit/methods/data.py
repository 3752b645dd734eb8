"""The paired unlearning dataset, its collator, and the per-task reference-NLL cache.

Each example ``i`` pairs forget item ``i`` with a retain item and refusal templates. Two pairing
rules (``data.pairing``), both functions of the index (and seed) only, so they are the same in
every process of a multi-process run whatever the number of processes (the sampler then shards
example indices; it never changes what an index holds):

- ``"epoch"`` (default): NumPy generators seeded by ``(seed, view.salt[, epoch])``. Forget-side
  pairings (``forget_idk`` refusal, ``forget_mismatch`` answer) are fixed for the task, so the
  reference model's NLLs on them can be cached once; retain-side pairings (``retain``,
  ``retain_idk``) are redrawn every epoch (``set_epoch``, called by the training loop), so a small
  forget set meets many retain items over a run.
- ``"index"`` (the paper's code, P:dataset/data_module.py:105-108): a torch generator seeded by
  ``i`` draws ``retain = (i + randint(R)) mod R`` then one refusal ``randint(K)``; the same retain
  item and the same refusal (shared by ``forget_idk`` and ``retain_idk``) come back every epoch,
  and the mismatch answer is the paired retain item's answer. ``data``'s seed plays no part.

Question masking (``mask_question``) applies to the views that declare it (the ``forget`` view);
the retain, refusal and mismatch views always mask the question. What each view pairs, draws and
masks is declared once, in :mod:`unlearnkit.methods.views`; this module only reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from unlearnkit.data.collator import pad_batch, pad_fixed
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.losses import sequence_nll
from unlearnkit.methods.views import PARTNER, REF_NLL, TENSOR_KEYS, VIEWS, Batch, View


def _rng(seed: int, salt: int, epoch: int | None = None) -> np.random.Generator:
    """The random stream ``salt`` (one per view, :attr:`View.salt`) for ``seed`` [and epoch]."""
    entropy = [int(seed), int(salt)] + ([] if epoch is None else [int(epoch)])
    return np.random.default_rng(np.random.SeedSequence(entropy))


def cyclic_permutation(n_rows: int, n_choices: int, rng: np.random.Generator) -> np.ndarray:
    """``n_rows`` indices into ``n_choices``: a random permutation, repeated when too short.

    Every choice is used before any is used twice. Shape ``(n_rows,)``.
    """
    reps = -(-n_rows // n_choices)  # ceil
    perms = [rng.permutation(n_choices) for _ in range(reps)]
    return np.concatenate(perms)[:n_rows]


class UnlearningDataset(Dataset):
    """Examples ``{view: {input_ids, labels, attention_mask[, ref_nll]}}`` for each view.

    ``draws[view]`` holds each drawing view's index per example (into the refusals or the retain
    items, :attr:`View.pool`); ``alternates_drawn[view]`` the alternative answer per example.
    """

    def __init__(
        self,
        forget: Sequence[QAItem],
        retain: Sequence[QAItem],
        refusals: Sequence[str],
        formatter: PromptFormatter,
        views: Sequence[str],
        *,
        mask_question: bool = True,
        max_length: int | None = None,
        seed: int = 0,
        pairing: str = "epoch",
        fixed_length_views: Sequence[str] = (),
        alternates: Mapping[str, Sequence[str]] | None = None,
        joint_tokenization: bool = False,
    ) -> None:
        if pairing not in ("epoch", "index"):
            raise ValueError(f"unknown pairing '{pairing}'; choose from epoch, index")
        if fixed_length_views and max_length is None:
            raise ValueError("fixed-length padding needs max_length")
        self.views = VIEWS.order(views)  # raises for an unknown view
        if not forget:
            raise ValueError("the forget set is empty; check --benchmark/--split/--task")
        needs = VIEWS.needs(self.views)
        if "retain" in needs and not retain:
            raise ValueError(
                "this method needs retain data but the retain set is empty; use a method without "
                "a regularizer (e.g. --method GA) or a split with retain authors"
            )
        if "refusals" in needs and not refusals:
            raise ValueError("this method needs refusal templates but the list is empty")
        self.forget = list(forget)
        self.retain = list(retain)
        self.refusals = list(refusals)
        self.formatter = formatter
        self.mask_question = mask_question
        self.max_length = max_length
        self.seed = seed
        self.pairing = pairing
        self.fixed_length_views = frozenset(fixed_length_views)
        # profile paper: question and answer tokenized as one string (PromptFormatter.encode_as_one)
        self.joint_tokenization = joint_tokenization
        # Alternative answers (AltPO): one per forget item, fixed for the task, drawn from the
        # view's stream whatever the pairing.
        self.alternates_drawn: dict[str, list[str]] = {}
        for name in self.views:
            view = VIEWS.get(name)
            if view.pair is None and view.answer == "alternate":
                self.alternates_drawn[name] = self._draw_alternates(view, alternates or {})
        self.draws: dict[str, np.ndarray] = {}  # view -> (N,) index into its pool
        self.ref_nll: dict[str, Tensor] = {}  # view -> (N,) cached reference NLLs
        if pairing == "index":
            self._index_pairing(len(self.forget))
            self.epoch = 0
            return
        for view in self._drawing_views(fixed=True):
            self.draws[view.name] = self._cyclic(view, None)
        self.epoch = -1
        self.set_epoch(0)

    def _drawing_views(self, fixed: bool) -> list[View]:
        """Every registered view that draws, forget side (``fixed``) or retain side."""
        return [v for v in map(VIEWS.get, VIEWS) if v.pair is None and v.draws and v.fixed == fixed]

    def _pool_size(self, view: View) -> int:
        return len(self.refusals) if view.pool == "refusal" else len(self.retain)

    def _cyclic(self, view: View, epoch: int | None) -> np.ndarray:
        """``data.pairing=epoch``: a cyclic permutation of the view's pool from its own stream."""
        n, size = len(self.forget), self._pool_size(view)
        if not size:
            return np.zeros(n, dtype=np.int64)
        assert view.salt is not None  # checked when the view is declared
        return cyclic_permutation(n, size, _rng(self.seed, view.salt, epoch))

    def _draw_alternates(self, view: View, alternates: Mapping[str, Sequence[str]]) -> list[str]:
        missing = [f.question for f in self.forget if not alternates.get(f.question)]
        if missing:
            raise ValueError(
                f"no alternative answer for {len(missing)} forget question(s), e.g. "
                f"{missing[0]!r}; add them to the method.alternates file"
            )
        assert view.salt is not None  # checked when the view is declared
        rng = _rng(self.seed, view.salt)
        out = []
        for f in self.forget:
            options = list(alternates[f.question])
            out.append(options[int(rng.integers(len(options)))])
        return out

    def _index_pairing(self, n: int) -> None:
        """Pairings drawn from a torch generator seeded by the example index (never redrawn):
        every retain draw (the partner, the mismatch answer) is ``r``, every refusal ``k``."""
        n_retain, n_refusals = len(self.retain), len(self.refusals)
        retain_index = np.zeros(n, dtype=np.int64)
        refusal = np.zeros(n, dtype=np.int64)
        gen = torch.Generator()
        for i in range(n):
            gen.manual_seed(i)
            # Both draws are made even when a list is empty, so the second one does not shift.
            r = int(torch.randint(0, max(n_retain, 1), (1,), generator=gen).item())
            k = int(torch.randint(0, max(n_refusals, 1), (1,), generator=gen).item())
            retain_index[i] = (i + r) % max(n_retain, 1)
            refusal[i] = k
        for view in self._drawing_views(True) + self._drawing_views(False):
            self.draws[view.name] = refusal if view.pool == "refusal" else retain_index

    def set_epoch(self, epoch: int) -> None:
        """Redraw the retain-side pairings for ``epoch`` (deterministic per seed and epoch).

        A no-op under index pairing, whose pairings never change.
        """
        epoch = int(epoch)
        if self.pairing == "index" or epoch == self.epoch:
            return
        self.epoch = epoch
        for view in self._drawing_views(fixed=False):
            self.draws[view.name] = self._cyclic(view, epoch)

    def __len__(self) -> int:
        return len(self.forget)

    def pair(self, i: int, view: str) -> tuple[str, str]:
        """The (question, answer) text of example ``i`` in ``view``."""
        v = VIEWS.get(view)
        if v.pair is not None:
            return v.pair(self, i)
        item = self.forget[i] if v.side == "forget" else self.retain[int(self.draws[PARTNER][i])]
        if v.answer == "own":
            return item.question, item.answer
        if v.answer == "refusal":
            return item.question, self.refusals[int(self.draws[v.name][i])]
        if v.answer == "retain":
            return item.question, self.retain[int(self.draws[v.name][i])].answer
        return item.question, self.alternates_drawn[v.name][i]  # "alternate"

    def view_masks_question(self, view: str) -> bool:
        """Whether ``view`` masks the question (see :attr:`View.mask_follows_method`)."""
        return VIEWS.get(view).masks_question(self.mask_question)

    def encode(self, i: int, view: str) -> dict[str, list[int]]:
        question, answer = self.pair(i, view)
        mask = self.view_masks_question(view)
        encode = self.formatter.encode_as_one if self.joint_tokenization else self.formatter.encode
        if view in self.fixed_length_views:
            assert self.max_length is not None  # checked in __init__
            full = encode(question, answer, mask_question=mask, max_length=None)
            return pad_fixed(full, self.max_length, self.formatter.eos_id, label_padding=not mask)
        return encode(question, answer, mask_question=mask, max_length=self.max_length)

    def __getitem__(self, i: int) -> dict[str, dict[str, list[int] | float]]:
        out: dict[str, dict[str, list[int] | float]] = {}
        for view in self.views:
            enc = self.encode(i, view)
            out[view] = {key: enc[key] for key in TENSOR_KEYS}
            if view in self.ref_nll:
                out[view][REF_NLL] = float(self.ref_nll[view][i])
        return out


class QADataset(Dataset):
    """Plain (question, answer) examples under one view name (fine-tuning uses ``"train"``)."""

    def __init__(
        self,
        items: Sequence[QAItem],
        formatter: PromptFormatter,
        *,
        view: str = "train",
        mask_question: bool = True,
        max_length: int | None = None,
    ) -> None:
        if not items:
            raise ValueError("the training set is empty; check --benchmark/--split")
        self.items = list(items)
        self.formatter = formatter
        self.view = view
        self.mask_question = mask_question
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, dict[str, list[int]]]:
        it = self.items[i]
        enc = self.formatter.encode(
            it.question, it.answer, mask_question=self.mask_question, max_length=self.max_length
        )
        return {self.view: {k: enc[k] for k in TENSOR_KEYS}}


class UnlearningCollator:
    """Pads each view of a list of nested examples to its own longest sequence (dynamic
    padding): ``batch[view]`` = ``{input_ids, labels, attention_mask}`` ``(B, T_view)``, plus
    each per-example number the view carries (``ref_nll``) as a float64 ``(B,)`` tensor."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, dict[str, list[int] | float]]]) -> Batch:
        if not features:
            raise ValueError("cannot collate an empty batch")
        out: Batch = {}
        for view, first in features[0].items():
            rows = [f[view] for f in features]
            group = pad_batch(rows, self.pad_id)  # type: ignore[arg-type]  # (B, T_view) each
            for key in first:
                if key not in TENSOR_KEYS:  # a number per example, e.g. the reference NLL
                    group[key] = torch.tensor([float(r[key]) for r in rows], dtype=torch.float64)
            out[view] = group
        return out


@torch.no_grad()
def compute_reference_nlls(
    ref_model: torch.nn.Module,
    dataset: UnlearningDataset,
    views: Sequence[str],
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    pad_id: int = 0,
) -> dict[str, Tensor]:
    """Summed answer NLL of every example under the reference model, per view: ``{view: (N,)}``.

    Run once per task before training; only forget-side views (fixed pairings) may be cached.
    """
    bad = [v for v in views if not VIEWS.get(v).fixed]
    if bad:
        raise ValueError(f"only forget-side views (fixed pairings) can be cached, got {bad}")
    device = device or next(ref_model.parameters()).device
    was_training = ref_model.training
    ref_model.eval()
    out: dict[str, Tensor] = {}
    for view in views:
        values = []
        for start in range(0, len(dataset), batch_size):
            rows = [
                dataset.encode(i, view) for i in range(start, min(start + batch_size, len(dataset)))
            ]
            batch = pad_batch(rows, pad_id)
            logits = ref_model(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
                use_cache=False,
            ).logits  # (B, T, V)
            nll, _ = sequence_nll(logits, batch["labels"].to(device))  # (B,)
            values.append(nll.cpu())  # float32, float64 for a float64 model
        out[view] = torch.cat(values)  # (N,)
    ref_model.train(was_training)
    return out


def reference_cache_key(dataset: UnlearningDataset, views: Sequence[str], ref_name: str) -> str:
    """A fingerprint of (reference model, exact token sequences) for the on-disk cache."""
    h = hashlib.sha256(ref_name.encode())
    for view in views:
        for i in range(len(dataset)):
            enc = dataset.encode(i, view)
            h.update(json.dumps([view, enc["input_ids"], enc["labels"]]).encode())
    return h.hexdigest()


def attach_reference_nlls(dataset: UnlearningDataset, nlls: dict[str, Tensor]) -> None:
    """Make each example carry its cached reference NLL per view (``batch[view]["ref_nll"]``)."""
    for view, values in nlls.items():
        if view not in dataset.views:
            raise ValueError(f"reference NLLs for '{view}', a view this dataset does not build")
        if values.shape != (len(dataset),):
            raise ValueError(f"reference NLLs for '{view}' have shape {tuple(values.shape)}")
    dataset.ref_nll = dict(nlls)


def load_reference_cache(path: Path, key: str) -> dict[str, Tensor] | None:
    """The cached NLLs at ``path`` if they were computed for ``key``, else None."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a partial or foreign file: recompute
        return None
    if not isinstance(blob, dict) or blob.get("key") != key:
        return None
    return {k: v for k, v in blob["nll"].items()}


def save_reference_cache(path: Path, key: str, nlls: dict[str, Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"key": key, "nll": nlls}, tmp)
    tmp.replace(path)
