"""The ``paper`` profile and the training fixes of both profiles, on tiny hand-built cases.

Numbered as in the issue: 1 question masking on the forget view only, 2 fixed-length EOS padding
(ME over every padded position, KL over all positions), 3 the step schedule, 4 index pairing,
5 retain sets outside the unlearned tasks, 6 per-scenario defaults; plus the profile plumbing,
fp32 master weights under mixed precision and the Forget Quality retain set.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
import torch
import yaml

from unlearnkit.config import RunConfig, save_config
from unlearnkit.data.collator import pad_fixed
from unlearnkit.data.formatting import IGNORE_INDEX, PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.losses import kl_loss_all_positions, me_loss
from unlearnkit.methods import build_method
from unlearnkit.methods.data import UnlearningDataset
from unlearnkit.methods.views import VIEWS
from unlearnkit.models.tiny import tiny_tokenizer
from unlearnkit.profiles import profile_defaults
from unlearnkit.scenarios.sweep import expand_sweep
from unlearnkit.settings import load_config
from unlearnkit.train.common import trained_dtype
from unlearnkit.train.schedule import EpochOrderDataset, paper_schedule
from unlearnkit.train.trainer import plan_batches, training_arguments

EOS = 9


def _items(n: int, prefix: str) -> list[QAItem]:
    return [QAItem(question=f"{prefix} q {i}?", answer=f"{prefix} a {i}.") for i in range(n)]


def _dataset(**kw) -> UnlearningDataset:
    tok = tiny_tokenizer()
    kw.setdefault("mask_question", False)
    kw.setdefault("alternates", {f"forget q {i}?": [f"alt {i}."] for i in range(6)})  # AltPO
    return UnlearningDataset(
        _items(6, "forget"),
        _items(5, "retain"),
        ["No idea.", "I cannot say.", "Unknown."],
        PromptFormatter(tok, "plain"),
        VIEWS,
        **kw,
    )


# ---------------------------------------------------------------- 1. masking on the forget view


def test_mask_question_applies_to_the_forget_view_only() -> None:
    ds = _dataset(mask_question=False)
    for view in VIEWS:
        enc = ds.encode(0, view)
        n_prompt = len(ds.formatter.encode_prompt(ds.pair(0, view)[0]))
        if view == "forget":
            assert enc["labels"] == enc["input_ids"]  # unmasked: the question counts
        else:  # retain, refusal and mismatch views always mask the question
            assert enc["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
            assert enc["labels"][n_prompt:] == enc["input_ids"][n_prompt:]
    masked = _dataset(mask_question=True).encode(0, "forget")
    assert masked["labels"][0] == IGNORE_INDEX


# ---------------------------------------------------------------- 2. fixed padding, ME, KL


def test_joint_tokenization_is_the_papers_conversion() -> None:
    """Profile paper tokenizes ``"Question: {q}\nAnswer: {a}"`` as one string and masks only the
    tokens of ``"Question: {q}\n"`` tokenized alone (P:data_module.py:22-52), in every view."""
    tok = tiny_tokenizer()
    eos = tok.eos_token_id
    ds = _dataset(joint_tokenization=True, mask_question=True)
    apart = _dataset(joint_tokenization=False, mask_question=True)
    for view in ("forget", "retain", "forget_idk"):
        q, a = ds.pair(0, view)
        ids = tok(f"Question: {q}\nAnswer: {a}")["input_ids"] + [eos]
        n_q = len(tok(f"Question: {q}\n")["input_ids"])
        enc = ds.encode(0, view)
        assert enc["input_ids"] == ids
        assert enc["labels"] == [IGNORE_INDEX] * n_q + ids[n_q:]
        # the answer tag's tokens count in the loss here, not in the default tokenization
        n_counted = sum(t != IGNORE_INDEX for t in apart.encode(0, view)["labels"])
        assert sum(t != IGNORE_INDEX for t in enc["labels"]) > n_counted
    ds.mask_question = False  # ME+GD's forget view: every token labelled
    assert ds.encode(0, "forget")["labels"] == ds.encode(0, "forget")["input_ids"]
    short = _dataset(joint_tokenization=True, max_length=5).encode(0, "retain")
    assert len(short["input_ids"]) == len(short["labels"]) == 5


def test_pad_fixed_by_hand() -> None:
    # question tokens 5, 6 (masked), answer 7, then the answer's EOS
    enc = {"input_ids": [5, 6, 7, EOS], "labels": [-100, -100, 7, EOS]}
    masked = pad_fixed(enc, 7, EOS, label_padding=False)
    assert masked == {
        "input_ids": [5, 6, 7, EOS, EOS, EOS, EOS],
        "labels": [-100, -100, 7, EOS, -100, -100, -100],
        "attention_mask": [1, 1, 1, 0, 0, 0, 0],  # the EOS after the answer is padding
    }
    unmasked = pad_fixed({"input_ids": [5, 6, 7, EOS], "labels": [5, 6, 7, EOS]}, 7, EOS,
                         label_padding=True)  # fmt: skip
    assert unmasked["labels"] == [5, 6, 7, EOS, EOS, EOS, EOS]  # every padding position counts
    assert unmasked["attention_mask"] == [1, 1, 1, 0, 0, 0, 0]
    # real tokens filling the length: cut, no EOS label
    cut = pad_fixed({"input_ids": [5, 6, 7, 8, EOS], "labels": [5, 6, 7, 8, EOS]}, 3, EOS,
                    label_padding=True)  # fmt: skip
    assert cut == {"input_ids": [5, 6, 7], "labels": [5, 6, 7], "attention_mask": [1, 1, 1]}
    with pytest.raises(ValueError, match="EOS"):
        pad_fixed({"input_ids": [5, 6], "labels": [5, 6]}, 4, EOS, label_padding=True)


def test_dataset_pads_only_the_views_whose_padding_counts() -> None:
    method = build_method(
        load_config(None, ["method.name=ME+KL", "method.kl_positions=all"]).method
    )
    me_gd = build_method(load_config(None, ["method.name=ME+GD"]).method)
    assert me_gd.fixed_length_views() == ("forget",)  # unmasked forget view
    assert method.fixed_length_views() == ("retain",)  # KL over every position (forget masked)
    npo_gd = build_method(load_config(None, ["method.name=NPO+GD"]).method)
    assert npo_gd.fixed_length_views() == ()  # masked views: padding never counts
    ds = _dataset(max_length=200, fixed_length_views=("forget",))
    assert len(ds.encode(0, "forget")["input_ids"]) == 200
    assert len(ds.encode(0, "retain")["input_ids"]) < 200


def test_me_over_fixed_padding_counts_every_position_with_epsilon() -> None:
    """L = (1 / (B (T - 1))) sum_{b, t < T-1} [-log V - (1/V) sum_v log(p + eps)], in float64."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g, dtype=torch.float64) * 3
    logits[0, 1, 0] = 60.0  # a confident row: p(v) < 1e-12 for the other tokens
    labels = torch.full((2, 5), EOS)  # unmasked, padding labelled: everything counts
    eps = 1e-12
    expected = 0.0
    for b in range(2):
        for t in range(4):
            p = torch.softmax(logits[b, t], dim=-1)
            expected += -math.log(7) - sum(math.log(float(p[v]) + eps) for v in range(7)) / 7
    expected /= 2 * 4
    assert me_loss(logits, labels, epsilon=eps).item() == pytest.approx(expected, abs=1e-12)
    exact = me_loss(logits, labels).item()  # closed form: larger on the confident row
    assert exact > expected + 1.0


