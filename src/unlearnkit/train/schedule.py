"""The paper's step schedule (``train.schedule=paper``): whole optimizer steps across epochs.

The paper's code (P:forget.py:118-125, P:real_world_unlearn.py:75-82) is step-limited::

    steps_per_epoch = floor(n / B)            # B = effective batch
    max_steps       = floor(epochs * n / B)
    warmup_steps    = steps_per_epoch if steps_per_epoch > 1 else 0

and every optimizer step sees a full batch of B examples, the micro-batches running on across
epoch boundaries. forget01 (n = 40, B = 32, 5 epochs) thus has 6 steps and no warm-up, where the
epoch-based default has 2 steps per epoch (32 + 8 examples), 10 in all, and 2 warm-up steps.

:class:`EpochOrderDataset` lays the epochs end to end (a fresh permutation of the items per
epoch) and is read sequentially, so the engine's ``max_steps`` full steps consume exactly the
first ``max_steps * B`` examples of that sequence. Epoch e's permutation is the paper's:
``torch.randperm(n)`` from a generator seeded by ``seed + e``. Under transformers 4.43 (the
paper's pin) the HF Trainer's ``RandomSampler`` becomes accelerate's ``SeedableRandomSampler``,
which seeds its generator with ``torch.random.initial_seed() + epoch``; the last global seed set
before the data loader is built is the Trainer's ``set_seed(args.seed)``, and the paper never
sets ``TrainingArguments.seed``, so its order comes from seed 42 whatever its own ``seed``
(1001). ``benchmarks/paper_train_side_by_side.py`` records the paper's order and checks it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class PaperSchedule:
    steps_per_epoch: int
    max_steps: int
    warmup_steps: int


def paper_schedule(n_examples: int, effective_batch: int, epochs: float) -> PaperSchedule:
    """``floor(n / B)`` steps per epoch, ``floor(epochs * n) // B`` steps, warm-up one epoch
    only when an epoch has more than one step. Raises ``ValueError`` when no step would run."""
    if n_examples <= 0 or effective_batch <= 0:
        raise ValueError("the number of examples and the batch size must be > 0")
    steps_per_epoch = n_examples // effective_batch
    max_steps = int(epochs * n_examples) // effective_batch
    if max_steps <= 0:
        raise ValueError(
            f"train.schedule=paper: floor({epochs:g} epochs x {n_examples} items / batch "
            f"{effective_batch}) = 0 steps; raise train.epochs or lower train.batch_size"
        )
    warmup = steps_per_epoch if steps_per_epoch > 1 else 0
    return PaperSchedule(steps_per_epoch, max_steps, warmup)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The paper's order in epoch ``epoch`` (0-based): ``torch.randperm(n)``, seed + epoch."""
    generator = torch.Generator().manual_seed(int(seed) + int(epoch))
    return torch.randperm(n, generator=generator).numpy()  # (n,)


class EpochOrderDataset(Dataset):
    """``length`` examples of ``base``: epoch e is ``base`` in the order
    ``torch.randperm(len(base))`` draws from a generator seeded by ``seed + e``.

    Read in order (a sequential sampler). Example k belongs to epoch ``k // len(base)``; a base
    dataset with ``set_epoch`` is told that epoch before the item is read.
    """

    def __init__(self, base: Any, length: int, seed: int = 0) -> None:
        self.base = base
        self.n = len(base)
        self.length = int(length)
        if self.n <= 0 or self.length <= 0:
            raise ValueError("EpochOrderDataset needs a non-empty base and length > 0")
        epochs = math.ceil(self.length / self.n)
        orders = [epoch_order(self.n, seed, e) for e in range(epochs)]
        self.order = np.concatenate(orders)[: self.length]  # (length,)

    def __len__(self) -> int:
        return self.length

    def epoch_of(self, k: int) -> int:
        return k // self.n

    def __getitem__(self, k: int) -> Any:
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(self.epoch_of(k))
        return self.base[int(self.order[k])]
