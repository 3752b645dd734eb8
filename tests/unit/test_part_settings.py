"""Each part declares its settings (type, default, help, choices) and checks them itself; a
setting the user sets that none of the run's methods declares is refused when settings load."""

from __future__ import annotations

import pytest

from unlearnkit.config import ConfigError
from unlearnkit.methods import build_method
from unlearnkit.methods.base import Setting
from unlearnkit.methods.compose import part_settings
from unlearnkit.settings import load_config


def test_a_choice_setting_lists_its_choices_and_checks_them() -> None:
    kl_positions = Setting("counted", "positions", type="choice", choices=("counted", "all"))
    assert kl_positions.check("kl_positions", "all") == "all"
    with pytest.raises(
        ValueError, match="unknown method.kl_positions 'every'; choose from counted, all"
    ):
        kl_positions.check("kl_positions", "every")
    with pytest.raises(ValueError, match="lists its choices"):
        Setting("a", type="choice")
    with pytest.raises(ValueError, match="lists its choices"):
        Setting(1.0, choices=("a",))
    with pytest.raises(ValueError, match="method.me_epsilon must be >= 0"):
        Setting(0.0, minimum=0.0).check("me_epsilon", -1e-3)


def test_kl_and_me_settings_are_declared_by_their_parts() -> None:
    owners = part_settings()
    assert owners["kl_positions"] == ["KL"] and owners["me_epsilon"] == ["ME"]
    method = build_method(load_config(None, ["method.name=ME+KL"]).method)
    settings = {t.part.name: t.settings for t in method.terms}
    assert settings == {"ME": {"me_epsilon": 0.0}, "KL": {"kl_positions": "counted"}}
    paper = build_method(load_config(None, ["method.name=ME+KL", "profile=paper"]).method)
    assert {t.part.name: t.settings for t in paper.terms} == {
        "ME": {"me_epsilon": 1e-12}, "KL": {"kl_positions": "all"}
    }  # fmt: skip
    assert paper.reads_all_positions == ("retain",) and method.reads_all_positions == ()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["method.kl_positions=every", "method.name=GA+KL"], "choose from counted, all"),
        (["method.me_epsilon=-1"], "method.me_epsilon must be >= 0"),
        (["method.name=NPO+GD", "method.beta=0"], "method.beta must be > 0"),
        (["method.name=ME+GD", "method.beta=0.2"], "method.beta is a setting of"),
        (["method.name=GA+GD", "method.kl_positions=all"], "not of GA\\+GD: it would change"),
    ],
)
def test_bad_or_useless_method_settings_fail_when_settings_load(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_the_paper_profile_sets_part_settings_only_where_a_part_has_them() -> None:
    # the profile (not the user) sets kl_positions and me_epsilon for every method
    cfg = load_config(None, ["profile=paper", "method.name=GA+GD"])
    assert cfg.method.kl_positions == "all"


def test_a_sweep_accepts_a_setting_that_one_of_its_methods_declares(tmp_path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("scenario: sweep\nsweep: {methods: [ME+GD, NPO+GD]}\nmethod: {beta: 0.2}\n")
    assert load_config(path).method.beta == 0.2
    path.write_text("scenario: sweep\nsweep: {methods: [ME+GD, GA+GD]}\nmethod: {beta: 0.2}\n")
    with pytest.raises(ConfigError, match="not of ME\\+GD, GA\\+GD"):
        load_config(path)


def test_a_new_part_setting_is_declared_by_its_part_alone(tmp_path) -> None:
    """A part defined here (no config.py field, no other file) gets its ``method.<setting>``:
    typed from an override's text, shown by --print-config, saved flat in config.yaml, read
    back, and refused for a method that lacks it."""
    import yaml

    from unlearnkit.config import PART_SETTING_NAMES, RunConfig, from_dict, save_config, to_dict
    from unlearnkit.losses import sequence_nll
    from unlearnkit.methods.base import Part
    from unlearnkit.registry import FORGET_OBJECTIVES
    from unlearnkit.settings import format_settings

    part = Part(
        name="TiltGA",
        fn=lambda ctx: (
            -ctx.param("tilt") * sequence_nll(ctx.logits("forget"), ctx.labels("forget")).mean()
        ),
        views=("forget",),
        description="test part",
        settings={"tilt": Setting(2.0, "weight of the ascent", positive=True)},
    )
    FORGET_OBJECTIVES.add(part.name, part, description=part.listing)
    try:
        assert "tilt" in PART_SETTING_NAMES
        cfg = load_config(None, ["method.name=TiltGA+GD", "method.tilt=0.5"])
        assert cfg.method.tilt == 0.5 and isinstance(cfg.method.tilt, float)
        assert [t.settings for t in build_method(cfg.method).terms][0] == {"tilt": 0.5}
        assert "method.tilt: 0.5" in format_settings(cfg) and "# override" in format_settings(cfg)
        assert to_dict(cfg.method)["tilt"] == 0.5
        saved = yaml.safe_load(save_config(cfg, tmp_path / "config.yaml").read_text())
        assert saved["method"]["tilt"] == 0.5 and "settings" not in saved["method"]
        assert from_dict(RunConfig, saved) == cfg
        default = load_config(None, ["method.name=TiltGA+GD"])
        assert default.method.tilt is None and "method.tilt: 2.0" in format_settings(default)
        with pytest.raises(ConfigError, match="method.tilt is a setting of TiltGA"):
            load_config(None, ["method.name=GA+GD", "method.tilt=0.5"])
        with pytest.raises(ConfigError, match="method.tilt must be > 0"):
            load_config(None, ["method.name=TiltGA+GD", "method.tilt=-1"])
    finally:
        FORGET_OBJECTIVES.remove(part.name)
        PART_SETTING_NAMES.discard("tilt")
    with pytest.raises(ConfigError, match="unknown config key 'method.tilt'"):
        load_config(None, ["method.tilt=0.5"])
