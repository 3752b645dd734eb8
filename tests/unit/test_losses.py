"""Unit tests of unlearnkit.losses against numbers computed by hand (plain math, not torch)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unlearnkit.losses import (
    ap_loss,
    dpo_loss,
    ga_loss,
    gd_loss,
    idk_loss,
    kl_loss,
    me_loss,
    mean_token_nll,
    mismatch_loss,
    npo_loss,
    sequence_nll,
    token_entropy_next,
)

LN = math.log
# Three logit rows with easy softmaxes (V = 3):
UNIFORM = [0.0, 0.0, 0.0]  # p = (1/3, 1/3, 1/3)
R123 = [LN(1.0), LN(2.0), LN(3.0)]  # p = (1/6, 2/6, 3/6)
R112 = [LN(1.0), LN(1.0), LN(2.0)]  # p = (1/4, 1/4, 1/2)
JUNK = [50.0, -50.0, 7.0]  # only ever in rows that must not count


def toy_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """B=2, T=3, V=3. Row t of the logits predicts labels[:, t + 1].

    seq 0: row 0 (R123) predicts label 2 -> -ln(3/6) = ln 2; row 1 (UNIFORM) predicts 0 -> ln 3.
    seq 1: row 0 predicts -100 (ignored); row 1 (R112) predicts 1 -> -ln(1/4) = ln 4.
           labels[1, 0] = 1 is never predicted (nothing precedes it). Last rows are never used.
    """
    logits = torch.tensor(
        [[R123, UNIFORM, JUNK], [JUNK, R112, JUNK]], dtype=torch.float32
    )  # (2, 3, 3)
    labels = torch.tensor([[-100, 2, 0], [1, -100, 1]])  # (2, 3)
    return logits, labels


# hand-computed per-row quantities of the toy batch
NLL_SEQ = [LN(2) + LN(3), LN(4)]
COUNT_SEQ = [2, 1]
KL_U_R123 = (LN(2) + LN(1) + LN(2 / 3)) / 3  # sum_v 1/3 ln((1/3) / p_v) = ln(4/3) / 3
KL_U_R112 = (LN(4 / 3) + LN(4 / 3) + LN(2 / 3)) / 3  # = ln(32/27) / 3
H_R123 = -(1 / 6 * LN(1 / 6) + 2 / 6 * LN(2 / 6) + 3 / 6 * LN(3 / 6))
H_R112 = -(1 / 4 * LN(1 / 4) * 2 + 1 / 2 * LN(1 / 2))


# ---------------------------------------------------------------- NLL helpers


def test_sequence_nll_hand_computed() -> None:
    logits, labels = toy_batch()
    nll, count = sequence_nll(logits, labels)
    assert nll.shape == (2,) and nll.dtype == torch.float32
    assert count.tolist() == COUNT_SEQ
    assert nll.tolist() == pytest.approx(NLL_SEQ, abs=1e-6)


def test_mean_token_nll_hand_computed_and_empty_sequence() -> None:
    logits, labels = toy_batch()
    labels = torch.cat([labels, torch.full((1, 3), -100)])  # a third, fully masked sequence
    logits = torch.cat([logits, torch.zeros(1, 3, 3)])
    expected = [NLL_SEQ[0] / 2, NLL_SEQ[1] / 1, 0.0]
    assert mean_token_nll(logits, labels).tolist() == pytest.approx(expected, abs=1e-6)
    nll, count = sequence_nll(logits, labels)
    assert nll[2].item() == 0.0 and count[2].item() == 0


def test_padding_and_ignored_rows_never_count_even_if_nonfinite() -> None:
    logits, labels = toy_batch()
    # right-pad both sequences by 2 positions with garbage logits (inf/nan) and -100 labels
    pad_logits = torch.tensor([[math.inf, math.nan, -math.inf]] * 2).expand(2, 2, 3)
    padded_logits = torch.cat([logits, pad_logits], dim=1)  # (2, 5, 3)
    padded_labels = torch.cat([labels, torch.full((2, 2), -100)], dim=1)  # (2, 5)
    # the last real row of each sequence now predicts a padding label, so it must stay unused
    nll, count = sequence_nll(padded_logits, padded_labels)
    assert count.tolist() == COUNT_SEQ
    assert nll.tolist() == pytest.approx(NLL_SEQ, abs=1e-6)
    for loss in (ga_loss, gd_loss, idk_loss, mismatch_loss, me_loss, token_entropy_next):
        assert torch.isfinite(loss(padded_logits, padded_labels))
        assert loss(padded_logits, padded_labels).item() == pytest.approx(
            loss(logits, labels).item(), abs=1e-6
        )


def test_token_entropy_next_hand_computed() -> None:
    logits, labels = toy_batch()
    expected = (H_R123 + LN(3) + H_R112) / 3
    assert token_entropy_next(logits, labels).item() == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- NLL-based losses


def test_ga_is_minus_token_mean_over_the_batch() -> None:
    logits, labels = toy_batch()
    # mean over the 3 counted tokens, not over the 2 sequences (that would be -(ln6/2 + ln4)/2)
    expected = -(LN(2) + LN(3) + LN(4)) / 3
    assert ga_loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)
    for positive in (gd_loss, idk_loss, mismatch_loss):
        assert positive(logits, labels).item() == pytest.approx(-expected, abs=1e-6)


def test_ga_gradient_lowers_target_logit_and_ignores_masked_rows() -> None:
    logits, labels = toy_batch()
    logits.requires_grad_(True)
    ga_loss(logits, labels).backward()
    grad = logits.grad
    assert grad is not None
    # d(-NLL)/dz_target = (1 - p_target) / N > 0: a descent step lowers the target logit
    assert grad[0, 0, 2].item() == pytest.approx((1 - 3 / 6) / 3, abs=1e-6)
    assert grad[0, 1, 0].item() == pytest.approx((1 - 1 / 3) / 3, abs=1e-6)
    assert grad[1, 1, 1].item() == pytest.approx((1 - 1 / 4) / 3, abs=1e-6)
    # rows predicting -100 and the last rows get no gradient at all
    assert torch.all(grad[1, 0] == 0) and torch.all(grad[:, 2] == 0)
    logits.grad = None
    gd_loss(logits, labels).backward()
    assert torch.allclose(logits.grad, -grad)


def test_all_masked_batch_gives_zero_loss_with_zero_gradient() -> None:
    logits = torch.randn(2, 4, 5, requires_grad=True)
    labels = torch.full((2, 4), -100)
    for loss_fn in (ga_loss, gd_loss, me_loss):
        loss = loss_fn(logits, labels)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.all(logits.grad == 0)
    assert kl_loss(logits, torch.randn(2, 4, 5), labels).item() == 0.0


# ---------------------------------------------------------------- ME


def test_me_loss_hand_computed() -> None:
    logits, labels = toy_batch()
    expected = (KL_U_R123 + 0.0 + KL_U_R112) / 3
    assert KL_U_R123 == pytest.approx(LN(4 / 3) / 3)  # sanity of the hand algebra
    assert me_loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)


def test_me_loss_is_zero_with_zero_gradient_at_uniform_logits() -> None:
    logits = torch.full((2, 4, 7), 3.25, requires_grad=True)  # any constant row is uniform
    labels = torch.tensor([[1, 2, 3, 4], [-100, 0, 6, -100]])
    loss = me_loss(logits, labels)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.allclose(logits.grad, torch.zeros_like(logits), atol=1e-7)


def _naive_kl_uniform(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(U || softmax) built the obvious way: explicit (B, T-1, V) uniform and softmax tensors."""
    z = logits[:, :-1].double()
    p = torch.softmax(z, dim=-1)
    u = torch.full_like(p, 1.0 / z.shape[-1])
    kl = (u * (u.log() - p.log())).sum(-1)  # (B, T-1)
    mask = (labels[:, 1:] != -100).double()
    return (kl * mask).sum() / mask.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_me_loss_matches_naive_uniform_kl(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(3, 6, 11, generator=gen)
    labels = torch.randint(0, 11, (3, 6), generator=gen)
    labels[0, :3] = -100  # masked question
    labels[2, 4:] = -100  # padding
    naive = _naive_kl_uniform(logits, labels).item()
    assert me_loss(logits, labels).item() == pytest.approx(naive, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_me_loss_gradient_matches_autograd_of_naive_kl(dtype: torch.dtype) -> None:
    # 3 x 21 positions: runs longer than one 8-row chunk, gaps between them (masked questions,
    # padding), an outer factor on the loss (grad_out != 1) and a non-contiguous logits view.
    gen = torch.Generator().manual_seed(7)
    base = 3.0 * torch.randn(3, 21, 2 * 13, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 13, (3, 21), generator=gen)
    labels[0, :5] = -100
    labels[1, 17:] = -100
    labels[2, 2:4] = -100
    ref = base[..., ::2].clone().requires_grad_(True)  # (3, 21, 13)
    (2.5 * _naive_kl_uniform(ref, labels)).backward()
    leaf = base.to(dtype).requires_grad_(True)
    loss = 2.5 * me_loss(leaf[..., ::2], labels)  # strided view of the vocabulary
    loss.backward()
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-6
    assert loss.item() == pytest.approx(
        2.5 * _naive_kl_uniform(ref.detach(), labels).item(), abs=tol * 10
    )
    grad = leaf.grad[..., ::2].double()
    assert torch.allclose(grad, ref.grad, atol=tol)
    assert torch.count_nonzero(leaf.grad[..., 1::2]) == 0
    assert torch.count_nonzero(grad[0, :4]) == 0  # rows predicting a masked label


def test_me_loss_second_backward_is_refused_not_wrong() -> None:
    logits = torch.randn(2, 4, 5, requires_grad=True)
    labels = torch.randint(0, 5, (2, 4))
    loss = me_loss(logits, labels)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="once per forward"):
        loss.backward()


def test_me_descent_raises_next_token_entropy() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = (3.0 * torch.randn(2, 5, 8, generator=gen)).requires_grad_(True)
    labels = torch.randint(0, 8, (2, 5), generator=gen)
    labels[1, 3:] = -100
    before = token_entropy_next(logits, labels).item()
    opt = torch.optim.SGD([logits], lr=30.0)  # the gradient is divided by N rows
    for _ in range(60):
        opt.zero_grad()
        me_loss(logits, labels).backward()
        opt.step()
    after = token_entropy_next(logits, labels).item()
    assert after > before + 0.5
    assert after == pytest.approx(LN(8), abs=0.05)  # close to the maximum entropy


# ---------------------------------------------------------------- KL


def test_kl_loss_hand_computed() -> None:
    logits = torch.tensor([[UNIFORM, R123, JUNK, UNIFORM]])  # (1, 4, 3)
    ref = torch.tensor([[R123, UNIFORM, R112, JUNK]])  # (1, 4, 3)
    labels = torch.tensor([[-100, 0, 1, -100]])  # rows 0 and 1 count; row 2 predicts -100
    # row 0: KL(p_ref = (1,2,3)/6 || U) = sum p ln(3p); row 1: KL(U || (1,2,3)/6)
    kl_row0 = 1 / 6 * LN(3 / 6) + 2 / 6 * LN(6 / 6) + 3 / 6 * LN(9 / 6)
    expected = (kl_row0 + KL_U_R123) / 2
    assert kl_row0 == pytest.approx(LN(3) / 2 - 2 * LN(2) / 3)
    assert kl_loss(logits, ref, labels).item() == pytest.approx(expected, abs=1e-6)


def test_kl_loss_zero_at_reference_and_no_gradient_into_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 6, generator=gen, requires_grad=True)
    ref = logits.detach().clone().requires_grad_(True)
    labels = torch.randint(0, 6, (2, 4), generator=gen)
    assert kl_loss(logits, ref, labels).item() == pytest.approx(0.0, abs=1e-6)
    shifted = (logits.detach() + torch.randn(2, 4, 6, generator=gen)).requires_grad_(True)
    loss = kl_loss(shifted, ref, labels)
    assert loss.item() > 0
    loss.backward()
    assert ref.grad is None and shifted.grad is not None


