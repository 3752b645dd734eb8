"""One precedence for settings in every command that runs (finetune, unlearn, eval, run), and
every name checked before any data is opened or model loaded."""

from __future__ import annotations

import json

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
    assert _cfg([command, "method.name=NPO+GD", "method.beta=2e-1"]).method.beta == 0.2
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


def test_unlearn_on_real_world_data_takes_the_papers_real_world_settings(
    tmp_path, monkeypatch, capsys
):
    """`unlearn unlearn --benchmark real_world --profile paper --method ME+GD` trains with the
    paper's real-world script settings (lr 5e-6, 300 tokens, forget_coeff 0.5), and the run's
    saved config.yaml records them."""
    import yaml

    from unlearnkit.models.tiny import save_tiny_model

    data = tmp_path / "data"
    (data / "real_world").mkdir(parents=True)
    people = [{"task_id": 1, "question": f"Who is P{i}?", "answer": f"P{i} is a singer."}
              for i in range(4)]  # fmt: skip
    neighbours = [{"question": f"Who is N{i}?", "answer": f"N{i} is a painter."} for i in range(4)]
    for name, rows in (("forget", people), ("neighbor", neighbours)):
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (data / "real_world" / f"{name}.json").write_text(text)
    monkeypatch.setenv("UNLEARNKIT_DATA", str(data))
    model = tmp_path / "tiny"
    save_tiny_model(model, seed=0)
    argv = ["unlearn", "--benchmark", "real_world", "--profile", "paper", "--method", "ME+GD",
            "--model", str(model), "--out", str(tmp_path / "run")]  # fmt: skip
    cfg = _cfg(argv)
    assert (cfg.train.learning_rate, cfg.data.max_length, cfg.method.forget_coeff) == (
        5e-6,
        300,
        0.5,
    )
    small = ["train.batch_size=2", "train.per_device_batch_size=2", "train.max_steps=1"]
    assert main([*argv, *small]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["learning_rate"] == 5e-6 and saved["data"]["max_length"] == 300
    assert saved["method"]["forget_coeff"] == 0.5 and saved["profile"] == "paper"
    assert saved["_resolved"]["method"]["terms"]["forget"] == {"part": "ME", "coeff": 0.5}
    log = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1]


