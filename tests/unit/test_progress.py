"""The terminal progress: one compact loss line per logging step, a bar, no raw log dicts."""

from __future__ import annotations

import torch
from transformers import TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from unlearnkit.models.tiny import tiny_model
from unlearnkit.train.progress import LossLineProgress, loss_line, summary_line
from unlearnkit.train.trainer import UnlearnTrainer


def test_loss_line_lists_the_total_then_each_part() -> None:
    logs = {
        "loss": 2.3104,
        "grad_norm": 10.4,
        "learning_rate": 1e-4,
        "loss_forget": 1.2,
        "loss_regularizer": 1.1104,
        "epoch": 1.5,
    }
    assert loss_line(3, 6, logs) == "step 3/6  loss 2.310  forget 1.200  regularizer 1.110"
    assert loss_line(3, 0, {"loss": 1e-5}) == "step 3  loss 1.00e-05"
    assert loss_line(3, 6, {"train_runtime": 31.2, "train_loss": 2.0}) is None
    assert summary_line(6, {"train_runtime": 31.2, "train_loss": 2.0}) == (
        "trained 6 steps in 31 s (mean loss 2.000)"
    )
    assert summary_line(1, {"train_runtime": 0.4}) == "trained 1 step in 0 s"
    assert summary_line(6, {"loss": 1.0}) is None


class _Loss:
    name = "GA"

    def compute(self, model, batch, ref_model):
        out = model(input_ids=batch["input_ids"], labels=batch["input_ids"])
        return out.loss, {"forget": out.loss.detach() * 0.5, "regularizer": out.loss.detach()}


class _Data(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.arange(1, 9) + i}


def test_trainer_prints_compact_lines_not_log_dicts(tmp_path, capsys) -> None:
    model, _ = tiny_model(seed=0)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=False,  # as in our training_arguments
    )
    trainer = UnlearnTrainer(model=model, args=args, train_dataset=_Data(), loss_fn=_Loss())
    kinds = [type(cb) for cb in trainer.callback_handler.callbacks]
    assert LossLineProgress in kinds
    assert ProgressCallback not in kinds and PrinterCallback not in kinds
    trainer.train()
    captured = capsys.readouterr()
    text = captured.out + captured.err
    lines = [ln for ln in text.splitlines() if ln.startswith("step ")]
    assert [ln.split("  loss")[0] for ln in lines] == ["step 1/2", "step 2/2"]
    assert all("  forget " in ln and "  regularizer " in ln for ln in lines)
    assert "trained 2 steps in" in text
    assert "{'loss'" not in text and "'grad_norm'" not in text  # no raw dictionaries
    assert "unlearning GA" in captured.err  # the bar, labelled
