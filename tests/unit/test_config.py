import pytest

import unlearnkit.methods  # noqa: F401  (the parts declare the method.* settings)
from unlearnkit.config import ConfigError, RunConfig, apply_overrides, save_config
from unlearnkit.settings import load_config


def test_defaults_follow_the_paper():
    cfg = RunConfig()
    assert cfg.train.learning_rate == 1e-5
    assert cfg.train.epochs == 5
    assert cfg.train.batch_size == 32
    assert cfg.train.weight_decay == 0.01
    assert cfg.method.beta is None  # each part's own paper default (NPO 0.1, SimNPO 4.5, ...)


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("method:\n  name: NPO+GD\n  beta: 0.3\ntrain:\n  epochs: 2\n")
    cfg = load_config(
        p, ["method.beta=0.2", "train.report_to=tensorboard,wandb", "eval.ds_size=null"]
    )
    assert cfg.method.name == "NPO+GD"
    assert cfg.method.beta == 0.2
    assert cfg.train.epochs == 2.0
    assert cfg.train.report_to == ["tensorboard", "wandb"]
    assert cfg.eval.ds_size is None


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'method.bta'.*beta"):
        apply_overrides(RunConfig(), ["method.bta=1"])
    p = tmp_path / "c.yaml"
    p.write_text("trian: {}\n")
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        load_config(p)


@pytest.mark.parametrize(
    "override, message",
    [
        ("method.beta=-1", "method.beta"),
        ("method.forget_coeff=.nan", "method.forget_coeff"),
        ("method.regularization_coeff=-0.5", "regularization_coeff"),
        ("train.per_device_batch_size=5", "multiple"),
        ("train.learning_rate=abc", "expected a number"),
        ("lora.enabled=maybe", "true/false"),
        ("scenario=dream", "unknown scenario"),
        ("eval.prompt_cache_mib=-1", "prompt_cache_mib must be >= 0"),
        ("eval.nli_batch_size=0", "nli_batch_size must be > 0"),
    ],
)
def test_invalid_values_are_rejected(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_save_config_roundtrip(tmp_path):
    cfg = load_config(None, ["method.name=IDK+AP", "train.seed=3"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml", extra={"template": "x"})
    again = load_config(None, None)
    import yaml

    data = yaml.safe_load(path.read_text())
    assert data["_resolved"] == {"template": "x"}
    data.pop("_resolved")
    from unlearnkit.config import from_dict

    restored = from_dict(RunConfig, data)
    assert restored == cfg
    assert restored != again
    assert restored.method.beta is None