def test_kl_over_all_positions_by_hand() -> None:
    """(1 / (B T)) sum_{b, t} sum_v p_ref (log p_ref - log p), padding and question included."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    ref = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    total = 0.0
    for b in range(2):
        for t in range(3):
            p, q = torch.softmax(ref[b, t], -1), torch.softmax(logits[b, t], -1)
            total += float((p * (p.log() - q.log())).sum())
    assert kl_loss_all_positions(logits, ref).item() == pytest.approx(total / 6, abs=1e-12)


# ---------------------------------------------------------------- 3. schedule


@pytest.mark.parametrize(
    "n, steps, warmup, per_epoch",
    [(40, 6, 0, 1), (200, 31, 6, 6), (400, 62, 12, 12)],  # forget01 / forget05 / forget10
)
def test_paper_schedule(n: int, steps: int, warmup: int, per_epoch: int) -> None:
    s = paper_schedule(n, 32, 5.0)
    assert (s.max_steps, s.warmup_steps, s.steps_per_epoch) == (steps, warmup, per_epoch)


def test_paper_schedule_in_the_engine_arguments(tmp_path: Path) -> None:
    cfg = load_config(None, ["profile=paper"])
    plan = plan_batches(cfg.train, 40, processes=1)
    assert (plan.max_steps, plan.warmup_steps, plan.grad_accum) == (6, 0, 8)
    args = training_arguments(cfg.train, plan, tmp_path, "cpu")
    assert args.max_steps == 6 and args.warmup_steps == 0 and args.max_grad_norm == 0
    assert args.train_sampling_strategy == "sequential"
    default = plan_batches(load_config(None, []).train, 40, processes=1)
    assert (default.max_steps, default.steps_per_epoch, default.warmup_steps) == (-1, 2, 2)
    with pytest.raises(ValueError, match="0 steps"):
        paper_schedule(20, 32, 1.0)


def test_epoch_order_dataset_lays_epochs_end_to_end() -> None:
    class Base:
        epochs: list[int] = []

        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int) -> int:
            return i

        def set_epoch(self, e: int) -> None:
            self.epochs.append(e)

    ds = EpochOrderDataset(Base(), 12, seed=3)
    items = [ds[k] for k in range(12)]
    assert sorted(items[:5]) == sorted(items[5:10]) == list(range(5))  # whole epochs
    assert len(set(items[10:])) == 2 and Base.epochs[-1] == 2


def test_epoch_order_is_the_paper_samplers_order() -> None:
    """The paper's HF Trainer (transformers 4.43) draws through accelerate's SeedableRandomSampler
    seeded by the last global seed (its Trainer's default 42) + the epoch; the paper profile's
    seed is that 42, and EpochOrderDataset gives the sampler's order epoch after epoch."""
    from accelerate.data_loader import SeedableRandomSampler

    class Base:
        def __len__(self) -> int:
            return 7

        def __getitem__(self, i: int) -> int:
            return i

    seed = load_config(None, ["profile=paper"]).train.seed
    assert seed == 42 and load_config(None, []).train.seed == 0
    torch.manual_seed(seed)  # what the Trainer's set_seed(args.seed) leaves behind
    sampler = SeedableRandomSampler(data_source=list(range(7)), generator=None)
    theirs = [i for _ in range(3) for i in sampler]  # three epochs, each a fresh iteration
    ds = EpochOrderDataset(Base(), 20, seed=seed)
    assert [ds[k] for k in range(20)] == theirs[:20]
    assert theirs[:7] != theirs[7:14]  # a fresh permutation per epoch


# ---------------------------------------------------------------- 4. pairing


def test_index_pairing_is_seeded_by_the_index_and_fixed() -> None:
    ds = _dataset(pairing="index")
    n_retain, n_refusals = len(ds.retain), len(ds.refusals)
    for i in range(len(ds)):
        torch.manual_seed(i)  # the rule: a generator seeded by i draws retain, then refusal
        r = int(torch.randint(0, n_retain, (1,)))
        k = int(torch.randint(0, n_refusals, (1,)))
        assert ds.pair(i, "retain") == (ds.retain[(i + r) % n_retain].question,
                                        ds.retain[(i + r) % n_retain].answer)  # fmt: skip
        assert ds.pair(i, "forget_idk")[1] == ds.pair(i, "retain_idk")[1] == ds.refusals[k]
        assert ds.pair(i, "forget_mismatch")[1] == ds.pair(i, "retain")[1]
    before = [ds.pair(i, v) for i in range(len(ds)) for v in VIEWS]
    ds.set_epoch(3)
    assert [ds.pair(i, v) for i in range(len(ds)) for v in VIEWS] == before
    # the default redraws the retain side every epoch
    default = _dataset()
    first = [default.pair(i, "retain") for i in range(len(default))]
    default.set_epoch(1)
    assert [default.pair(i, "retain") for i in range(len(default))] != first


# ---------------------------------------------------------------- 5. retain sets


def test_retain_set_is_everything_outside_the_unlearned_tasks(tmp_path: Path) -> None:
    rows = [{"task_id": t, "question": f"q{t}{j}?", "answer": f"a{t}{j}"}
            for t in (1, 2, 3) for j in range(2)]  # fmt: skip
    (tmp_path / "forget01.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "retain90.json").write_text(json.dumps({"question": "r?", "answer": "r"}) + "\n")
    bench = TofuBenchmark(tmp_path)

    def tasks(items: list[QAItem]) -> list[str]:
        return [it.question for it in items]

    # a single task 2: the complement (task 1 stays in; `task_id > t` dropped it)
    assert tasks(bench.retain("forget01", 2)) == ["r?", "q10?", "q11?", "q30?", "q31?"]
    # continual order 3, 2: while unlearning 2, task 3 is out and task 1 is in
    assert tasks(bench.retain("forget01", 2, unlearned=[3, 2])) == ["r?", "q10?", "q11?"]


# ---------------------------------------------------------------- 6. profiles


def test_default_profile_keeps_our_defaults() -> None:
    cfg = load_config(None, [])
    assert cfg.profile == "default"
    assert (cfg.train.max_grad_norm, cfg.train.schedule, cfg.data.pairing) == (
        1.0,
        "epochs",
        "epoch",
    )
    assert (cfg.data.fixed_padding, cfg.method.kl_positions, cfg.lora.alpha) == (False, None, 16)
    # method.kl_positions left unset: the KL part's own default
    kl = build_method(load_config(None, ["method.name=GA+KL"]).method).terms[-1]
    assert (kl.part.name, kl.settings["kl_positions"]) == ("KL", "counted")


def test_paper_profile_defaults_and_explicit_keys_win(tmp_path: Path) -> None:
    cfg = load_config(None, ["profile=paper"])
    assert cfg.train.max_grad_norm == 0 and cfg.train.schedule == "paper"
    assert cfg.data.pairing == "index" and cfg.data.fixed_padding and cfg.data.max_length == 500
    assert cfg.method.kl_positions == "all" and cfg.method.me_epsilon == 1e-12
    assert cfg.lora.alpha == 32 and cfg.method.forget_coeff is None  # TOFU ME+GD: 0.1 built in
    rw = load_config(None, ["profile=paper", "data.benchmark=real_world"])
    assert (rw.train.learning_rate, rw.method.forget_coeff, rw.data.max_length) == (5e-6, 0.5, 300)
    rw_ga = load_config(None, ["profile=paper", "data.benchmark=real_world", "method.name=GA+GD"])
    assert (rw_ga.train.learning_rate, rw_ga.method.forget_coeff) == (1e-5, None)
    cont = load_config(None, ["profile=paper", "scenario=continual", "method.name=me+gd"])
    assert cont.method.forget_coeff == 1.0
    # a YAML key or an override always wins over the profile
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"profile": "paper", "data": {"benchmark": "real_world"},
                                    "train": {"learning_rate": 2e-6}}))  # fmt: skip
    mine = load_config(path, ["data.max_length=128"])
    assert mine.train.learning_rate == 2e-6 and mine.data.max_length == 128
    assert mine.method.forget_coeff == 0.5
    # the resolved values are what the saved config records
    save_config(mine, tmp_path / "saved.yaml")
    saved = yaml.safe_load((tmp_path / "saved.yaml").read_text())
    assert saved["profile"] == "paper" and saved["train"]["max_grad_norm"] == 0.0
    assert saved["method"]["forget_coeff"] == 0.5 and saved["data"]["pairing"] == "index"
    assert profile_defaults("default", "real_world", "fictitious", "ME+GD") == {}


