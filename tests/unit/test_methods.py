"""Methods: composition by name, paper defaults, pairing, reference cache, a few steps each."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearnkit.config import MethodConfig, TrainConfig
from unlearnkit.data.formatting import IGNORE_INDEX, PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.losses import sequence_nll, token_entropy_next
from unlearnkit.methods import (
    UnlearningCollator,
    UnlearningDataset,
    attach_reference_nlls,
    build_method,
    compute_reference_nlls,
    parse_method_name,
)
from unlearnkit.methods.data import (
    cyclic_permutation,
    load_reference_cache,
    reference_cache_key,
    save_reference_cache,
)
from unlearnkit.models.tiny import tiny_model
from unlearnkit.registry import METHODS
from unlearnkit.train.callbacks import NonFiniteLossError, check_finite_parts
from unlearnkit.train.lora import detect_target_modules
from unlearnkit.train.trainer import plan_batches

REFUSALS = ["I don't know.", "No idea, sorry.", "I cannot say."]
FORGET = [
    QAItem(f"Who wrote book {i}?", f"Author {i} wrote book {i} in {1900 + i}.") for i in range(8)
]
RETAIN = [QAItem(f"Where is city {i}?", f"City {i} lies on river {i + 3}.") for i in range(12)]


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def learned_state() -> dict[str, torch.Tensor]:
    """The tiny model after learning the forget and retain answers (the model to unlearn).

    Unlearning a random model says little (its answers are already near-uniform); this start
    point has a forget NLL well below log V, so each objective has room to move it.
    """
    torch.manual_seed(0)
    model, tok = tiny_model(seed=0)
    fmt = PromptFormatter(tok)
    rows = [fmt.encode(it.question, it.answer) for it in FORGET + RETAIN]
    from unlearnkit.data.collator import pad_batch

    batch = pad_batch(rows, tok.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * math.log(model.config.vocab_size)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def learned_model(state: dict[str, torch.Tensor]):
    model, tok = tiny_model(seed=0)
    model.load_state_dict(state)
    return model, tok


# --- composition and defaults ---------------------------------------------------------------


def test_every_composition_is_registered():
    names = set(METHODS.names())
    forgets = ["GA", "NPO", "DPO", "IDK", "ME"]
    forgets += ["SimNPO", "WGA", "SatImp", "UNDIAL", "CE-U", "RMU", "LMF", "AltDPO"]
    regs = ["GD", "KL", "AP", "ED", "PD"]
    expected = set(forgets) | {f"{f}+{r}" for f in forgets for r in regs} | {"LLMU"}
    expected |= {"IdkDPO", "AltPO", "PDU"}  # named recipes
    assert names == expected  # 13 alone + 65 combos + LLMU + 3 recipes = 82


def test_paper_defaults_me_gd_vs_others():
    me_gd = build_method(MethodConfig(name="me+gd"))
    assert me_gd.name == "ME+GD"
    assert {t.key: t.coeff for t in me_gd.terms} == {"forget": 0.1, "regularizer": 1.0}
    assert me_gd.mask_question is False
    npo_kl = build_method(MethodConfig(name="NPO+KL"))
    assert {t.key: t.coeff for t in npo_kl.terms} == {"forget": 1.0, "regularizer": 1.0}
    assert npo_kl.mask_question is True
    custom = build_method(MethodConfig(name="ME+GD", forget_coeff=0.5, mask_question=True))
    assert custom.terms[0].coeff == 0.5 and custom.mask_question is True


def test_llmu_terms_and_zero_coefficient_skipped():
    llmu = build_method(MethodConfig(name="LLMU", mismatch_coeff=0.5))
    assert [(t.key, t.part.name, t.coeff) for t in llmu.terms] == [
        ("forget", "GA", 1.0),
        ("mismatch", "mismatch", 0.5),
        ("regularizer", "KL", 1.0),
    ]
    no_reg = build_method(MethodConfig(name="NPO+KL", regularization_coeff=0.0))
    assert [t.key for t in no_reg.terms] == ["forget"] and no_reg.skipped == ["regularizer"]
    assert not no_reg.per_step_reference  # KL skipped: reference needed only for the cache


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("ME+XX", "unknown regularizer 'XX'; choose from AP, ED, GD, KL, PD"),
        ("NPX", "did you mean 'NPO'"),
        ("GA+GD+KL", "must be FORGET, FORGET+REGULARIZER, LLMU or a recipe"),
        ("XX+GD", "unknown forget objective 'XX'"),
        ("+GD", "must be FORGET"),
    ],
)
def test_unknown_names_list_choices(name, fragment):
    with pytest.raises(ValueError, match=None) as err:
        parse_method_name(name)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "kwargs, where",
    [
        ({"forget_coeff": -1.0}, "method.forget_coeff"),
        ({"forget_coeff": float("nan")}, "method.forget_coeff"),
        ({"regularization_coeff": float("inf")}, "method.regularization_coeff"),
        ({"beta": 0.0}, "method.beta"),
        ({"forget_coeff": 0.0, "regularization_coeff": 0.0}, "method.forget_coeff > 0"),
    ],
)
def test_bad_coefficients(kwargs, where):
    with pytest.raises(ValueError) as err:
        build_method(MethodConfig(name="NPO+GD", **kwargs))
    assert where in str(err.value)


@pytest.mark.parametrize(
    "name, needs_ref, per_step, cached",
    [
        ("GA", False, False, ()),
        ("ME+GD", False, False, ()),
        ("IDK+AP", False, False, ()),
        ("NPO", True, False, ("forget",)),
        ("DPO+GD", True, False, ("forget", "forget_idk")),
        ("GA+KL", True, True, ()),
        ("NPO+KL", True, True, ("forget",)),
        ("LLMU", True, True, ()),
    ],
)
def test_reference_requirements(name, needs_ref, per_step, cached):
    m = build_method(MethodConfig(name=name))
    assert m.needs_reference is needs_ref
    assert m.per_step_reference is per_step
    assert m.cached_ref_views == cached


# --- data pairing -----------------------------------------------------------------------------


def test_cyclic_permutation_uses_every_choice_before_repeating():
    idx = cyclic_permutation(7, 3, np.random.default_rng(0))
    assert sorted(idx[:3]) == [0, 1, 2] and sorted(idx[3:6]) == [0, 1, 2] and len(idx) == 7


def _dataset(
    tok, seed=0, views=("forget", "forget_idk", "retain", "retain_idk", "forget_mismatch")
):
    return UnlearningDataset(
        FORGET, RETAIN, REFUSALS, PromptFormatter(tok), views, mask_question=True, seed=seed
    )


def test_pairing_is_deterministic_per_seed_and_epoch(tiny):
    _, tok = tiny
    a, b, c = _dataset(tok, 0), _dataset(tok, 0), _dataset(tok, 1)
    assert [a[i] for i in range(len(a))] == [b[i] for i in range(len(b))]
    assert list(a.draws["retain"]) != list(c.draws["retain"])  # another seed, another pairing
    forget_side = [(a.pair(i, "forget_idk"), a.pair(i, "forget_mismatch")) for i in range(len(a))]
    retain_side = [a.pair(i, "retain") for i in range(len(a))]
    a.set_epoch(1)
    # Forget-side pairings are fixed for the task (their reference NLLs are cached) ...
    assert forget_side == [
        (a.pair(i, "forget_idk"), a.pair(i, "forget_mismatch")) for i in range(8)
    ]
    # ... retain-side pairings are redrawn each epoch, reproducibly.
    assert retain_side != [a.pair(i, "retain") for i in range(len(a))]
    b.set_epoch(1)
    assert [a[i] for i in range(len(a))] == [b[i] for i in range(len(b))]
    # 12 retain items, 8 examples: an epoch never uses a retain item twice.
    assert len(set(a.draws["retain"].tolist())) == 8


def test_masking_and_collation(tiny):
    _, tok = tiny
    fmt = PromptFormatter(tok)
    ds = UnlearningDataset(FORGET, RETAIN, REFUSALS, fmt, ("forget", "retain"), mask_question=True)
    ex = ds[0]
    n_prompt = len(fmt.encode_prompt(FORGET[0].question))
    assert ex["forget"]["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ex["forget"]["labels"][-1] == tok.eos_token_id  # the EOS after the answer counts
    unmasked = UnlearningDataset(FORGET, RETAIN, REFUSALS, fmt, ("forget",), mask_question=False)
    assert unmasked[0]["forget"]["labels"] == unmasked[0]["forget"]["input_ids"]
    batch = UnlearningCollator(tok.pad_token_id)([ds[0], ds[3]])
    lengths = [len(ds[0]["forget"]["input_ids"]), len(ds[3]["forget"]["input_ids"])]
    assert batch["forget"]["input_ids"].shape == (2, max(lengths))
    short = int(np.argmin(lengths))
    assert batch["forget"]["labels"][short, min(lengths) :].eq(IGNORE_INDEX).all()
    assert batch["forget"]["attention_mask"].sum().item() == sum(lengths)


def test_empty_inputs_are_one_line_errors(tiny):
    _, tok = tiny
    fmt = PromptFormatter(tok)
    with pytest.raises(ValueError, match="forget set is empty"):
        UnlearningDataset([], RETAIN, REFUSALS, fmt, ("forget",))
    with pytest.raises(ValueError, match="retain set is empty"):
        UnlearningDataset(FORGET, [], REFUSALS, fmt, ("forget", "retain"))


# --- reference NLLs: computed once, cached --------------------------------------------------


def test_reference_nlls_cached_once_and_loss_at_reference(tiny, tmp_path):
    model, tok = tiny
    method = build_method(MethodConfig(name="DPO"), pad_id=tok.pad_token_id)
    ds = _dataset(tok, views=method.views)
    calls = {"n": 0}
    handle = model.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    try:
        nlls = compute_reference_nlls(
            model, ds, method.cached_ref_views, batch_size=4, pad_id=tok.pad_token_id
        )
        assert calls["n"] == 2 * 2  # 2 views x ceil(8 / 4) batches, once per task
        attach_reference_nlls(ds, nlls)
        batch = UnlearningCollator(tok.pad_token_id)([ds[i] for i in range(4)])
        calls["n"] = 0
        with torch.no_grad():
            loss, parts = method.compute(model, batch, ref_model=None)  # no reference needed
        assert calls["n"] == 1  # a single forward pass over all views of the batch
    finally:
        handle.remove()
    # The model equals its reference: DPO = -(2/beta) log sigmoid(0) = (2/0.1) ln 2.
    assert loss.item() == pytest.approx(20 * math.log(2), abs=1e-4)
    # Disk cache: same key round-trips, another reference does not match.
    key = reference_cache_key(ds, method.cached_ref_views, "ref-A")
    save_reference_cache(tmp_path / "ref.pt", key, nlls)
    loaded = load_reference_cache(tmp_path / "ref.pt", key)
    assert loaded is not None and torch.equal(loaded["forget"], nlls["forget"])
    other = reference_cache_key(ds, method.cached_ref_views, "ref-B")
    assert load_reference_cache(tmp_path / "ref.pt", other) is None


def test_total_is_weighted_sum_of_parts(tiny):
    model, tok = tiny
    method = build_method(MethodConfig(name="ME+GD"), pad_id=tok.pad_token_id)
    ds = _dataset(tok, views=method.views)
    batch = UnlearningCollator(tok.pad_token_id)([ds[i] for i in range(3)])
    with torch.no_grad():
        total, parts = method.compute(model, batch, None)
    assert total.item() == pytest.approx(0.1 * parts["forget"].item() + parts["regularizer"].item())


# --- a few training steps per method --------------------------------------------------------


def _mean_nll(model, ds, view):
    batch = UnlearningCollator(ds.formatter.tokenizer.pad_token_id)([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        logits = model(
            input_ids=batch[view]["input_ids"], attention_mask=batch[view]["attention_mask"]
        ).logits
    nll, count = sequence_nll(logits, batch[view]["labels"])
    entropy = token_entropy_next(logits, batch[view]["labels"])
    return (nll / count).mean().item(), entropy.item()


@pytest.mark.parametrize(
    "name, watch, direction",
    [
        ("GA", "forget", "up"),
        ("NPO", "forget", "up"),
        ("ME", "forget", "up"),
        ("IDK", "forget_idk", "down"),
        ("DPO", "forget_idk", "down"),
        ("GA+GD", "forget", "up"),
        ("NPO+KL", "forget", "up"),
        ("ME+GD", "forget", "entropy"),
        ("IDK+AP", "forget_idk", "down"),
        ("DPO+AP", "forget_idk", "down"),
        ("LLMU", "forget", "up"),
    ],
)
def test_a_few_steps_move_the_right_way(name, watch, direction, learned_state):
    torch.manual_seed(0)
    model, tok = learned_model(learned_state)
    ref, _ = learned_model(learned_state)
    ref.eval()
    method = build_method(MethodConfig(name=name), pad_id=tok.pad_token_id)
    views = tuple(sorted(set(method.views) | {watch}))
    ds = UnlearningDataset(
        FORGET, RETAIN, REFUSALS, PromptFormatter(tok), views, mask_question=method.mask_question
    )
    if method.cached_ref_views:
        attach_reference_nlls(
            ds, compute_reference_nlls(ref, ds, method.cached_ref_views, pad_id=tok.pad_token_id)
        )
    before_nll, before_entropy = _mean_nll(model, ds, watch)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    collate = UnlearningCollator(tok.pad_token_id)
    model.train()
    for step in range(4):
        batch = collate([ds[(2 * step + j) % len(ds)] for j in range(4)])
        loss, parts = method.compute(model, batch, ref)
        assert torch.isfinite(loss) and all(torch.isfinite(v) for v in parts.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    after_nll, after_entropy = _mean_nll(model, ds, watch)
    if direction == "up":
        assert after_nll > before_nll + 0.05, (before_nll, after_nll)
    elif direction == "down":
        assert after_nll < before_nll - 0.05, (before_nll, after_nll)
    if name.startswith("ME"):
        assert after_entropy > before_entropy, (before_entropy, after_entropy)


def test_me_pushes_entropy_toward_log_vocab(learned_state):
    """ME on forget data raises next-token entropy, and it never exceeds log V."""
    torch.manual_seed(0)
    model, tok = learned_model(learned_state)
    method = build_method(MethodConfig(name="ME"), pad_id=tok.pad_token_id)
    ds = UnlearningDataset(FORGET, RETAIN, REFUSALS, PromptFormatter(tok), ("forget",))
    _, before = _mean_nll(model, ds, "forget")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    collate = UnlearningCollator(tok.pad_token_id)
    for _ in range(15):
        loss, _ = method.compute(model, collate([ds[i] for i in range(len(ds))]), None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, after = _mean_nll(model, ds, "forget")
    log_v = math.log(model.config.vocab_size)
    assert before < after <= log_v + 1e-4
    assert after - before > 0.5 * (log_v - before), (before, after, log_v)


# --- trainer helpers --------------------------------------------------------------------------


def test_batch_plan_paper_default_and_errors():
    plan = plan_batches(TrainConfig(), n_examples=40, processes=2)
    assert (plan.effective, plan.per_device, plan.grad_accum) == (32, 4, 4)
    assert plan.steps_per_epoch == 2 and plan.warmup_steps == 2  # one warm-up epoch
    with pytest.raises(ValueError, match=r"larger than the forget set \(20 items\)"):
        plan_batches(TrainConfig(), n_examples=20, processes=1)
    with pytest.raises(
        ValueError, match=r"multiple of train.per_device_batch_size \(4\) x processes \(3\)"
    ):
        plan_batches(TrainConfig(), n_examples=40, processes=3)
    with pytest.raises(ValueError, match="train.epochs must be > 0"):
        plan_batches(TrainConfig(epochs=0.0), n_examples=40, processes=1)
    assert plan_batches(TrainConfig(epochs=0.0, max_steps=3), n_examples=40, processes=1)


def test_non_finite_guard_names_step_and_part(tmp_path):
    parts = {"forget": torch.tensor(1.0), "regularizer": torch.tensor(float("nan"))}
    with pytest.raises(NonFiniteLossError) as err:
        check_finite_parts(parts, torch.tensor(float("nan")), step=7, checkpoint_dir=tmp_path)
    msg = str(err.value)
    assert "step 7" in msg and "loss_regularizer" in msg and "\n" not in msg
    check_finite_parts({"forget": torch.tensor(2.0)}, torch.tensor(2.0), 1, tmp_path)  # no raise


def test_lora_targets_detected(tiny):
    model, _ = tiny
    assert detect_target_modules(model) == [
        "down_proj",
        "gate_proj",
        "k_proj",
        "o_proj",
        "q_proj",
        "up_proj",
        "v_proj",
    ]


def test_gradient_guard_stops_before_a_nan_update(tiny, tmp_path):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from unlearnkit.train.callbacks import GradientGuard

    model, _ = tiny
    params = list(model.parameters())
    for p in params:
        p.grad = torch.zeros_like(p)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    state = TrainerState()
    state.global_step = 4
    guard = GradientGuard()
    guard.on_pre_optimizer_step(args, state, TrainerControl(), model=model)  # finite: no raise
    params[3].grad[0] = float("inf")
    with pytest.raises(NonFiniteLossError, match="non-finite gradient .* at step 5"):
        guard.on_pre_optimizer_step(args, state, TrainerControl(), model=model)
    for p in params:
        p.grad = None


def test_method_config_files_resolve():
    from pathlib import Path

    from unlearnkit.settings import load_config

    folder = Path(__file__).resolve().parents[2] / "configs" / "methods"
    files = sorted(folder.glob("*.yaml"))
    assert files, f"no method configs in {folder}"
    for path in files:
        cfg = load_config(path)
        method = build_method(cfg.method)
        assert path.stem.upper().replace("_", "+") == method.name
        assert "unlearn unlearn --config" in path.read_text().splitlines()[1]
        # a key written in a YAML pins it against the profile: write only what changes
        import yaml

        from unlearnkit.config import RunConfig, from_dict

        data = yaml.safe_load(path.read_text())
        for section, values in data.items():
            default = getattr(RunConfig(), section)
            for key, value in values.items():
                if (section, key) == ("method", "name"):
                    continue  # what the file is about, even where it is the default (ME+GD)
                assert from_dict(type(default), {key: value}) != default, (path.name, key)
