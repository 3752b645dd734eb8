"""Per-token statistics of answers under teacher forcing, for the memorization metrics and the
membership-inference attacks (:class:`unlearnkit.eval.metrics.AnswerTokens`).

Each batch of (question, answer) sequences, encoded as in training (``PromptFormatter.encode``:
the answer followed by EOS, the question masked), goes through the model ONCE; from the logits
at the answer positions come, per answer token a_t,

    log p(a_t | q, a_<t),  [argmax_v p(v | q, a_<t) = a_t],
    mu_t = sum_v p(v) log p(v),  sigma_t^2 = sum_v p(v) (log p(v))^2 - mu_t^2

(the mean of -log p(a_t) is the mean answer NLL the Probability metric uses; a test holds the
two paths equal). Every answer token is kept here, its EOS included; the metrics that follow the
field in leaving the EOS out take :meth:`AnswerTokens.field_view`. GradNorm needs a backward
pass per item (:func:`answer_grad_norms`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import IGNORE_INDEX, PromptFormatter
from unlearnkit.eval.metrics.answer_tokens import AnswerTokens
from unlearnkit.eval.scoring import accepts_kwarg, at_least_float32, attention

OPEN_UNLEARNING_RULE = "open-unlearning"


def _encode(
    formatter: PromptFormatter,
    questions: list[str],
    answers: list[str],
    joint: bool = False,
    mask_pad_id: int | None = None,
) -> list[dict]:
    """Training's encoding, or (``joint``) question and answer tokenized as one string with the
    prompt's tokens masked (open-unlearning's ``preprocess_chat_instance``); ``mask_pad_id``:
    attention 0 at every token equal to it (open-unlearning's collator)."""
    pairs = zip(questions, answers, strict=True)
    if not joint:
        feats = [formatter.encode(q, a, mask_question=True) for q, a in pairs]
    else:
        feats = []
        for q, a in pairs:
            ids, n_question = formatter.encode_joint(q, a)
            labels = [IGNORE_INDEX] * n_question + ids[n_question:]
            feats.append({"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)})
    if mask_pad_id is not None:
        for f in feats:
            f["attention_mask"] = attention(f["input_ids"], mask_pad_id, True)
    return feats


def _reduced_nlls(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) open-unlearning's mean NLL per row: ``CrossEntropyLoss(reduction="none")`` on
    ``logits.transpose(-1, -2)`` (float32), summed over the labelled positions, divided by
    their number."""
    losses = F.cross_entropy(
        at_least_float32(logits).transpose(-1, -2), target, ignore_index=IGNORE_INDEX,
        reduction="none",
    ).sum(dim=-1)  # fmt: skip
    return losses / (target != IGNORE_INDEX).sum(dim=-1)


@torch.inference_mode()
def answer_token_stats(
    model: PreTrainedModel,
    formatter: PromptFormatter,
    questions: list[str],
    answers: list[str],
    *,
    batch_size: int,
    pad_id: int,
    desc: str = "token statistics",
    progress: bool = False,
    open_unlearning: bool = False,
) -> list[AnswerTokens]:
    """:class:`AnswerTokens` of each (question, answer), batches sorted by length.

    ``open_unlearning``: open-unlearning's joint tokenization and collator mask (:func:`_encode`),
    its ZLib text (the answer decoded from its label tokens) and its rules in the metrics that
    read the result (``AnswerTokens.rule``)."""
    feats = _encode(
        formatter, questions, answers, open_unlearning, pad_id if open_unlearning else None
    )
    device = next(model.parameters()).device
    out: list[AnswerTokens | None] = [None] * len(feats)
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    bar = tqdm(total=len(feats), desc=desc, unit="item", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = pad_batch([feats[i] for i in idx], pad_id=pad_id, side="right")
        ids = batch["input_ids"].to(device)  # (B, T)
        labels = batch["labels"].to(device)  # (B, T)
        seq_len = ids.shape[1]
        # Logits are needed from the position before the first answer token on.
        first = int((labels != IGNORE_INDEX).int().argmax(dim=1).min())
        keep = seq_len - max(first - 1, 0)
        kwargs = {"logits_to_keep": keep} if accepts_kwarg(model, "logits_to_keep") else {}
        logits = model(
            input_ids=ids,
            attention_mask=batch["attention_mask"].to(device),
            use_cache=False,
            **kwargs,
        ).logits[:, -keep:, :]  # (B, keep, V)
        target = labels[:, seq_len - keep + 1 :]  # (B, keep - 1): the token position t predicts
        logp = torch.log_softmax(at_least_float32(logits[:, :-1, :]), dim=-1)  # (B, keep - 1, V)
        valid = target != IGNORE_INDEX  # (B, keep - 1)
        tok_logp = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, keep - 1)
        hit = logp.argmax(dim=-1) == target  # (B, keep - 1)
        # open-unlearning's evaluate_probability: float32 cross-entropy on the transposed
        # (B, V, K) logits, summed over the answer, divided by its length (1e-4 off the
        # contiguous reduction on SmolLM2's vocabulary: eval/scoring.py, token_nlls)
        reduced = _reduced_nlls(logits[:, :-1, :], target) if open_unlearning else None
        p = logp.exp()
        mu = (p * logp).sum(-1)  # (B, keep - 1)
        var = (p * logp.square()).sum(-1) - mu.square()  # (B, keep - 1)
        for row, i in enumerate(idx):
            m = valid[row]
            text = answers[i]
            if open_unlearning:  # ZLib compresses the answer decoded from its labels
                text = formatter.tokenizer.decode(
                    [t for t in feats[i]["labels"] if t != IGNORE_INDEX],
                    skip_special_tokens=True,
                    clean_up_tokenization_spaces=True,
                )
            out[i] = AnswerTokens(
                text=text,
                logp=tok_logp[row][m].double().cpu().numpy(),
                greedy_hit=hit[row][m].cpu().numpy(),
                mean_logp=mu[row][m].double().cpu().numpy(),
                var_logp=var[row][m].double().cpu().numpy(),
                rule=OPEN_UNLEARNING_RULE if open_unlearning else "default",
                reduced_nll=float(reduced[row]) if reduced is not None else None,
            )
        bar.update(len(idx))
    bar.close()
    return out  # type: ignore[return-value]


def _grad_norm(
    model: PreTrainedModel,
    params: list[torch.nn.Parameter],
    feat: dict[str, list[int]],
    pad_id: int,
    device: torch.device,
) -> float:
    batch = pad_batch([feat], pad_id=pad_id, side="right")
    labels = batch["labels"].to(device)  # (1, T)
    answer = (labels[0] != IGNORE_INDEX).nonzero().squeeze(-1)  # positions of the answer tokens
    if answer.numel() > 1:  # the field's rule: the final EOS is left out (AnswerTokens.field_view)
        labels = labels.clone()
        labels[0, answer[-1]] = IGNORE_INDEX
    logits = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        use_cache=False,
    ).logits  # (1, T, V)
    loss = torch.nn.functional.cross_entropy(
        logits[0, :-1].float(), labels[0, 1:], ignore_index=IGNORE_INDEX
    )  # mean NLL of the answer tokens before the EOS
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return float(np.mean([g.float().norm().item() for g in grads if g is not None]))


def answer_grad_norms(
    model: PreTrainedModel,
    formatter: PromptFormatter,
    questions: list[str],
    answers: list[str],
    *,
    pad_id: int,
    open_unlearning: bool = False,
) -> list[float]:
    """GradNorm statistic per item: g = 1/|P| sum_{W in P} ||dLbar'/dW||_2, one backward pass each.

    Lbar': the mean NLL of the answer tokens before its final EOS (the field's rule, as
    open-unlearning's GradNorm attack computes it); an answer with no other token keeps its EOS.

    P: the parameters that require a gradient (all of them when none does, e.g. a frozen
    model). Gradients are taken with ``torch.autograd.grad``: the parameters' ``.grad`` (a
    training run's accumulated gradients) are left untouched.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    frozen = not params
    if frozen:
        params = list(model.parameters())
        for p in params:
            p.requires_grad_(True)
    device = next(model.parameters()).device
    feats = _encode(
        formatter, questions, answers, open_unlearning, pad_id if open_unlearning else None
    )
    # enable_grad: also when called under no_grad (e.g. from a training callback)
    try:
        with torch.enable_grad():
            norms = [_grad_norm(model, params, feat, pad_id, device) for feat in feats]
    finally:
        if frozen:
            for p in params:
                p.requires_grad_(False)
    return norms
