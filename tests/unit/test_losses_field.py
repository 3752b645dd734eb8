"""The field's forget losses (SimNPO, WGA, SatImp, UNDIAL, CE-U, LMF, RMU's distance) against
numbers computed by hand with plain math on a toy batch whose softmaxes are easy."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnkit.losses import (
    activation_mse,
    ceu_loss,
    logit_margin_loss,
    satimp_loss,
    simnpo_loss,
    undial_loss,
    wga_loss,
)
from unlearnkit.losses.field import drop_first_answer_tokens

LN = math.log
UNIFORM = [0.0, 0.0, 0.0]  # p = (1/3, 1/3, 1/3)
R123 = [LN(1.0), LN(2.0), LN(3.0)]  # p = (1/6, 2/6, 3/6)
R112 = [LN(1.0), LN(1.0), LN(2.0)]  # p = (1/4, 1/4, 1/2)
JUNK = [50.0, -50.0, 7.0]  # only in rows that must not count


def toy() -> tuple[torch.Tensor, torch.Tensor]:
    """B=2, T=3, V=3; row t predicts labels[:, t+1].

    Counted rows: seq 0 row 0 (R123 -> token 2, p = 1/2), seq 0 row 1 (UNIFORM -> 0, p = 1/3),
    seq 1 row 1 (R112 -> 1, p = 1/4). labels[1, 0] is never predicted.
    """
    logits = torch.tensor([[R123, UNIFORM, JUNK], [JUNK, R112, JUNK]], dtype=torch.float32)
    labels = torch.tensor([[-100, 2, 0], [1, -100, 1]])
    return logits, labels


P_TRUE = [1 / 2, 1 / 3, 1 / 4]  # probability of the true token in each counted row


def logsig(x: float) -> float:
    return -LN(1.0 + math.exp(-x))


def test_simnpo_hand_computed_and_margin():
    logits, labels = toy()
    per_token = [(LN(2) + LN(3)) / 2, LN(4)]  # summed NLL / counted tokens
    beta, delta = 2.0, 0.5
    expected = -(2 / beta) * sum(logsig(beta * (x - delta)) for x in per_token) / 2
    assert simnpo_loss(logits, labels, beta, delta).item() == pytest.approx(expected, rel=1e-6)
    # at nll/|y| == delta it is (2/beta) ln 2 for every sequence
    at_margin = simnpo_loss(logits[1:], labels[1:], 4.5, LN(4)).item()
    assert at_margin == pytest.approx(2 / 4.5 * LN(2), rel=1e-6)
    with pytest.raises(ValueError, match="beta"):
        simnpo_loss(logits, labels, 0.0)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_wga_hand_computed(beta):
    logits, labels = toy()
    expected = -sum(p**beta * -LN(p) for p in P_TRUE) / 3
    assert wga_loss(logits, labels, beta).item() == pytest.approx(expected, rel=1e-6)


def test_satimp_hand_computed():
    logits, labels = toy()
    b1, b2 = 2.0, 1.0
    expected = -sum(p**b1 * (1 - p) ** b2 * -LN(p) for p in P_TRUE) / 3
    assert satimp_loss(logits, labels, b1, b2).item() == pytest.approx(expected, rel=1e-6)


def test_weights_are_constants_in_the_gradient():
    """d L_WGA / d z = -(w / N) (p - onehot): the weight p^beta is not differentiated."""
    logits, labels = toy()
    logits.requires_grad_(True)
    wga_loss(logits, labels, 1.0).backward()
    p = [1 / 6, 2 / 6, 3 / 6]
    expected = [-(0.5 / 3) * (p[v] - (v == 2)) for v in range(3)]  # row 0 of seq 0, w = 1/2
    assert logits.grad[0, 0].tolist() == pytest.approx(expected, rel=1e-5)
    assert logits.grad[0, 2].abs().sum().item() == 0.0  # a JUNK row never counts


def test_undial_hand_computed():
    """Teacher = the same logits with the true token's logit lowered by ln 2 (its exp halved)."""
    logits, labels = toy()
    q_rows = [(2 / 9, 4 / 9, 3 / 9), (1 / 5, 2 / 5, 2 / 5), (2 / 7, 1 / 7, 4 / 7)]
    p_rows = [(1 / 6, 2 / 6, 3 / 6), (1 / 3, 1 / 3, 1 / 3), (1 / 4, 1 / 4, 1 / 2)]
    expected = sum(
        -sum(q * LN(p) for q, p in zip(qs, ps, strict=True))
        for qs, ps in zip(q_rows, p_rows, strict=True)
    )
    got = undial_loss(logits, logits.clone(), labels, LN(2)).item()
    assert got == pytest.approx(expected / 3, rel=1e-6)
    with pytest.raises(ValueError, match="ref_logits"):
        undial_loss(logits, logits[:, :2], labels, 10.0)


