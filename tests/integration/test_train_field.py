"""The field's methods through the trainer on the tiny model: finite losses, weights that move,
and a killed-then-resumed run that reaches the same weights (PD's multiplier included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerCallback

from unlearnkit.data.records import QAItem
from unlearnkit.models.tiny import save_tiny_model
from unlearnkit.settings import load_config
from unlearnkit.train import run_unlearning

FORGET = [QAItem(f"Who wrote book {i}?", f"Ann {i} did.") for i in range(8)]
RETAIN = [QAItem(f"Where is city {i}?", f"On river {i}.") for i in range(12)]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("field_assets")
    save_tiny_model(root / "tiny", seed=0)
    (root / "idk.txt").write_text("I don't know.\nNo idea.\n")
    (root / "alt.jsonl").write_text(
        "".join(
            json.dumps({"question": f.question, "alternate": f"Bo {i} did."}) + "\n"
            for i, f in enumerate(FORGET)
        )
    )
    return {"model": root / "tiny", "refusals": root / "idk.txt", "alt": root / "alt.jsonl"}


class CrashAfterSave(TrainerCallback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"simulated kill at step {self.at}")


def _cfg(assets, name: str, extra: dict[str, object]):
    values = {
        "method.name": name,
        "train.batch_size": 4,
        "train.per_device_batch_size": 2,
        "train.max_steps": 4,
        "train.warmup_epochs": 0,
        "train.learning_rate": 1e-3,
        "train.checkpoint_every": 1,
        "data.refusals": str(assets["refusals"]),
        "method.alternates": str(assets["alt"]),
        **extra,
    }
    return load_config(None, [f"{k}={v}" for k, v in values.items()])


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _max_diff(a, b) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.mark.parametrize(
    "name, extra",
    [
        ("SimNPO+AP", {}),
        ("WGA+KL", {}),
        ("SatImp+GD", {}),
        ("UNDIAL", {}),
        ("CE-U+GD", {}),
        ("RMU+ED", {"method.layer": 1}),
        ("PDU", {"method.retain_eps": 0.0}),
        ("AltPO", {}),
    ],
)
def test_train_and_resume_reach_the_same_weights(assets, tmp_path, name, extra):
    cfg = _cfg(assets, name, extra)
    straight = run_unlearning(cfg, FORGET, RETAIN, tmp_path / "straight", assets["model"])
    rows = [
        json.loads(x) for x in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(isinstance(r["loss"], float) for r in rows)  # a non-finite loss is a string
    assert _max_diff(_weights(straight), _weights(assets["model"])) > 1e-4
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_unlearning(
            cfg, FORGET, RETAIN, out, assets["model"], extra_callbacks=[CrashAfterSave(2)]
        )
    resumed = run_unlearning(cfg, FORGET, RETAIN, out, assets["model"], resume=True)
    assert _max_diff(_weights(resumed), _weights(straight)) < 1e-6
    resumed_rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in resumed_rows] == pytest.approx([r["loss"] for r in rows], rel=1e-5)
    if name == "PDU":
        # the multiplier grows (retain NLL > eps = 0) and the resumed run continues it
        lam = [r["regularizer_multiplier"] for r in rows]
        assert lam[0] > 1.0 and all(b > a for a, b in zip(lam, lam[1:], strict=False))
        assert [r["regularizer_multiplier"] for r in resumed_rows] == pytest.approx(lam)


def test_undial_trains_at_its_paper_learning_rate(assets, tmp_path):
    cfg = _cfg(assets, "UNDIAL", {})
    assert cfg.train.learning_rate == 1e-3  # set explicitly: kept
    values = ["method.name=UNDIAL", "train.max_steps=1", "train.batch_size=4"]
    assert load_config(None, values).train.learning_rate == 1e-4


def test_pd_multiplier_is_saved_in_each_checkpoint(assets, tmp_path):
    cfg = _cfg(assets, "PDU", {"method.retain_eps": 0.0, "train.save_checkpoints": "true"})
    run_unlearning(cfg, FORGET, RETAIN, tmp_path / "pdu", assets["model"])
    rows = [json.loads(x) for x in (tmp_path / "pdu" / "train_log.jsonl").read_text().splitlines()]
    for step in (1, 2, 3, 4):
        saved = json.loads(
            (
                tmp_path / "pdu" / "checkpoints" / f"checkpoint-{step}" / "method_state.json"
            ).read_text()
        )
        assert saved["regularizer"]["eps"] == 0.0
        assert saved["regularizer"]["multiplier"] == pytest.approx(
            rows[step - 1]["regularizer_multiplier"]
        )


def test_rmu_trains_only_the_chosen_parameters(assets, tmp_path):
    pattern = r"model\.layers\.(0|1)\.mlp\.down_proj\.weight"
    cfg = _cfg(
        assets, "RMU+ED", {"method.layer": "model.layers.1", "method.trainable_params": pattern}
    )
    path = run_unlearning(cfg, FORGET, RETAIN, tmp_path / "rmu", assets["model"])
    before, after = _weights(assets["model"]), _weights(path)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"}
    saved = yaml.safe_load((tmp_path / "rmu" / "config.yaml").read_text())["_resolved"]["method"]
    assert saved["layer"] == "model.layers.1" and saved["trainable_params"] == pattern
    with pytest.raises(ValueError, match="set only one"):
        run_unlearning(
            _cfg(assets, "RMU+ED", {"method.trainable_params": pattern, "lora.enabled": "true"}),
            FORGET,
            RETAIN,
            tmp_path / "both",
            assets["model"],
        )


def test_altpo_without_alternates_is_a_one_line_error(assets, tmp_path):
    cfg = _cfg(assets, "AltPO", {"method.alternates": "null"})
    with pytest.raises(ValueError, match="pass method.alternates=<file>"):
        run_unlearning(cfg, FORGET, RETAIN, tmp_path / "alt", assets["model"])
    assert not (tmp_path / "alt").exists()
