"""Padding: dynamic (each batch to its own longest sequence), or one example to a fixed length.

Dynamic padding is the default. :func:`pad_fixed` reproduces the paper's fixed-length EOS padding
for the views whose padding counts (unmasked labels, KL over every position).
"""

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


def pad_fixed(
    encoded: dict[str, list[int]], length: int, eos_id: int, *, label_padding: bool
) -> dict[str, list[int]]:
    """One example padded with EOS to ``length``, the way the paper's code builds it.

    ``encoded`` is an untruncated formatter output ending with the answer's EOS token. With
    ``real`` = the question and answer tokens (that EOS dropped), truncated at ``length``:

    - ``input_ids`` = ``real`` + EOS x (length - len(real)); ``attention_mask`` is 1 on ``real``
      only (the EOS after the answer is padding, as in P:dataset/data_module.py:40-52);
    - ``labels`` = real's labels, then the EOS label, then -100 (``label_padding=False``: masked
      views), or EOS on every padding position (``label_padding=True``: the unmasked views, whose
      labels are the padded input ids).

    A ``real`` of ``length`` tokens or more is cut at ``length`` and gets no EOS label.
    """
    ids, labels = list(encoded["input_ids"]), list(encoded["labels"])
    if not ids or ids[-1] != eos_id:
        raise ValueError("pad_fixed needs an untruncated example ending with the EOS token")
    real, real_labels = ids[:-1][:length], labels[:-1][:length]
    pad = length - len(real)
    if pad == 0:
        return {"input_ids": real, "labels": real_labels, "attention_mask": [1] * length}
    fill = eos_id if label_padding else IGNORE_INDEX
    return {
        "input_ids": real + [eos_id] * pad,
        "labels": real_labels + [eos_id] + [fill] * (pad - 1),
        "attention_mask": [1] * len(real) + [0] * pad,
    }
