"""The field's methods as composable parts: names, paper defaults, recipes, hidden states,
trainable-parameter selection, PD's multiplier, and a few optimizer steps each."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnkit.config import MethodConfig
from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.losses import activation_mse, sequence_nll, token_entropy_next
from unlearnkit.methods import (
    UnlearningCollator,
    UnlearningDataset,
    attach_reference_nlls,
    build_method,
    compute_reference_nlls,
    parse_method_name,
    select_trainable,
)
from unlearnkit.methods.altpo import load_alternates
from unlearnkit.methods.base import find_layer
from unlearnkit.methods.rmu import control_vector
from unlearnkit.models.tiny import tiny_model
from unlearnkit.registry import FORGET_OBJECTIVES, METHODS
from unlearnkit.settings import load_config

NEW_FORGET = ["SimNPO", "WGA", "SatImp", "UNDIAL", "CE-U", "RMU", "LMF", "AltDPO"]
REFUSALS = ["I don't know.", "No idea, sorry."]
FORGET = [
    QAItem(f"Who wrote book {i}?", f"Author {i} wrote book {i} in {1900 + i}.") for i in range(8)
]
RETAIN = [QAItem(f"Where is city {i}?", f"City {i} lies on river {i + 3}.") for i in range(12)]
ALTERNATES = {
    f.question: [f"Writer {i + 50} wrote it in {1850 + i}."] for i, f in enumerate(FORGET)
}


@pytest.fixture(scope="module")
def learned_state() -> dict[str, torch.Tensor]:
    """The tiny model after learning the forget and retain answers (a model worth unlearning)."""
    torch.manual_seed(0)
    model, tok = tiny_model(seed=0)
    fmt = PromptFormatter(tok)
    batch = pad_batch([fmt.encode(it.question, it.answer) for it in FORGET + RETAIN], 0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * math.log(model.config.vocab_size)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def learned(state):
    model, tok = tiny_model(seed=0)
    model.load_state_dict(state)
    return model, tok


def dataset(tok, method, extra=()):
    views = tuple(sorted(set(method.views) | set(extra)))
    return UnlearningDataset(
        FORGET,
        RETAIN,
        REFUSALS,
        PromptFormatter(tok),
        views,
        mask_question=method.mask_question,
        alternates=ALTERNATES,
    )


# --- names, defaults, recipes ---------------------------------------------------------------


@pytest.mark.parametrize("forget", NEW_FORGET)
@pytest.mark.parametrize("reg", ["GD", "KL", "AP"])
def test_every_new_objective_composes_with_the_paper_regularizers(forget, reg):
    name = f"{forget}+{reg}"
    assert name in METHODS
    m = build_method(MethodConfig(name=name.lower(), layer=1))
    assert m.name == name and [t.part.name for t in m.terms] == [forget, reg]
    assert set(FORGET_OBJECTIVES.get(forget).views) <= set(m.views)


def test_paper_defaults_and_overrides():
    simnpo = build_method(MethodConfig(name="SimNPO+AP"))
    assert [(t.key, t.coeff) for t in simnpo.terms] == [("forget", 0.125), ("regularizer", 1.0)]
    assert simnpo.describe()["settings"] == {
        "forget": {"beta": 4.5, "delta": 0.0},
        "regularizer": {"beta": 0.1},  # AP keeps its own paper's beta
    }
    satimp = build_method(MethodConfig(name="SatImp+GD"))
    assert satimp.terms[0].coeff == 0.1 and satimp.terms[0].settings == {"beta": 5.0, "beta2": 1.0}
    # a value set by the user applies to every part that has the setting
    both = build_method(MethodConfig(name="SimNPO+AP", beta=2.0, delta=0.5, forget_coeff=1.0))
    assert [t.settings.get("beta") for t in both.terms] == [2.0, 2.0]
    assert both.terms[0].settings["delta"] == 0.5 and both.terms[0].coeff == 1.0
    assert build_method(MethodConfig(name="WGA")).terms[0].settings == {"beta": 1.0}
    assert build_method(MethodConfig(name="UNDIAL")).terms[0].settings == {"beta": 10.0}
    assert build_method(MethodConfig(name="CE-U")).terms[0].settings == {"ignore_first": 1}
    rmu = build_method(MethodConfig(name="RMU+ED"))
    assert rmu.layer == 7 and rmu.terms[0].settings["steering_coeff"] == 2.0
    assert build_method(MethodConfig(name="RMU+ED", layer="model.layers.1")).layer == (
        "model.layers.1"
    )
    with pytest.raises(ValueError, match="method.beta2 must be > 0"):
        build_method(MethodConfig(name="SatImp", beta2=0.0))
    with pytest.raises(ValueError, match="whole number"):
        build_method(MethodConfig(name="CE-U", ignore_first=1.5))
    with pytest.raises(ValueError, match="not a valid regex"):
        build_method(MethodConfig(name="RMU", trainable_params="(unclosed"))


@pytest.mark.parametrize(
    "recipe, canonical", [("IdkDPO", "DPO+GD"), ("altpo", "AltDPO+GD"), ("PDU", "LMF+PD")]
)
def test_recipes_resolve_to_compositions(recipe, canonical):
    assert build_method(MethodConfig(name=recipe)).name == canonical
    assert recipe.lower() in {n.lower() for n in METHODS.names()}
    assert (
        "=" in METHODS.describe()[next(n for n in METHODS.names() if n.lower() == recipe.lower())]
    )


def test_unknown_recipe_lists_the_recipes():
    with pytest.raises(ValueError, match="IdkDPO, AltPO, PDU"):
        parse_method_name("IdkDPO+GD+KL")


def test_undial_learning_rate_default_only_when_unset(tmp_path):
    assert load_config(None, ["method.name=UNDIAL"]).train.learning_rate == 1e-4
    assert load_config(None, ["method.name=NPO+GD"]).train.learning_rate == 1e-5
    explicit = load_config(None, ["method.name=UNDIAL", "train.learning_rate=1e-5"])
    assert explicit.train.learning_rate == 1e-5
    p = tmp_path / "c.yaml"
    p.write_text("method: {name: UNDIAL}\ntrain: {learning_rate: 2.0e-5}\n")
    assert load_config(p).train.learning_rate == 2e-5
    p.write_text("method: {name: UNDIAL}\n")
    assert load_config(p).train.learning_rate == 1e-4


# --- hidden states, layers, trainable parameters -------------------------------------------


def test_find_layer_by_index_and_name(learned_state):
    model, _ = learned(learned_state)
    assert find_layer(model, 1) is model.model.layers[1]
    assert find_layer(model, "1") is model.model.layers[1]
    assert find_layer(model, "model.layers.0") is model.model.layers[0]
    assert find_layer(model, "layers.0") is model.model.layers[0]  # a suffix matches
    with pytest.raises(ValueError, match="out of range: the model has 2 layers; choose 0..1"):
        find_layer(model, 7)
    with pytest.raises(ValueError, match="matches 0 modules"):
        find_layer(model, "model.blocks.3")


def test_rmu_reads_hidden_states_from_the_single_forward_pass(learned_state):
    model, tok = learned(learned_state)
    ref, _ = learned(learned_state)
    method = build_method(MethodConfig(name="RMU+GD", layer=0), pad_id=tok.pad_token_id)
    ds = dataset(tok, method)
    batch = UnlearningCollator(tok.pad_token_id)([ds[i] for i in range(4)])
    calls = {"n": 0}
    handle = model.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    try:
        with torch.no_grad():
            _, parts = method.compute(model, batch, ref)
    finally:
        handle.remove()
    assert calls["n"] == 1  # forget activations and retain logits from one pass
    with torch.no_grad():
        out = model(
            input_ids=batch["forget"]["input_ids"],
            attention_mask=batch["forget"]["attention_mask"],
            output_hidden_states=True,
        )
    target = control_vector(model.config.hidden_size, 2.0, seed=0)
    expected = activation_mse(out.hidden_states[1], target, batch["forget"]["labels"])
    assert parts["forget"].item() == pytest.approx(expected.item(), rel=1e-5)
    # the direction is fixed by the seed: the same in every process and on resume
    assert torch.equal(target, control_vector(model.config.hidden_size, 2.0, seed=0))
    assert not torch.equal(target, control_vector(model.config.hidden_size, 2.0, seed=1))
    assert target.norm().item() == pytest.approx(2.0, rel=1e-6) and (target >= 0).all()


def test_ed_is_zero_at_the_reference(learned_state):
    model, tok = learned(learned_state)
    method = build_method(MethodConfig(name="RMU+ED", layer=1), pad_id=tok.pad_token_id)
    ds = dataset(tok, method)
    batch = UnlearningCollator(tok.pad_token_id)([ds[i] for i in range(4)])
    with torch.no_grad():
        _, parts = method.compute(model, batch, learned(learned_state)[0])
    assert parts["regularizer"].item() == pytest.approx(0.0, abs=1e-10)
    assert parts["forget"].item() > 0


def test_select_trainable_trains_only_matching_parameters(learned_state):
    model, tok = learned(learned_state)
    pattern = r"model\.layers\.(0|1)\.mlp\.down_proj\.weight"
    chosen = select_trainable(model, pattern)
    assert chosen == ["model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    method = build_method(MethodConfig(name="RMU+ED", layer=1), pad_id=tok.pad_token_id)
    ds = dataset(tok, method)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss, _ = method.compute(
        model, UnlearningCollator(0)([ds[i] for i in range(4)]), learned(learned_state)[0]
    )
    loss.backward()
    opt.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == set(chosen)
    with pytest.raises(ValueError, match="matches no parameter; names look like"):
        select_trainable(model, r"nothing\.here")


# --- PD: the multiplier ----------------------------------------------------------------------


def test_pd_dual_ascent_and_state_round_trip(learned_state):
    model, tok = learned(learned_state)
    method = build_method(MethodConfig(name="PDU", retain_eps=0.0, dual_lr=0.5), pad_id=0)
    ds = dataset(tok, method)
    collate = UnlearningCollator(tok.pad_token_id)
    retain_losses = []
    for step in range(2):  # two accumulation micro-batches, then one dual step
        batch = collate([ds[i] for i in range(4 * step, 4 * step + 4)])
        with torch.no_grad():
            _, parts = method.compute(model, batch, None)
            logits = model(
                input_ids=batch["retain"]["input_ids"],
                attention_mask=batch["retain"]["attention_mask"],
            ).logits
        nll, count = sequence_nll(logits, batch["retain"]["labels"])
        retain_losses.append((nll.sum() / count.sum()).item())
        # the term is multiplier * (retain NLL - eps), multiplier 1 before any dual step
        assert parts["regularizer"].item() == pytest.approx(retain_losses[-1], rel=1e-5)
    method.end_step()
    mean = sum(retain_losses) / 2
    assert method.state_dict() == {
        "regularizer": {"multiplier": pytest.approx(1.0 + 0.5 * mean, rel=1e-6), "eps": 0.0}
    }
    saved = method.state_dict()
    other = build_method(MethodConfig(name="PDU", retain_eps=0.0, dual_lr=0.5), pad_id=0)
    other.load_state_dict(saved)
    assert other.state_dict() == saved
    # a retain loss below eps lowers the multiplier, never below 0
    low = build_method(MethodConfig(name="PDU", retain_eps=1e3, dual_lr=1.0), pad_id=0)
    with torch.no_grad():
        low.compute(model, collate([ds[i] for i in range(4)]), None)
    low.end_step()
    assert low.state_dict()["regularizer"]["multiplier"] == 0.0


def test_pd_eps_defaults_to_the_first_step_retain_loss(learned_state):
    model, tok = learned(learned_state)
    method = build_method(MethodConfig(name="SimNPO+PD"), pad_id=0)
    ds = dataset(tok, method)
    with torch.no_grad():
        _, parts = method.compute(model, UnlearningCollator(0)([ds[i] for i in range(4)]), None)
    assert parts["regularizer"].item() == 0.0  # shifted by its own loss before eps is known
    method.end_step()
    state = method.state_dict()["regularizer"]
    assert state["multiplier"] == 1.0 and state["eps"] > 0


# --- AltPO data --------------------------------------------------------------------------------


def test_alternates_file_and_pairing(tmp_path, learned_state):
    path = tmp_path / "alt.jsonl"
    path.write_text(
        '{"question": "Q1", "alternate": "A1"}\n\n{"question": "Q2", "alternates": ["B", "C"]}\n'
    )
    assert load_alternates(path) == {"Q1": ["A1"], "Q2": ["B", "C"]}
    path.write_text('{"question": "Q1"}\n')
    with pytest.raises(ValueError, match=r"alt.jsonl:1: expected"):
        load_alternates(path)
    _, tok = learned(learned_state)
    method = build_method(MethodConfig(name="AltPO"))
    ds = dataset(tok, method)
    assert ds.pair(3, "forget_alt") == (FORGET[3].question, ALTERNATES[FORGET[3].question][0])
    with pytest.raises(ValueError, match="no alternative answer for 8 forget question"):
        UnlearningDataset(FORGET, RETAIN, [], PromptFormatter(tok), method.views, alternates={})


# --- a few optimizer steps move the right way ------------------------------------------------


def _mean_nll(model, ds, view):
    batch = UnlearningCollator(0)([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        logits = model(
            input_ids=batch[view]["input_ids"], attention_mask=batch[view]["attention_mask"]
        ).logits
    nll, count = sequence_nll(logits, batch[view]["labels"])
    return (nll / count).mean().item(), token_entropy_next(logits, batch[view]["labels"]).item()


@pytest.mark.parametrize(
    "name, watch, direction, lr",
    [
        ("SimNPO", "forget", "up", 1e-3),  # +GD: the retain NLL dominates on this toy data
        ("WGA+KL", "forget", "up", 1e-3),
        ("SatImp+AP", "forget", "up", 3e-3),
        ("UNDIAL", "forget", "up", 1e-3),
        ("CE-U", "forget", "up", 1e-3),
        ("PDU", "forget", "entropy", 1e-3),
        ("AltPO", "forget_alt", "down", 1e-3),
        ("IdkDPO", "forget_idk", "down", 1e-3),
        ("RMU+ED", "forget", "rmu", 1e-3),
    ],
)
def test_a_few_steps_move_the_right_way(name, watch, direction, lr, learned_state):
    torch.manual_seed(0)
    model, tok = learned(learned_state)
    ref, _ = learned(learned_state)
    ref.eval()
    method = build_method(MethodConfig(name=name, layer=1), pad_id=tok.pad_token_id)
    ds = dataset(tok, method, extra=(watch,))
    if method.cached_ref_views:
        attach_reference_nlls(ds, compute_reference_nlls(ref, ds, method.cached_ref_views))
    collate = UnlearningCollator(tok.pad_token_id)
    full = collate([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        rmu_before = method.compute(model, full, ref)[1]["forget"].item()
    before_nll, before_entropy = _mean_nll(model, ds, watch)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    for step in range(4):
        loss, parts = method.compute(
            model, collate([ds[(2 * step + j) % 8] for j in range(4)]), ref
        )
        assert torch.isfinite(loss) and all(torch.isfinite(v) for v in parts.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.end_step()
    model.eval()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    after_nll, after_entropy = _mean_nll(model, ds, watch)
    if direction == "up":
        assert after_nll > before_nll + 0.05, (before_nll, after_nll)
    elif direction == "down":
        assert after_nll < before_nll - 0.05, (before_nll, after_nll)
    elif direction == "entropy":
        assert after_entropy > before_entropy + 0.05, (before_entropy, after_entropy)
    else:  # RMU: forget activations moved toward the random direction
        with torch.no_grad():
            rmu_after = method.compute(model, full, ref)[1]["forget"].item()
        assert rmu_after < 0.9 * rmu_before, (rmu_before, rmu_after)


def test_leaderboard_config_runs_every_method_with_its_paper_defaults():
    from pathlib import Path

    from unlearnkit.scenarios.sweep import expand_sweep

    path = Path(__file__).resolve().parents[2] / "configs" / "leaderboard_synth.yaml"
    runs = expand_sweep(load_config(path))
    lrs = {r.method.name: r.train.learning_rate for r in runs}
    assert lrs["UNDIAL"] == 1e-4 and lrs["SimNPO+GD"] == 1e-5 and lrs["ME+GD"] == 1e-5
    for r in runs:  # every name resolves; one split, one budget, one seed for all
        build_method(r.method)
        assert (r.data.split, r.train.epochs, r.train.seed) == ("forget01", 5.0, 0)
    assert len({r.method.name for r in runs}) == len(runs) == 15
    # the base method's own rate does not leak into the other methods of a sweep
    leak = load_config(path, ["method.name=UNDIAL", "sweep.methods=[GA+GD, UNDIAL]"])
    assert [r.train.learning_rate for r in expand_sweep(leak)] == [1e-5, 1e-4]


def test_each_part_declares_its_settings_with_type_default_and_help():
    from dataclasses import fields

    from unlearnkit.config import PART_SETTING_NAMES
    from unlearnkit.methods.base import Setting
    from unlearnkit.registry import FORGET_OBJECTIVES, REGULARIZERS

    method_fields = {f.name for f in fields(MethodConfig)}
    declared = 0
    for registry in (FORGET_OBJECTIVES, REGULARIZERS):
        for name in registry.names():
            for key, setting in registry.get(name).settings.items():
                assert isinstance(setting, Setting) and setting.help, (name, key)
                # routed by method.<key>, declared by the part alone (no MethodConfig field)
                assert key in PART_SETTING_NAMES and key not in method_fields, (name, key)
                declared += 1
    assert declared >= 12
    # checked where declared, with the declared type
    ceu = FORGET_OBJECTIVES.get("CE-U").settings["ignore_first"]
    assert ceu.type == "int" and ceu.check("ignore_first", 2.0) == 2
    with pytest.raises(ValueError, match="method.ignore_first must be a whole number >= 0"):
        ceu.check("ignore_first", -1)
    beta = FORGET_OBJECTIVES.get("NPO").settings["beta"]
    with pytest.raises(ValueError, match="method.beta must be > 0"):
        beta.check("beta", 0.0)
    with pytest.raises(ValueError, match="method.beta must be a finite number"):
        beta.check("beta", float("inf"))
    assert FORGET_OBJECTIVES.get("RMU").settings["layer"].check("layer", "model.layers.3") == (
        "model.layers.3"
    )
    # a part that gives a bare default gets a declaration inferred from it (as before Setting)
    assert Setting.infer("beta", 0.5) == Setting(0.5, type="float", positive=True)
    assert Setting.infer("ignore_first", 1).type == "int"
    with pytest.raises(ValueError, match="setting type must be"):
        Setting(1.0, type="str")
