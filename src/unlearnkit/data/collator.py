"""Dynamic padding: pad each batch to its own longest sequence, never to a fixed length."""

from __future__ import annotations

import torch

from unlearnkit.data.formatting import IGNORE_INDEX


def pad_batch(
    features: list[dict[str, list[int]]], pad_id: int, side: str = "right"
) -> dict[str, torch.Tensor]:
    """Stack ``input_ids`` / ``labels`` / ``attention_mask`` lists into padded tensors.

    ``side="left"`` is for generation (the prompt ends where new tokens begin).
    Labels are padded with -100 and the attention mask with 0, so padding never counts.
    """
    if side not in ("left", "right"):
        raise ValueError(f"padding side must be 'left' or 'right', got {side!r}")
    if not features:
        raise ValueError("cannot pad an empty batch")
    longest = max(len(f["input_ids"]) for f in features)
    pad_values = {"input_ids": pad_id, "labels": IGNORE_INDEX, "attention_mask": 0}
    out: dict[str, torch.Tensor] = {}
    for key, pad_value in pad_values.items():
        if key not in features[0]:
            continue
        rows = []
        for f in features:
            seq = list(f[key])
            fill = [pad_value] * (longest - len(seq))
            rows.append(fill + seq if side == "left" else seq + fill)
        out[key] = torch.tensor(rows, dtype=torch.long)  # (B, T)
    return out