def test_sweep_grid_points_resolve_their_own_scenario_defaults() -> None:
    cfg = load_config(None, ["profile=paper", "scenario=sweep", "sweep.scenario=real_world",
                             "data.benchmark=real_world",
                             "sweep.methods=[ME+GD, GA+GD]"])  # fmt: skip
    me, ga = expand_sweep(cfg)
    assert (me.method.name, me.method.forget_coeff, me.train.learning_rate) == ("ME+GD", 0.5, 5e-6)
    assert (ga.method.name, ga.method.forget_coeff, ga.train.learning_rate) == ("GA+GD", None, 1e-5)
    assert me.data.max_length == ga.data.max_length == 300


def test_shipped_paper_sweeps_load() -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    names = sorted(p.name for p in root.glob("paper_*.yaml"))
    assert names, "no paper sweep configs shipped"
    for path in root.glob("paper_*.yaml"):
        cfg = load_config(path, [])
        assert cfg.profile == "paper"
        for sub in expand_sweep(cfg) if cfg.scenario == "sweep" else [cfg]:
            build_method(sub.method)


# ---------------------------------------------------------------- precision, store


def test_trained_weights_stay_float32_under_mixed_precision() -> None:
    cfg = RunConfig()
    cfg.train.mixed_precision = "bf16"
    cfg.model.dtype = "bfloat16"
    assert trained_dtype(cfg, "cpu") == torch.float32  # autocast; AdamW updates fp32 weights
    cfg.train.mixed_precision = "no"
    assert trained_dtype(cfg, "cpu") == torch.bfloat16  # the user's explicit pure-bf16 choice


