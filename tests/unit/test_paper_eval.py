"""The ``paper`` evaluation profile (issue 10, Evaluation items 7-10), on tiny hand-built cases.

A word-level tokenizer with a byte-level pre-tokenizer stands in for SmolLM2's BPE: a space
before a word belongs to the word (``"ĠThe"``), and a lone trailing space is its own token
(``"Ġ"``), which is exactly the case of the plain preset's ``"Answer: "``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from unlearnkit.config import EvalConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import runner
from unlearnkit.eval.generation import batch_budgets, generate_answers, stop_token_ids
from unlearnkit.eval.protocol import split_spec
from unlearnkit.eval.scoring import score_split
from unlearnkit.models.tiny import tiny_model

torch.set_num_threads(1)

WORDS = [
    "Question", ":", "ĠWhat", "Ġis", "ĠX", "ĠY", "?", "Ċ", "Answer", "The", "ĠThe", "Ġanswer",
    "Ġa", "Ġcat", "Ġdog", ".", "[", "INST", "]", "Ġ[/", "ĠWho", "Ġwrote", "Ġit", "yes", "Ġyes",
]  # fmt: skip
SPACE, PAD, EOS, UNK = 0, 1, 2, 3  # "Ġ" first: an all-zero head makes it every argmax


def word_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"Ġ": SPACE, "<|pad|>": PAD, "<|im_end|>": EOS, "<|unk|>": UNK}
    for w in WORDS:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|pad|>", unk_token="<|unk|>"
    )


@pytest.fixture()
def word():
    tok = word_tokenizer()
    model, _ = tiny_model(seed=1, vocab_size=len(tok))
    model.eval()
    return model, tok


def ids_of(tok, tokens: list[str]) -> list[int]:
    return tok.convert_tokens_to_ids(tokens)


# --- item 7: question and answer tokenized as one string -------------------------------------


def test_encode_joint_counts_the_answer_tag_and_merges_its_space():
    tok = word_tokenizer()
    fmt = PromptFormatter(tok, "plain")
    ids, n_question = fmt.encode_joint("What is X?", "The answer.")
    question = ["Question", ":", "ĠWhat", "Ġis", "ĠX", "?", "Ċ"]
    assert ids == ids_of(tok, question + ["Answer", ":", "ĠThe", "Ġanswer", "."]) + [EOS]
    assert n_question == len(question)  # "Answer:" counts in the answer's NLL
    # Apart, the prompt ends with a lone space token and the answer starts without one.
    assert fmt.encode_prompt("What is X?")[-1] == SPACE
    assert fmt.encode_answer("The answer.") == ids_of(tok, ["The", "Ġanswer", "."]) + [EOS]


def test_encode_joint_without_answer_tag_masks_the_whole_prompt():
    tok = word_tokenizer()
    fmt = PromptFormatter(tok, "llama2")  # "[INST] {q} [/INST]": the answer tag is empty
    ids, n_question = fmt.encode_joint("Who wrote it?", " yes")
    assert n_question == len(fmt.encode_prompt("Who wrote it?"))
    assert ids[n_question:] == ids_of(tok, ["Ġyes"]) + [EOS]


def reference_nll(model, ids: list[int], n_question: int) -> float:
    """-1/|a| sum_{t >= n_question} log p(ids_t | ids_<t), float64 from one unpadded pass."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()  # (T, V)
    logp = torch.log_softmax(logits, dim=-1)
    return float(-np.mean([logp[t - 1, ids[t]].item() for t in range(n_question, len(ids))]))


@pytest.mark.parametrize("shared", [True, False])
def test_score_split_joint_equals_the_hand_computed_nll(word, shared):
    model, tok = word
    fmt = PromptFormatter(tok, "plain")
    questions = ["What is X?", "Who wrote it?", "What is Y?"]
    answers = ["The answer.", "The cat.", "The dog is a cat."]
    bases = ["The dog.", "The answer is a dog.", "The cat."]
    perturbed = [["The cat.", "The dog."], ["The answer.", "The dog."], ["The.", "The cat."]]
    got = score_split(
        model, fmt, questions, answers, bases, perturbed,
        batch_size=2, pad_id=PAD, progress=False, shared=shared, joint=True,
    )  # fmt: skip
    for i, q in enumerate(questions):
        # Float32 logits of differently padded batches vs one float64 log-softmax: ~1e-7 here.
        assert got["answer"][i] == pytest.approx(
            reference_nll(model, *fmt.encode_joint(q, answers[i])), abs=1e-5
        )
        assert got["base"][i] == pytest.approx(
            reference_nll(model, *fmt.encode_joint(q, bases[i])), abs=1e-5
        )
        for k, p in enumerate(perturbed[i]):
            assert got["perturbed"][i, k] == pytest.approx(
                reference_nll(model, *fmt.encode_joint(q, p)), abs=1e-5
            )
    separate = score_split(
        model, fmt, questions, answers, None, None, batch_size=2, pad_id=PAD, progress=False
    )
    assert not np.allclose(separate["answer"], got["answer"])  # the two tokenizations differ


