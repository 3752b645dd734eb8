"""A scenario is a declared list of stages run by one driver; a new one is registered by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnkit.config import RunConfig, validate
from unlearnkit.registry import SCENARIOS
from unlearnkit.scenarios import load_scenarios, run_scenario
from unlearnkit.scenarios.stages import Run, Scenario, Stage, new_run, register_scenario


@pytest.fixture()
def toy(tmp_path: Path):
    """A scenario of two stages that write files, registered for the test only."""
    calls: list[str] = []

    def prepare(cfg: RunConfig, resume: bool | str) -> Run:
        return new_run(cfg, bench=None, resume=resume)

    def first(run: Run) -> None:
        calls.append("first")
        (run.rdir / "first.txt").write_text("1")
        run.stages.append("first")

    def second(run: Run) -> None:
        calls.append("second")
        assert (run.rdir / "first.txt").is_file()  # stages run in their declared order
        run.stages.append("second")

    register_scenario(Scenario("toy", "two stages", prepare, lambda run: [
        Stage("first", first), Stage("second", second)]))  # fmt: skip
    yield calls
    SCENARIOS.remove("toy")


def test_a_registered_scenario_runs_its_stages_once(toy, tmp_path: Path) -> None:
    cfg = validate(RunConfig(scenario="toy", output_dir=str(tmp_path), name="r"))
    rdir = run_scenario(cfg)
    assert rdir == tmp_path / "r" and toy == ["first", "second"]
    assert (rdir / "config.yaml").is_file()  # the driver saves the settings
    assert json.loads((rdir / "DONE.json").read_text()) == {"stages": ["first", "second"]}
    run_scenario(cfg)  # finished: the driver skips it
    assert toy == ["first", "second"]


def test_the_built_in_scenarios_are_registered_and_unknown_ones_fail() -> None:
    load_scenarios()
    assert {"fictitious", "continual", "real_world"} <= set(SCENARIOS.names())
    with pytest.raises(ValueError, match="unknown scenario 'fictitous'"):
        validate(RunConfig(scenario="fictitous"))
