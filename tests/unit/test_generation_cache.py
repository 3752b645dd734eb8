"""Generation's key/value cache: written in place (no per-step copy) and the automatic batch."""

from __future__ import annotations

import pytest
import torch
from transformers.cache_utils import DynamicLayer

from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.eval import generation, kv_cache
from unlearnkit.eval.generation import auto_batch_size, generate_answers, kv_bytes_per_token
from unlearnkit.models.tiny import tiny_model


@pytest.fixture()
def tiny():
    model, tok = tiny_model(seed=0)
    model.eval()
    return model, tok, PromptFormatter(tok)


def test_preallocated_layer_holds_what_a_dynamic_layer_holds() -> None:
    gen = torch.Generator().manual_seed(0)
    keys, values = torch.randn(3, 2, 5, 4, generator=gen), torch.randn(3, 2, 5, 4, generator=gen)
    plain = DynamicLayer()
    plain.update(keys, values)
    k_buf, v_buf = keys.new_empty(3, 2, 7, 4), values.new_empty(3, 2, 7, 4)  # capacity 7
    k_buf[:, :, :5], v_buf[:, :, :5] = keys, values
    pre = kv_cache.PreallocatedLayer(k_buf, v_buf, length=5)
    buffer = pre._k
    for _ in range(4):  # two steps inside the capacity, then two past it (the buffer grows)
        k, v = torch.randn(3, 2, 1, 4, generator=gen), torch.randn(3, 2, 1, 4, generator=gen)
        want_k, want_v = plain.update(k, v)
        got_k, got_v = pre.update(k, v)
        assert torch.equal(got_k, want_k) and torch.equal(got_v, want_v)
        assert pre.get_seq_length() == plain.get_seq_length()
    assert pre._k.shape[2] >= 9 and pre._k is not buffer  # grew once past capacity 7
    rows = torch.tensor([2, 0])
    plain.reorder_cache(rows)
    pre.reorder_cache(rows)
    assert torch.equal(pre.keys, plain.keys) and torch.equal(pre.values, plain.values)


def _left_padded(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])  # (B, T)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])  # (B, T)
    return ids, mask


def test_decode_steps_write_into_the_buffer_without_reallocating(tiny, monkeypatch) -> None:
    model, tok, fmt = tiny
    prompts = [fmt.encode_prompt(q) for q in ("Hi?", "Who wrote it?")]
    ids, mask = _left_padded(prompts, tok.pad_token_id)
    seen: list = []
    real = generation.prefill

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        out = real(*a, **k)
        seen.append((out, out.cache.layers[0]._k.data_ptr()))
        return out

    monkeypatch.setattr(generation, "prefill", spy)
    got = generation.greedy_decode(model, ids, mask, [6, 6], {-1})  # no stop: 6 tokens each
    assert got is not None and [len(row) for row, _ in got] == [6, 6]
    ((pre, pointer),) = seen
    layer = pre.cache.layers[0]
    assert layer._k.data_ptr() == pointer  # the same buffer after all the steps
    assert layer.get_seq_length() == pre.mask.shape[1] + 5  # the last token is not cached


def test_shared_prefix_length_and_prefill_chunks(monkeypatch) -> None:
    assert kv_cache.shared_prefix_length([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7, 8]]) == 5
    # every prompt keeps one token of its own
    assert kv_cache.shared_prefix_length([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 9]]) == 4
    assert kv_cache.shared_prefix_length([[1, 2, 3, 9, 9], [1, 2, 3, 8, 8]]) == 0  # < 4 tokens
    assert kv_cache.shared_prefix_length([[1, 2, 3, 4, 5, 6]]) == 0  # nothing to share
    monkeypatch.setattr(kv_cache, "PREFILL_CHUNK_TOKENS", 10)
    # rows x widest row <= 10: [2, 3, 3] (9), then [5, 5] (10), then [11] alone (too wide)
    assert kv_cache._chunks([2, 3, 3, 5, 5, 11]) == [(0, 3), (3, 5), (5, 6)]


def test_shared_prefix_chunked_prefill_equals_a_plain_prefill(tiny, monkeypatch) -> None:
    model, tok, fmt = tiny
    questions = ["Hi?", "Who?", "Where was the author born?", "Which books did the author write?"]
    prompts = sorted((fmt.encode_prompt(q) for q in questions), key=len)
    shared = kv_cache.shared_prefix_length(prompts)
    assert shared >= kv_cache.MIN_SHARED_PREFIX  # the chat template's opening
    monkeypatch.setattr(kv_cache, "PREFILL_CHUNK_TOKENS", 2 * len(prompts[1]))  # several chunks
    assert len(kv_cache._chunks([len(p) - shared for p in prompts])) > 1
    with torch.no_grad():
        pre = kv_cache.prefill(model, prompts, 3, "cache", torch.device("cpu"))
        ids, mask = _left_padded(prompts, tok.pad_token_id)
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=True,
        )
    assert pre is not None
    assert pre.last_position.tolist() == [len(p) - 1 for p in prompts]
    assert torch.allclose(pre.last_logits, out.logits[:, -1], atol=1e-5)
    plain = out.past_key_values if out.past_key_values is not None else out.cache
    for b, p in enumerate(prompts):
        ours_cols = pre.mask[b].bool()
        assert int(ours_cols.sum()) == len(p)
        for la_pre, la in zip(pre.cache.layers, plain.layers, strict=True):
            want = la.keys[b][:, mask[b].bool()]  # (H, n, D)
            assert torch.allclose(la_pre.keys[b][:, ours_cols], want, atol=1e-5)
            assert torch.isfinite(la_pre.keys).all()  # masked columns too (zeros)


def test_kv_bytes_per_token_and_the_automatic_batch(tiny) -> None:
    model, _, _ = tiny
    # tiny Llama: 2 layers x (keys + values) x 2 kv heads x head dim 64 / 4 heads x 4 B (fp32)
    assert kv_bytes_per_token(model) == 2 * 2 * 2 * 16 * 4
    assert auto_batch_size(model, tokens_per_row=100, cache_bytes=512 * 100 * 7) == 7
    assert auto_batch_size(model, tokens_per_row=100, cache_bytes=1) == 1  # at least one row
    assert auto_batch_size(model, tokens_per_row=1, cache_bytes=2**40) == generation.MAX_AUTO_BATCH


def test_automatic_batch_generates_what_an_explicit_batch_does(tiny, monkeypatch) -> None:
    model, tok, fmt = tiny
    questions = [f"Question {i}?" for i in range(5)]
    kw = dict(max_new_tokens=4, generation_max_length=500, pad_id=tok.pad_token_id, progress=False)
    seen: list[int] = []
    real = generation.greedy_decode

    def spy(model, input_ids, *a, **k):  # type: ignore[no-untyped-def]
        seen.append(input_ids.shape[0])
        return real(model, input_ids, *a, **k)

    monkeypatch.setattr(generation, "greedy_decode", spy)
    longest = max(len(fmt.encode_prompt(q)) for q in questions) + 4
    auto = generate_answers(
        model, fmt, questions, batch_size=None, cache_bytes=512 * longest * 2, **kw
    )
    assert seen == [2, 2, 1]  # the cache budget holds two rows at their longest
    explicit = generate_answers(model, fmt, questions, batch_size=5, **kw)
    assert [g.token_ids for g in auto] == [g.token_ids for g in explicit]
