"""Attacks on the tiny model, each in a case whose direction is known.

- relearning brings back answers a model was trained to refuse (constructed case);
- quantizing a model whose weights moved less than half a quantization step from grid points
  returns those grid points (and moving them more does not);
- prompt attacks change the question exactly as declared;
- no attack changes the model under evaluation (weights byte-identical afterwards);
- recovery, worst case and robustness follow their formulas on hand-computed numbers.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from unlearnkit.attacks import ATTACK_SPECS, AttackContext, resolve_attacks
from unlearnkit.attacks.prompts import (
    HINT_TEMPLATE,
    TEMPLATES,
    context_question,
    mc_accuracy,
    mcq_question,
)
from unlearnkit.attacks.recovery import attacks_report, recovery
from unlearnkit.attacks.runner import run_attacks, write_attacks_report
from unlearnkit.attacks.weights import quantize_copy, relearn_copy
from unlearnkit.config import AttackConfig, EvalConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval.runner import evaluate
from unlearnkit.models.tiny import tiny_model
from unlearnkit.registry import ATTACKS, REGISTRIES
from unlearnkit.utils import read_json, write_jsonl

torch.set_num_threads(1)
REFUSAL = "I do not know."


def item(i: int) -> QAItem:
    return QAItem(
        question=f"Where was author number {i} born?",
        answer=f"Author {i} was born in city {i}.",
        paraphrased_answer=f"City {i} is the birthplace of author {i}.",
        perturbed_answers=[f"Author {i} was born in town {j}." for j in range(3)],
        paraphrased_question=f"What is the birthplace of author {i}?",
    )


def fast_cfg() -> EvalConfig:
    return EvalConfig(
        ds_size=None, batch_size=4, max_new_tokens=6, nli_model=None, use_cache=False,
        splits=["forget"], mia_gradnorm=False,
    )  # fmt: skip


@pytest.fixture()
def tiny():
    model, tok = tiny_model(seed=0)
    model.eval()
    return model, tok, PromptFormatter(tok)


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_bytes(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k].view(torch.uint8), b[k].view(torch.uint8))
        for k in a
    )


# ------------------------------------------------------------------------------ the registry


def test_every_attack_is_registered_and_listed() -> None:
    assert REGISTRIES["attacks"] is ATTACKS
    expected = {"relearn", "relearn_retain", "quant8", "quant4", "paraphrase", "hint",
                "incontext", "mcq", *TEMPLATES}  # fmt: skip
    assert expected <= set(ATTACKS.names())
    for name, desc in ATTACKS.describe().items():
        assert desc.startswith(f"[{ATTACK_SPECS[name].kind}]") and len(desc) > 12
    assert [s.name for s in resolve_attacks(["quant4", "relearn", "quant4"])] == [
        "quant4",
        "relearn",
    ]
    assert {s.name for s in resolve_attacks(["all"])} == set(ATTACK_SPECS)
    with pytest.raises(ValueError, match="unknown attack 'relearm' \\(did you mean 'relearn'"):
        resolve_attacks(["relearm"])


def test_ls_lists_the_attacks(capsys) -> None:
    from unlearnkit.cli import main

    assert main(["ls", "attacks"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("attacks:")
    for name in ATTACK_SPECS:
        assert f"  {name} " in out


def test_attack_settings_are_checked() -> None:
    from unlearnkit.config import ConfigError
    from unlearnkit.settings import load_config

    cfg = load_config(overrides=["attack.names=[relearn, quant4]", "attack.relearn_steps=3"])
    assert cfg.attack.names == ["relearn", "quant4"] and cfg.attack.relearn_steps == 3
    with pytest.raises(ConfigError, match="attack.relearn_steps must be > 0"):
        load_config(overrides=["attack.relearn_steps=0"])
    with pytest.raises(ConfigError, match="unknown attack.quant_backend 'gptq'"):
        load_config(overrides=["attack.quant_backend=gptq"])
    with pytest.raises(
        ConfigError, match="attack.hint_tokens is a setting of hint, not of relearn"
    ):
        load_config(overrides=["attack.names=[relearn]", "attack.hint_tokens=3"])
    with pytest.raises(ConfigError, match="unknown config key 'attack.relearn_stepz'"):
        load_config(overrides=["attack.names=[relearn]", "attack.relearn_stepz=3"])


def test_a_new_attack_declares_its_settings_alone(tmp_path) -> None:
    """An attack registered here (no config.py field, no other file) gets its
    ``attack.<setting>``: typed from an override's text, shown by --print-config with its
    default, saved flat in config.yaml, read by the attack, refused for other attacks."""
    import yaml

    from unlearnkit.attacks.base import Attacked, register_attack, unregister_attack
    from unlearnkit.config import DECLARED_SETTINGS, ConfigError, save_config
    from unlearnkit.setting import Setting
    from unlearnkit.settings import format_settings, load_config

    @register_attack(
        "echo",
        kind="prompt",
        description="the questions as they are, repeated",
        settings={"echo_times": Setting(2, "repetitions", type="int", positive=True)},
    )
    def echo(ctx: AttackContext) -> Attacked:
        times = ctx.param("echo_times")
        sets = {**ctx.eval_sets, "forget": [it for it in ctx.forget for _ in range(times)]}
        return Attacked(ctx.model, sets, list(range(len(sets["forget"]))))

    try:
        assert "echo_times" in DECLARED_SETTINGS["attack"]
        assert "attack.echo_times=2" in ATTACKS.describe()["echo"]
        cfg = load_config(overrides=["attack.names=[echo]", "attack.echo_times=3"])
        assert cfg.attack.echo_times == 3 and isinstance(cfg.attack.echo_times, int)
        assert "attack.echo_times: 3" in format_settings(cfg)
        saved = yaml.safe_load(save_config(cfg, tmp_path / "config.yaml").read_text())
        assert saved["attack"]["echo_times"] == 3 and "settings" not in saved["attack"]
        default = load_config(overrides=["attack.names=[echo]"])
        assert default.attack.echo_times is None
        shown = format_settings(default)
        assert "attack.echo_times: 2" in shown and "attack.hint_tokens" not in shown
        item = QAItem("q?", "a")
        ctx = AttackContext(None, None, None, {"forget": [item]}, cfg.attack)  # type: ignore[arg-type]
        assert len(echo(ctx).eval_sets["forget"]) == 3
        with pytest.raises(ConfigError, match="attack.echo_times is a setting of echo"):
            load_config(overrides=["attack.names=[hint]", "attack.echo_times=3"])
        with pytest.raises(ConfigError, match="attack.echo_times must be > 0"):
            load_config(overrides=["attack.names=[echo]", "attack.echo_times=0"])
    finally:
        unregister_attack("echo")
    assert "echo_times" not in DECLARED_SETTINGS["attack"]


# ------------------------------------------------------------------------------ prompt attacks


def ctx_for(model, tok, fmt, items, **settings) -> AttackContext:
    return AttackContext(model, tok, fmt, {"forget": items}, AttackConfig(**settings))


def test_prompt_templates_change_the_question_as_declared(tiny) -> None:
    model, tok, fmt = tiny
    items = [item(i) for i in range(6)]
    ctx = ctx_for(model, tok, fmt, items, hint_tokens=4, context_pairs=2, author_items=3)
    para = ATTACK_SPECS["paraphrase"].run(ctx).eval_sets["forget"]
    assert [it.question for it in para] == [it.paraphrased_question for it in items]
    for name, template in TEMPLATES.items():
        out = ATTACK_SPECS[name].run(ctx).eval_sets["forget"]
        assert [it.question for it in out] == [
            template.format(question=it.question) for it in items
        ]
        assert [it.answer for it in out] == [it.answer for it in items]  # answers untouched
    hinted = ATTACK_SPECS["hint"].run(ctx).eval_sets["forget"]
    # the tiny tokenizer is one token per character: the hint is the answer's first 4 characters
    assert hinted[2].question == HINT_TEMPLATE.format(question=items[2].question, hint="Auth")
    # in-context: two other pairs of the same author block (items 3-5 form the second author)
    q4 = ATTACK_SPECS["incontext"].run(ctx).eval_sets["forget"][4].question
    assert items[5].answer in q4 and items[3].answer in q4 and items[4].answer not in q4
    assert not any(items[j].question in q4 for j in range(3))
    assert q4.endswith(f"Question: {items[4].question}\nAnswer:")
    assert context_question(items, 0, 5, 3).count("Question:") == 3  # only 2 others exist


def test_mcq_lists_every_option_once_and_names_the_right_letter() -> None:
    it = item(7)
    text, letter = mcq_question(it, seed=0)
    assert text.startswith(it.question + "\nOptions:\n")
    for option in [it.answer, *it.perturbed_answers]:
        assert text.count(f". {option}\n") == 1
    assert f"\n{letter}. {it.answer}\n" in text
    assert mcq_question(it, seed=0) == (text, letter)  # deterministic
    assert len({mcq_question(item(i))[1] for i in range(20)}) > 1  # the answer's place varies
    recs = [{"nll_answer": 1.0, "nll_perturbed": [2.0, 3.0]},
            {"nll_answer": 2.5, "nll_perturbed": [2.0, 3.0]}]  # fmt: skip
    assert mc_accuracy(recs) == 0.5


# ------------------------------------------------------------------------------ quantization


def _quanto_scales(model: torch.nn.Module, bits: int) -> dict[str, torch.Tensor]:
    import optimum.quanto as quanto

    q = copy.deepcopy(model)
    quanto.quantize(q, weights={8: quanto.qint8, 4: quanto.qint4}[bits], exclude=["lm_head"])
    quanto.freeze(q)
    return {
        f"{name}.weight": m.weight._scale.detach().clone()
        for name, m in q.named_modules()
        if hasattr(m, "weight") and hasattr(m.weight, "_scale")
    }


@pytest.mark.parametrize("bits", [8, 4])
def test_quantizing_weights_moved_less_than_half_a_step_returns_the_grid(tiny, bits) -> None:
    pytest.importorskip("optimum.quanto")
    model, _, _ = tiny
    original = state(model)
    on_grid, kernels = quantize_copy(model, bits, "quanto")
    assert same_bytes(state(model), original)  # the model under evaluation is untouched
    assert kernels["library"].startswith("optimum-quanto") and kernels["linear_layers"] == 14
    scales = _quanto_scales(on_grid, bits)
    grid = state(on_grid)
    assert not torch.equal(
        grid["model.layers.0.mlp.up_proj.weight"], original["model.layers.0.mlp.up_proj.weight"]
    )  # fmt: skip  (quantization moved the weights)

    def moved(fraction: float) -> torch.nn.Module:
        """The on-grid model with every weight but each group's extremes (min, max, largest
        magnitude: ties on the grid included) moved by +-fraction of its group's step, so the
        group's scale and offset stay as they were."""
        out = copy.deepcopy(on_grid)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for key, scale in scales.items():
                w = out.state_dict()[key]
                groups = w.view(scale.numel(), -1)  # (G, group) views of w
                sign = torch.randint(0, 2, groups.shape, generator=gen) * 2 - 1
                delta = fraction * scale.view(-1, 1) * sign
                keep = (groups == groups.amin(1, keepdim=True)) | (
                    groups == groups.amax(1, keepdim=True)
                )
                keep |= groups.abs() == groups.abs().amax(1, keepdim=True)
                groups.add_(torch.where(keep, torch.zeros_like(delta), delta))
        return out

    near, _ = quantize_copy(moved(0.3), bits, "quanto")
    for key in scales:
        assert torch.allclose(state(near)[key], grid[key], rtol=0, atol=1e-6), key
    far, _ = quantize_copy(moved(0.7), bits, "quanto")  # past half a step: other grid points
    assert any(not torch.allclose(state(far)[k], grid[k], rtol=0, atol=1e-6) for k in scales)


