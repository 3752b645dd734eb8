"""Greedy answer generation for evaluation: left-padded batches, KV cache, dynamic padding.

Length budget. The paper (TOFU / Yuan et al. 2025) generates with ``max_length=200`` *including
the prompt*. Here each item gets

    new_tokens_i = min(max_new_tokens, generation_max_length - prompt_len_i)

(clipped at 0), where ``prompt_len_i`` is the item's own unpadded prompt length (the paper
profile uses the paper's batch-dependent budget instead: :func:`batch_budgets`). The budget is
per item, so it does not depend on which other items share the batch or on the padding: a batch is
generated with the largest budget of its items and each generation is then cut to its own budget
(greedy decoding is causal, so the first ``n`` tokens of a longer greedy run equal an ``n``-token
run). A generation stops at a stop token (:func:`stop_token_ids`), which is not part of the text.

Decoding. Where the model takes ``position_ids`` and a plain dynamic key/value cache (Llama,
Mistral, Qwen, ... in transformers), greedy decoding is our own loop that drops finished rows
from the batch (their cache rows too), so an item costs only its own tokens, not the batch's
longest. Other models go through ``model.generate``. Both are argmax decoding with the KV cache;
they give the same tokens up to float rounding of differently shaped matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, PreTrainedModel

from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.eval.kv_cache import prefill
from unlearnkit.eval.scoring import (
    PromptState,
    cache_argument,
    output_cache,
    split_prompt_states,
)

# Finished rows are dropped from the decode batch once they are at least this fraction of it
# (at least one row): removing rows copies the key/value cache, so a lone finished row in a big
# batch waits for company.
_PRUNE_FRACTION = 0.125


@dataclass
class Generation:
    """One greedy answer: decoded text (stripped unless asked not to) and the generated ids before
    the stop token."""

    text: str
    token_ids: list[int]
    prompt_len: int
    budget: int  # the number of new tokens this item was allowed
    hit_budget: bool  # True when generation stopped at the budget, not at end-of-sequence


def token_budget(prompt_len: int, max_new_tokens: int, generation_max_length: int) -> int:
    """new tokens = min(max_new_tokens, generation_max_length - prompt_len), at least 0."""
    return max(0, min(max_new_tokens, generation_max_length - prompt_len))


# The paper's generation batch: 30 items of a split in dataset order (its eval batch_size).
PAPER_GENERATION_BATCH = 30


def batch_budgets(
    prompt_lens: list[int],
    max_new_tokens: int,
    generation_max_length: int,
    batch_size: int = PAPER_GENERATION_BATCH,
) -> list[int]:
    """The paper code's token budgets for one split's prompts, in dataset order.

    The paper generates each batch of ``batch_size`` consecutive items left padded to its longest
    prompt with ``max_length = generation_max_length``, which counts the padded prompt, so every
    item of batch ``b`` gets

        new_tokens_i = min(max_new_tokens, generation_max_length - max_{j in b} prompt_len_j)

    (at least 0). Greedy decoding of an item does not depend on its batch otherwise, so any
    batching that gives each item this budget generates the paper's tokens.
    """
    out: list[int] = []
    for start in range(0, len(prompt_lens), batch_size):
        part = prompt_lens[start : start + batch_size]
        out += [token_budget(max(part), max_new_tokens, generation_max_length)] * len(part)
    return out


def stop_token_ids(model: PreTrainedModel, formatter: PromptFormatter) -> set[int]:
    """Tokens that end a generation: the formatter's and the tokenizer's end-of-sequence token and
    every ``eos_token_id`` of the model's ``generation_config`` (an int or a list: Llama-3-Instruct
    lists ``<|end_of_text|>`` and ``<|eot_id|>``; ``model.generate`` stops at those)."""
    stop = {formatter.eos_id}
    if formatter.tokenizer.eos_token_id is not None:
        stop.add(int(formatter.tokenizer.eos_token_id))
    gen_cfg = getattr(model, "generation_config", None)
    configured = getattr(gen_cfg, "eos_token_id", None)
    if configured is not None:
        stop.update(int(t) for t in ([configured] if isinstance(configured, int) else configured))
    return stop


# Upper bound of the automatic generation batch (eval.generation_batch_size: null).
MAX_AUTO_BATCH = 256
# Automatic batch for a model whose cache size per token cannot be read from its config.
FALLBACK_BATCH = 64


def kv_bytes_per_token(model: PreTrainedModel) -> int | None:
    """Bytes the key/value cache holds per token: layers x 2 x kv heads x head dim x dtype size.

    None when the config does not say (then the batch is :data:`FALLBACK_BATCH`)."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    cfg = cfg or model.config
    layers = getattr(cfg, "num_hidden_layers", None)
    heads = getattr(cfg, "num_attention_heads", None)
    hidden = getattr(cfg, "hidden_size", None)
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or (hidden // heads if hidden and heads else None)
    if not (layers and kv_heads and head_dim):
        return None
    dtype_size = next(model.parameters()).element_size()
    return int(layers) * 2 * int(kv_heads) * int(head_dim) * dtype_size


def auto_batch_size(model: PreTrainedModel, tokens_per_row: int, cache_bytes: int) -> int:
    """The largest batch whose key/value cache of ``tokens_per_row`` tokens per row fits
    ``cache_bytes``, between 1 and :data:`MAX_AUTO_BATCH`."""
    per_token = kv_bytes_per_token(model)
    if per_token is None:
        return FALLBACK_BATCH
    return max(1, min(MAX_AUTO_BATCH, cache_bytes // max(1, per_token * tokens_per_row)))


def resolve_batch_size(
    model: PreTrainedModel,
    prompts: list[list[int]],
    budgets: list[int],
    batch_size: int | None,
    cache_bytes: int,
) -> int:
    """``batch_size``, or when None the automatic batch for the longest prompt plus the largest
    budget of these prompts (the most a row's cache can hold)."""
    if batch_size is not None:
        return batch_size
    longest = max((len(p) for p in prompts), default=1) + max(budgets, default=0)
    return auto_batch_size(model, longest, cache_bytes)


def _model_device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


def _stop_at(row: list[int], budget: int, stop_ids: set[int]) -> tuple[list[int], bool]:
    """Generated ids up to the first stop token or the budget; True when a stop token ended it."""
    ids: list[int] = []
    for t in row[:budget]:
        if t in stop_ids:
            return ids, True
        ids.append(int(t))
    return ids, False


@torch.inference_mode()
def greedy_decode(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    budgets: list[int],
    stop_ids: set[int],
    states_out: list[PromptState] | None = None,
) -> list[tuple[list[int], bool]] | None:
    """Greedy continuation of left-padded prompts, finished rows dropped as the batch runs.

    ``input_ids`` / ``attention_mask``: (B, T), left padded; ``budgets``: B new-token limits
    (each > 0). Returns per row (ids before the stop token, stopped at a stop token), or None when
    the model cannot run this loop (no ``position_ids`` / cache argument, or a cache that is not a
    plain dynamic one); the caller then uses ``model.generate``. With ``states_out``, the
    prompts' states after the prefill are appended to it, one per row.
    """
    cache_arg = cache_argument(model)
    if cache_arg is None:
        return None
    prompts = [row[m.bool()].tolist() for row, m in zip(input_ids, attention_mask, strict=True)]
    pre = prefill(model, prompts, max(budgets), cache_arg, input_ids.device)
    if pre is None:
        return None
    if states_out is not None:
        states_out.extend(split_prompt_states(pre.cache, pre.mask, pre.last_logits))
    cache = pre.cache
    n = input_ids.shape[0]
    generated: list[list[int]] = [[] for _ in range(n)]
    stopped = [False] * n
    live = list(range(n))  # batch row r of the running batch is item live[r]
    mask = pre.mask  # (R, L): 1 at the prompt's own tokens (see kv_cache.prefill's layout)
    last = pre.last_position  # (R,) position of each row's last token
    next_ids = pre.last_logits.argmax(dim=-1)  # (R,)
    while True:
        finished: list[int] = []
        for r, (i, t) in enumerate(zip(live, next_ids.tolist(), strict=True)):
            if i < 0:  # finished earlier, still in the batch
                continue
            if t in stop_ids:
                stopped[i] = True
            else:
                generated[i].append(int(t))
            if stopped[i] or len(generated[i]) >= budgets[i]:
                finished.append(r)
        for r in finished:
            live[r] = -1
        keep = [r for r, i in enumerate(live) if i >= 0]
        if not keep:
            break
        if len(live) - len(keep) >= max(1, _PRUNE_FRACTION * len(live)):
            rows = torch.tensor(keep, device=input_ids.device)
            cache.reorder_cache(rows)  # keeps only the running rows of every layer
            mask, last, next_ids = mask[rows], last[rows], next_ids[rows]
            live = [live[r] for r in keep]
        last = last + 1
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)  # (R, T + 1)
        out = model(
            input_ids=next_ids[:, None],
            attention_mask=mask,
            position_ids=last[:, None],
            use_cache=True,
            **{cache_arg: cache},
        )
        cache = output_cache(out)
        next_ids = out.logits[:, -1, :].argmax(dim=-1)  # (R,)
    return [(generated[i], stopped[i]) for i in range(n)]


def _hf_generate(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    budgets: list[int],
    stop_ids: set[int],
    pad_id: int,
) -> list[tuple[list[int], bool]]:
    """The same greedy decoding through ``model.generate`` (finished rows run to the end)."""
    gen_cfg = GenerationConfig(
        max_new_tokens=max(budgets),
        do_sample=False,
        num_beams=1,
        use_cache=True,
        pad_token_id=pad_id,
        eos_token_id=sorted(stop_ids),
    )
    out = model.generate(
        input_ids=input_ids, attention_mask=attention_mask, generation_config=gen_cfg
    )  # (B, T + new)
    new = out[:, input_ids.shape[1] :].tolist()
    return [_stop_at(row, b, stop_ids) for row, b in zip(new, budgets, strict=True)]


class _Batches:
    """Greedy answers to ``prompts``, one batch of item indices at a time, left-padded: by
    :func:`greedy_decode` when ``prune``, else (or when it cannot) by ``model.generate``. Each
    prompt's key/value states are kept (for teacher forcing) until they add up to
    ``state_bytes``."""

    def __init__(
        self,
        model: PreTrainedModel,
        formatter: PromptFormatter,
        prompts: list[list[int]],
        budgets: list[int],
        pad_id: int,
        *,
        prune: bool,
        mask_pad: bool,
        strip: bool,
        state_bytes: int,
    ) -> None:
        self.model, self.tokenizer, self.pad_id = model, formatter.tokenizer, pad_id
        self.prompts, self.budgets, self.state_bytes = prompts, budgets, state_bytes
        self.prune, self.mask_pad, self.strip = prune, mask_pad, strip
        self.stop_ids = stop_token_ids(model, formatter)
        self.device = _model_device(model)
        self.results: list[Generation | None] = [None] * len(prompts)
        self.states: list[PromptState | None] = [None] * len(prompts)
        self.kept = 0  # bytes of prompt states kept so far

    def run(self, idx: list[int]) -> None:
        for i in idx:
            if self.budgets[i] == 0:  # prompt already at the length limit: nothing to generate
                self.results[i] = Generation("", [], len(self.prompts[i]), 0, True)
        runnable = [i for i in idx if self.budgets[i] > 0]
        if not runnable:
            return
        decoded, states = self._decode(runnable)
        for r, ((ids, stopped), i) in enumerate(zip(decoded, runnable, strict=True)):
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            text = text.strip() if self.strip else text
            self.results[i] = Generation(text, ids, len(self.prompts[i]), self.budgets[i],
                                         not stopped)  # fmt: skip
            if states and self.kept + states[r].nbytes <= self.state_bytes:
                self.states[i] = states[r]
                self.kept += states[r].nbytes

    def _decode(
        self, runnable: list[int]
    ) -> tuple[list[tuple[list[int], bool]], list[PromptState] | None]:
        batch = pad_batch(
            [
                {"input_ids": self.prompts[i], "attention_mask": [1] * len(self.prompts[i])}
                for i in runnable
            ],
            pad_id=self.pad_id,
            side="left",
        )
        input_ids = batch["input_ids"].to(self.device)  # (B, T)
        attention_mask = batch["attention_mask"].to(self.device)  # (B, T)
        if self.mask_pad:
            attention_mask = attention_mask * (input_ids != self.pad_id)  # (B, T)
        budgets = [self.budgets[i] for i in runnable]
        decoded = None
        states: list[PromptState] | None = [] if self.kept < self.state_bytes else None
        if self.prune:
            decoded = greedy_decode(
                self.model, input_ids, attention_mask, budgets, self.stop_ids, states
            )
        if decoded is None:
            decoded = _hf_generate(
                self.model, input_ids, attention_mask, budgets, self.stop_ids, self.pad_id
            )
        return decoded, states


@torch.inference_mode()
def generate_answers(
    model: PreTrainedModel,
    formatter: PromptFormatter,
    questions: list[str],
    *,
    batch_size: int | None,
    max_new_tokens: int,
    generation_max_length: int,
    pad_id: int,
    desc: str = "generate",
    progress: bool = True,
    prune: bool = True,
    prompt_state_bytes: int = 0,
    cache_bytes: int = 4 * 2**30,
    budgets: list[int] | None = None,
    strip: bool = True,
    states_out: list[PromptState | None] | None = None,
    mask_pad: bool = False,
) -> list[Generation]:
    """Greedy answers to ``questions`` in the input order.

    Items are sorted by prompt length before batching so that left padding stays small; the
    results are returned in the original order. ``model`` must be in eval mode (the caller sets it).
    ``prune=False`` always decodes with ``model.generate`` (the reference path).
    ``prompt_state_bytes`` > 0 and ``states_out`` given: ``states_out`` receives each question's
    prompt key/value states from the prefill (:class:`PromptState`, aligned with ``questions``)
    until they add up to this many bytes, None past that (for :func:`score_split`).
    ``batch_size`` None: :func:`auto_batch_size` for a key/value cache of ``cache_bytes``.
    ``budgets``: each question's new-token limit (e.g. :func:`batch_budgets`); default
    :func:`token_budget` of its own prompt. ``strip=False`` keeps the decoded text's surrounding
    whitespace (the paper profile: its metrics see the text as decoded). ``mask_pad``: attention
    0 at every prompt token equal to ``pad_id`` (open-unlearning's collator; with pad = EOS the
    chat template's EOS separators too), decoded by ``model.generate``, which numbers positions
    by the mask as open-unlearning's does; no prompt states are kept.
    """
    if batch_size is not None and batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    prompts = [formatter.encode_prompt(q) for q in questions]
    if budgets is None:
        budgets = [token_budget(len(p), max_new_tokens, generation_max_length) for p in prompts]
    elif len(budgets) != len(prompts):
        raise ValueError(f"{len(budgets)} budgets for {len(prompts)} questions")
    batch_size = resolve_batch_size(model, prompts, budgets, batch_size, cache_bytes)
    keep = 0 if states_out is None or mask_pad else prompt_state_bytes
    batches = _Batches(model, formatter, prompts, budgets, pad_id, prune=prune and not mask_pad,
                       mask_pad=mask_pad, strip=strip, state_bytes=keep)  # fmt: skip
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    bar = tqdm(total=len(prompts), desc=desc, unit="item", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batches.run(idx)
        bar.update(len(idx))
    bar.close()
    if states_out is not None:
        states_out.extend(batches.states)
    return [r for r in batches.results if r is not None]