def test_paper_rounding_is_the_transposed_reduction_whatever_the_batch_shape():
    """The paper's ``cross_entropy(logits.transpose(-1, -2), labels)`` reduces a 49k vocabulary
    in float32 along a strided dimension; a position's value does not depend on the batch's rows
    or length, so ``token_nlls(paper_rounding=True)`` on our (R, A, V) chunks reproduces the
    paper's (B, T, V) batches exactly. Both layouts stay within the float32 bound of a V-term
    sum (V * 2^-24 relative) of the float64 value; the rows layout is the closer one."""
    from unlearnkit.eval.scoring import token_nlls, vocab_log_softmax

    gen = torch.Generator().manual_seed(0)
    v = 49152
    logits = torch.randn(2, 3, v, generator=gen) * 4  # (B, K, V)
    target = torch.randint(0, v, (2, 3), generator=gen)
    paper = token_nlls(logits, target, paper_rounding=True)  # (B, K)
    # The same logits placed in a wider, longer batch of other values, reduced the paper's way.
    wide = torch.randn(5, 7, v, generator=gen) * 4
    wide[1:3, 2:5] = logits
    wide_target = torch.zeros(5, 7, dtype=torch.long)
    wide_target[1:3, 2:5] = target
    as_paper = torch.nn.functional.cross_entropy(
        wide.transpose(-1, -2), wide_target, reduction="none"
    )[1:3, 2:5]
    assert torch.equal(paper, as_paper)
    exact = -torch.log_softmax(logits.double(), dim=-1).gather(-1, target[..., None])[..., 0]
    rows = token_nlls(logits, target)
    bound = v * 2.0**-24 * float(exact.abs().max() + 1)
    assert (paper.double() - exact).abs().max() <= bound
    assert (rows.double() - exact).abs().max() <= bound
    assert (rows.double() - exact).abs().max() < (paper.double() - exact).abs().max()
    first = vocab_log_softmax(logits[:, 0], paper_rounding=True)  # (B, V): a prompt's last logits
    first_nll = -first.gather(-1, target[:, :1])[:, 0]
    assert torch.equal(first_nll, paper[:, 0])


@pytest.mark.parametrize("shared", [True, False])
def test_score_split_paper_rounding_reduces_every_nll_the_papers_way(shared, monkeypatch):
    """Under ``paper_rounding`` every vocabulary reduction of score_split (the shared-prompt path
    or full sequences) takes the paper's layout, and the values equal the paper's reduction of
    one unpadded pass up to the float32 logits of differently padded batches."""
    from unlearnkit.eval import scoring

    tok = word_tokenizer()
    model, _ = tiny_model(seed=3, vocab_size=49152)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)  # logits spread like a trained model's
    model.eval()
    fmt = PromptFormatter(tok, "plain")
    questions = ["What is X?", "Who wrote it?", "What is Y?"]
    answers = ["The answer.", "The cat.", "The dog is a cat."]
    flags: list[bool] = []
    for name in ("token_nlls", "vocab_log_softmax"):
        real = getattr(scoring, name)

        def spy(*args, _real=real, **kwargs):
            bound = inspect.signature(_real).bind(*args, **kwargs)
            bound.apply_defaults()
            flags.append(bound.arguments["paper_rounding"])
            return _real(*args, **kwargs)

        monkeypatch.setattr(scoring, name, spy)

    def paper_nll(q: str, a: str) -> float:
        ids, n_question = fmt.encode_joint(q, a)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits  # (1, T, V) float32
        labels = torch.tensor([[-100] * n_question + ids[n_question:]])
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(-1, -2), labels[:, 1:], ignore_index=-100, reduction="none"
        )
        return float(loss.sum() / (labels[:, 1:] != -100).sum())

    got = score_split(
        model, fmt, questions, answers, None, None, batch_size=2, pad_id=PAD, progress=False,
        shared=shared, joint=True, paper_rounding=True,
    )  # fmt: skip
    assert flags and all(flags)
    want = np.array([paper_nll(q, a) for q, a in zip(questions, answers, strict=True)])
    assert np.abs(got["answer"] - want).max() <= 1e-5