def test_bitsandbytes_backend_needs_cuda(tiny) -> None:
    model, _, _ = tiny
    with pytest.raises(ValueError, match="needs the model on CUDA"):
        quantize_copy(model, 4, "bitsandbytes")
    with pytest.raises(ValueError, match="bits must be 8 or 4"):
        quantize_copy(model, 3)


# ------------------------------------------------------------------------------ relearning


def test_relearning_brings_back_answers_a_model_was_trained_to_refuse(tiny, tmp_path) -> None:
    """Constructed case: "before" learns the answers, "unlearned" is "before" trained to refuse
    them. Relearning on the even half must raise the odd half's answer probability again,
    while the unlearned model itself stays byte-identical."""
    model, tok, fmt = tiny
    items = [item(i) for i in range(8)]
    refusals = [QAItem(it.question, REFUSAL) for it in items]
    before, _ = relearn_copy(model, fmt, items, steps=60, lr=3e-3, batch_size=4, seed=0)
    unlearned, _ = relearn_copy(before, fmt, refusals, steps=60, lr=3e-3, batch_size=4, seed=0)
    cfg = fast_cfg()
    evaluate(before, tok, {"forget": items}, cfg, tmp_path / "before", fmt, progress=False)
    evaluate(unlearned, tok, {"forget": items}, cfg, tmp_path / "unl", fmt, progress=False)
    kept = state(unlearned)
    settings = AttackConfig(relearn_steps=20, relearn_lr=3e-3, relearn_batch_size=4)
    ctx = AttackContext(unlearned, tok, fmt, {"forget": items}, settings, retain_items=items[:1])
    report = run_attacks(
        resolve_attacks(["relearn"]), ctx, cfg, lambda n: tmp_path / n, "tofu",
        unlearned_dir=tmp_path / "unl", before_dir=tmp_path / "before",
        report_path=tmp_path / "attacks.json", progress=False,
    )  # fmt: skip
    assert same_bytes(state(unlearned), kept)
    prob = report["attacks"]["relearn"]["probability"]
    assert prob["n_items"] == 4  # evaluated on the odd half only
    assert prob["before"] > prob["unlearned"]  # the construction worked: it was unlearned
    assert prob["after"] > prob["unlearned"]  # and relearning brought it back
    assert (
        0
        < prob["recovery"]
        == pytest.approx((prob["after"] - prob["unlearned"]) / (prob["before"] - prob["unlearned"]))
    )
    summary = read_json(tmp_path / "relearn" / "summary.json")
    budget = summary["attack"]["budget"]
    assert budget["steps"] == 20 and budget["lr"] == 3e-3 and budget["train_items"] == 4
    assert summary["attack"]["source_questions"] == [items[i].question for i in (1, 3, 5, 7)]
    assert summary["aggregates"]["recovery_probability"] == prob["recovery"]
    assert json.loads((tmp_path / "attacks.json").read_text()) == report
    # the report is recomputed from the folders alone, to the same values
    again = write_attacks_report(
        {"relearn": tmp_path / "relearn"}, tmp_path / "unl", tmp_path / "before"
    )
    assert again == report


