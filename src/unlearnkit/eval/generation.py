"""Greedy answer generation for evaluation: left-padded batches, KV cache, dynamic padding.

Length budget. The paper (TOFU / Yuan et al. 2025) generates with ``max_length=200`` *including
the prompt*. Here each item gets

    new_tokens_i = min(max_new_tokens, generation_max_length - prompt_len_i)

(clipped at 0), where ``prompt_len_i`` is the item's own unpadded prompt length. The budget is
per item, so it does not depend on which other items share the batch or on the padding: a batch is
generated with the largest budget of its items and each generation is then cut to its own budget
(greedy decoding is causal, so the first ``n`` tokens of a longer greedy run equal an ``n``-token
run). A generation stops at the end-of-sequence token, which is not part of the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, PreTrainedModel

from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import PromptFormatter


@dataclass
class Generation:
    """One greedy answer: decoded text (stripped) and the generated ids before end-of-sequence."""

    text: str
    token_ids: list[int]
    prompt_len: int
    budget: int  # the number of new tokens this item was allowed
    hit_budget: bool  # True when generation stopped at the budget, not at end-of-sequence


def token_budget(prompt_len: int, max_new_tokens: int, generation_max_length: int) -> int:
    """new tokens = min(max_new_tokens, generation_max_length - prompt_len), at least 0."""
    return max(0, min(max_new_tokens, generation_max_length - prompt_len))


def _model_device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def generate_answers(
    model: PreTrainedModel,
    formatter: PromptFormatter,
    questions: list[str],
    *,
    batch_size: int,
    max_new_tokens: int,
    generation_max_length: int,
    pad_id: int,
    desc: str = "generate",
    progress: bool = True,
) -> list[Generation]:
    """Greedy answers to ``questions`` in the input order.

    Items are sorted by prompt length before batching so that left padding stays small; the
    results are returned in the original order. ``model`` must be in eval mode (the caller sets it).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    tok = formatter.tokenizer
    prompts = [formatter.encode_prompt(q) for q in questions]
    budgets = [token_budget(len(p), max_new_tokens, generation_max_length) for p in prompts]
    stop_ids = {formatter.eos_id}
    if tok.eos_token_id is not None:
        stop_ids.add(int(tok.eos_token_id))
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    device = _model_device(model)
    results: list[Generation | None] = [None] * len(prompts)

    bar = tqdm(total=len(prompts), desc=desc, unit="item", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        runnable = [i for i in idx if budgets[i] > 0]
        for i in idx:
            if budgets[i] == 0:  # prompt already at the length limit: nothing to generate
                results[i] = Generation("", [], len(prompts[i]), 0, True)
        if runnable:
            batch = pad_batch(
                [
                    {"input_ids": prompts[i], "attention_mask": [1] * len(prompts[i])}
                    for i in runnable
                ],
                pad_id=pad_id,
                side="left",
            )
            input_ids = batch["input_ids"].to(device)  # (B, T)
            attention_mask = batch["attention_mask"].to(device)  # (B, T)
            gen_cfg = GenerationConfig(
                max_new_tokens=max(budgets[i] for i in runnable),
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
            for row, i in zip(new, runnable, strict=True):
                ids: list[int] = []
                stopped = False
                for t in row[: budgets[i]]:
                    if t in stop_ids:
                        stopped = True
                        break
                    ids.append(int(t))
                text = tok.decode(ids, skip_special_tokens=True).strip()
                results[i] = Generation(text, ids, len(prompts[i]), budgets[i], not stopped)
        bar.update(len(idx))
    bar.close()
    return [r for r in results if r is not None]
