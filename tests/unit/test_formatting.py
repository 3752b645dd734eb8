import pytest

from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import IGNORE_INDEX, PromptFormatter
from unlearnkit.models.tiny import tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_chat_encoding_masks_question_and_counts_eos(tok):
    f = PromptFormatter(tok, "chat")
    enc = f.encode("Who?", "Bob.")
    prompt = f.encode_prompt("Who?")
    n_q = len(prompt)
    assert enc["input_ids"][:n_q] == prompt
    assert enc["labels"][:n_q] == [IGNORE_INDEX] * n_q
    answer = enc["labels"][n_q:]
    assert answer[-1] == tok.eos_token_id  # the EOS after the answer is counted
    assert tok.decode(answer[:-1]) == "Bob."
    assert (
        tok.decode(enc["input_ids"])
        == "<|im_start|>user\nWho?<|im_end|>\n<|im_start|>assistant\nBob.<|im_end|>"
    )
    unmasked = f.encode("Who?", "Bob.", mask_question=False)
    assert unmasked["labels"] == unmasked["input_ids"]


def test_system_prompt_is_explicit(tok):
    none = PromptFormatter(tok, "chat", system_prompt=None).prompt("Q")
    given = PromptFormatter(tok, "chat", system_prompt="Be brief.").prompt("Q")
    assert "system" not in none and given.startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_paper_presets(tok):
    assert PromptFormatter(tok, "llama2").prompt("Q?") == "[INST] Q? [/INST]"
    l3 = PromptFormatter(tok, "llama3").prompt("Q?")
    assert l3.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n") and "Q?<|eot_id|>" in l3
    info = PromptFormatter(tok, "chat").template_info()
    assert info["preset"] == "chat" and len(info["chat_template_sha256"]) == 64


def test_bad_preset_and_missing_template(tok):
    with pytest.raises(ValueError, match="unknown prompt preset 'alpaca'"):
        PromptFormatter(tok, "alpaca")
    bare = tiny_tokenizer()
    bare.chat_template = None
    with pytest.raises(ValueError, match="no chat template; use data.prompt_preset=plain"):
        PromptFormatter(bare, "chat")


def test_max_length_truncates(tok):
    enc = PromptFormatter(tok, "plain").encode("Q", "A long answer", max_length=5)
    assert len(enc["input_ids"]) == len(enc["labels"]) == 5


def test_dynamic_padding_right_and_left():
    feats = [
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "attention_mask": [1, 1, 1]},
        {"input_ids": [8], "labels": [8], "attention_mask": [1]},
    ]
    right = pad_batch(feats, pad_id=0)
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]  # longest in batch, not fixed
    assert right["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    left = pad_batch(feats, pad_id=0, side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError, match="empty batch"):
        pad_batch([], 0)


def test_chat_conversation_is_open_unlearnings_apply_chat_template(tok):
    """open-unlearning's ``apply_chat_template: true``: the template over the whole conversation,
    one more EOS when it does not end with one, the prompt's length the template's own with its
    generation prompt; every encoding of the preset is that one, prompts are the chat preset's."""
    f = PromptFormatter(tok, "chat_conversation")
    chat = PromptFormatter(tok, "chat")
    assert f.prompt("Who?") == chat.prompt("Who?")
    conversation = [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Bob."}]
    template = tok.apply_chat_template(conversation, tokenize=False)
    expected = tok(template, add_special_tokens=False)["input_ids"]
    if expected[-1] != tok.eos_token_id:
        expected = [*expected, tok.eos_token_id]
    ids, n_question = f.encode_joint("Who?", "Bob.")
    assert ids == expected
    assert ids[:n_question] == chat.encode_prompt("Who?")
    enc = f.encode("Who?", "Bob.")
    assert enc["input_ids"] == ids
    assert enc["labels"] == [IGNORE_INDEX] * n_question + ids[n_question:]
    assert tok.decode(ids[n_question:]).startswith("Bob.<|im_end|>")
