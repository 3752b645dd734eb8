"""Which source of a setting wins, for both benchmarks (TOFU layout and real-world).

The order (README "Settings"): built-in defaults < the --config YAML file < flags < dotted
overrides (anywhere on the line) < the profile's rules keyed on the benchmark < the method's
defaults; a key the user set (YAML, flag or override; not to null) is never changed by the last
two. Each test pits two neighbouring sources against each other on the same key, so it fails if
their order flips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearnkit.cli import parse_args
from unlearnkit.commands._config import config_from_args
from unlearnkit.config import RunConfig

BENCHMARKS = ["tofu", "real_world"]
# data.max_length under the paper profile, per benchmark (the paper's forget.py: 500; its
# real_world_unlearn.py: 300); the built-in default is 512.
PAPER_MAX_LENGTH = {"tofu": 500, "real_world": 300}


def _cfg(*argv: str) -> RunConfig:
    return config_from_args(parse_args(["unlearn", *argv]))


def _yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_default_then_yaml(bench: str, tmp_path: Path) -> None:
    assert _cfg("--benchmark", bench).train.epochs == RunConfig().train.epochs == 5.0
    path = _yaml(tmp_path, f"data: {{benchmark: {bench}}}\ntrain: {{epochs: 2}}\n")
    cfg = _cfg("--config", path)
    assert cfg.train.epochs == 2.0 and cfg.data.benchmark == bench


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_yaml_then_flag_then_override(bench: str, tmp_path: Path) -> None:
    path = _yaml(tmp_path, f"data: {{benchmark: {bench}}}\nmethod: {{name: NPO+GD}}\n")
    assert _cfg("--config", path).method.name == "NPO+GD"
    assert _cfg("--config", path, "--method", "GA+GD").method.name == "GA+GD"  # flag > YAML
    # override > flag, wherever the override stands on the line
    for argv in (
        ["--config", path, "--method", "GA+GD", "method.name=IDK+AP"],
        ["method.name=IDK+AP", "--config", path, "--method", "GA+GD"],
        ["--config", path, "method.name=IDK+AP", "--method", "GA+GD"],
    ):
        assert _cfg(*argv).method.name == "IDK+AP", argv
    # between overrides, the last on the line wins
    last = _cfg("method.beta=0.3", "--benchmark", bench, "--method", "NPO+GD", "method.beta=0.2")
    assert last.method.beta == 0.2


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_profile_fills_what_the_user_left_unset(bench: str, tmp_path: Path) -> None:
    assert _cfg("--benchmark", bench).data.max_length == 512  # default profile: built-in
    paper = _cfg("--benchmark", bench, "--profile", "paper")
    assert paper.data.max_length == PAPER_MAX_LENGTH[bench]  # profile > default
    # every source the user writes wins over the profile
    path = _yaml(tmp_path, f"profile: paper\ndata: {{benchmark: {bench}, max_length: 128}}\n")
    assert _cfg("--config", path).data.max_length == 128  # YAML > profile
    assert _cfg("--config", path, "data.max_length=64").data.max_length == 64  # override
    assert (
        _cfg("--benchmark", bench, "--profile", "paper", "data.max_length=64").data.max_length == 64
    )
    # the profile itself comes from any source; a later source chooses it
    path = _yaml(tmp_path, f"profile: paper\ndata: {{benchmark: {bench}}}\n")
    assert _cfg("--config", path, "--profile", "default").data.max_length == 512
    assert _cfg("--config", path, "profile=default").data.max_length == 512


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_profile_rules_follow_the_benchmark_and_method(bench: str) -> None:
    me = _cfg("--benchmark", bench, "--profile", "paper", "--method", "ME+GD")
    ga = _cfg("--benchmark", bench, "--profile", "paper", "--method", "GA+GD")
    if bench == "real_world":  # P:scripts/real_world/me_gd.sh
        assert (me.train.learning_rate, me.method.forget_coeff) == (5e-6, 0.5)
    else:  # TOFU's script: the method's own forget_coeff (left null, 0.1 for ME+GD)
        assert (me.train.learning_rate, me.method.forget_coeff) == (1e-5, None)
    assert (ga.train.learning_rate, ga.method.forget_coeff) == (1e-5, None)


@pytest.mark.parametrize("bench", BENCHMARKS)
@pytest.mark.parametrize("profile", ["default", "paper"])
def test_method_default_fills_what_user_and_profile_left(bench: str, profile: str) -> None:
    base = ["--benchmark", bench, "--profile", profile]
    assert _cfg(*base, "--method", "UNDIAL").train.learning_rate == 1e-4  # UNDIAL's paper rate
    assert _cfg(*base, "--method", "GA+GD").train.learning_rate == 1e-5
    # the user's rate wins over the method's, from every source
    assert _cfg(*base, "--method", "UNDIAL", "train.learning_rate=2e-5").train.learning_rate == 2e-5


def test_method_default_wins_over_a_profile_rule_for_every_method(monkeypatch) -> None:
    """A profile rule for every method yields to a method's own default; a rule written for
    that method is the method's default under the profile, so it stands."""
    import unlearnkit.profiles as profiles

    rules = dict(profiles.RULE_TABLES["paper"])
    rules[("real_world", None, None)] = {
        **rules[("real_world", None, None)],
        "train.learning_rate": 3e-6,
    }
    monkeypatch.setitem(profiles.RULE_TABLES, "paper", rules)
    base = ["--benchmark", "real_world", "--profile", "paper"]
    assert _cfg(*base, "--method", "GA+GD").train.learning_rate == 3e-6  # the profile's rule
    assert _cfg(*base, "--method", "UNDIAL").train.learning_rate == 1e-4  # method > profile
    rules[("real_world", None, "UNDIAL")] = {"train.learning_rate": 2e-6}
    assert _cfg(*base, "--method", "UNDIAL").train.learning_rate == 2e-6  # written for UNDIAL
    assert _cfg(*base, "--method", "UNDIAL", "train.learning_rate=1e-5").train.learning_rate == 1e-5


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_null_leaves_the_key_to_the_profile_and_method(bench: str, tmp_path: Path) -> None:
    path = _yaml(
        tmp_path,
        f"profile: paper\ndata: {{benchmark: {bench}}}\n"
        "method: {name: ME+GD, forget_coeff: null}\n",
    )
    expected = 0.5 if bench == "real_world" else None  # None: the method's own 0.1 when built
    assert _cfg("--config", path).method.forget_coeff == expected
    assert _cfg("--config", path, "method.forget_coeff=0.3").method.forget_coeff == 0.3
    assert (
        _cfg(
            "--config", path, "method.forget_coeff=0.3", "method.forget_coeff=null"
        ).method.forget_coeff
        == expected
    )


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_each_value_names_its_source(bench: str, tmp_path: Path) -> None:
    from unlearnkit.settings import sources

    path = _yaml(tmp_path, f"data: {{benchmark: {bench}}}\ntrain: {{epochs: 2, seed: 1}}\n")
    argv = ["--config", path, "--profile", "paper", "--method", "UNDIAL", "train.seed=3"]
    cfg = _cfg(*argv)
    src = sources(cfg)
    assert src["data.benchmark"] == src["train.epochs"] == f"yaml:{path}"
    assert (src["profile"], src["method.name"]) == ("flag", "flag")
    assert (cfg.train.seed, src["train.seed"]) == (3, "override")
    assert (cfg.data.max_length, src["data.max_length"]) == (PAPER_MAX_LENGTH[bench], "profile")
    assert (cfg.train.learning_rate, src["train.learning_rate"]) == (1e-4, "method")
    assert (cfg.train.weight_decay, src["train.weight_decay"]) == (0.01, "default")
    assert set(src.values()) == {f"yaml:{path}", "flag", "override", "profile", "method", "default"}


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_sweep_grid_points_resolve_afresh_with_the_sweeps_sources(
    bench: str, tmp_path: Path
) -> None:
    from unlearnkit.scenarios.sweep import expand_sweep
    from unlearnkit.settings import sources

    scenario = "real_world" if bench == "real_world" else "fictitious"
    path = _yaml(
        tmp_path,
        f"profile: paper\nscenario: sweep\ndata: {{benchmark: {bench}}}\n"
        f"sweep: {{scenario: {scenario}, methods: [ME+GD, UNDIAL, GA+GD]}}\n",
    )
    me, undial, ga = expand_sweep(_cfg("--config", path))
    rw = bench == "real_world"
    assert me.train.learning_rate == (5e-6 if rw else 1e-5)  # the profile's rule for ME+GD
    assert me.method.forget_coeff == (0.5 if rw else None)
    assert (undial.train.learning_rate, ga.train.learning_rate) == (1e-4, 1e-5)
    assert sources(me)["method.name"] == f"yaml:{path}"  # from sweep.methods
    assert sources(undial)["train.learning_rate"] == "method"
    assert sources(ga)["train.learning_rate"] == "default"
    assert sources(me)["train.learning_rate"] == ("profile" if rw else "default")
    # a rate the user set applies to every grid point, UNDIAL's too
    pinned = expand_sweep(_cfg("--config", path, "train.learning_rate=2e-6"))
    assert [r.train.learning_rate for r in pinned] == [2e-6] * 3


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_included_yaml_is_overridden_by_the_including_file(bench: str, tmp_path: Path) -> None:
    from unlearnkit.settings import sources

    (tmp_path / "shared").mkdir()
    base = tmp_path / "shared" / "base.yaml"
    base.write_text(
        f"profile: paper\ndata: {{benchmark: {bench}, max_length: 128}}\n"
        "train: {epochs: 2, seed: 7}\nmethod: {name: NPO+GD, beta: 0.3}\n"
    )
    top = tmp_path / "exp.yaml"
    top.write_text("include: shared/base.yaml\ntrain: {epochs: 3}\nmethod: {beta: 0.2}\n")
    cfg = _cfg("--config", str(top))
    src = sources(cfg)
    assert (cfg.train.epochs, src["train.epochs"]) == (3.0, f"yaml:{top}")  # including file wins
    assert (cfg.train.seed, src["train.seed"]) == (7, f"yaml:{base}")  # the rest is kept
    assert (cfg.method.name, cfg.method.beta) == ("NPO+GD", 0.2)
    # the included file's keys are the user's: they win over the profile
    assert (cfg.data.max_length, src["data.max_length"]) == (128, f"yaml:{base}")
    assert cfg.data.benchmark == bench and cfg.profile == "paper"
    # flags and overrides still win over both files
    assert _cfg("--config", str(top), "--method", "NPO+KL").method.name == "NPO+KL"
    assert _cfg("--config", str(top), "train.epochs=1").train.epochs == 1.0
    # several includes apply in order, the later over the earlier
    (tmp_path / "b2.yaml").write_text("train: {seed: 9}\n")
    top.write_text("include: [shared/base.yaml, b2.yaml]\n")
    assert _cfg("--config", str(top)).train.seed == 9


def test_include_errors_name_the_file(tmp_path: Path) -> None:
    from unlearnkit.config import ConfigError

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("include: b.yaml\n")
    b.write_text("include: a.yaml\n")
    with pytest.raises(ConfigError, match="include cycle"):
        _cfg("--config", str(a))
    b.write_text("train:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"b\.yaml: line 2: train\.epochs: expected a number"):
        _cfg("--config", str(a))
    a.write_text("include: [missing.yaml]\n")
    with pytest.raises(ConfigError, match=r"config file not found: .*missing\.yaml \(included by"):
        _cfg("--config", str(a))
    a.write_text("include: {x: 1}\n")
    with pytest.raises(ConfigError, match="'include' must be a file name or a list"):
        _cfg("--config", str(a))
