"""Dataclass configuration: the single source of truth for every run.

A run's configuration is a tree of dataclasses: their types, defaults, the conversion of YAML
and override values to them (:func:`read_yaml_config`, :func:`set_values`,
:func:`apply_overrides`) and the checks (:func:`validate`). The settings are resolved from those
sources, the profile's rules and the method's defaults in one place, :mod:`unlearnkit.settings`
(``load_config``), which imports this module and never the reverse. Override values are text,
converted to the field's type (``model.name=yes`` stays the string ``yes``; YAML 1.1's
yes/no/on/off are booleans only where the field is one). The resolved configuration is written
beside every run's outputs (:func:`save_config`).

Defaults (the ``default`` profile) come from the paper (Yuan et al., ICLR 2025) and TOFU: lr
1e-5, 5 epochs, effective batch 32, AdamW weight decay 0.01, one warm-up epoch, beta 0.1. The
``paper`` profile changes the defaults that differ from the paper's code
(:mod:`unlearnkit.profiles`, ``docs/paper-differences.md``); keys set in the YAML file or by an
override always win.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from unlearnkit.registry import SCENARIOS

T = TypeVar("T")

# "default": unlearnkit's choices; "paper": the paper's code, number for number;
# "open-unlearning": open-unlearning's evaluator (src/eval.py), item by item.
PROFILES = ("default", "paper", "open-unlearning")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range.

    ``key`` is the dotted key at fault when there is one (a YAML file's error names its line).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass
class ModelConfig:
    name: str = "smollm2-135m"  # packaged alias, local folder or hub id
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 | float64 (exact comparisons)
    cache_dir: str | None = None  # converted packaged models; default ~/.cache/unlearnkit/models


# chat: the model's chat template; chat_conversation: the template over the whole conversation,
# the answer's end of turn labelled (open-unlearning's apply_chat_template: true); llama2/llama3:
# the paper's formats; plain: "Question: ...\nAnswer: " (unlearnkit.data.formatting).
# The scenarios unlearnkit ships (unlearnkit.scenarios); a scenario registered by a module
# imported before validation (unlearnkit.registry.SCENARIOS) is accepted too.
BUILT_IN_SCENARIOS = ("fictitious", "continual", "real_world", "sweep")
PROMPT_PRESETS = ("chat", "chat_conversation", "llama2", "llama3", "plain")


@dataclass
class DataConfig:
    benchmark: str = "tofu"  # tofu | real_world | synthetic | a folder in TOFU layout
    # forget01 | forget05 | forget10 (tofu/synthetic); ignored for real_world
    split: str = "forget01"
    task: int = 1
    refusals: str | None = None  # path to a refusal list (one per line); None = the project's own
    prompt_preset: str = "chat"  # one of PROMPT_PRESETS
    # None = no system message passed (a chat template may insert its own default)
    system_prompt: str | None = None
    max_length: int = 512  # truncation of training sequences (and the fixed length below)
    # How forget item i meets its retain item and refusals: "epoch" = retain side redrawn every
    # epoch (cyclic permutations); "index" = a generator seeded by i, the same every epoch
    # (the paper's code).
    pairing: str = "epoch"
    # Pad unmasked views (and KL's retain view) with EOS to max_length, padding labelled where
    # the view's labels are unmasked (the paper's code); False = dynamic padding, never counted.
    fixed_padding: bool = False
    # TOFU layout: the last N authors of retain90 become a holdout split (membership-inference
    # non-members); no fine-tuning or retain set then contains them. 0 = none.
    holdout_authors: int = 0


# The names of the settings that method parts and attacks declare next to their code
# (``unlearnkit.setting.Setting``), by section: ``method.beta``, ``attack.relearn_steps``. Each
# part or attack registers its names when it is defined, so this module knows them without
# importing the methods or the attacks; their values are typed and checked by the declarations.
DECLARED_SETTINGS: dict[str, set[str]] = {"method": set(), "attack": set()}
PART_SETTING_NAMES = DECLARED_SETTINGS["method"]


def declare_setting(section: str, name: str) -> None:
    """Make ``<section>.<name>`` a declared setting (called where a part or attack is defined)."""
    if name in _FIELDS_OF[section]:
        raise ValueError(f"{section}.{name} is a field of the {section} section, not a setting")
    DECLARED_SETTINGS[section].add(name)


class DeclaredSettings:
    """A config section whose fields are followed by declared settings, kept in its
    ``settings`` dict and read and written as attributes (``cfg.method.beta``; unset = None =
    the declaration's default). ``SECTION`` names it in dotted keys."""

    SECTION = ""
    settings: dict[str, Any]

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields
        if not name.startswith("_"):
            settings = self.__dict__.get("settings", {})
            if name in settings:
                return settings[name]
            if name in DECLARED_SETTINGS[self.SECTION]:
                return None
        raise AttributeError(f"{self.SECTION} has no setting '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIELDS_OF[self.SECTION] or name.startswith("_"):
            object.__setattr__(self, name, value)
        elif value is None:
            self.settings.pop(name, None)
        else:
            self.settings[name] = value

    def _set_declared(self, settings: dict[str, Any] | None, named: dict[str, Any]) -> None:
        object.__setattr__(self, "settings", {})
        for key, value in {**(settings or {}), **named}.items():
            setattr(self, key, value)


@dataclass(init=False)
class MethodConfig(DeclaredSettings):
    """The method and its method-level settings. Each part's own settings (``method.beta``,
    ``method.kl_positions`` ...) are not fields here: they live in :attr:`settings`, are read
    and written as attributes (``cfg.method.beta``; unset = None = the part's paper default),
    appear flat under ``method:`` in YAML and ``config.yaml``, and are typed and checked by the
    parts that declare them (``unlearn ls objectives``), so a new part setting touches only the
    part's own file."""

    name: str = "ME+GD"  # FORGET+REGULARIZER, FORGET alone, LLMU, or a recipe (IdkDPO, AltPO, PDU)
    forget_coeff: float | None = None  # None = paper default (0.1 for ME+GD, 1.0 otherwise)
    regularization_coeff: float = 1.0
    mask_question: bool | None = None  # None = paper default (False for ME+GD, True otherwise)
    fix_ref_model: bool = False  # continual: reference = original model, not previous task's
    mismatch_coeff: float = 1.0  # LLMU only: weight of the mismatched-answer NLL term
    trainable_params: str | None = None  # regex of the parameter names to train; None = all
    alternates: str | None = None  # AltPO: JSON lines {question, alternate} (or a list of them)
    # The parts' settings the user set (name -> value); a value set here applies to every part
    # of the method that has the setting.
    settings: dict[str, Any] = field(default_factory=dict)
    SECTION = "method"

    def __init__(
        self,
        name: str = "ME+GD",
        forget_coeff: float | None = None,
        regularization_coeff: float = 1.0,
        mask_question: bool | None = None,
        fix_ref_model: bool = False,
        mismatch_coeff: float = 1.0,
        trainable_params: str | None = None,
        alternates: str | None = None,
        settings: dict[str, Any] | None = None,
        **part_settings: Any,
    ) -> None:
        """The fields, then the parts' settings by name: ``MethodConfig("NPO+GD", beta=0.2)``."""
        self.name, self.forget_coeff = name, forget_coeff
        self.regularization_coeff, self.mask_question = regularization_coeff, mask_question
        self.fix_ref_model, self.mismatch_coeff = fix_ref_model, mismatch_coeff
        self.trainable_params, self.alternates = trainable_params, alternates
        self._set_declared(settings, part_settings)


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | None = None  # None = auto-detect linear projections


@dataclass
class TrainConfig:
    learning_rate: float = 1e-5
    epochs: float = 5.0
    batch_size: int = 32  # effective batch = per_device * processes * grad_accum
    per_device_batch_size: int = 4
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    seed: int = 0
    max_steps: int = -1  # >0 overrides epochs (tests, smoke runs)
    # "epochs": every epoch ends with a (possibly partial) step, warm-up warmup_epochs epochs;
    # "paper": floor(epochs * n / batch) full steps, one warm-up epoch only if an epoch has more
    # than one step (train/schedule.py)
    schedule: str = "epochs"
    save_checkpoints: bool = False  # keep checkpoints after the run (resume always uses them)
    checkpoint_every: int = 0  # steps; 0 = once per epoch
    eval_every_epoch: bool = False
    # Best-checkpoint selection over the per-epoch evaluations (scenarios/epoch_eval.py):
    # "none", or "retain_match" = MUSE's rule: the first epoch whose forget-split select_metric
    # is at or below the retain model's (its model is kept in <run>/selected/); else the last.
    select_checkpoint: str = "none"
    select_metric: str = "rouge_l"  # a forget-split metric that unlearning lowers
    logging_steps: int = 1
    report_to: list[str] = field(default_factory=list)  # e.g. ["tensorboard", "wandb"]
    mixed_precision: str = "auto"  # auto (bf16 where the accelerator has it) | no | bf16 | fp16
    gradient_checkpointing: bool = False
    # The Hugging Face Trainer default; 0 = no clipping (the paper's DeepSpeed config sets none)
    max_grad_norm: float = 1.0
    deepspeed: str | None = None  # path to a DeepSpeed JSON config (passed to the HF Trainer)
    fsdp: str = ""  # e.g. "full_shard auto_wrap" (passed to the HF Trainer)


@dataclass
class EvalConfig:
    ds_size: int | None = 300  # first N items per split (paper: 300)
    batch_size: int = 16  # teacher-forcing batch (its memory grows with the batch)
    # Greedy generation batch; None = auto: as many prompts as fit a key/value cache of
    # generation_cache_mib at their longest generation, at most 256 (SmolLM2-135M, fp32: 256;
    # a 7B model in bf16: about 30). Larger batches amortise each decode step's pass over the
    # weights: on SmolLM2 (CPU) a step costs 8.2 ms per row at 16 rows, 4.8 at 64, 3.4 at 128.
    generation_batch_size: int | None = None
    generation_cache_mib: int = 4096
    # NLI (entailment) batch; None = 4 on CPU, eval.batch_size on an accelerator. On this 2-core
    # CPU a BERT-base classifier labelled 122 pairs in 41 s at 4, 49 s at 16 and 71 s at 64.
    nli_batch_size: int | None = None
    # Memory for keeping generation's prompt key/value states so teacher forcing does not run
    # the prompts again (SmolLM2-135M: 46 KiB per prompt token); 0 turns the reuse off.
    prompt_cache_mib: int = 1024
    max_new_tokens: int = 200  # paper: max_length 200 including the prompt
    generation_max_length: int = 200
    embedding_model: str = "all-minilm-l6-v2"  # alias of the packaged model, folder or hub id
    nli_model: str | None = "sileod/deberta-v3-base-tasksource-nli"
    retain_eval: str | None = None  # saved evaluation of a retain model (Forget Quality)
    splits: list[str] | None = None  # None = every split of the benchmark
    use_cache: bool = True
    # GradNorm attack (with a holdout split): one backward pass per forget and holdout item, the
    # costliest of the privacy metrics; false leaves mia_gradnorm missing with the reason.
    mia_gradnorm: bool = True
    # CPU threads of the evaluation; None = automatic: at most the free physical cores, so a
    # concurrent job costs about 2x rather than collapsing both (eval/threads.py).
    threads: int | None = None


@dataclass(init=False)
class AttackConfig(DeclaredSettings):
    """Attacks on the unlearned model (``unlearn ls attacks``; :mod:`unlearnkit.attacks`).

    Each attack works on a copy of the model (weights) or of the questions (prompts) and
    re-evaluates; the recovery of each forget-set metric is reported against the model before
    unlearning and the retain model (docs/attacks.md). Each attack's own settings
    (``attack.relearn_steps``, ``attack.hint_tokens`` ...) are declared by the attack
    (``register_attack(settings=...)``) and kept in :attr:`settings`, as a method's parts' are.
    """

    names: list[str] = field(default_factory=list)  # attacks to run; "all" = every registered one
    splits: list[str] = field(default_factory=lambda: ["forget"])  # splits each attack re-evaluates
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)  # the attacks' settings the user set
    SECTION = "attack"

    def __init__(
        self,
        names: list[str] | None = None,
        splits: list[str] | None = None,
        seed: int = 0,
        settings: dict[str, Any] | None = None,
        **attack_settings: Any,
    ) -> None:
        """The fields, then the attacks' settings by name: ``AttackConfig(relearn_steps=4)``."""
        self.names = list(names) if names is not None else []
        self.splits = list(splits) if splits is not None else ["forget"]
        self.seed = seed
        self._set_declared(settings, attack_settings)


_FIELDS_OF = {
    "method": frozenset(f.name for f in dataclasses.fields(MethodConfig)),
    "attack": frozenset(f.name for f in dataclasses.fields(AttackConfig)),
}
# Dataclasses whose mapping takes keys beyond their fields (their declared settings), kept in
# the named dict field and checked where they are declared.
OPEN_FIELDS: dict[type, str] = {MethodConfig: "settings", AttackConfig: "settings"}


@dataclass
class TargetConfig:
    """How the model to unlearn is obtained (TOFU protocol: fine-tune on every author)."""

    finetune: bool = False  # fine-tune model.name on the benchmark's full set first (cached)
    epochs: float = 5.0  # TOFU: lr 1e-5, 5 epochs, batch 32, wd 0.01
    learning_rate: float = 1e-5
    retain_model: bool = False  # also fine-tune a retain-only model for Forget Quality
    eval_before: bool = True  # evaluate the target before unlearning (report: before/after)


@dataclass
class SlurmConfig:
    """Slurm jobs of a grid (``sweep.launcher: slurm``, through submitit)."""

    partition: str | None = None  # None = the cluster's default partition
    time_min: int = 240  # time limit of each run's job
    mem_gb: float | None = None  # None = the partition's default
    # shell lines run before each job (e.g. "source .venv/bin/activate")
    setup: list[str] = field(default_factory=list)
    cluster: str = "slurm"  # slurm | local (submitit's LocalExecutor: the jobs on this machine)


LAUNCHERS = ("sequential", "local", "ray", "slurm")


@dataclass
class SweepConfig:
    scenario: str = "fictitious"  # the scenario each grid point runs
    methods: list[str] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    # sequential: one run after another in this process; local: a process pool on this machine;
    # ray: Ray tasks (pip install 'unlearnkit[ray]'); slurm: Slurm jobs ('unlearnkit[slurm]')
    launcher: str = "sequential"
    # runs at once; None = local: one per GPU group (or per cpus_per_run cores); ray: as many
    # as the cluster's resources hold; slurm: every run of the array
    workers: int | None = None
    gpus_per_run: int | None = None  # None = 1 where the machine (local, ray) has GPUs, else 0
    cpus_per_run: int | None = None  # threads of a run; None = local: cores / workers, else 1
    ray_address: str | None = None  # None = a local Ray; "auto" or "ray://head:10001" = a cluster
    slurm: SlurmConfig = field(default_factory=SlurmConfig)


@dataclass
class RunConfig:
    name: str | None = None  # run folder name; None = derived from method/benchmark/split/seed
    output_dir: str = "runs"
    # default: our choices where they differ from the paper's code (docs/paper-differences.md);
    # paper: behave like the paper's code (sail-sg/closer-look-LLM-unlearning @ b622294)
    profile: str = "default"
    scenario: str = "fictitious"  # fictitious | continual | real_world | sweep
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    general_tasks: list[str] = field(default_factory=list)  # real-world: lm-eval task names
    general_limit: int | None = None  # items per general task (None = all)
    tasks: list[int] | None = None  # continual: tasks to unlearn in order (None = all)


# ---------------------------------------------------------------------------------------------
# Generic loading, overriding, validation


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and _is_null(value) and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}", where)
    if _is_dataclass_type(tp):
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}", where)
        return from_dict(tp, value, prefix=where)
    if origin is list:
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}", where)
        (item_tp,) = args or (Any,)
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"{where}: expected true/false, got {value!r}", where)
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}", where)
        if isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}", where) from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}", where)
        if isinstance(value, str):  # override text: YAML's number forms (.nan, .inf, 1e-5)
            parsed = yaml.safe_load(value) if value.strip() else None
            value = parsed if isinstance(parsed, (int, float)) else value
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}", where) from None
    if tp is str:
        if isinstance(value, bool):  # a YAML file's unquoted yes/no/on/off
            raise ConfigError(
                f"{where}: expected a string, got {str(value).lower()} (YAML reads "
                "yes/no/on/off/true/false as booleans; quote the value)",
                where,
            )
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}", where)
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; unknown keys are errors."""
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    open_field = OPEN_FIELDS.get(cls)
    kwargs: dict[str, Any] = {}
    if open_field is not None:
        names.discard(open_field)
        kwargs[open_field] = dict(data.get(open_field) or {})
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        if open_field is not None and key not in names:
            # typed and checked by the part that declares it; a name no declared part has is
            # refused here once the parts are known (and by settings.check_method in any case)
            declared = DECLARED_SETTINGS[cls.SECTION]  # type: ignore[attr-defined]
            if key != open_field and declared and key not in declared:
                valid = ", ".join(sorted(names | declared))
                raise ConfigError(f"unknown config key '{where}'; valid keys: {valid}", where)
            if key != open_field and not _is_null(value):
                kwargs[open_field][key] = value
            continue
        if key not in names:
            raise ConfigError(
                f"unknown config key '{where}'; valid keys: {', '.join(sorted(names))}", where
            )
        kwargs[key] = _coerce(value, hints[key], where)
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """The dataclass tree ``obj`` as nested mappings; an open field's keys (the parts' settings)
    sit flat beside the fields, sorted, as a YAML file writes them."""
    out: dict[str, Any] = {}
    open_field = OPEN_FIELDS.get(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name == open_field:
            out.update({k: copy.deepcopy(value[k]) for k in sorted(value)})
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            out[f.name] = to_dict(value)
        else:
            out[f.name] = copy.deepcopy(value)
    return out


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() in ("none", "null", "~"))


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    """``data[a][b] = value`` for ``key = "a.b"``; an unknown key is a ConfigError."""
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown config key '{key}'", key)
        node = node[part]
    if parts[-1] not in node and not (len(parts) == 2 and parts[0] in DECLARED_SETTINGS):
        raise ConfigError(
            f"unknown config key '{key}'; valid keys here: {', '.join(sorted(node))}", key
        )
    node[parts[-1]] = value


def set_values(cfg: T, values: dict[str, Any]) -> T:
    """Set dotted keys to typed values (the commands' flags): ``{"model.name": "yes"}``."""
    data = to_dict(cfg)
    for key, value in values.items():
        _set(data, key, value)
    return from_dict(type(cfg), data)


def parse_override_value(raw: str) -> Any:
    """An override's text: scalars stay text (converted later to the field's type, so
    ``model.name=yes`` is ``'yes'``); ``[a, b]`` is a list and ``{k: v}`` a mapping of text."""
    if raw.strip() == "":
        return ""
    try:
        value = yaml.load(raw, Loader=yaml.BaseLoader)  # BaseLoader: every scalar stays text
    except yaml.YAMLError:
        return raw
    return raw if value is None else value  # e.g. "#tag": YAML would read a comment


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Apply ``a.b=value`` strings to a dataclass tree (values: :func:`parse_override_value`)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        _set(data, key, parse_override_value(raw))
    return from_dict(type(cfg), data)


def validate(cfg: RunConfig) -> RunConfig:
    """Range checks that the types alone do not express. Raises ConfigError."""

    def finite_nonneg(value: float | None, where: str) -> None:
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ConfigError(f"{where} must be a finite number >= 0, got {value}")

    finite_nonneg(cfg.method.forget_coeff, "method.forget_coeff")
    finite_nonneg(cfg.method.regularization_coeff, "method.regularization_coeff")
    finite_nonneg(cfg.train.learning_rate, "train.learning_rate")
    finite_nonneg(cfg.train.weight_decay, "train.weight_decay")
    finite_nonneg(cfg.train.epochs, "train.epochs")
    finite_nonneg(cfg.train.warmup_epochs, "train.warmup_epochs")
    for where, value in (
        ("train.batch_size", cfg.train.batch_size),
        ("train.per_device_batch_size", cfg.train.per_device_batch_size),
        ("eval.batch_size", cfg.eval.batch_size),
        (
            "eval.generation_batch_size",
            1 if cfg.eval.generation_batch_size is None else cfg.eval.generation_batch_size,
        ),
        ("eval.generation_cache_mib", cfg.eval.generation_cache_mib),
        ("eval.nli_batch_size", 1 if cfg.eval.nli_batch_size is None else cfg.eval.nli_batch_size),
        ("eval.max_new_tokens", cfg.eval.max_new_tokens),
        ("data.max_length", cfg.data.max_length),
        ("lora.r", cfg.lora.r),
    ):
        if value <= 0:
            raise ConfigError(f"{where} must be > 0, got {value}")
    if cfg.eval.prompt_cache_mib < 0:
        raise ConfigError(f"eval.prompt_cache_mib must be >= 0, got {cfg.eval.prompt_cache_mib}")
    if cfg.train.batch_size % cfg.train.per_device_batch_size:
        raise ConfigError(
            f"train.batch_size ({cfg.train.batch_size}) must be a multiple of "
            f"train.per_device_batch_size ({cfg.train.per_device_batch_size})"
        )
    if cfg.eval.ds_size is not None and cfg.eval.ds_size <= 0:
        raise ConfigError(f"eval.ds_size must be > 0 or null, got {cfg.eval.ds_size}")
    known = sorted({*BUILT_IN_SCENARIOS, *SCENARIOS.names()})
    if cfg.scenario not in known:
        raise ConfigError(f"unknown scenario '{cfg.scenario}'; choose from {', '.join(known)}")
    if cfg.data.prompt_preset not in PROMPT_PRESETS:
        raise ConfigError(
            f"unknown data.prompt_preset '{cfg.data.prompt_preset}'; "
            f"choose from {', '.join(PROMPT_PRESETS)}"
        )
    if cfg.profile not in PROFILES:
        raise ConfigError(f"unknown profile '{cfg.profile}'; choose from {', '.join(PROFILES)}")
    for where, value, choices in (
        ("data.pairing", cfg.data.pairing, ("epoch", "index")),
        ("train.schedule", cfg.train.schedule, ("epochs", "paper")),
        ("train.select_checkpoint", cfg.train.select_checkpoint, ("none", "retain_match")),
    ):
        if value not in choices:
            raise ConfigError(f"unknown {where} '{value}'; choose from {', '.join(choices)}")
    if cfg.train.select_checkpoint == "retain_match" and not (
        cfg.train.eval_every_epoch and cfg.target.retain_model
    ):
        raise ConfigError(
            "train.select_checkpoint=retain_match compares each epoch with the retain model: it "
            "needs train.eval_every_epoch=true and target.retain_model=true"
        )
    finite_nonneg(cfg.train.max_grad_norm, "train.max_grad_norm")
    if cfg.data.task < 1:
        raise ConfigError(f"data.task must be >= 1, got {cfg.data.task}")
    if cfg.eval.threads is not None and cfg.eval.threads < 1:
        raise ConfigError(f"eval.threads must be >= 1 or null, got {cfg.eval.threads}")
    check_attack_config(cfg.attack)
    if cfg.data.holdout_authors < 0:
        raise ConfigError(f"data.holdout_authors must be >= 0, got {cfg.data.holdout_authors}")
    _validate_sweep(cfg.sweep)
    return cfg


def check_attack_config(attack: AttackConfig) -> None:
    """Checks of ``attack.*`` that the types alone do not express (names are checked against
    the registry by :func:`unlearnkit.attacks.resolve_attacks`, each attack's own settings by
    their declarations: :func:`unlearnkit.settings.check_attacks`)."""
    if not attack.splits:
        raise ConfigError("attack.splits must name at least one split (e.g. [forget])")


def _validate_sweep(s: SweepConfig) -> None:
    if s.launcher not in LAUNCHERS:
        raise ConfigError(
            f"unknown sweep.launcher '{s.launcher}'; choose from {', '.join(LAUNCHERS)}"
        )
    if s.slurm.cluster not in ("slurm", "local"):
        raise ConfigError(
            f"unknown sweep.slurm.cluster '{s.slurm.cluster}'; choose from slurm, local"
        )
    for where, value, low in (
        ("sweep.workers", s.workers, 1),
        ("sweep.gpus_per_run", s.gpus_per_run, 0),
        ("sweep.cpus_per_run", s.cpus_per_run, 1),
        ("sweep.slurm.time_min", s.slurm.time_min, 1),
    ):
        if value is not None and value < low:
            null = "" if where == "sweep.slurm.time_min" else " or null"
            raise ConfigError(f"{where} must be >= {low}{null}, got {value}")


def _key_lines(node: Any, prefix: str = "") -> dict[str, int]:
    """Dotted key -> 1-based line of a composed YAML mapping (for errors that name the line)."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            lines[key] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, key))
    return lines


INCLUDE_KEY = "include"  # a YAML file's list of other YAML files it builds on


def read_yaml_layers(path: str | Path, cls: type = RunConfig) -> list[tuple[Path, dict[str, Any]]]:
    """The mappings of a YAML experiment file and of the files it includes, in the order they
    apply: ``include: [base.yaml, ...]`` (paths relative to the including file) comes first,
    in its order, each after its own includes, then the file itself, whose keys win. Each file
    is checked against ``cls`` on its own, so an error names its file and line; an include
    cycle is an error."""
    layers: list[tuple[Path, dict[str, Any]]] = []
    _read_layers(Path(path), cls, layers, ())
    return layers


def _read_layers(
    p: Path, cls: type, layers: list[tuple[Path, dict[str, Any]]], stack: tuple[Path, ...]
) -> None:
    from unlearnkit.utils import read_text

    if not p.is_file():
        where = f" (included by {stack[-1]})" if stack else ""
        raise ConfigError(f"config file not found: {p}{where}")
    if p.resolve() in stack:
        chain = " -> ".join(str(s) for s in (*stack, p.resolve()))
        raise ConfigError(f"{p}: include cycle: {chain}")
    text = read_text(p)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}: line {mark.line + 1}" if mark is not None else str(p)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping")
    includes = data.pop(INCLUDE_KEY, None) or []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(f"{p}: '{INCLUDE_KEY}' must be a file name or a list of them")
    for name in includes:
        _read_layers(p.parent / Path(name).expanduser(), cls, layers, (*stack, p.resolve()))
    try:
        from_dict(cls, data)  # checked on its own: the error names this file
    except ConfigError as exc:
        line = _key_lines(yaml.compose(text)).get(exc.key or "")
        raise ConfigError(f"{p}{f': line {line}' if line else ''}: {exc}", exc.key) from None
    layers.append((p, data))


def merge_mappings(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, nested mappings merged key by key (a list or value replaces)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_mappings(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml_config(path: str | Path, cls: type[T] = RunConfig) -> T:
    """A YAML experiment file (with the files it includes, :func:`read_yaml_layers`) as
    ``cls``; every error names the file and, where it has one, the line (syntax errors,
    unknown keys, values of the wrong type)."""
    merged: dict[str, Any] = {}
    for _, data in read_yaml_layers(path, cls):
        merged = merge_mappings(merged, data)
    return from_dict(cls, merged)


def save_config(cfg: Any, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the resolved config (plus ``extra`` facts such as the prompt template) as YAML."""
    from unlearnkit.utils import atomic_write_text

    data = to_dict(cfg)
    if extra:
        data["_resolved"] = extra
    return atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))
