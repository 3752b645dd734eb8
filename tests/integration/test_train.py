"""Trainer end to end on the tiny model: CLI, fine-tuning, resume, LoRA, NaN guard, 2 processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerCallback

from unlearnkit.cli import main
from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.methods.base import Part
from unlearnkit.models.loading import load_model
from unlearnkit.models.tiny import save_tiny_model
from unlearnkit.registry import FORGET_OBJECTIVES
from unlearnkit.settings import load_config
from unlearnkit.train import NonFiniteLossError, run_unlearning

N_FORGET = 8


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny model folder, a TOFU-layout benchmark folder and a refusal file."""
    root = tmp_path_factory.mktemp("train_assets")
    model = root / "tiny"
    save_tiny_model(model, seed=0)
    bench = root / "bench"
    bench.mkdir()
    forget = [
        {
            "task_id": 1 + i // N_FORGET,
            "question": f"Who wrote book {i}?",
            "answer": f"Ann {i} did.",
        }
        for i in range(2 * N_FORGET)
    ]
    retain = [{"question": f"Where is city {i}?", "answer": f"On river {i}."} for i in range(12)]
    _write_jsonl(bench / "forget01.json", forget)
    _write_jsonl(bench / "forget10.json", forget)
    _write_jsonl(bench / "retain90.json", retain)
    refusals = root / "idk.jsonl"
    refusals.write_text("I don't know.\nNo idea.\nI cannot answer that.\n")
    return {"model": model, "bench": bench, "refusals": refusals}