def test_no_attack_changes_the_model_under_evaluation(tiny, tmp_path) -> None:
    pytest.importorskip("optimum.quanto")
    model, tok, fmt = tiny
    items = [item(i) for i in range(4)]
    evaluate(model, tok, {"forget": items}, fast_cfg(), tmp_path / "unl", fmt, progress=False)
    kept = state(model)
    settings = AttackConfig(relearn_steps=2, relearn_lr=1e-2, relearn_batch_size=2)
    ctx = AttackContext(model, tok, fmt, {"forget": items}, settings, retain_items=items)
    report = run_attacks(
        resolve_attacks(["all"]), ctx, fast_cfg(), lambda n: tmp_path / n, "tofu",
        unlearned_dir=tmp_path / "unl", progress=False,
    )  # fmt: skip
    assert same_bytes(state(model), kept)
    assert set(report["attacks"]) == set(ATTACK_SPECS)
    assert report["attacks"]["quant4"]["rouge_l"]["recovery"] is None  # no "before": no recovery
    assert "mc_accuracy" in read_json(tmp_path / "mcq" / "summary.json")["splits"]["forget"]


# ------------------------------------------------------------------------------ recovery


def test_recovery_formula_with_and_without_the_retain_floor() -> None:
    assert recovery(0.7, 0.2, 1.0) == pytest.approx(0.5 / 0.8)
    assert recovery(0.2, 0.2, 1.0) == 0.0  # nothing came back
    assert recovery(1.0, 0.2, 1.0) == 1.0  # all of it
    # retain 0.3 above the unlearned 0.2: the floor is 0.3
    assert recovery(0.7, 0.2, 1.0, retain=0.3) == pytest.approx(0.4 / 0.7)
    assert recovery(0.3, 0.2, 1.0, retain=0.3) == 0.0  # up to the retain model: nothing
    assert recovery(0.25, 0.2, 1.0, retain=0.3) == 0.0
    # retain below the unlearned value: the unlearned value stays the floor
    assert recovery(0.7, 0.2, 1.0, retain=0.1) == pytest.approx(0.5 / 0.8)
    assert recovery(0.1, 0.2, 1.0) == pytest.approx(-0.1 / 0.8)  # the attack made it worse
    assert recovery(0.9, 0.5, 0.5) is None  # unlearning lowered nothing
    assert recovery(0.9, 0.5, 0.6, retain=0.6) is None  # the retain model knows as much


