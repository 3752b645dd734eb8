"""Generation's key/value cache: written in place (no per-step copy) and the automatic batch."""

from __future__ import annotations

import pytest
import torch
from transformers.cache_utils import DynamicLayer

from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.eval import generation
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
    pre = generation._PreallocatedLayer(keys, values, capacity=7)
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


def test_decode_steps_write_into_the_buffer_without_reallocating(tiny, monkeypatch) -> None:
    model, tok, fmt = tiny
    prompts = [fmt.encode_prompt(q) for q in ("Hi?", "Who wrote it?")]
    width = max(map(len, prompts))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    buffers: list[int] = []
    real = generation._preallocated

    def spy(cache, capacity):  # type: ignore[no-untyped-def]
        out = real(cache, capacity)
        assert capacity == width + 6
        buffers.append(out.layers[0]._k.data_ptr())
        spy.cache = out  # type: ignore[attr-defined]
        return out

    monkeypatch.setattr(generation, "_preallocated", spy)
    got = generation.greedy_decode(model, ids, mask, [6, 6], {-1})  # no stop: 6 tokens each
    assert got is not None and [len(row) for row, _ in got] == [6, 6]
    layer = spy.cache.layers[0]  # type: ignore[attr-defined]
    assert layer._k.data_ptr() == buffers[0]  # the same buffer after all the steps
    assert layer.get_seq_length() == width + 5  # the last token is emitted, not cached


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