def test_score_split_joint_with_prompts_differing_between_an_items_texts(word):
    """'[/INST]' + '!' pre-tokenizes as ']!' (unknown word): the joint prompt's last token then
    differs between the item's texts, and the batch is scored as full sequences."""
    model, tok = word
    fmt = PromptFormatter(tok, "llama2")
    q = "Who wrote it?"
    prompts = {tuple(fmt.encode_joint(q, a)[0][: fmt.encode_joint(q, a)[1]]) for a in ("!", "yes")}
    assert len(prompts) == 2
    got = score_split(
        model, fmt, [q], ["yes"], ["!"], [["yes", "!"]],
        batch_size=4, pad_id=PAD, progress=False, joint=True,
    )  # fmt: skip
    assert got["answer"][0] == pytest.approx(
        reference_nll(model, *fmt.encode_joint(q, "yes")), abs=1e-5
    )
    assert got["base"][0] == pytest.approx(
        reference_nll(model, *fmt.encode_joint(q, "!")), abs=1e-5
    )
    assert got["perturbed"][0, 1] == pytest.approx(got["base"][0], abs=1e-6)


# --- item 8: the paper's generation budget, no stripping -------------------------------------


def test_batch_budgets_by_hand():
    lens = [10, 50, 20, 5, 7]
    assert batch_budgets(lens, 200, 60, batch_size=2) == [10, 10, 40, 40, 53]
    assert batch_budgets(lens, 30, 60, batch_size=2) == [10, 10, 30, 30, 30]
    assert batch_budgets([70, 3], 200, 60, batch_size=30) == [0, 0]  # longest prompt too long
    assert batch_budgets(list(range(1, 62)), 200, 100)[29:31] == [70, 40]  # batches of 30


def zero_head(model) -> None:
    """All logits 0: greedy picks id 0 ("Ġ", a space) at every step."""
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()


def test_generation_uses_given_budgets_and_keeps_whitespace_unstripped(word):
    model, tok = word
    zero_head(model)
    fmt = PromptFormatter(tok, "plain")
    kw = dict(
        batch_size=2, max_new_tokens=50, generation_max_length=100, pad_id=PAD, progress=False
    )
    raw = generate_answers(
        model, fmt, ["What is X?", "What is Y?"], budgets=[3, 5], strip=False, **kw
    )
    assert [g.text for g in raw] == [" " * 3, " " * 5]
    assert [g.budget for g in raw] == [3, 5] and all(g.hit_budget for g in raw)
    stripped = generate_answers(model, fmt, ["What is X?"], budgets=[3], **kw)
    assert stripped[0].text == "" and stripped[0].token_ids == [SPACE] * 3


# --- item 10: stop tokens from generation_config ---------------------------------------------


def test_stop_tokens_include_every_generation_config_eos(word):
    model, tok = word
    fmt = PromptFormatter(tok, "plain")
    model.generation_config.eos_token_id = [EOS, 7]
    assert stop_token_ids(model, fmt) == {EOS, 7}
    model.generation_config.eos_token_id = 9
    assert stop_token_ids(model, fmt) == {EOS, 9}
    model.generation_config.eos_token_id = [EOS, SPACE]  # the zero head's token now stops
    zero_head(model)
    gens = generate_answers(
        model, fmt, ["What is X?"], batch_size=1, max_new_tokens=5,
        generation_max_length=100, pad_id=PAD, progress=False,
    )  # fmt: skip
    assert gens[0].token_ids == [] and not gens[0].hit_budget


def test_lm_eval_gets_add_bos_token_under_the_paper_profile(monkeypatch, tmp_path):
    from unlearnkit.config import RunConfig
    from unlearnkit.models import loading
    from unlearnkit.scenarios import general, real_world

    seen = []

    def fake_run(model, tok, tasks, *, limit=None, add_bos_token=None, **kw):
        seen.append(add_bos_token)
        return general.GeneralTaskResult()

    import torch

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: (torch.nn.Identity(), None))
    monkeypatch.setattr(general, "run_general_tasks", fake_run)
    for profile in ("default", "paper"):
        cfg = RunConfig(profile=profile, general_tasks=["arc_challenge"])
        real_world.general_accuracy("m", cfg, tmp_path)
    assert seen == [None, True]