def test_kl_loss_rejects_mismatched_reference() -> None:
    with pytest.raises(ValueError, match="ref_logits"):
        kl_loss(torch.zeros(1, 3, 4), torch.zeros(1, 3, 5), torch.zeros(1, 3, dtype=torch.long))


# ---------------------------------------------------------------- preference losses


def test_npo_hand_computed() -> None:
    nll = torch.tensor([3.0, 1.0])
    ref = torch.tensor([1.0, 1.0])
    # -(2/0.5) * mean(log sig(1), log sig(0)) = 2 * (ln(1 + e^-1) + ln 2)
    expected = 2 * (LN(1 + math.exp(-1)) + LN(2))
    assert npo_loss(nll, ref, beta=0.5).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("beta", [0.1, 1.0, 2.5])
def test_npo_at_reference_is_two_over_beta_log_two(beta: float) -> None:
    nll = torch.tensor([4.0, 7.5, 0.3])
    assert npo_loss(nll, nll.clone(), beta).item() == pytest.approx(2 / beta * LN(2), rel=1e-6)


def test_npo_gradient_pushes_nll_up_and_reference_is_constant() -> None:
    nll = torch.tensor([2.0, 5.0], requires_grad=True)
    ref = torch.tensor([2.0, 1.0], requires_grad=True)
    npo_loss(nll, ref, 0.1).backward()
    assert torch.all(nll.grad < 0)  # descent increases the forget NLL
    # d/d nll_i = -(2/beta) * beta * sig(-beta * d_i) / B = -sig(-beta d_i)
    expected = [-(1 / (1 + math.exp(0.0))), -(1 / (1 + math.exp(0.1 * 4.0)))]
    assert nll.grad.tolist() == pytest.approx(expected, abs=1e-6)
    assert ref.grad is None


