"""The evaluation's CPU thread choice (sharing the machine)."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.config import ConfigError, EvalConfig
from unlearnkit.eval import threads as T
from unlearnkit.settings import load_config


def test_auto_threads_hand_computed() -> None:
    # idle 8-core machine, this process running (load 1): every physical core
    assert T.auto_threads(current=16, physical=8, usable=16, load1=1.0) == 8
    # one other busy 4-thread job (load 5): the 4 free cores
    assert T.auto_threads(current=16, physical=8, usable=16, load1=5.0) == 4
    # an overloaded machine still gets one thread; an explicit lower setting is never raised
    assert T.auto_threads(current=16, physical=2, usable=2, load1=10.5) == 1
    assert T.auto_threads(current=2, physical=8, usable=8, load1=0.0) == 2
    assert T.auto_threads(current=8, physical=8, usable=3, load1=0.0) == 3  # affinity mask


def test_choose_threads_and_the_decorator_restore_the_setting(monkeypatch) -> None:
    assert T.choose_threads(3) == 3
    with pytest.raises(ValueError, match="eval.threads"):
        T.choose_threads(0)
    seen = []

    @T.with_eval_threads
    def job(x: int, cfg: EvalConfig) -> int:
        seen.append(torch.get_num_threads())
        return x

    before = torch.get_num_threads()
    target = 2 if before != 2 else 3
    assert job(1, cfg=EvalConfig(threads=target)) == 1
    assert seen == [target] and torch.get_num_threads() == before
    monkeypatch.setattr(T, "choose_threads", lambda requested: 1)
    job(2, EvalConfig())
    assert seen[-1] == 1 and torch.get_num_threads() == before


def test_eval_threads_config_is_validated() -> None:
    assert load_config(None, ["eval.threads=2"]).eval.threads == 2
    with pytest.raises(ConfigError, match="eval.threads"):
        load_config(None, ["eval.threads=0"])