def test_drop_first_answer_tokens():
    labels = torch.tensor([[-100, -100, 5, 6, 7], [1, 2, -100, 3, -100]])
    assert drop_first_answer_tokens(labels, 1).tolist() == [
        [-100, -100, -100, 6, 7],
        [-100, 2, -100, 3, -100],
    ]
    assert drop_first_answer_tokens(labels, 0).tolist() == labels.tolist()


def test_ceu_hand_computed_and_gradient():
    logits, labels = toy()
    # ignore_first=1 drops seq 0's label at t=1 (row 0) and seq 1's label at t=0 (never predicted)
    h_uniform = LN(3)  # q = (0, 1/2, 1/2), p uniform
    h_r112 = -(1 / 3 * LN(1 / 4) + 2 / 3 * LN(1 / 2))  # q = (1/3, 0, 2/3)
    assert ceu_loss(logits, labels, 1).item() == pytest.approx((h_uniform + h_r112) / 2, rel=1e-6)
    h_r123 = -(1 / 3 * LN(1 / 6) + 2 / 3 * LN(2 / 6))  # q = (1/3, 2/3, 0)
    all_rows = (h_r123 + h_uniform + h_r112) / 3
    assert ceu_loss(logits, labels, 0).item() == pytest.approx(all_rows, rel=1e-6)
    # gradient (p - q) / N on a counted row; the target distribution is a constant
    logits.requires_grad_(True)
    ceu_loss(logits, labels, 1).backward()
    expected = [(1 / 4 - 1 / 3) / 2, (1 / 4 - 0) / 2, (1 / 2 - 2 / 3) / 2]
    assert logits.grad[1, 1].tolist() == pytest.approx(expected, rel=1e-5)
    assert logits.grad[0, 0].abs().sum().item() == 0.0  # the dropped first answer token


def test_logit_margin_hand_computed():
    logits, labels = toy()
    expected = ((LN(3) - LN(6) / 3) ** 2 + 0.0 + (LN(2) - LN(2) / 3) ** 2) / 3
    assert logit_margin_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_activation_mse_hand_computed():
    hidden = torch.tensor([[[1.0, 3.0], [0.0, 0.0]], [[2.0, 2.0], [9.0, 9.0]]])  # (2, 2, 2)
    target = torch.tensor([1.0, 1.0])
    labels = torch.tensor([[5, 6], [7, -100]])
    # seq 0: token 0 -> (0 + 4) / 2 = 2, token 1 -> (1 + 1) / 2 = 1: mean 1.5
    # seq 1: token 0 -> (1 + 1) / 2 = 1 (token 1 does not count)
    assert activation_mse(hidden, target, labels).item() == pytest.approx((1.5 + 1.0) / 2)
    nothing = torch.full((2, 2), -100)
    assert activation_mse(hidden, target, nothing).item() == 0.0  # no division by zero


@pytest.mark.parametrize("fn", [wga_loss, satimp_loss, ceu_loss, logit_margin_loss])
def test_no_counted_token_is_a_zero_loss_with_a_gradient_path(fn):
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = fn(logits, torch.full((2, 3), -100))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None