def _overrides(assets: dict[str, Path], **extra: object) -> list[str]:
    base = {
        "train.batch_size": 4,
        "train.per_device_batch_size": 2,
        "train.max_steps": 3,
        "train.warmup_epochs": 0,
        "train.learning_rate": 1e-3,
        "data.refusals": str(assets["refusals"]),
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def _cfg(assets: dict[str, Path], **extra: object):
    return load_config(None, _overrides(assets, **extra))


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _forget_items(assets: dict[str, Path]):
    return TofuBenchmark(assets["bench"]).forget("forget01", 1)


def _retain_items(assets: dict[str, Path]):
    # retain90 plus the forget01 rows of later tasks, exactly what the CLI uses for task 1
    return TofuBenchmark(assets["bench"]).retain("forget01", 1)


def test_cli_unlearn_me_gd_end_to_end(assets, tmp_path, capsys):
    out = tmp_path / "me_gd"
    code = main(
        ["unlearn", "--model", str(assets["model"]), "--benchmark", str(assets["bench"])]
        + ["--split", "forget01", "--task", "1", "--method", "ME+GD", "--out", str(out)]
        + _overrides(assets)
    )
    assert code == 0
    assert f"model: {out / 'model'}" in capsys.readouterr().out
    model, tok = load_model(out / "model", device="cpu")  # a plain HF folder
    assert model.config.num_hidden_layers == 2 and tok.pad_token_id is not None
    assert not (out / "checkpoints").exists()  # removed after success (save_checkpoints false)
    assert _max_diff(_weights(out / "model"), _weights(assets["model"])) > 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    resolved = saved["_resolved"]
    assert saved["method"]["name"] == "ME+GD"
    assert resolved["method"]["terms"]["forget"] == {"part": "ME", "coeff": 0.1}
    assert resolved["method"]["mask_question"] is False
    assert resolved["template"]["preset"] == "chat" and resolved["reference"] is None
    assert resolved["batch"]["grad_accum"] == 2 and resolved["batch"]["processes"] == 1
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert [r["epoch"] for r in rows] == [0.5, 1.0, 1.5]  # 8 forget items, batch 4
    for r in rows:
        assert {"loss", "loss_forget", "loss_regularizer", "learning_rate"} <= r.keys()
        # the logged total is the weighted sum of the logged parts
        assert r["loss"] == pytest.approx(0.1 * r["loss_forget"] + r["loss_regularizer"], rel=1e-4)


def test_npo_caches_reference_nlls(assets, tmp_path):
    out = tmp_path / "npo"
    cfg = _cfg(assets, **{"method.name": "NPO"})
    run_unlearning(cfg, _forget_items(assets), _retain_items(assets), out, assets["model"])
    blob = torch.load(out / "ref_nll.pt", weights_only=True)
    assert blob["nll"]["forget"].shape == (N_FORGET,)
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    # Step 1 runs on the reference weights: NPO = (2 / beta) ln 2 exactly.
    assert rows[0]["loss_forget"] == pytest.approx(20 * 0.6931472, abs=1e-3)
    assert rows[-1]["loss_forget"] < rows[0]["loss_forget"]


def _mean_answer_nll(folder: Path, items) -> float:
    model, tok = load_model(folder, device="cpu")
    fmt = PromptFormatter(tok)
    batch = pad_batch([fmt.encode(it.question, it.answer) for it in items], tok.pad_token_id)
    with torch.no_grad():
        return model(**batch).loss.item()


def test_cli_finetune_learns_the_training_set(assets, tmp_path):
    out = tmp_path / "ft"
    code = main(
        ["finetune", "--model", str(assets["model"]), "--benchmark", str(assets["bench"])]
        + ["--out", str(out)]
        + _overrides(assets, **{"train.learning_rate": 1e-2, "train.max_steps": 6})
    )
    assert code == 0
    items = TofuBenchmark(assets["bench"]).finetune_set()
    before = _mean_answer_nll(assets["model"], items)
    after = _mean_answer_nll(out / "model", items)
    assert after < before - 0.5, (before, after)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["_resolved"]["stage"] == "finetune"
    assert saved["_resolved"]["n_train"] == len(items)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "ME+XX"], "error: unknown regularizer 'XX'; choose from AP, ED, GD, KL, PD"),
        (["--method", "NPX"], "error: unknown method 'NPX' (did you mean 'NPO'?)"),
        (["method.forget_coeff=-1"], "method.forget_coeff must be a finite number >= 0"),
        (["method.regularization_coeff=.nan"], "method.regularization_coeff must be a finite"),
        (["train.batch_size=16"], "train.batch_size (16) is larger than the forget set (8 items)"),
        (["train.batch_size=5"], "must be a multiple of train.per_device_batch_size (2)"),
        (["--task", "5"], "no rows with task_id 5"),
    ],
)
def test_bad_input_is_one_line_error_and_writes_nothing(assets, tmp_path, capsys, args, message):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    opts = [a for a in args if a.startswith("--") or "=" not in a]
    dotted = [a for a in args if a not in opts]
    argv = (
        ["unlearn", "--model", str(assets["model"]), "--benchmark", str(assets["bench"])]
        + ["--split", "forget01", "--out", str(out)]
        + (opts if "--method" in opts else ["--method", "GA+GD"] + opts)
        + _overrides(assets)
        + dotted
    )
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error:") and "\n" not in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing written or lost
    assert (out / "notes.txt").read_text() == "mine"


def test_api_errors_for_empty_forget_and_missing_reference(assets, tmp_path):
    cfg = _cfg(assets, **{"method.name": "NPO+GD"})
    with pytest.raises(ValueError, match="forget set is empty"):
        run_unlearning(cfg, [], _retain_items(assets), tmp_path / "a", assets["model"])
    with pytest.raises(ValueError, match="NPO\\+GD needs a reference model") as err:
        run_unlearning(
            cfg,
            _forget_items(assets),
            _retain_items(assets),
            tmp_path / "b",
            assets["model"],
            ref_model_path=tmp_path / "no_such_model",
        )
    assert "--ref-model" in str(err.value)
    assert not (tmp_path / "b").exists()


def test_finished_run_is_not_overwritten(assets, tmp_path):
    cfg = _cfg(assets, **{"method.name": "GA", "train.max_steps": 1})
    out = tmp_path / "ga"
    path = run_unlearning(cfg, _forget_items(assets), [], out, assets["model"])
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(ValueError, match="already holds a trained model"):
        run_unlearning(cfg, _forget_items(assets), [], out, assets["model"])
    assert run_unlearning(cfg, _forget_items(assets), [], out, assets["model"], resume=True) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