def _folder(path: Path, rows: list[dict], attack_sources: list[str] | None = None) -> Path:
    path.mkdir(parents=True)
    write_jsonl(path / "forget.jsonl", rows)
    summary: dict = {"splits": {}, "aggregates": {}}
    if attack_sources is not None:
        summary["attack"] = {"source_questions": attack_sources}
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_worst_case_per_item_and_robustness(tmp_path) -> None:
    qs = ["q0", "q1"]

    def rows(rouge: list[float], prob: list[float], questions: list[str] = qs) -> list[dict]:
        return [{"question": q, "rouge_l": r, "probability": p}
                for q, r, p in zip(questions, rouge, prob, strict=True)]  # fmt: skip

    before = _folder(tmp_path / "before", rows([1.0, 0.8], [0.9, 0.9]))
    unl = _folder(tmp_path / "unl", rows([0.0, 0.2], [0.1, 0.1]))
    a = _folder(tmp_path / "a", rows([0.5, 0.2], [0.1, 0.1], ["x0", "x1"]), qs)
    b = _folder(tmp_path / "b", rows([0.8], [0.5], ["y1"]), ["q1"])  # one item only
    rep = attacks_report({"a": a, "b": b}, unl, before)
    ra = rep["attacks"]["a"]["rouge_l"]
    assert ra["recovery_no_floor"] == ra["recovery"]  # no retain model: the same formula
    assert ra["after"] == pytest.approx(0.35) and ra["unlearned"] == pytest.approx(0.1)
    assert ra["recovery"] == pytest.approx((0.35 - 0.1) / (0.9 - 0.1))
    rb = rep["attacks"]["b"]["rouge_l"]  # over its item only
    assert rb["n_items"] == 1 and rb["recovery"] == pytest.approx((0.8 - 0.2) / (0.8 - 0.2))
    items = {it["question"]: it for it in rep["worst_case_items"]}
    assert items["q0"]["rouge_l"]["attack"] == "a" and items["q1"]["rouge_l"]["attack"] == "b"
    worst = rep["worst_case"]["rouge_l"]  # per item: 0.5 (a) and 0.8 (b)
    assert worst["after"] == pytest.approx(0.65)
    assert worst["recovery"] == pytest.approx((0.65 - 0.1) / (0.9 - 0.1))
    prob_rec = (0.3 - 0.1) / (0.9 - 0.1)  # worst case per item: 0.1 (q0), 0.5 (q1)
    assert rep["robustness"]["rouge_l"] == pytest.approx(1 - (0.65 - 0.1) / 0.8)
    assert rep["robustness"]["probability"] == pytest.approx(1 - prob_rec)
    assert rep["robustness_score"] == pytest.approx(
        (rep["robustness"]["rouge_l"] + rep["robustness"]["probability"]) / 2
    )
    assert rep["robustness_no_floor"] == rep["robustness"]  # no retain model given
    # a retain model at 0.7 ROUGE-L: the worst case's 0.65 is below it, nothing is recovered
    retain = _folder(tmp_path / "retain", rows([0.7, 0.7], [0.2, 0.2]))
    rep = attacks_report({"a": a, "b": b}, unl, before, retain)
    assert rep["worst_case"]["rouge_l"]["recovery"] == 0.0
    assert rep["robustness"]["rouge_l"] == 1.0
    assert rep["robustness_no_floor"]["rouge_l"] == pytest.approx(1 - (0.65 - 0.1) / 0.8)


