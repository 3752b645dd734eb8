"""Teacher-forced answer likelihoods for evaluation.

For a question q and an answer a (formatted exactly as in training, the answer followed by the
end-of-sequence token), the mean token NLL is

    Lbar(a | q) = -1/|a| sum_{t in a} log p(a_t | q, a_<t)

over the answer tokens and the EOS token; question tokens and padding never count. Batches are
padded dynamically to their longest sequence, never to a fixed length.

Two exact implementations of the same numbers:

* shared prompt (default where the model's cache allows it): each batch's prompts go through the
  model once (left padded); their key/value cache is then repeated for every answer of the item,
  so the answers and paraphrased answers of the batch, then all its perturbed answers, are
  scored in forward passes of length-sorted rows, without recomputing the prompt 2 + K times;
  where generation already ran the prompts, their saved states replace the prompt pass;
* full sequences (fallback, e.g. sliding-window or recurrent caches): prompt + answer sequences
  right padded, two forward passes per batch as above, only the logits of the positions that can
  hold answer tokens materialised.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import IGNORE_INDEX, PromptFormatter


def accepts_kwarg(model: PreTrainedModel, name: str) -> bool:
    """Whether the forward pass takes keyword ``name``. A PEFT wrapper forwards extra keyword
    arguments to its base model, so the base model's signature decides."""
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return name in inspect.signature(target.forward).parameters
    except (TypeError, ValueError):
        return False


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or as it is when wider (float64: the engines' equality tests)."""
    return t if t.dtype == torch.float64 else t.float()


def token_nlls(
    logits: torch.Tensor, target: torch.Tensor, paper_rounding: bool = False
) -> torch.Tensor:
    """-log softmax(logits)[target] per position: logits (B, K, V), target (B, K) with -100
    where nothing counts (0 there); float32 (float64 for float64 logits).

    The vocabulary is reduced as the contiguous last dimension of (B*K, V) rows.
    ``F.cross_entropy`` on the transposed (B, V, K) layout reduces over a strided dimension and,
    in float32 on SmolLM2's 49k vocabulary, was measured 1.5e-4 off the float64 value on a
    2-token answer (the rows layout: 1e-5, the rounding of the float32 logits themselves).
    ``paper_rounding=True`` uses that transposed layout on purpose: it is what the paper's
    ``get_batch_loss`` computes, and its float32 result at a position does not depend on the
    batch's width or length, so the paper profile reproduces the paper's NLLs to the rounding
    of the logits rather than to the 1.5e-4 of the reduction.
    """
    b, k, v = logits.shape
    if paper_rounding:
        return F.cross_entropy(
            at_least_float32(logits).transpose(1, 2),
            target,
            ignore_index=IGNORE_INDEX,
            reduction="none",
        )  # (B, K)
    return F.cross_entropy(
        at_least_float32(logits).reshape(b * k, v),
        target.reshape(b * k),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(b, k)


def vocab_log_softmax(logits: torch.Tensor, paper_rounding: bool = False) -> torch.Tensor:
    """log softmax over the vocabulary of (B, V) logits, float32 (float64 for float64 logits);
    ``paper_rounding`` reduces over the vocabulary as a strided dimension, as :func:`token_nlls`
    does."""
    if paper_rounding:
        return torch.log_softmax(at_least_float32(logits).unsqueeze(-1), dim=1).squeeze(-1)
    return torch.log_softmax(at_least_float32(logits), dim=-1)  # (B, V)


def sequence_mean_nll(
    logits: torch.Tensor, labels: torch.Tensor, paper_rounding: bool = False
) -> torch.Tensor:
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
    token_nll = token_nlls(pred, target, paper_rounding)  # (B, K - 1)
    counts = (target != IGNORE_INDEX).sum(dim=1)  # (B,)
    if (counts == 0).any():
        raise ValueError("a scored sequence has no answer tokens")
    return token_nll.sum(dim=1) / counts  # (B,)


@torch.inference_mode()
def mean_nlls(
    model: PreTrainedModel,
    features: list[dict[str, list[int]]],
    pad_id: int,
    paper_rounding: bool = False,
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
    if accepts_kwarg(model, "logits_to_keep"):  # skip the logits of question positions
        logits = model(
            input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep, use_cache=False
        ).logits  # (B, keep, V)
    else:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        logits = logits[:, seq_len - keep :, :]  # (B, keep, V)
    return sequence_mean_nll(logits, labels, paper_rounding).tolist()


def cache_argument(model: PreTrainedModel) -> str | None:
    """The forward pass's key/value cache keyword, or None when it cannot take a cache together
    with explicit ``position_ids``. transformers 5 names it ``cache``, ``past_key_values`` before.
    """
    if not accepts_kwarg(model, "position_ids"):
        return None
    return next((a for a in ("cache", "past_key_values") if accepts_kwarg(model, a)), None)


def output_cache(out: object) -> object:
    """The key/value cache a forward pass returned (``cache`` in transformers 5, else
    ``past_key_values``)."""
    return getattr(out, "cache", None) or getattr(out, "past_key_values", None)


def shareable_cache(cache: object) -> bool:
    """Only plain full-attention dynamic caches can be repeated row-wise and extended exactly."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    layers = getattr(cache, "layers", None)
    return (
        isinstance(cache, DynamicCache)
        and bool(layers)
        and all(type(layer) is DynamicLayer for layer in layers)
    )


@dataclass(eq=False)
class PromptState:
    """One prompt as the model computed it, kept to score answers against without recomputing.

    ``layers``: per layer ``(keys, values)`` of shape ``(heads, P, head_dim)`` (no padding);
    ``next_logp``: ``(V,)`` log-probabilities of the token after the prompt.
    """

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    next_logp: torch.Tensor

    @property
    def length(self) -> int:
        return int(self.layers[0][0].shape[1])

    @property
    def nbytes(self) -> int:
        kv = sum(
            k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers
        )
        return kv + self.next_logp.numel() * self.next_logp.element_size()


def split_prompt_states(
    cache: object, mask: torch.Tensor, last_logits: torch.Tensor
) -> list[PromptState]:
    """Per-row :class:`PromptState` of a padded batch: ``cache`` (full-attention dynamic layers,
    B rows), ``mask`` (B, P) with 1 at the row's own tokens (anywhere: left padding, or the
    gap of a shared-prefix prefill), ``last_logits`` (B, V) at the last prompt position."""
    logp = torch.log_softmax(at_least_float32(last_logits), dim=-1)  # (B, V)
    states = []
    for b, row in enumerate(mask.bool()):
        cols = row.nonzero(as_tuple=True)[0]  # (n,) the row's own positions, in order
        layers = [
            (la.keys[b][:, cols], la.values[b][:, cols])  # (H, n, D) copies
            for la in cache.layers  # type: ignore[attr-defined]
        ]
        states.append(PromptState(layers, logp[b].clone()))
    return states


def stack_prompt_states(
    states: list[PromptState], device: torch.device
) -> tuple[object, torch.Tensor, torch.Tensor]:
    """Saved prompts as a left-padded batch: (dynamic cache, mask (B, P), next logp (B, V))."""
    from transformers.cache_utils import DynamicCache

    width = max(st.length for st in states)
    mask = torch.zeros(len(states), width, dtype=torch.long, device=device)
    data = []
    for layer in range(len(states[0].layers)):
        k0, v0 = states[0].layers[layer]
        keys = k0.new_zeros(len(states), k0.shape[0], width, k0.shape[2])  # (B, H, P, D)
        values = v0.new_zeros(len(states), v0.shape[0], width, v0.shape[2])
        for b, st in enumerate(states):
            k, v = st.layers[layer]
            keys[b, :, width - k.shape[1] :] = k
            values[b, :, width - v.shape[1] :] = v
        data.append((keys.to(device), values.to(device)))
    for b, st in enumerate(states):
        mask[b, width - st.length :] = 1
    first_logp = torch.stack([st.next_logp for st in states]).to(device)  # (B, V)
    return DynamicCache(ddp_cache_data=data), mask, first_logp


@torch.inference_mode()
def shared_prompt_nlls(
    model: PreTrainedModel,
    prompts: list[list[int]],
    passes: list[list[tuple[int, list[int]]]],
    pad_id: int,
    states: list[PromptState] | None = None,
    rows_per_pass: int | None = None,
    paper_rounding: bool = False,
) -> list[list[float]] | None:
    """Mean NLLs of continuations of shared prompts; None when the model cannot share its cache.

    ``prompts``: B token lists. ``passes``: each pass is a list of rows ``(b, continuation)``,
    the continuation being the answer tokens + EOS that follow prompt ``b``; the rows of a pass
    are sorted by length and run ``rows_per_pass`` (default B) at a time, each forward pass
    reusing the prompts' key/value cache. ``states``: the prompts as generation already
    computed them (:class:`PromptState`, aligned with ``prompts``); then no prompt pass runs.
    Row r's value is

        Lbar_r = -1/|c_r| [log p(c_r,0 | prompt_b) + sum_{j>=1} log p(c_r,j | prompt_b, c_r,<j)]

    where the first term comes from the prompt pass's last position. Identical (up to float
    rounding) to scoring ``prompt + continuation`` as one sequence. ``paper_rounding``: see
    :func:`token_nlls` (saved ``states`` then must come from a prompt pass that used it too).
    """
    cache_arg = cache_argument(model)
    if cache_arg is None:
        return None
    device = next(model.parameters()).device
    if states is not None:  # the prompts were computed before (by generation): no prompt pass
        cache, mask, first_logp = stack_prompt_states(states, device)
    else:
        batch = pad_batch(
            [{"input_ids": p, "attention_mask": [1] * len(p)} for p in prompts], pad_id, "left"
        )
        ids = batch["input_ids"].to(device)  # (B, P)
        mask = batch["attention_mask"].to(device)  # (B, P)
        position = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, P): left padding does not count
        kwargs = {"logits_to_keep": 1} if accepts_kwarg(model, "logits_to_keep") else {}
        out = model(
            input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True, **kwargs
        )
        cache = output_cache(out)
        if not shareable_cache(cache):
            return None
        first_logp = vocab_log_softmax(out.logits[:, -1, :], paper_rounding)  # (B, V)
    prompt_len = mask.sum(dim=1)  # (B,)
    chunk = rows_per_pass or len(prompts)
    results: list[list[float]] = []
    for rows in passes:
        # Rows sorted by length and run in chunks: little padding whatever the answers' lengths.
        values = [0.0] * len(rows)
        order = sorted(range(len(rows)), key=lambda r: len(rows[r][1]))
        for start in range(0, len(order), chunk):
            part = order[start : start + chunk]
            idx = torch.tensor([rows[r][0] for r in part], device=device)  # (R,)
            cont = pad_batch(
                [{"input_ids": rows[r][1], "attention_mask": [1] * len(rows[r][1])} for r in part],
                pad_id,
                "right",
            )
            c_ids = cont["input_ids"].to(device)  # (R, A)
            c_mask = cont["attention_mask"].to(device)  # (R, A)
            width = c_ids.shape[1]
            kv = copy.deepcopy(cache)
            kv.reorder_cache(idx)  # (R, ...) rows of the prompt cache, one per continuation
            logits = model(
                input_ids=c_ids,
                attention_mask=torch.cat([mask[idx], c_mask], dim=1),  # (R, P + A)
                position_ids=prompt_len[idx, None] + torch.arange(width, device=device),
                use_cache=True,
                **{cache_arg: kv},
            ).logits  # (R, A, V)
            first = -first_logp[idx].gather(1, c_ids[:, :1]).squeeze(1)  # (R,)
            labels = c_ids[:, 1:].masked_fill(c_mask[:, 1:] == 0, IGNORE_INDEX)  # (R, A - 1)
            rest = token_nlls(logits[:, :-1, :], labels, paper_rounding)  # (R, A - 1)
            counts = c_mask.sum(dim=1)  # (R,)
            for r, v in zip(part, ((first + rest.sum(dim=1)) / counts).tolist(), strict=True):
                values[r] = v
        results.append(values)
    return results


def attention(ids: list[int], pad_id: int, mask_pad: bool) -> list[int]:
    """The attention mask of an unpadded sequence: ones, or (``mask_pad``) 0 at every token
    equal to ``pad_id``, as open-unlearning's collator builds it (``input_ids.ne(pad)``)."""
    return [int(t != pad_id) for t in ids] if mask_pad else [1] * len(ids)


Encoded = tuple[list[int], list[int]]  # (prompt tokens, continuation tokens ending in EOS)


def _encoder(formatter: PromptFormatter, questions: list[str], joint: bool):  # type: ignore[no-untyped-def]
    """(item index, text) -> (prompt, continuation) for the two tokenizations.

    Separate (default): the item's prompt alone, then the text alone + EOS. Joint (the paper
    profile): ``prompt + text`` as one string (:meth:`PromptFormatter.encode_joint`), split after
    its question part, so the prompt may end earlier (the answer tag counts in the continuation)
    and may differ between two texts of one item.
    """
    if joint:

        def encode_joint(i: int, text: str) -> Encoded:
            ids, n_question = formatter.encode_joint(questions[i], text)
            return ids[:n_question], ids[n_question:]

        return encode_joint
    prompts = [formatter.encode_prompt(q) for q in questions]
    return lambda i, text: (prompts[i], formatter.encode_answer(text))


@dataclass(eq=False)
class _SplitTexts:
    """A split's encoded texts: per item its answer, Truth Ratio base and perturbed answers
    (:data:`Encoded`), and whether they all start with the item's prompt (so its key/value
    cache can be shared)."""

    ans: list[Encoded]
    base: list[Encoded] | None
    pert: list[list[Encoded]] | None
    same_prompt: list[bool]


def _encode_split(
    formatter: PromptFormatter,
    questions: list[str],
    answers: list[str],
    bases: list[str] | None,
    perturbed: list[list[str]] | None,
    joint: bool,
) -> _SplitTexts:
    encode = _encoder(formatter, questions, joint)
    ans = [encode(i, a) for i, a in enumerate(answers)]
    base = [encode(i, b) for i, b in enumerate(bases)] if bases else None
    pert = [[encode(i, p) for p in ps] for i, ps in enumerate(perturbed)] if perturbed else None
    same_prompt = [
        all(e[0] == ans[i][0] for e in ([base[i]] if base else []) + (pert[i] if pert else []))
        for i in range(len(questions))
    ]
    return _SplitTexts(ans, base, pert, same_prompt)


def _shared_batch(
    model: PreTrainedModel,
    texts: _SplitTexts,
    idx: list[int],
    prompt_states: list[PromptState | None] | None,
    pad_id: int,
    paper_rounding: bool,
) -> tuple[list[float], list[float]] | None:
    """One batch's NLLs on its prompts' caches: (answers then bases, perturbed answers); None
    when this model's cache cannot be shared."""
    ans, base, pert = texts.ans, texts.base, texts.pert
    first_pass = [(j, ans[i][1]) for j, i in enumerate(idx)]
    first_pass += [(j, base[i][1]) for j, i in enumerate(idx)] if base else []
    passes = [first_pass]
    if pert:
        passes.append([(j, p[1]) for j, i in enumerate(idx) for p in pert[i]])
    saved = [prompt_states[i] for i in idx] if prompt_states else []
    got = shared_prompt_nlls(
        model,
        [ans[i][0] for i in idx],
        passes,
        pad_id,
        states=saved if saved and all(st is not None for st in saved) else None,  # type: ignore[arg-type]
        paper_rounding=paper_rounding,
    )
    if got is None:
        return None
    return got[0], got[1] if pert else []


def _full_batch(
    model: PreTrainedModel,
    texts: _SplitTexts,
    idx: list[int],
    pad_id: int,
    paper_rounding: bool,
    mask_pad: bool,
) -> tuple[list[float], list[float]]:
    """One batch's NLLs over full sequences: (answers then bases, perturbed answers)."""

    def feat(enc: Encoded) -> dict[str, list[int]]:
        prompt, cont = enc
        labels = [IGNORE_INDEX] * len(prompt) + cont
        return {
            "input_ids": prompt + cont,
            "labels": labels,
            "attention_mask": attention(prompt + cont, pad_id, mask_pad),
        }

    ans, base, pert = texts.ans, texts.base, texts.pert
    feats = [feat(ans[i]) for i in idx] + ([feat(base[i]) for i in idx] if base else [])
    nll = mean_nlls(model, feats, pad_id, paper_rounding)
    pert_nll: list[float] = []
    if pert:  # (B * K) sequences, one forward pass
        pert_nll = mean_nlls(model, [feat(p) for i in idx for p in pert[i]], pad_id, paper_rounding)
    return nll, pert_nll


def _store(
    result: dict[str, np.ndarray], idx: list[int], nll: list[float], pert_nll: list[float]
) -> None:
    """One batch's NLLs into the split's arrays: answers (then bases) and perturbed answers."""
    b = len(idx)
    result["answer"][idx] = nll[:b]
    if "base" in result:
        result["base"][idx] = nll[b:]
    if "perturbed" in result:
        result["perturbed"][idx] = np.asarray(pert_nll).reshape(b, -1)


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
    shared: bool = True,
    prompt_states: list[PromptState | None] | None = None,
    joint: bool = False,
    paper_rounding: bool = False,
    mask_pad: bool = False,
) -> dict[str, np.ndarray]:
    """Teacher-forced mean NLLs of a split.

    Returns ``answer`` (N,), ``base`` (N,) when ``bases`` is given (the Truth Ratio base, e.g. the
    paraphrased answer) and ``perturbed`` (N, K) when ``perturbed`` is given (K equal for every
    item; the caller validates). Items are sorted by length so that padding stays small.
    ``shared=False`` forces the full-sequence path (the reference implementation).
    ``prompt_states``: per question, its prompt as generation computed it (or None); a batch
    whose items all have one skips its prompt pass.
    ``joint``: tokenize question and answer as one string and count the answer tag's tokens in
    the answer (:meth:`PromptFormatter.encode_joint`; the paper profile). Its prompts end before
    the answer tag, so generation's prompt states do not apply and are ignored; a batch where
    some item's texts tokenize to different prompts is scored as full sequences.
    ``paper_rounding``: the paper's float32 reduction over the vocabulary (:func:`token_nlls`);
    generation's prompt states (computed with ours) are then not reused.
    ``mask_pad``: every token equal to ``pad_id`` gets attention 0, as open-unlearning's collator
    masks them (``input_ids.ne(pad_token_id)``: with pad = EOS, the chat template's own EOS
    separators too); scored as full sequences.
    """
    n = len(questions)
    texts = _encode_split(formatter, questions, answers, bases, perturbed, joint)
    states = None if joint or paper_rounding else prompt_states
    result = {"answer": np.zeros(n)}
    if texts.base:
        result["base"] = np.zeros(n)
    if texts.pert:
        result["perturbed"] = np.zeros((n, len(texts.pert[0])))
    order = sorted(range(n), key=lambda i: len(texts.ans[i][0]) + len(texts.ans[i][1]))
    share = shared and not mask_pad
    bar = tqdm(total=n, desc=desc, unit="item", disable=not progress, leave=False)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        got = None
        if share and all(texts.same_prompt[i] for i in idx):
            got = _shared_batch(model, texts, idx, states, pad_id, paper_rounding)
            share = got is not None  # None: the cache cannot be shared, full sequences from now on
        nll, pert_nll = got or _full_batch(model, texts, idx, pad_id, paper_rounding, mask_pad)
        _store(result, idx, nll, pert_nll)
        bar.update(len(idx))
    bar.close()
    return result