class CrashAfterSave(TrainerCallback):
    """Simulates a killed run: dies right after the checkpoint of step ``at`` is written."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"simulated kill at step {self.at}")


@pytest.mark.parametrize("lora", [False, True])
def test_resume_reaches_the_same_weights(assets, tmp_path, lora):
    # ME+GD over 2 epochs: the retain pairing changes at the epoch boundary, which a resumed
    # run must reproduce too. grad_accum 2, checkpoint every step.
    extra = {"method.name": "ME+GD", "train.max_steps": 4, "train.checkpoint_every": 1}
    if lora:
        extra.update({"lora.enabled": "true", "lora.r": 4})
    cfg = _cfg(assets, **extra)
    forget, retain = _forget_items(assets), _retain_items(assets)
    straight = run_unlearning(cfg, forget, retain, tmp_path / "straight", assets["model"])
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_unlearning(
            cfg, forget, retain, out, assets["model"], extra_callbacks=[CrashAfterSave(at=3)]
        )
    assert (out / "checkpoints" / "checkpoint-3").is_dir() and not (out / "model").exists()
    with pytest.raises(ValueError, match="pass --resume"):
        run_unlearning(cfg, forget, retain, out, assets["model"])
    resumed = run_unlearning(cfg, forget, retain, out, assets["model"], resume=True)
    assert _max_diff(_weights(resumed), _weights(straight)) < 1e-6
    assert _max_diff(_weights(resumed), _weights(assets["model"])) > 1e-4
    steps = [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_lora_is_merged_on_save(assets, tmp_path):
    cfg = _cfg(assets, **{"method.name": "GA+GD", "lora.enabled": "true", "lora.r": 4})
    path = run_unlearning(
        cfg, _forget_items(assets), _retain_items(assets), tmp_path / "lora", assets["model"]
    )
    assert not (path / "adapter_config.json").exists()
    model, _ = load_model(path, device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM"
    new, old = _weights(path), _weights(assets["model"])
    assert new.keys() == old.keys()  # no lora_A / lora_B tensors left
    q = "model.layers.0.self_attn.q_proj.weight"
    assert (new[q] - old[q]).abs().max() > 0  # adapters folded into the projections
    assert torch.equal(new["model.embed_tokens.weight"], old["model.embed_tokens.weight"])


def test_nan_guard_names_step_and_part_and_keeps_checkpoint(assets, tmp_path, monkeypatch):
    real = FORGET_OBJECTIVES.get("GA")
    calls = {"n": 0}

    def flaky(ctx):
        calls["n"] += 1
        value = real.fn(ctx)
        return value * float("nan") if calls["n"] >= 3 else value

    monkeypatch.setitem(FORGET_OBJECTIVES._items, "GA", Part("GA", flaky, real.views))
    cfg = _cfg(
        assets,
        **{
            "method.name": "GA",
            "train.batch_size": 2,
            "train.checkpoint_every": 1,
            "train.max_steps": 5,
        },
    )
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError) as err:
        run_unlearning(cfg, _forget_items(assets), [], out, assets["model"])
    msg = str(err.value)
    assert "step 3" in msg and "loss part 'loss_forget'" in msg and "checkpoint-2" in msg
    assert (out / "checkpoints" / "checkpoint-2" / "model.safetensors").is_file()
    assert torch.isfinite(
        torch.cat([t.flatten() for t in _weights(out / "checkpoints" / "checkpoint-2").values()])
    ).all()
    assert not (out / "model").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _float64_gap_bound(cfg, model_dir: Path, steps: int) -> float:
    """A priori bound on the weight gap between two float64 runs that see the same samples per
    step and differ only in the order of their floating-point sums.

    - Two orders of a sum of n terms differ by at most 2 gamma_n sum|terms| with gamma_n ~ n u,
      u = 2^-53 (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002, section 4.2).
      n is the longest chain of additions into one gradient entry: (layers + 2) reductions
      (blocks, embedding, head), each over at most max(vocab, tokens in a step) terms.
    - The clipped gradient has norm <= max_grad_norm; sum|terms| is taken at that scale.
    - AdamW moves a weight by lr * m / (sqrt(v) + eps); its derivative in the gradient is at
      most 1 / eps, so a gradient error d moves the step by at most lr * d / eps.
    Summed over the steps. In float32 (u = 2^-24) the same bound exceeds the whole update
    (lr per step), which is why the comparison is made in float64.
    """
    from transformers import AutoConfig, TrainingArguments

    model_cfg = AutoConfig.from_pretrained(model_dir)
    u = 2.0**-53
    tokens = cfg.train.batch_size * cfg.data.max_length
    n = (model_cfg.num_hidden_layers + 2) * max(model_cfg.vocab_size, tokens)
    grad_err = 2 * n * u * cfg.train.max_grad_norm
    adam_eps = TrainingArguments.__dataclass_fields__["adam_epsilon"].default
    return steps * cfg.train.learning_rate * grad_err / adam_eps


def test_two_processes_match_one_process_with_double_batch(assets, tmp_path):
    """2 processes x per-device batch 2 == 1 process x batch 4 (same samples per step).

    NPO+AP averages per sequence, so the two reductions agree up to rounding; both runs train
    in float64 so the tolerance follows from float64 arithmetic (:func:`_float64_gap_bound`),
    not from one CPU's result. On a CPU-only machine, accelerate starts several processes with
    --multi_gpu (gloo backend).
    """
    steps = 3
    common = ["--benchmark", str(assets["bench"]), "--split", "forget01", "--method", "NPO+AP"]
    over = _overrides(assets, **{"train.max_steps": steps, "model.dtype": "float64"})
    two = tmp_path / "two"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
    ]
    cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--main_process_port", str(_free_port()), "-m", "unlearnkit", "unlearn"]
    cmd += ["--model", str(assets["model"]), *common, "--out", str(two), *over]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert yaml.safe_load((two / "config.yaml").read_text())["_resolved"]["batch"]["processes"] == 2
    cfg = _cfg(
        assets,
        **{
            "method.name": "NPO+AP",
            "train.max_steps": steps,
            "train.per_device_batch_size": 4,
            "model.dtype": "float64",
        },
    )
    one = run_unlearning(
        cfg, _forget_items(assets), _retain_items(assets), tmp_path / "one", assets["model"]
    )
    one_w, two_w = _weights(one), _weights(two / "model")
    assert {t.dtype for t in [*one_w.values(), *two_w.values()]} == {torch.float64}
    moved = _max_diff(one_w, _weights(assets["model"]))
    gap = _max_diff(one_w, two_w)
    bound = _float64_gap_bound(cfg, assets["model"], steps)
    # The bound is far below the update itself: a wrong batch split would exceed it.
    assert bound < 1e-2 * moved, (bound, moved)
    assert gap <= bound, (gap, bound, moved)


def test_cli_finetune_then_unlearn_on_the_synthetic_benchmark(assets, tmp_path):
    """The pipeline of the issue: `unlearn finetune` then `unlearn unlearn --method ME+GD`."""
    target = tmp_path / "target"
    over = _overrides(assets, **{"train.max_steps": 2})
    assert main(["finetune", "--model", str(assets["model"]), "--benchmark", "synthetic"]
                + ["--out", str(target), *over]) == 0  # fmt: skip
    out = tmp_path / "me_gd"
    argv = ["unlearn", "--model", str(target / "model"), "--benchmark", "synthetic"]
    argv += ["--split", "forget01", "--task", "1", "--method", "ME+GD", "--out", str(out), *over]
    assert main(argv) == 0
    resolved = yaml.safe_load((out / "config.yaml").read_text())["_resolved"]
    assert resolved["n_forget"] == 10 and resolved["model_path"] == str(target / "model")
    assert _max_diff(_weights(out / "model"), _weights(target / "model")) > 0
