"""The attack stage of a scenario: attacks on the unlearned model, after its final evaluation.

Each attack is evaluated into ``eval/attack-<name>/`` (a stage of the run, indexed in the
results store like any other) and the run's recovery report is written to ``attacks.json``
(:mod:`unlearnkit.attacks`). Recovery is measured against ``eval/before`` and, where the run
evaluated one, the retain model (``eval/retain_model``). The fictitious and real-world scenarios
run it after their final evaluation when ``attack.names`` lists attacks.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from unlearnkit.config import RunConfig
from unlearnkit.data.records import QAItem
from unlearnkit.scenarios.common import ModelRef, loaded, log, record


def run_attack_stage(
    cfg: RunConfig,
    rdir: Path,
    model: ModelRef,
    eval_sets: dict[str, list[QAItem]],
    benchmark_kind: str,
    retain_items: list[QAItem],
    task: int | None,
    retain_eval: str | None,
) -> dict[str, Any]:
    """Attack the unlearned ``model`` (in memory, or loaded from its folder; each attack works
    on a copy of it); ``retain_items``: the run's retain (or
    neighbour) training set, for ``relearn_retain``."""
    from unlearnkit.attacks import AttackContext, resolve_attacks
    from unlearnkit.attacks.runner import run_attacks
    from unlearnkit.data.formatting import PromptFormatter
    from unlearnkit.eval.runner import select_splits

    specs = resolve_attacks(cfg.attack.names)
    log(f"attacking the unlearned model: {', '.join(s.name for s in specs)}")
    held = loaded(model, cfg)
    model, tok = held.model, held.tokenizer
    formatter = PromptFormatter(tok, cfg.data.prompt_preset, cfg.data.system_prompt)
    every = copy.deepcopy(cfg.eval)
    every.splits = None
    sets = select_splits(eval_sets, every)
    ctx = AttackContext(model, tok, formatter, sets, cfg.attack, retain_items=retain_items)
    before = rdir / "eval" / "before"
    report = run_attacks(
        specs, ctx, cfg.eval, lambda name: rdir / "eval" / f"attack-{name}", benchmark_kind,
        unlearned_dir=rdir / "eval" / "final",
        before_dir=before if (before / "forget.jsonl").is_file() else None,
        retain_dir=Path(retain_eval) if retain_eval else None,
        report_path=rdir / "attacks.json", profile=cfg.profile,
        on_done=lambda name, summary: record(cfg, rdir, f"attack-{name}", summary, task),
    )  # fmt: skip
    log(f"attacks done; robustness score {report.get('robustness_score')}")
    return report