def test_npo_is_stable_for_extreme_ratios() -> None:
    nll = torch.tensor([1e4, -1e4])
    loss = npo_loss(nll, torch.zeros(2), beta=1.0)
    # log sig(1e4) ~ 0, log sig(-1e4) ~ -1e4: loss = -(2/1) * (-1e4 / 2) = 1e4
    assert torch.isfinite(loss) and loss.item() == pytest.approx(1e4, rel=1e-6)


def test_dpo_hand_computed_and_at_reference() -> None:
    one = torch.tensor([1.0])
    # ((2 - 1) - (1 - 1)) = 1 -> -(2/1) log sig(1) = 2 ln(1 + e^-1)
    loss = dpo_loss(torch.tensor([2.0]), one, one, one, beta=1.0)
    assert loss.item() == pytest.approx(2 * LN(1 + math.exp(-1)), abs=1e-6)
    ans, idk = torch.tensor([3.0, 9.0]), torch.tensor([4.0, 2.0])
    at_ref = dpo_loss(ans, idk, ans.clone(), idk.clone(), beta=0.1)
    assert at_ref.item() == pytest.approx(2 / 0.1 * LN(2), rel=1e-6)


def test_dpo_gradient_prefers_refusal() -> None:
    ans = torch.tensor([3.0], requires_grad=True)
    idk = torch.tensor([4.0], requires_grad=True)
    ref_ans = torch.tensor([3.0], requires_grad=True)
    ref_idk = torch.tensor([4.0], requires_grad=True)
    dpo_loss(ans, idk, ref_ans, ref_idk, beta=0.1).backward()
    assert ans.grad.item() < 0  # descent raises the answer's NLL
    assert idk.grad.item() > 0  # and lowers the refusal's NLL
    # d/d nll_ans = -(2/b) * b * sig(-b * 0) = -2 * 0.5 = -1 (B = 1)
    assert ans.grad.item() == pytest.approx(-1.0, abs=1e-6)
    assert idk.grad.item() == pytest.approx(1.0, abs=1e-6)
    assert ref_ans.grad is None and ref_idk.grad is None


