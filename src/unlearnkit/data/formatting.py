"""Prompt formatting and tokenization of question/answer pairs.

The prompt is tokenized on its own and the answer appended, so the answer's token positions are
exactly those after the formatted question (the paper masks question tokens by the token length of
the formatted question). The answer is followed by the end-of-sequence token, which counts in the
labels: the paper's NLL includes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from transformers import PreTrainedTokenizerBase

from unlearnkit.config import PROMPT_PRESETS

IGNORE_INDEX = -100

# Paper-exact formats (Yuan et al. 2025 / TOFU): Llama-2-chat and Llama-3-Instruct.
LLAMA2_TEMPLATE = "[INST] {question} [/INST]"
LLAMA3_TEMPLATE = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{question}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
PLAIN_TEMPLATE = "Question: {question}\nAnswer: "
# The answer tag: the end of a preset's prompt that the paper's code writes in front of the
# answer rather than after the question (its ``answer_tag``; empty for the Llama presets and
# chat templates), so its tokens count in the answer's NLL under the paper profile.
ANSWER_TAGS = {"plain": "Answer: "}
# ``chat_conversation``: the chat template applied to the whole conversation, the assistant's
# answer included (open-unlearning's ``apply_chat_template: true``): the answer's labels are its
# tokens, the template's end of turn (SmolLM2: ``<|im_end|>\n``) and one more EOS when the
# conversation does not end with it. Its prompts are the ``chat`` preset's.
PRESETS = PROMPT_PRESETS
CHAT_PRESETS = ("chat", "chat_conversation")


class PromptFormatter:
    """Turns questions (and answers) into token ids for training, scoring and generation."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        preset: str = "chat",
        system_prompt: str | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown prompt preset '{preset}'; choose from {', '.join(PRESETS)}")
        if preset in CHAT_PRESETS and not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "the tokenizer has no chat template; use data.prompt_preset=plain "
                "(or llama2 / llama3 for those model families)"
            )
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos token; set tokenizer.eos_token first")
        self.tokenizer = tokenizer
        self.preset = preset
        self.system_prompt = system_prompt
        self.eos_id: int = int(tokenizer.eos_token_id)

    def _messages(self, question: str) -> list[dict[str, str]]:
        messages: list[dict[str, str]] = []
        if self.system_prompt is not None:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": question})
        return messages

    def _chat_ids(self, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
        """The chat template's token ids (a plain list under every transformers version)."""
        out = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=generation_prompt, return_dict=False
        )
        return [int(t) for t in out]

    def prompt(self, question: str) -> str:
        """The text up to where the answer starts."""
        if self.preset in CHAT_PRESETS:
            text = self.tokenizer.apply_chat_template(
                self._messages(question), tokenize=False, add_generation_prompt=True
            )
            return str(text)
        template = {"llama2": LLAMA2_TEMPLATE, "llama3": LLAMA3_TEMPLATE, "plain": PLAIN_TEMPLATE}
        return template[self.preset].format(question=question)

    def encode_prompt(self, question: str) -> list[int]:
        text = self.prompt(question)
        # chat templates and the llama3 preset write their own BOS; llama2/plain get the
        # tokenizer's own special tokens (Llama-2 adds <s>).
        add_special = self.preset in ("llama2", "plain")
        # Some tokenizers append EOS as a special token; a prompt must not end with it.
        return self._strip_eos(
            self.tokenizer(text, add_special_tokens=add_special)["input_ids"], add_special
        )

    def encode_answer(self, answer: str) -> list[int]:
        ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        return list(ids) + [self.eos_id]

    def encode_joint(self, question: str, answer: str) -> tuple[list[int], int]:
        """Question and answer tokenized as ONE string, the paper code's way (profile ``paper``).

        Returns ``(ids, n_question)``: the token ids of ``prompt(question) + answer`` followed by
        EOS, and the number of leading tokens that do not count in the answer's NLL, which is
        the token length of the prompt *without* its answer tag (:data:`ANSWER_TAGS`), tokenized
        on its own. With the plain preset the question part is ``"Question: {q}\n"``, so the
        tokens of ``"Answer:"`` count in the answer's NLL, and the tag's trailing space is not a
        token of its own: the tokenizer merges it into the answer's first word (``" The"``),
        where :meth:`encode` tokenizes the prompt and the answer apart (``" "``, ``"The"``).
        Where the joint string's tokens differ from the question part's tokens before the
        boundary, the first ``n_question`` joint tokens are masked all the same, as in the
        paper's code.
        """
        if self.preset == "chat_conversation":
            return self._encode_conversation(question, answer)
        prompt = self.prompt(question)
        tag = ANSWER_TAGS.get(self.preset, "")
        add_special = self.preset in ("llama2", "plain")
        ids = self._strip_eos(
            self.tokenizer(prompt + answer, add_special_tokens=add_special)["input_ids"],
            add_special,
        )
        question_part = prompt[: len(prompt) - len(tag)] if tag and prompt.endswith(tag) else prompt
        n_question = len(
            self._strip_eos(
                self.tokenizer(question_part, add_special_tokens=add_special)["input_ids"],
                add_special,
            )
        )
        return list(ids) + [self.eos_id], n_question

    def _encode_conversation(self, question: str, answer: str) -> tuple[list[int], int]:
        """open-unlearning's ``apply_chat_template: true`` (``preprocess_chat_instance``): the
        whole conversation through the chat template, one more EOS when it does not end with
        one; the prompt's length is the template's with its generation prompt."""
        messages = self._messages(question)
        ids = self._chat_ids([*messages, {"role": "assistant", "content": answer}], False)
        if not ids or ids[-1] != self.eos_id:
            ids.append(self.eos_id)
        return ids, len(self._chat_ids(messages, True))

    def _strip_eos(self, ids: list[int], add_special: bool) -> list[int]:
        """Drop an EOS the tokenizer appended as a special token (some do)."""
        if add_special and ids and ids[-1] == self.eos_id:
            return list(ids[:-1])
        return list(ids)

    def encode(
        self, question: str, answer: str, mask_question: bool = True, max_length: int | None = None
    ) -> dict[str, list[int]]:
        """``input_ids``, ``labels`` (question = -100 when masked) and ``attention_mask``.

        The ``chat_conversation`` preset encodes the conversation as one (:meth:`encode_as_one`):
        its answer's labels end with the template's end of turn."""
        if self.preset == "chat_conversation":
            return self.encode_as_one(question, answer, mask_question, max_length)
        q = self.encode_prompt(question)
        a = self.encode_answer(answer)
        ids = q + a
        labels = ([IGNORE_INDEX] * len(q) if mask_question else list(q)) + a
        if max_length is not None and len(ids) > max_length:
            ids, labels = ids[:max_length], labels[:max_length]
        return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}

    def encode_as_one(
        self, question: str, answer: str, mask_question: bool = True, max_length: int | None = None
    ) -> dict[str, list[int]]:
        """:meth:`encode` with the paper code's tokenization (training under profile ``paper``).

        ``prompt + answer`` is tokenized as one string and, when ``mask_question``, only its
        first ``n_question`` tokens are masked (:meth:`encode_joint`: with the plain preset the
        tokens of ``"Answer:"`` count, and the tag's space merges into the answer's first word),
        as P:dataset/data_module.py:22-52 builds every training view.
        """
        ids, n_question = self.encode_joint(question, answer)
        labels = [IGNORE_INDEX] * n_question + ids[n_question:] if mask_question else list(ids)
        if max_length is not None and len(ids) > max_length:
            ids, labels = ids[:max_length], labels[:max_length]
        return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}

    def template_info(self) -> dict[str, Any]:
        """What a run records so results do not drift silently when a template changes."""
        tmpl = getattr(self.tokenizer, "chat_template", None) or ""
        return {
            "preset": self.preset,
            "system_prompt": self.system_prompt,
            "chat_template_sha256": hashlib.sha256(str(tmpl).encode()).hexdigest()
            if self.preset in CHAT_PRESETS
            else None,
            "example_prompt": self.prompt("What is X?"),
            "eos_token": self.tokenizer.eos_token,
        }
