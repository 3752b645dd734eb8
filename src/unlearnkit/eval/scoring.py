"""Teacher-forced answer likelihoods for evaluation.

For a question q and an answer a (formatted exactly as in training, the answer followed by the
end-of-sequence token), the mean token NLL is

    Lbar(a | q) = -1/|a| sum_{t in a} log p(a_t | q, a_<t)

over the answer tokens and the EOS token; question tokens and padding never count. Batches are
padded dynamically to their longest sequence (right padding), and only the logits of the positions
that can hold answer tokens are materialised. For each batch of items, the answers and paraphrased
answers go in one forward pass and all perturbed answers of the batch in another one.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import IGNORE_INDEX, PromptFormatter


def _accepts_logits_to_keep(model: PreTrainedModel) -> bool:
    """Whether the forward pass can skip the logits of positions we do not need.

    A PEFT wrapper forwards extra keyword arguments to its base model, so the base model's
    signature decides.
    """
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "logits_to_keep" in inspect.signature(target.forward).parameters
    except (TypeError, ValueError):
        return False


def sequence_mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean NLL per sequence of the labelled tokens.

    ``logits``: (B, K, V), the predictions for the last K positions of the inputs;
    ``labels``: (B, T) with -100 where a token does not count. Position t predicts label t + 1.
    Returns (B,) = -1/n_b sum_t log softmax(logits_bt)[label_b,t+1]; a row with no labelled
    token is a ValueError (it would be a silent 0/0).
    """
    keep = logits.shape[1]
    shifted = labels[:, 1:]  # (B, T - 1): label for prediction position t
    target = shifted[:, shifted.shape[1] - (keep - 1) :] if keep > 1 else shifted[:, :0]
    pred = logits[:, : target.shape[1], :]  # (B, K - 1, V) the last logit predicts nothing
    # Position 0 is never predicted; every other labelled position must lie in the kept window.
    if (labels[:, 1 : labels.shape[1] - target.shape[1]] != IGNORE_INDEX).any():
        raise ValueError("labelled tokens fall outside the kept logits (internal error)")
    token_nll = F.cross_entropy(
        pred.float().transpose(1, 2), target, ignore_index=IGNORE_INDEX, reduction="none"
    )  # (B, K - 1)
    counts = (target != IGNORE_INDEX).sum(dim=1)  # (B,)
    if (counts == 0).any():
        raise ValueError("a scored sequence has no answer tokens")
    return token_nll.sum(dim=1) / counts  # (B,)


@torch.inference_mode()
def mean_nlls(
    model: PreTrainedModel, features: list[dict[str, list[int]]], pad_id: int
) -> list[float]:
    """Mean answer NLL of each encoded (question, answer) sequence, all in ONE forward pass."""
    if not features:
        return []
    batch = pad_batch(features, pad_id=pad_id, side="right")
    device = next(model.parameters()).device
    input_ids = batch["input_ids"].to(device)  # (B, T)
    attention_mask = batch["attention_mask"].to(device)  # (B, T)
    labels = batch["labels"].to(device)  # (B, T)
    seq_len = input_ids.shape[1]
    # First labelled position over the batch: logits before it are never needed.
    first = min(next(j for j, x in enumerate(f["labels"]) if x != IGNORE_INDEX) for f in features)
    keep = seq_len - max(first - 1, 0)
    if _accepts_logits_to_keep(model):
        logits = model(
            input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep, use_cache=False
        ).logits  # (B, keep, V)
    else:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        logits = logits[:, seq_len - keep :, :]  # (B, keep, V)
    return sequence_mean_nll(logits, labels).tolist()


def score_split(
    model: PreTrainedModel,
    formatter: PromptFormatter,
    questions: list[str],
    answers: list[str],
    bases: list[str] | None,
    perturbed: list[list[str]] | None,
    *,
    batch_size: int,
    pad_id: int,
    desc: str = "score",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Teacher-forced mean NLLs of a split.

    Returns ``answer`` (N,), ``base`` (N,) when ``bases`` is given (the Truth Ratio base, e.g. the
    paraphrased answer) and ``perturbed`` (N, K) when ``perturbed`` is given (K equal for every
    item; the caller validates). Items are sorted by length so that padding stays small.
    """
    n = len(questions)
    enc_answer = [formatter.encode(q, a) for q, a in zip(questions, answers, strict=True)]
    enc_base = (
        [formatter.encode(q, b) for q, b in zip(questions, bases, strict=True)] if bases else None
    )
    enc_pert = (
        [[formatter.encode(q, p) for p in ps] for q, ps in zip(questions, perturbed, strict=True)]
        if perturbed
        else None
    )
    k = len(enc_pert[0]) if enc_pert else 0
    out_answer = np.zeros(n)
    out_base = np.zeros(n)
    out_pert = np.zeros((n, k))
    order = sorted(range(n), key=lambda i: len(enc_answer[i]["input_ids"]))
    bar = tqdm(total=n, desc=desc, unit="item", disable=not progress, leave=False)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        feats = [enc_answer[i] for i in idx] + ([enc_base[i] for i in idx] if enc_base else [])
        nll = mean_nlls(model, feats, pad_id)
        out_answer[idx] = nll[: len(idx)]
        if enc_base:
            out_base[idx] = nll[len(idx) :]
        if enc_pert:
            flat = [f for i in idx for f in enc_pert[i]]  # (B * K) sequences, one forward pass
            out_pert[idx] = np.asarray(mean_nlls(model, flat, pad_id)).reshape(len(idx), k)
        bar.update(len(idx))
    bar.close()
    result = {"answer": out_answer}
    if enc_base:
        result["base"] = out_base
    if enc_pert:
        result["perturbed"] = out_pert
    return result
