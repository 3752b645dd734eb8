"""The inputs of the side-by-side with open-unlearning (:mod:`benchmarks.ou_side_by_side`).

Everything is written under one work folder, outside the repository:

- ``data/locuslab/TOFU/``: a hub-layout TOFU folder that open-unlearning's
  ``datasets.load_dataset("locuslab/TOFU", name=...)`` reads as a local dataset (its README's
  ``configs``) and that unlearnkit reads as a benchmark folder: ``forget01`` and
  ``forget01_perturbed`` (task 1 of the paper's forget01, 40 items), ``holdout01`` (the last 2
  authors of retain90, 40 items: unlearnkit's ``data.holdout_authors=2``), and the three utility
  splits cut to their first ``n_utility`` items (all of them with ``n_utility=None``);
- ``model-target/`` and ``model-ref/``: SmolLM2-135M (the packaged model, fp32) and a perturbed
  copy (every tensor times 1 + 0.01 N(0, 1), seed 0), the reference/retain model, each with a
  tokenizer config transformers 4.45 reads (the converted one names transformers 5's class);
- ``configs/``: the open-unlearning configs (a config dir added to its search path; none of its
  files is changed): the model with its chat format as tags, and an eval suite with every TOFU
  metric.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# SmolLM2's chat template with its default system message, written as open-unlearning's tags:
# tokenized as one string, prompt + answer gives the same ids as unlearnkit's chat preset.
SYSTEM = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n"
)
TAGS = {
    "user_start_tag": "<|im_start|>user\n",
    "user_end_tag": "<|im_end|>\n",
    "asst_start_tag": "<|im_start|>assistant\n",
    "asst_end_tag": "<|im_end|>\n",
}
FORGET, HOLDOUT = "forget01", "holdout01"
UTILITY_FILES = ("retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")
ROWS_PER_AUTHOR = 20


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_data(src: Path, out: Path, n_utility: int | None) -> Path:
    """The hub-layout folder ``out/locuslab/TOFU``; returns it."""
    root = out / "locuslab" / "TOFU"
    root.mkdir(parents=True, exist_ok=True)
    forget = [r for r in _read(src / "forget01.json") if str(r["task_id"]) == "1"]
    pert = [r for r in _read(src / "forget01_perturbed.json") if str(r["task_id"]) == "1"]
    strip = ("task_id",)
    _write(root / "forget01.json", [{k: v for k, v in r.items() if k not in strip} for r in forget])
    _write(
        root / "forget01_perturbed.json",
        [{k: v for k, v in r.items() if k not in strip} for r in pert],
    )
    retain90 = _read(src / "retain90.json")
    _write(root / "holdout01.json", retain90[-2 * ROWS_PER_AUTHOR :])
    for name in UTILITY_FILES:
        rows = _read(src / f"{name}.json")
        _write(root / f"{name}.json", rows if n_utility is None else rows[:n_utility])
    configs = [FORGET, f"{FORGET}_perturbed", HOLDOUT, *UTILITY_FILES]
    lines = ["---", "configs:"]
    for c in configs:
        lines += [f"- config_name: {c}", "  data_files:", "  - split: train", f"    path: {c}.json"]
    (root / "README.md").write_text("\n".join([*lines, "---", ""]), encoding="utf-8")
    return root


def write_model(src: Path, out: Path, *, perturb: float = 0.0, seed: int = 0) -> Path:
    """A copy of the converted model folder for transformers 4.45; with ``perturb`` > 0 every
    floating tensor is multiplied by 1 + perturb * N(0, 1) (torch generator seeded by ``seed``)."""
    import torch
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "generation_config.json"):
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    # transformers 5 writes rope_theta under rope_parameters; 4.45 reads the top-level key and
    # silently falls back to 10000 without it (SmolLM2: 100000)
    cfg = json.loads((out / "config.json").read_text())
    for key, value in (cfg.get("rope_parameters") or {}).items():
        if key == "rope_theta":
            cfg["rope_theta"] = value
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    tok_cfg = json.loads((src / "tokenizer_config.json").read_text())
    tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_cfg.pop("backend", None)
    tmpl = src / "chat_template.jinja"
    if tmpl.is_file():
        tok_cfg["chat_template"] = tmpl.read_text()
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))
    tensors = load_file(str(src / "model.safetensors"))
    if perturb > 0:
        gen = torch.Generator().manual_seed(seed)
        for name in sorted(tensors):
            t = tensors[name]
            if t.is_floating_point():
                noise = torch.randn(t.shape, generator=gen, dtype=torch.float32)
                tensors[name] = (t.float() * (1 + perturb * noise)).to(t.dtype).contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def write_configs(out: Path, model_dir: Path, apply_chat_template: bool = False) -> Path:
    """open-unlearning config dir: ``model/SmolLM2-135M.yaml``, ``eval/tofu_all.yaml`` and
    ``eval/tofu_retain_logs.yaml`` (the metrics a retain model's logs serve).

    ``apply_chat_template``: open-unlearning's own chat-template mode (our preset
    ``chat_conversation``) instead of its tags written as SmolLM2's template text."""
    template = (
        "  apply_chat_template: true\n"
        if apply_chat_template
        else "  apply_chat_template: false\n"
        f"  system_prompt_with_special_tokens: {json.dumps(SYSTEM)}\n"
        + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in TAGS.items())
    )
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "eval").mkdir(parents=True, exist_ok=True)
    q = json.dumps  # YAML accepts JSON strings (the tags hold newlines)
    (out / "model" / "SmolLM2-135M.yaml").write_text(
        "model_args:\n"
        f"  pretrained_model_name_or_path: {q(str(model_dir))}\n"
        "  attn_implementation: sdpa\n"
        "  torch_dtype: float32\n"
        "tokenizer_args:\n"
        f"  pretrained_model_name_or_path: {q(str(model_dir))}\n"
        "template_args:\n" + template
    )
    every = [
        "forget_Truth_Ratio", "forget_quality", "forget_Q_A_Prob", "forget_Q_A_ROUGE",
        "forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob",
        "model_utility", "privleak", "extraction_strength", "exact_memorization",
        "mia_min_k_plus_plus", "mia_min_k", "mia_loss", "mia_zlib", "mia_gradnorm",
        "mia_reference",
    ]  # fmt: skip
    retain_logs = ["forget_Truth_Ratio", "forget_Q_A_Prob", "mia_min_k", "mia_loss"]
    # the memorization metrics and the attacks alone, cheapest first (a CPU-bound rerun)
    mia = ["exact_memorization", "extraction_strength", "mia_min_k", "privleak", "mia_loss",
           "mia_zlib", "mia_min_k_plus_plus", "mia_reference", "mia_gradnorm"]  # fmt: skip
    suites = (("tofu_all", every), ("tofu_retain_logs", retain_logs), ("tofu_mia", mia))
    for name, metrics in suites:
        body = "# @package eval.tofu\ndefaults:\n  - tofu_metrics:\n"
        body += "".join(f"    - {m}\n" for m in metrics)
        body += (
            "handler: TOFUEvaluator\noutput_dir: ${paths.output_dir}\nmetrics: {}\n"
            "overwrite: false\nforget_split: forget01\nholdout_split: holdout01\n"
            'retain_logs_path: null\nquestion_key: "question"\nbatch_size: 32\n'
        )
        (out / "eval" / f"{name}.yaml").write_text(body)
    return out


