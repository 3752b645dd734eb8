"""Naive baselines: what the public unlearning code does, written here to be measured.

Each function computes the *same numbers* as unlearnkit's path (the benchmark and
``tests/unit/test_benchmark_equality.py`` check it) but does the work the way the public TOFU /
"closer look" code does:

- every training sequence is right-padded to a fixed 500 tokens, every teacher-forced evaluation
  sequence to 200 (:data:`TRAIN_LENGTH`, :data:`EVAL_LENGTH`), and full ``(B, T, V)`` logits are
  kept for all of them;
- the forget and retain batches go through the model in two separate forward passes;
- the reference model's outputs are recomputed at every step (NPO);
- ME builds the uniform and the softmax ``(B, T, V)`` tensors;
- the embedding and NLI models are re-created for every split and score one pair at a time;
- generation batches are taken in input order (no sorting by length).

Nothing here is used by the project itself.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = -100
TRAIN_LENGTH = 500
EVAL_LENGTH = 200
ROUGE_GATE = 0.1


def pad_fixed(
    features: Sequence[dict[str, list[int]]], length: int, pad_id: int
) -> dict[str, Tensor]:
    """Right-pad (and truncate) every sequence to exactly ``length`` tokens: ``(B, length)``."""
    pad_values = {"input_ids": pad_id, "labels": IGNORE_INDEX, "attention_mask": 0}
    out: dict[str, Tensor] = {}
    for key, value in pad_values.items():
        rows = [list(f[key])[:length] + [value] * max(0, length - len(f[key])) for f in features]
        out[key] = torch.tensor(rows, dtype=torch.long)  # (B, length)
    return out


# ---------------------------------------------------------------------------------------------
# losses


def naive_me_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """ME the public way: KL(U || softmax(z)) with explicit ``(B, T, V)`` uniform and softmax.

    L = sum_{counted t} sum_v U_v (log U_v - log p_t(v)) / N, averaged over the N counted
    positions (shifted labels != -100), as unlearnkit's ``me_loss``.
    """
    vocab = logits.shape[-1]
    shift_logits = logits[:, :-1, :]  # (B, T-1, V)
    shift_labels = labels[:, 1:]  # (B, T-1)
    probs = F.softmax(shift_logits.float(), dim=-1)  # (B, T-1, V)
    uniform = torch.full_like(probs, 1.0 / vocab)  # (B, T-1, V)
    # log(p + eps) as the public code does, but with eps = 1e-30 instead of its 1e-12: 1e-12
    # biases the value wherever p < 1e-12 (common with a 49k vocabulary), so it would not compute
    # the exact KL that our closed form gives; 1e-30 only keeps p = 0 finite in float32.
    kl = F.kl_div((probs + 1e-30).log(), uniform, reduction="none").sum(-1)  # (B, T-1)
    mask = (shift_labels != IGNORE_INDEX).float()  # (B, T-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1.0)


def naive_sequence_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """TOFU's ``get_batch_loss``: summed next-token NLL per sequence over full logits: (B,).

    The public code calls ``cross_entropy`` on the transposed ``(B, V, T-1)`` logits: one
    log-softmax over the whole tensor. In float32 that layout reduces the vocabulary over a
    strided dimension and is off by up to ~1e-4 per token on a 49k vocabulary, so here the same
    single log-softmax runs over the contiguous last dimension, then the labels' entries are
    picked: the same work and memory (no extra copy of the logits), the exact numbers."""
    shifted_labels = labels[:, 1:]  # (B, T-1)
    logp = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)  # (B, T-1, V)
    picked = logp.gather(-1, shifted_labels.clamp(min=0)[..., None])[..., 0]  # (B, T-1)
    return -(picked * (shifted_labels != IGNORE_INDEX)).sum(dim=-1)


def naive_step_loss(
    method: str,
    model: torch.nn.Module,
    ref_model: torch.nn.Module | None,
    forget: dict[str, Tensor],
    retain: dict[str, Tensor],
    *,
    forget_coeff: float,
    regularization_coeff: float,
    beta: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """One step's loss of ME+GD or NPO+GD: separate forward passes on fixed-length batches.

    ``forget`` / ``retain``: :func:`pad_fixed` batches. NPO recomputes the reference model's
    NLLs on the forget batch (no cache).
    """
    out = model(input_ids=forget["input_ids"], attention_mask=forget["attention_mask"])
    if method == "ME+GD":
        forget_loss = naive_me_loss(out.logits, forget["labels"])
    elif method == "NPO+GD":
        nll = naive_sequence_nll(out.logits, forget["labels"])  # (B,)
        with torch.no_grad():
            ref_logits = ref_model(  # type: ignore[misc]
                input_ids=forget["input_ids"], attention_mask=forget["attention_mask"]
            ).logits  # (B, T, V)
            ref_nll = naive_sequence_nll(ref_logits, forget["labels"])  # (B,)
        forget_loss = -(2.0 / beta) * F.logsigmoid(beta * (nll - ref_nll)).mean()
    else:
        raise ValueError(f"the naive baseline covers ME+GD and NPO+GD, not '{method}'")
    retain_out = model(
        input_ids=retain["input_ids"],
        attention_mask=retain["attention_mask"],
        labels=retain["labels"],
    )
    reg = retain_out.loss  # token-mean NLL over counted retain tokens
    total = forget_coeff * forget_loss + regularization_coeff * reg
    return total, {"forget": forget_loss, "regularizer": reg}


# ---------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def naive_generate(
    model: Any,
    prompts: Sequence[list[int]],
    *,
    batch_size: int,
    max_new_tokens: int,
    generation_max_length: int,
    pad_id: int,
    stop_ids: set[int],
    tokenizer: Any,
) -> list[str]:
    """Greedy answers, batches in input order, left-padded; same per-item length rule as ours.

    new_tokens_i = min(max_new_tokens, generation_max_length - len(prompt_i)).
    """
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        budgets = [max(0, min(max_new_tokens, generation_max_length - len(p))) for p in chunk]
        longest = max(len(p) for p in chunk)
        ids = torch.tensor([[pad_id] * (longest - len(p)) + list(p) for p in chunk])  # (B, T)
        mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in chunk])  # (B, T)
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max(max(budgets), 1),
            do_sample=False,
            num_beams=1,
            pad_token_id=pad_id,
            eos_token_id=sorted(stop_ids),
        )  # (B, T + new)
        for row, budget in zip(out[:, longest:].tolist(), budgets, strict=True):
            kept: list[int] = []
            for t in row[:budget]:
                if t in stop_ids:
                    break
                kept.append(int(t))
            texts.append(tokenizer.decode(kept, skip_special_tokens=True).strip())
    return texts


@torch.no_grad()
def naive_mean_nll(model: Any, features: Sequence[dict[str, list[int]]], pad_id: int) -> np.ndarray:
    """Mean answer NLL per sequence, every sequence padded to 200, full logits: (B,)."""
    batch = pad_fixed(features, EVAL_LENGTH, pad_id)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    nll = naive_sequence_nll(logits, batch["labels"])  # (B,)
    counts = (batch["labels"][:, 1:] != IGNORE_INDEX).sum(dim=-1)  # (B,)
    return (nll / counts).double().numpy()


def naive_token_entropy(tokens: Sequence[int]) -> float:
    """-sum_v f_v log2 f_v / log2 n over the n tokens; 0 when n <= 1."""
    n = len(tokens)
    if n <= 1:
        return 0.0
    h = -sum((c / n) * math.log2(c / n) for c in Counter(tokens).values())
    return h / math.log2(n)


def naive_cosine(generations: Sequence[str], references: Sequence[str], model_path: str) -> list:
    """Cosine similarity: a new SentenceTransformer for this split, one pair per encode call."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")  # re-created for every split
    scores = []
    for gen, ref in zip(generations, references, strict=True):
        if not gen.strip() or not ref.strip():
            scores.append(0.0)
            continue
        emb = model.encode([gen, ref], convert_to_numpy=True, normalize_embeddings=True)  # (2, D)
        emb = np.asarray(emb, dtype=np.float64)
        scores.append(float(np.clip(emb[0] @ emb[1], 0.0, 1.0)))
    return scores