def test_ap_hand_computed_gradient_and_equal_point() -> None:
    ans = torch.tensor([1.0], requires_grad=True)
    idk = torch.tensor([3.0], requires_grad=True)
    loss = ap_loss(ans, idk, beta=0.5)
    # -(1/0.5) log sig(0.5 * (3 - 1)) = 2 ln(1 + e^-1)
    assert loss.item() == pytest.approx(2 * LN(1 + math.exp(-1)), abs=1e-6)
    loss.backward()
    assert ans.grad.item() > 0  # descent lowers the retain answer's NLL
    assert idk.grad.item() < 0  # and raises the refusal's NLL on retain questions
    x = torch.tensor([2.0, 6.0])
    assert ap_loss(x, x.clone(), beta=0.1).item() == pytest.approx(LN(2) / 0.1, rel=1e-6)


# ---------------------------------------------------------------- dtypes and validation


@pytest.mark.parametrize(
    "loss_fn", [ga_loss, gd_loss, idk_loss, mismatch_loss, me_loss, token_entropy_next]
)
def test_bf16_logits_are_computed_in_fp32(loss_fn) -> None:
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 5, 9, generator=gen).bfloat16().requires_grad_(True)
    labels = torch.randint(0, 9, (2, 5), generator=gen)
    labels[0, :2] = -100
    loss = loss_fn(logits, labels)
    assert loss.dtype == torch.float32
    # upcast happens before any arithmetic: same value as on the fp32 copy of the bf16 numbers
    reference = loss_fn(logits.detach().float(), labels)
    assert loss.item() == pytest.approx(reference.item(), abs=1e-6)
    loss.backward()
    assert logits.grad is not None and logits.grad.dtype == torch.bfloat16