def test_results_store_records_the_profile_and_migrates_old_stores(tmp_path: Path) -> None:
    from unlearnkit.report.store import ResultsStore

    db = tmp_path / "results.db"
    ResultsStore(db)
    with sqlite3.connect(db) as conn:  # make it a version-1 store: no profile column
        conn.execute("ALTER TABLE results DROP COLUMN profile")
    store = ResultsStore(db)
    run = tmp_path / "r"
    run.mkdir()
    store.record(run, "final", {"aggregates": {}}, {"scenario": "fictitious", "profile": "paper"})
    (row,) = store.query()
    assert row["profile"] == "paper"


def test_report_table_shows_the_profile() -> None:
    from unlearnkit.report.markdown import report_markdown
    from unlearnkit.report.tables import scenario_tables

    rows = [
        {"run": f"r{p}", "run_dir": f"/x/{p}", "stage": "final", "scenario": "fictitious",
         "method": "ME+GD", "profile": p, "metrics": {}, "model_utility": 0.5}
        for p in ("default", "paper")
    ]  # fmt: skip
    text = report_markdown(scenario_tables(rows))
    assert "ME+GD [profile=default]" in text and "ME+GD [profile=paper]" in text
    assert "Profile: default, paper" in text


def test_fixed_padding_batches_match_the_unpadded_loss_on_masked_views() -> None:
    """Masked views are numerically unaffected by fixed padding (why only some views get it)."""
    from unlearnkit.losses import batch_token_nll
    from unlearnkit.models.tiny import tiny_model

    model, tok = tiny_model(seed=0)
    fmt = PromptFormatter(tok, "plain")
    enc = fmt.encode("Who?", "Ann did.", mask_question=True)
    fixed = pad_fixed(enc, len(enc["input_ids"]) + 9, fmt.eos_id, label_padding=False)
    out = []
    for e in (enc, fixed):
        t = {k: torch.tensor([v]) for k, v in e.items()}
        logits = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).logits
        out.append(batch_token_nll(logits, t["labels"]).item())
    assert out[0] == pytest.approx(out[1], abs=1e-5)


