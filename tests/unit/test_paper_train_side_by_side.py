"""The training side-by-side harness without the paper's code: its skip, cases and weight bound."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.paper_train_side_by_side import main, parse_case, weight_bounds


def test_skips_cleanly_without_the_papers_code(tmp_path: Path, capsys) -> None:
    assert main(["--paper-code", str(tmp_path), "--paper-python", str(tmp_path / "py")]) == {
        "skipped": True
    }
    assert "skipped" in capsys.readouterr().out


def test_cases() -> None:
    assert parse_case("GA+GD:lora") == {
        "name": "GA+GD:lora", "method": "GA+GD", "lora": True, "continual": False,
    }  # fmt: skip
    assert parse_case("ME+GD:continual")["continual"]
    with pytest.raises(ValueError, match="lora or :continual"):
        parse_case("ME+GD:full")
    with pytest.raises(ValueError, match="continual script"):
        parse_case("GA+GD:continual")


def test_weight_bound_by_hand() -> None:
    """Step 1: u = g / (|g| + eps), so |du| <= dg / eps and rho_1 = 1: B_1 = lr * 2 * dg / eps.
    Step 2: a = (0.09, 0.1) / 0.19 and b = (0.999e-3, 1e-3) / 1.999e-3 (bias-corrected weights
    of g_1, g_2): rho_2 = sqrt(sum a^2 / b); the worst gradient difference so far carries on."""
    grads = [
        {"max_abs_grad_diff": 1e-17, "max_abs_grad": 1.0, "lr_used": 1e-5},
        {"max_abs_grad_diff": 5e-18, "max_abs_grad": 1.0, "lr_used": 5e-6},
    ]
    b1, b2 = weight_bounds(grads, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01)
    assert b1["rho"] == pytest.approx(1.0)
    assert b1["weight_bound"] == pytest.approx(1e-5 * 2 * 1e-17 / 1e-8)
    a = (0.09 / 0.19, 0.1 / 0.19)
    b = (0.999e-3 / 1.999e-3, 1e-3 / 1.999e-3)
    rho2 = math.sqrt(a[0] ** 2 / b[0] + a[1] ** 2 / b[1])
    assert b2["rho"] == pytest.approx(rho2)
    expected = (1 + 5e-6 * 0.01) * b1["weight_bound"] + 5e-6 * (1 + rho2) * 1e-17 / 1e-8
    assert b2["weight_bound"] == pytest.approx(expected)