@pytest.mark.parametrize(
    "loss_fn", [ga_loss, gd_loss, idk_loss, mismatch_loss, me_loss, token_entropy_next]
)
def test_float64_logits_are_computed_in_float64(loss_fn) -> None:
    # A float64 model (exact comparisons) must not be rounded to float32 inside the loss:
    # logits that differ by 1e-12 give losses that differ, which float32 could not tell apart.
    gen = torch.Generator().manual_seed(8)
    logits = torch.randn(2, 5, 9, generator=gen, dtype=torch.float64).requires_grad_(True)
    labels = torch.randint(0, 9, (2, 5), generator=gen)
    labels[0, :2] = -100
    loss = loss_fn(logits, labels)
    assert loss.dtype == torch.float64
    nudged = logits.detach().clone()
    nudged[:, :-1, 0] += 1e-9  # every counted row: below float32's resolution of these values
    assert loss_fn(nudged, labels).item() != loss.item()
    loss.backward()
    assert logits.grad is not None and logits.grad.dtype == torch.float64


def test_float64_sequence_losses_stay_float64() -> None:
    nll = torch.tensor([3.0, 5.0], dtype=torch.float64)
    ref = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert npo_loss(nll, ref, 0.1).dtype == torch.float64
    assert ap_loss(nll, ref, 0.1).dtype == torch.float64
    assert dpo_loss(nll, ref, ref, nll, 0.1).dtype == torch.float64
    # a float32 model with float64 cached reference NLLs stays float32
    assert npo_loss(nll.float(), ref, 0.1).dtype == torch.float32


def test_bf16_sequence_nll_and_kl() -> None:
    gen = torch.Generator().manual_seed(6)
    logits = torch.randn(2, 4, 5, generator=gen).bfloat16()
    ref = torch.randn(2, 4, 5, generator=gen).bfloat16()
    labels = torch.randint(0, 5, (2, 4), generator=gen)
    nll, _ = sequence_nll(logits, labels)
    assert nll.dtype == torch.float32
    assert torch.allclose(nll, sequence_nll(logits.float(), labels)[0], atol=1e-6)
    kl = kl_loss(logits, ref, labels)
    assert kl.item() == pytest.approx(kl_loss(logits.float(), ref.float(), labels).item(), abs=1e-6)


def test_sequence_nll_matches_torch_full_cross_entropy() -> None:
    # cross-check against the straightforward formula on a random batch
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(3, 6, 10, generator=gen)
    labels = torch.randint(0, 10, (3, 6), generator=gen)
    labels[1, :4] = -100
    per_token = F.cross_entropy(
        logits[:, :-1].reshape(-1, 10), labels[:, 1:].reshape(-1), reduction="none"
    ).view(3, 5)
    nll, count = sequence_nll(logits, labels)
    assert torch.allclose(nll, per_token.sum(-1), atol=1e-5)
    assert count.tolist() == (labels[:, 1:] != -100).sum(-1).tolist()


@pytest.mark.parametrize("beta", [0.0, -1.0, math.nan, math.inf, "0.1", None])
def test_bad_beta_is_rejected(beta: object) -> None:
    x = torch.ones(2)
    with pytest.raises(ValueError, match="beta"):
        npo_loss(x, x, beta)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(x, x, x, x, beta)
    with pytest.raises(ValueError, match="beta"):
        ap_loss(x, x, beta)


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="logits"):
        sequence_nll(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        me_loss(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="per-sequence"):
        npo_loss(torch.ones(2), torch.ones(3), 0.1)