def test_paper_profile_trains_the_paper_schedule_end_to_end(tmp_path: Path, tiny_model_dir) -> None:
    """8 forget items, batch 4, 2.5 epochs: floor(2.5 * 8 / 4) = 5 full steps, 2 warm-up steps."""
    from unlearnkit.train import run_unlearning

    forget = _items(8, "forget")
    cfg = load_config(
        None,
        ["profile=paper", "method.name=ME+GD", "model.device=cpu", "train.batch_size=4",
         "train.per_device_batch_size=2", "train.epochs=2.5", "data.max_length=96",
         "data.prompt_preset=plain"],
    )  # fmt: skip
    out = tmp_path / "run"
    run_unlearning(cfg, forget, _items(5, "retain"), out, tiny_model_dir)
    steps = [json.loads(line).get("step") for line in (out / "train_log.jsonl").open()]
    assert max(s for s in steps if s is not None) == 5
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["profile"] == "paper" and saved["train"]["max_grad_norm"] == 0.0
    assert saved["_resolved"]["batch"]["max_steps"] == 5
    assert saved["_resolved"]["batch"]["warmup_steps"] == 2
    assert saved["_resolved"]["fixed_length_views"] == ["forget"]


def _real_world_folder(root: Path) -> Path:
    """A folder in the real-world layout (forget.json + neighbor.json): its kind is read from
    the file names alone."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "forget.json").write_text('{"task_id": 1, "question": "q?", "answer": "a."}\n')
    (root / "neighbor.json").write_text('{"question": "n?", "answer": "b."}\n')
    return root


def test_paper_rules_follow_the_benchmark_not_the_scenario(tmp_path: Path) -> None:
    rw = (5e-6, 0.5, 300)

    def key(*overrides: str) -> tuple:
        cfg = load_config(None, ["profile=paper", *overrides])
        return cfg.train.learning_rate, cfg.method.forget_coeff, cfg.data.max_length

    # `unlearn unlearn --benchmark real_world` runs the default scenario (fictitious)
    assert key("data.benchmark=real_world") == rw
    assert key("data.benchmark=real_world", "scenario=real_world") == rw
    # a real-world folder is a real-world benchmark, whatever its name
    folder = _real_world_folder(tmp_path / "people")
    assert key(f"data.benchmark={folder}") == rw
    # the scenario's name alone does not make TOFU data real-world
    assert key("data.benchmark=tofu", "scenario=real_world") == (1e-5, None, 500)
    # the continual script's ME+GD coefficient needs the continual scenario on TOFU-layout data
    assert key("scenario=continual")[1] == 1.0
    assert key("data.benchmark=synthetic", "scenario=continual")[1] == 1.0
    assert key()[1] is None


def test_null_is_not_a_choice(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "profile: paper\ndata: {benchmark: real_world}\nmethod: {name: ME+GD, forget_coeff: null}\n"
    )
    assert load_config(path).method.forget_coeff == 0.5  # the profile's value, not pinned None
    assert load_config(path, ["method.forget_coeff=0.3"]).method.forget_coeff == 0.3
    # an override to null undoes a YAML value: the profile's value again
    path.write_text("profile: paper\ndata: {benchmark: real_world}\nmethod: {forget_coeff: 0.2}\n")
    assert load_config(path).method.forget_coeff == 0.2
    assert load_config(path, ["method.forget_coeff=null"]).method.forget_coeff == 0.5
    # a null on a key no profile or method manages still sets it (eval.nli_model: none)
    assert load_config(None, ["eval.nli_model=null"]).eval.nli_model is None


def test_registered_benchmarks_declare_their_kind() -> None:
    from unlearnkit.data.splits import REGISTERED_KINDS, benchmark_kind
    from unlearnkit.registry import BENCHMARKS

    assert sorted(REGISTERED_KINDS) == BENCHMARKS.names()
    assert benchmark_kind("real_world") == "real_world"
    assert benchmark_kind("tofu") == benchmark_kind("locuslab/TOFU") == "tofu"
    assert benchmark_kind("no-such-benchmark") is None
