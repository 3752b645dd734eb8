"""One precedence for settings in every command that runs (finetune, unlearn, eval, run), and
every name checked before any data is opened or model loaded."""

from __future__ import annotations

import pytest

from unlearnkit.cli import build_parser, main
from unlearnkit.commands._config import config_from_args

COMMANDS = ["finetune", "unlearn", "eval", "run"]


def _cfg(argv: list[str]):
    return config_from_args(build_parser().parse_args(argv))


@pytest.fixture
def yaml_config(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "profile: default\n"
        "model:\n  name: from-yaml/model\n"
        "data:\n  split: forget05\n"
        "method:\n  name: NPO+GD\n  beta: 0.3\n"
    )
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_defaults_then_yaml_then_flags_then_overrides(command, yaml_config):
    yaml_only = _cfg([command, "--config", str(yaml_config)])
    assert yaml_only.data.split == "forget05" and yaml_only.model.name == "from-yaml/model"
    assert yaml_only.method.beta == 0.3 and yaml_only.train.epochs == 5.0  # default kept
    flags = [command, "--config", str(yaml_config), "--split", "forget10", "--profile", "paper"]
    flagged = _cfg(flags)
    assert flagged.data.split == "forget10" and flagged.profile == "paper"  # flag > YAML
    assert flagged.model.name == "from-yaml/model"
    overridden = _cfg([*flags, "data.split=forget01", "profile=default"])
    assert overridden.data.split == "forget01" and overridden.profile == "default"  # dotted > flag


@pytest.mark.parametrize("command", COMMANDS)
def test_flag_and_override_values_keep_their_type(command):
    # YAML 1.1 reads yes/no/on/off as booleans; a model named 'yes' must stay 'yes'.
    assert _cfg([command, "--model", "yes"]).model.name == "yes"
    assert _cfg([command, "model.name=no"]).model.name == "no"
    assert _cfg([command, "model.name=007"]).model.name == "007"
    assert _cfg([command, "lora.enabled=yes"]).lora.enabled is True  # a bool field is a bool
    assert _cfg([command, "method.beta=2e-1"]).method.beta == 0.2
    assert _cfg([command, "eval.ds_size=null"]).eval.ds_size is None


def test_unknown_method_is_named_before_the_benchmark_is_opened(tmp_path, monkeypatch, capsys):
    # no shared data anywhere: the misspelt method is what the user must hear about
    monkeypatch.setenv("UNLEARNKIT_DATA", str(tmp_path / "empty"))
    code = main(["unlearn", "--method", "ME+XX", "--model", "x", "--benchmark", "tofu"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: unknown regularizer 'XX'; choose from AP, ED, GD, KL, PD")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["unlearn", "--method", "NPX"], "unknown method 'NPX'"),
        (["run", "--method", "GA+XX"], "unknown regularizer 'XX'"),
        (["finetune", "--split", "forget99"], "unknown split 'forget99'"),
        (["eval", "eval.splits=forget,retian"], "unknown evaluation split 'retian'"),
        (["unlearn", "data.prompt_preset=chatml"], "unknown data.prompt_preset 'chatml'"),
        (["eval", "--benchmark", "./no/such/folder"], "unknown benchmark './no/such/folder'"),
        (["run", "sweep.methods=[ME+GD, IDK+XY]"], "unknown regularizer 'XY'"),
        (["finetune", "train.epohcs=2"], "unknown config key 'train.epohcs'"),
        (["eval", "--task", "0"], "--task must be >= 1"),
    ],
)
def test_bad_names_fail_before_data_or_model(argv, message, tmp_path, monkeypatch, capsys):
    import unlearnkit.data.splits as splits
    import unlearnkit.models.loading as loading

    def forbidden(*args, **kwargs):
        raise AssertionError("data opened or model loaded before the names were checked")

    monkeypatch.setattr(splits, "open_benchmark", forbidden)
    monkeypatch.setattr(loading, "load_model", forbidden)
    monkeypatch.setenv("UNLEARNKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--model", str(tmp_path / "m")] if "--model" not in argv else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_profile_flag_is_offered_by_every_running_command(capsys):
    for command in COMMANDS:
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--profile", "paperz"])
        assert "invalid choice: 'paperz'" in capsys.readouterr().err
