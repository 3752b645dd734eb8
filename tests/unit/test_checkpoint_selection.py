"""Best-checkpoint selection (MUSE's rule) over per-epoch evaluations: scenarios/epoch_eval.py."""

from __future__ import annotations

import pytest

from unlearnkit.config import ConfigError, validate
from unlearnkit.scenarios.epoch_eval import RetainMatch
from unlearnkit.settings import load_config


def _summary(rouge: float) -> dict:
    return {"splits": {"forget": {"rouge_l": rouge}}}


def test_the_first_epoch_at_or_below_the_retain_models_value_is_selected() -> None:
    rule = RetainMatch("rouge_l", _summary(0.40))
    assert rule.add("epoch1", _summary(0.80)) is False
    assert rule.add("epoch2", _summary(0.40)) is True  # "at or below": equal counts
    assert rule.add("epoch3", _summary(0.10)) is False  # later, lower epochs do not replace it
    rec = rule.record(last=True)
    assert rec["selected"] == "epoch2" and rec["reached"] is True
    assert rec["per_epoch"] == {"epoch1": 0.80, "epoch2": 0.40, "epoch3": 0.10}
    assert rec["retain_model_value"] == 0.40 and rec["metric"] == "forget/rouge_l"


def test_without_a_match_the_last_epoch_is_selected_and_not_reached() -> None:
    rule = RetainMatch("rouge_l", _summary(0.20))
    for stage, v in (("epoch1", 0.9), ("epoch2", 0.5)):
        assert rule.add(stage, _summary(v)) is False
    assert rule.record()["selected"] is None  # training still going: nothing selected yet
    rec = rule.record(last=True)
    assert rec["selected"] == "epoch2" and rec["reached"] is False


def test_a_metric_the_retain_evaluation_lacks_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no forget-split value"):
        RetainMatch("probability", _summary(0.2))


def test_the_rule_needs_epoch_evaluations_and_a_retain_model() -> None:
    with pytest.raises(ConfigError, match="eval_every_epoch=true and target.retain_model=true"):
        validate(load_config(None, ["train.select_checkpoint=retain_match"]))
    with pytest.raises(ConfigError, match="unknown train.select_checkpoint 'best'"):
        validate(load_config(None, ["train.select_checkpoint=best"]))
    cfg = load_config(
        None,
        [
            "train.select_checkpoint=retain_match",
            "train.eval_every_epoch=true",
            "target.retain_model=true",
        ],
    )
    assert validate(cfg).train.select_checkpoint == "retain_match"
