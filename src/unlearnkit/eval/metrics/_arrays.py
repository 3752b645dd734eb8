"""Input validation shared by the likelihood-based metrics (private)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike1D = Sequence[float] | np.ndarray
ArrayLike2D = Sequence[Sequence[float]] | np.ndarray


def as_1d(values: ArrayLike1D, name: str) -> np.ndarray:
    """Return ``values`` as a float64 vector (N,); empty, NaN or wrong rank -> ValueError."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one value per item (shape (N,)), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: nothing to average")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN at item(s) {np.flatnonzero(np.isnan(arr)).tolist()}")
    return arr


def as_perturbed(values: ArrayLike2D, n_items: int, name: str) -> np.ndarray:
    """Return perturbed-answer NLLs as a float64 matrix (N, K) with K >= 1.

    Missing perturbed answers (K == 0, ragged rows, wrong N) are a ValueError that says so: the
    split cannot be scored without them.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except ValueError as err:  # ragged nested lists
        raise ValueError(
            f"{name} must hold the same number K of perturbed answers for every item: {err}"
        ) from err
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, K), got shape {arr.shape}")
    if arr.shape[0] != n_items:
        raise ValueError(f"{name} has {arr.shape[0]} rows but there are {n_items} items")
    if arr.shape[1] == 0:
        raise ValueError(
            f"{name} has no perturbed answers (K = 0): this split has no perturbed_answer field, "
            "so Truth Ratio / normalized Probability cannot be computed on it"
        )
    if np.isnan(arr).any():
        rows = sorted(set(np.argwhere(np.isnan(arr))[:, 0].tolist()))
        raise ValueError(f"{name} contains NaN at item(s) {rows}")
    return arr