def naive_entailment(
    premises: Sequence[str], hypotheses: Sequence[str], rouge: Sequence[float], model_path: str
) -> list[float]:
    """1.0 where ROUGE-L >= 0.1 and the NLI argmax is 'entailment'; a new model per split,
    one pair per forward pass."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)  # re-created for every split
    model = AutoModelForSequenceClassification.from_pretrained(model_path).eval()
    entail = [i for i, lab in model.config.id2label.items() if str(lab).lower() == "entailment"]
    out = []
    for p, h, r in zip(premises, hypotheses, rouge, strict=True):
        if r < ROUGE_GATE:
            out.append(0.0)
            continue
        enc = tok(p, h, truncation=True, max_length=512, return_tensors="pt")
        with torch.no_grad():
            label = int(model(**enc).logits.argmax(dim=-1)[0])
        out.append(1.0 if label == int(entail[0]) else 0.0)
    return out


class _Clock:
    """Adds the time since the previous lap to ``timings[name]``."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str | None = None) -> None:
        now = time.perf_counter()
        if name is not None and self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def naive_evaluate_split(
    model: Any,
    formatter: Any,
    items: Sequence[Any],
    spec: Any,
    *,
    batch_size: int,
    generation_batch_size: int,
    max_new_tokens: int,
    generation_max_length: int,
    embedding_path: str | None,
    nli_path: str | None,
    timings: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Every per-item value of one split, computed the naive way (see the module docstring).

    ``spec``: unlearnkit's split spec (which field each metric compares with). Generation runs in
    batches of ``generation_batch_size`` (ours: ``eval.generation_batch_size``), teacher forcing
    in batches of ``batch_size`` (ours: ``eval.batch_size``). ``timings``, when given,
    accumulates the wall time of each phase.
    """
    from rouge_score import rouge_scorer

    clock = _Clock(timings)

    tok = formatter.tokenizer
    pad_id = int(tok.pad_token_id)
    stop_ids = {int(formatter.eos_id)} | (
        {int(tok.eos_token_id)} if tok.eos_token_id is not None else set()
    )
    questions = [it.question for it in items]
    clock.lap()
    gens = naive_generate(
        model,
        [formatter.encode_prompt(q) for q in questions],
        batch_size=generation_batch_size,
        max_new_tokens=max_new_tokens,
        generation_max_length=generation_max_length,
        pad_id=pad_id,
        stop_ids=stop_ids,
        tokenizer=tok,
    )
    clock.lap("generate")
    # Teacher forcing: answers, bases and perturbed answers in separate fixed-length passes.
    nll_a, nll_b, nll_p = [], [], []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        nll_a.append(
            naive_mean_nll(model, [formatter.encode(i.question, i.answer) for i in chunk], pad_id)
        )
        bases = [formatter.encode(i.question, getattr(i, spec.truth_ratio_base)) for i in chunk]
        nll_b.append(naive_mean_nll(model, bases, pad_id))
        k = len(chunk[0].perturbed_answers)
        pert = [formatter.encode(i.question, p) for i in chunk for p in i.perturbed_answers]
        nll_p.append(naive_mean_nll(model, pert, pad_id).reshape(len(chunk), k))
    answer, base, perturbed = np.concatenate(nll_a), np.concatenate(nll_b), np.concatenate(nll_p)
    clock.lap("teacher_forcing")

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge_refs = [getattr(it, spec.rouge_reference) for it in items]
    rouge = [
        float(scorer.score(r, g)["rougeL"].recall) for g, r in zip(gens, rouge_refs, strict=True)
    ]
    entropy = [naive_token_entropy(tok(g, add_special_tokens=False)["input_ids"]) for g in gens]
    p_answer = np.exp(-answer)
    if spec.normalized_probability:
        prob = p_answer / (p_answer + np.exp(-perturbed).sum(axis=1))
    else:
        prob = p_answer
    ratio = np.exp(perturbed.mean(axis=1) - base)
    tr = 1.0 - np.minimum(ratio, 1.0 / ratio) if spec.forget else np.maximum(0.0, 1.0 - 1.0 / ratio)
    clock.lap("rouge_entropy_probability_truth_ratio")
    cos_refs = [getattr(it, spec.cosine_reference) for it in items]
    cosine = naive_cosine(gens, cos_refs, embedding_path) if embedding_path else [None] * len(items)
    clock.lap("cosine_similarity")
    if nli_path:
        # the NLI reference (real authors / world facts: the full sentence); the gate keeps
        # ROUGE-L against the ROUGE reference
        nli_refs = [getattr(it, spec.entailment_reference) for it in items]
        pairs = (gens, nli_refs) if spec.entailment_order == "gen_ref" else (nli_refs, gens)
        entail: list = naive_entailment(pairs[0], pairs[1], rouge, nli_path)
    else:
        entail = [None] * len(items)
    clock.lap("entailment")
    return [
        {
            "generation": gens[i],
            "nll_answer": float(answer[i]),
            "nll_base": float(base[i]),
            "nll_perturbed": [float(x) for x in perturbed[i]],
            "probability": float(prob[i]),
            "truth_ratio_raw": float(ratio[i]),
            "truth_ratio": float(tr[i]),
            "rouge_l": rouge[i],
            "token_entropy": entropy[i],
            "cosine_similarity": cosine[i],
            "entailment": entail[i],
        }
        for i in range(len(items))
    ]