def ou_command(
    ou_python: Path,
    ou_code: Path,
    config_dir: Path,
    suite: str,
    out_dir: Path,
    *,
    model_dir: Path | None = None,
    retain_logs: Path | None = None,
    reference_model: Path | None = None,
) -> list[str]:
    """The ``src/eval.py`` command line (run with cwd = the data folder's parent of locuslab/)."""
    cmd = [
        str(ou_python), str(ou_code / "src" / "eval.py"),
        "--config-dir", str(config_dir),
        "model=SmolLM2-135M", f"eval={suite}",
        "model.model_args.device_map=cpu",
        "task_name=side_by_side", f"paths.output_dir={out_dir}",
        "hydra.job.chdir=false", f"hydra.run.dir={out_dir}",
        "eval.tofu.forget_split=forget01", "eval.tofu.holdout_split=holdout01",
    ]  # fmt: skip
    if model_dir is not None:
        cmd.append(f"model.model_args.pretrained_model_name_or_path={model_dir}")
        cmd.append(f"model.tokenizer_args.pretrained_model_name_or_path={model_dir}")
    if retain_logs is not None:
        cmd.append(f"eval.tofu.retain_logs_path={retain_logs}")
    if reference_model is not None:
        cmd.append(f"eval.tofu.metrics.mia_reference.reference_model_path={reference_model}")
    return cmd