def _printed(text: str) -> dict[str, tuple[str, str]]:
    """``key: value  # source`` lines -> {key: (value, source)}."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        entry, source = line.rsplit("  # ", 1)
        key, value = entry.split(": ", 1)
        out[key] = (value.strip(), source)
    return out


@pytest.fixture
def nothing_loads(monkeypatch, tmp_path):
    """Opening data, loading or pulling a model, generating data or training fails the test."""
    import unlearnkit.data.splits as splits
    import unlearnkit.data.synth as synth
    import unlearnkit.models.loading as loading
    import unlearnkit.models.packaged as packaged
    import unlearnkit.scenarios as scenarios

    def forbidden(*args, **kwargs):
        raise AssertionError("--print-config opened data, loaded a model or ran something")

    for module, name in ((splits, "open_benchmark"), (loading, "load_model"),
                         (packaged, "pull"), (synth, "generate_synthetic"),
                         (scenarios, "run_scenario")):  # fmt: skip
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setenv("UNLEARNKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("command", COMMANDS)
def test_print_config_names_each_source_and_loads_nothing(
    command, yaml_config, nothing_loads, tmp_path, capsys
):
    argv = [command, "--config", str(yaml_config), "--benchmark", "real_world",
            "--profile", "paper", "train.epochs=2", "--print-config"]  # fmt: skip
    assert main(argv) == 0
    shown = _printed(capsys.readouterr().out)
    assert shown["model.name"] == ("from-yaml/model", f"yaml:{yaml_config}")
    assert shown["data.benchmark"] == ("real_world", "flag")
    assert shown["profile"] == ("paper", "flag")
    assert shown["train.epochs"] == ("2.0", "override")
    assert shown["data.max_length"] == ("300", "profile")  # the paper's real-world truncation
    assert shown["train.weight_decay"] == ("0.01", "default")
    assert shown["method.beta"] == ("0.3", f"yaml:{yaml_config}")
    assert not (tmp_path / "runs").exists()


def test_print_config_shows_method_defaults(nothing_loads, capsys):
    assert main(["unlearn", "--method", "UNDIAL", "--print-config"]) == 0
    shown = _printed(capsys.readouterr().out)
    assert shown["train.learning_rate"] == ("0.0001", "method")
    assert shown["method.beta"] == ("10.0", "method (config.yaml: null)")  # UNDIAL's beta
    assert main(["unlearn", "--method", "ME+GD", "--print-config"]) == 0
    shown = _printed(capsys.readouterr().out)
    assert shown["method.forget_coeff"] == ("0.1", "method (config.yaml: null)")
    assert shown["train.learning_rate"] == ("1.0e-05", "default")
    # the evaluation's real-world paper rule (every item) is shown where it applies
    assert main(["eval", "--benchmark", "real_world", "--profile", "paper", "--print-config"]) == 0
    assert _printed(capsys.readouterr().out)["eval.ds_size"] == (
        "null",
        "profile (config.yaml: 300)",
    )


def test_demo_prints_each_runs_settings_and_loads_nothing(nothing_loads, capsys):
    assert main(["demo", "--quick", "--model", "my-model", "--print-config"]) == 0
    text = capsys.readouterr().out
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert len(blocks) == 4  # ME+GD, IDK+AP, GA+GD, IDK+GD
    first = _printed(blocks[0])
    assert first["method.name"] == ("ME+GD", "demo") and first["model.name"] == ("my-model", "flag")
    assert first["train.learning_rate"] == ("0.0003", "demo")
    assert first["method.forget_coeff"] == ("0.1", "method (config.yaml: null)")
    assert _printed(blocks[1])["method.name"] == ("IDK+AP", "demo")


def test_print_config_of_a_sweep_shows_each_grid_point(nothing_loads, capsys):
    argv = ["run", "--scenario", "sweep", "--profile", "paper", "--benchmark", "real_world",
            "sweep.scenario=real_world", "sweep.methods=[ME+GD, UNDIAL]",
            "--print-config"]  # fmt: skip
    assert main(argv) == 0
    blocks = capsys.readouterr().out.split("\n\n")
    assert len(blocks) == 3 and "sweep run 2/2 (UNDIAL" in blocks[2]
    me, undial = _printed(blocks[1]), _printed(blocks[2])
    assert me["train.learning_rate"] == ("5.0e-06", "profile")
    assert me["method.name"] == ("ME+GD", "override")  # from sweep.methods
    assert undial["train.learning_rate"] == ("0.0001", "method")


# Every command of the CLI, with the least it needs to parse (a new command must be listed).
EVERY_COMMAND = {
    "data": ["data", "synth", "--out", "bench", "--authors", "8"],
    "models": ["models", "list"],
    "finetune": ["finetune"],
    "unlearn": ["unlearn"],
    "eval": ["eval"],
    "run": ["run"],
    "report": ["report", "runs", "--samples", "2"],
    "claims": ["claims", "runs"],
    "ls": ["ls", "methods"],
    "demo": ["demo"],
}


def test_every_command_is_listed_here():
    from unlearnkit.cli import COMMANDS as ALL

    assert sorted(EVERY_COMMAND) == sorted(ALL)


@pytest.mark.parametrize("command", sorted(EVERY_COMMAND))
def test_every_command_prints_its_resolved_settings_and_runs_nothing(
    command, nothing_loads, tmp_path, capsys
):
    assert main([*EVERY_COMMAND[command], "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "resolved" in out.splitlines()[0] or command == "demo"  # the demo: one block a run
    shown = _printed(out)
    assert shown and all(source for _, source in shown.values())
    if command in ("data", "report"):  # a flag given is told apart from a default
        flag, default = ("authors", "questions") if command == "data" else ("samples", "full")
        assert shown[flag][1] == "flag" and shown[default][1] == "default"
    assert not list(tmp_path.iterdir())  # nothing written