def test_run_general_tasks_passes_add_bos_token_to_hflm(monkeypatch):
    pytest.importorskip("lm_eval")
    import lm_eval.models.huggingface as hf

    from unlearnkit.scenarios import general

    class Stop(Exception):
        pass

    captured = {}

    def fake_hflm(**kw):
        captured.update(kw)
        raise Stop

    monkeypatch.setattr(hf, "HFLM", fake_hflm)
    monkeypatch.setattr(general, "check_task_names", lambda tasks, path: None)
    monkeypatch.setattr(general, "_load_tasks", lambda *a: (["t"], {"t": ["t"]}))
    model, tok = tiny_model()
    with pytest.raises(Stop):
        general.run_general_tasks(model, tok, ["t"], add_bos_token=True)
    assert captured["add_bos_token"] is True


# --- item 9 and the runner: real world, golden_answer, every item ----------------------------


def rw_item(i: int) -> QAItem:
    return QAItem(
        question="What is X?" if i % 2 else "Who wrote it?",
        answer="The answer is a dog. The cat is a dog. The dog is a cat.",
        golden_answer="The cat." if i % 2 else "The dog.",
        paraphrased_answer="The dog is a cat.",
        perturbed_answers=["The answer.", "The cat is a dog."],
    )


def test_real_world_probability_on_golden_answer_over_every_item(word, tmp_path):
    model, tok = word
    fmt = PromptFormatter(tok, "plain")
    sets = {"forget": [rw_item(i) for i in range(3)], "neighbor": [rw_item(i) for i in range(3, 5)]}
    cfg = EvalConfig(
        ds_size=2, batch_size=2, max_new_tokens=3, nli_model=None, use_cache=False,
        embedding_model=str(tmp_path / "absent"),
    )  # fmt: skip
    paper = runner.evaluate(
        model, tok, sets, cfg, tmp_path / "p", fmt, "real_world", progress=False, profile="paper"
    )
    default = runner.evaluate(
        model, tok, sets, cfg, tmp_path / "d", fmt, "real_world", progress=False
    )
    assert (
        paper["n_items"] == {"forget": 3, "neighbor": 2} and paper["eval_config"]["ds_size"] is None
    )
    assert default["n_items"] == {"forget": 2, "neighbor": 2}
    assert paper["profile"] == "paper" and paper["cache_key"] != default["cache_key"]
    recs = [
        json_lines(tmp_path / "p" / "forget.jsonl"),
        json_lines(tmp_path / "d" / "forget.jsonl"),
    ]
    for i, it in enumerate(sets["forget"]):
        assert recs[0][i]["probability_reference"] == "golden_answer"
        expected = reference_nll(model, *fmt.encode_joint(it.question, it.golden_answer))
        assert recs[0][i]["nll_answer"] == pytest.approx(expected, abs=1e-5)
        assert recs[0][i]["probability"] == pytest.approx(np.exp(-expected), rel=1e-5)
    assert recs[1][0]["probability_reference"] == "answer"
    assert split_spec("real_world", "forget").probability_reference == "answer"
    assert split_spec("tofu", "retain", "paper").probability_reference == "answer"


def json_lines(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_paper_runner_generation_budget_and_raw_text(word, tmp_path):
    model, tok = word
    zero_head(model)
    fmt = PromptFormatter(tok, "plain")
    items = [rw_item(i) for i in range(4)]
    sets = {"forget": items[:3], "retain": items[3:]}
    lens = [len(fmt.encode_prompt(it.question)) for it in items]
    cfg = EvalConfig(
        ds_size=None, batch_size=2, max_new_tokens=50, generation_max_length=max(lens) + 4,
        nli_model=None, use_cache=False, embedding_model=str(tmp_path / "absent"),
    )  # fmt: skip
    runner.evaluate(model, tok, sets, cfg, tmp_path, fmt, "tofu", progress=False, profile="paper")
    forget = json_lines(tmp_path / "forget.jsonl")
    want = max(lens) + 4 - max(lens[:3])  # one batch: the longest prompt of the forget split
    assert [r["token_budget"] for r in forget] == [want] * 3
    assert [r["generation"] for r in forget] == [" " * want] * 3  # not stripped
    retain = json_lines(tmp_path / "retain.jsonl")
    assert retain[0]["token_budget"] == max(lens) + 4 - lens[3]


def test_unknown_profile_is_rejected(word, tmp_path):
    model, tok = word
    fmt = PromptFormatter(tok, "plain")
    with pytest.raises(ValueError, match="unknown profile 'papr'"):
        runner.evaluate(
            model, tok, {"forget": [rw_item(0)]}, EvalConfig(), tmp_path, fmt, profile="papr"
        )


def test_side_by_side_harness_skips_without_the_paper_code(tmp_path, monkeypatch, capsys):
    from benchmarks import paper_eval_side_by_side as harness

    argv = ["x", "--paper-code", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]
    monkeypatch.setattr("sys.argv", argv)
    assert harness.main() == 0
    assert "skipped: no paper code" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