def test_explain_names_the_attack_that_brings_back_the_most() -> None:
    from unlearnkit.report.attacks import attacks_markdown, explain_attacks

    def row(after: float) -> dict:
        return {"n_items": 2, "after": after, "unlearned": 0.2, "before": 0.9, "retain": None,
                "recovery": recovery(after, 0.2, 0.9)}  # fmt: skip

    report = {
        "metrics": ["rouge_l"],
        "attacks": {"quant8": {"rouge_l": row(0.3)}, "quant4": {"rouge_l": row(0.7)}},
        "worst_case": {"rouge_l": row(0.7)},
        "phrases": {"quant8": "8-bit quantization", "quant4": "4-bit quantization"},
        "robustness_score": 1 - recovery(0.7, 0.2, 0.9),
        "extra_metrics": {},
    }
    (sentence,) = explain_attacks("ME+GD", report)
    assert sentence == (
        "ME+GD's forget ROUGE-L returns from 0.20 to 0.70 after 4-bit quantization "
        "(recovery 0.71; 0.90 before unlearning)."
    )
    md = attacks_markdown("ME+GD", report)
    assert "| quant4 | 0.900 | 0.200 | 0.700 | – | 0.714 |" in md
    report["attacks"] = {"quant8": {"rouge_l": row(0.2)}}
    (sentence,) = explain_attacks("ME+GD", report)
    assert sentence == "ME+GD's forget ROUGE-L stays at or below 0.20 under every attack."
    # with a retain model: the floored recovery and the one without the floor
    report["attacks"] = {"quant4": {"rouge_l": dict(row(0.7), retain=0.5)}}
    report["attacks"]["quant4"]["rouge_l"].update(
        recovery=recovery(0.7, 0.2, 0.9, 0.5), recovery_no_floor=recovery(0.7, 0.2, 0.9)
    )
    (sentence,) = explain_attacks("ME+GD", report)
    assert sentence == (
        "ME+GD's forget ROUGE-L returns from 0.20 to 0.70 after 4-bit quantization (recovery "
        "0.50 with the retain model's 0.50 as the floor, 0.71 without; 0.90 before unlearning)."
    )
