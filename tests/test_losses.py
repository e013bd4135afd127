"""Adversarial losses against hand-computed values, and the regularizers against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_modules import losses
from gan_modules.losses import LOSS_NAMES, AdversarialLoss, get_loss
from gan_modules.regularizers import (
    clip_weights,
    drift_penalty,
    gradient_penalty,
    r1_penalty,
    r2_penalty,
    zero_centered_penalty,
)

R = [2.0, -1.0]
F = [0.5, -3.0]


def _sp(x: float) -> float:
    """softplus written out: log(1 + e^x)."""
    return math.log(1.0 + math.exp(x))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _bce_d(r: list[float], f: list[float]) -> float:
    """-log sigmoid(r) - log(1 - sigmoid(f)), averaged, with sigmoid written out."""
    sig = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    return _mean([-math.log(sig(x)) for x in r]) + _mean([-math.log(1.0 - sig(x)) for x in f])


EXPECTED_D = {
    "minimax": _bce_d(R, F),
    "nonsaturating": _bce_d(R, F),
    "lsgan": 0.5 * _mean([(x - 1) ** 2 for x in R]) + 0.5 * _mean([x**2 for x in F]),
    "wasserstein": _mean(F) - _mean(R),
    "hinge": _mean([max(0.0, 1 - x) for x in R]) + _mean([max(0.0, 1 + x) for x in F]),
    "rpgan": _mean([_sp(-(r - f)) for r, f in zip(R, F, strict=True)]),
}
EXPECTED_G = {
    "minimax": _mean([math.log(1.0 - 1.0 / (1.0 + math.exp(-x))) for x in F]),
    "nonsaturating": _mean([-math.log(1.0 / (1.0 + math.exp(-x))) for x in F]),
    "lsgan": 0.5 * _mean([(x - 1) ** 2 for x in F]),
    "wasserstein": -_mean(F),
    "hinge": -_mean(F),
    "rpgan": _mean([_sp(-(f - r)) for r, f in zip(R, F, strict=True)]),
}


def test_hand_values_are_what_we_think() -> None:
    # Pin a few of the hand-computed numbers so a typo in the helpers cannot hide a wrong formula.
    assert EXPECTED_D["lsgan"] == pytest.approx(0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 9) / 2)
    assert EXPECTED_D["wasserstein"] == pytest.approx(-1.25 - 0.5)
    assert EXPECTED_D["hinge"] == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert EXPECTED_G["lsgan"] == pytest.approx(0.5 * (0.25 + 16) / 2)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_d_loss_matches_hand_value(name: str) -> None:
    loss = get_loss(name)
    value = loss.d(torch.tensor(R, dtype=torch.float64), torch.tensor(F, dtype=torch.float64))
    assert value.dim() == 0
    assert value.item() == pytest.approx(EXPECTED_D[name], rel=1e-10)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_g_loss_matches_hand_value(name: str) -> None:
    loss = get_loss(name)
    r, f = torch.tensor(R, dtype=torch.float64), torch.tensor(F, dtype=torch.float64)
    value = loss.g(f, r)  # every G accepts real logits as the second argument
    assert value.dim() == 0
    assert value.item() == pytest.approx(EXPECTED_G[name], rel=1e-10)
    if not loss.needs_real_for_g:
        assert loss.g(f).item() == pytest.approx(EXPECTED_G[name], rel=1e-10)


def test_rpgan_g_requires_real_logits() -> None:
    assert get_loss("rpgan").needs_real_for_g
    with pytest.raises(ValueError, match="real_logits"):
        losses.rpgan_g(torch.zeros(2))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_losses_average_patch_maps(name: str) -> None:
    # A PatchGAN map [N, 1, h, w] is averaged over every element: same value as the flattened logits.
    loss = get_loss(name)
    r, f = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    assert loss.d(r, f).item() == pytest.approx(loss.d(r.flatten(), f.flatten()).item(), rel=1e-6)
    assert loss.g(f, r).item() == pytest.approx(loss.g(f.flatten(), r.flatten()).item(), rel=1e-6)


def test_extreme_logits_are_finite() -> None:
    big = torch.tensor([1e4, -1e4])
    for name in LOSS_NAMES:
        loss = get_loss(name)
        assert torch.isfinite(loss.d(big, -big)) and torch.isfinite(loss.g(big, -big))


def test_nonsaturating_g_has_larger_gradient_when_d_rejects_fakes() -> None:
    # d/df of minimax_g = -sigmoid(f) ~ -e^-5; of nonsaturating_g = -(1 - sigmoid(f)) ~ -1.
    grads = {}
    for name in ("minimax", "nonsaturating"):
        f = torch.tensor([-5.0], requires_grad=True)
        get_loss(name).g(f).backward()
        grads[name] = f.grad.abs().item()
    assert grads["minimax"] == pytest.approx(1.0 / (1.0 + math.exp(5.0)), rel=1e-5)
    assert grads["nonsaturating"] == pytest.approx(1.0 / (1.0 + math.exp(-5.0)), rel=1e-5)
    assert grads["nonsaturating"] > 100 * grads["minimax"]


def test_get_loss_names_and_alias() -> None:
    assert set(LOSS_NAMES) == {"minimax", "nonsaturating", "lsgan", "wasserstein", "hinge", "rpgan"}
    for name in LOSS_NAMES:
        loss = get_loss(name)
        assert isinstance(loss, AdversarialLoss) and loss.name == name
    assert get_loss("ns") is get_loss("nonsaturating")


def test_get_loss_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        get_loss("hnge")
    assert str(info.value) == "unknown loss 'hnge'; valid: hinge, lsgan, minimax, nonsaturating, rpgan, wasserstein"


# --------------------------------------------------------------------------- regularizers

SHAPES = [(2,), (3, 8, 8)]


class Linear(nn.Module):
    """D(x) = w . flatten(x): its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


def _linear_d(shape: tuple[int, ...], norm: float) -> Linear:
    w = torch.randn(math.prod(shape), dtype=torch.float64)
    return Linear(w / w.norm() * norm)


def _assert_weights_get_finite_grads(d: nn.Module) -> None:
    # Input-gradient penalties reach every weight; the last bias has no effect on dD/dx, so no grad.
    for name, p in d.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("shape", SHAPES)
def test_gradient_penalty_zero_for_unit_gradient(shape: tuple[int, ...]) -> None:
    d = _linear_d(shape, 1.0)
    real, fake = torch.randn(4, *shape, dtype=torch.float64), torch.randn(4, *shape, dtype=torch.float64)
    assert gradient_penalty(d, real, fake).item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_gradient_penalty_of_linear_d_and_backprop(shape: tuple[int, ...]) -> None:
    d = _linear_d(shape, 3.0)
    real, fake = torch.randn(4, *shape, dtype=torch.float64), torch.randn(4, *shape, dtype=torch.float64)
    fake.requires_grad_(True)
    penalty = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx((3.0 - 1.0) ** 2, rel=1e-8)
    penalty.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||, and fake is detached inside.
    assert torch.allclose(d.w.grad, 2 * (3.0 - 1.0) * d.w.detach() / 3.0)
    assert fake.grad is None


def test_gradient_penalty_accepts_lambda_and_is_reproducible() -> None:
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
    labels = torch.tensor([0, 1])
    disc = lambda x: d(x).squeeze(1) + labels  # noqa: E731  (a conditional D closing over labels)
    real, fake = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    a = gradient_penalty(disc, real, fake, generator=torch.Generator().manual_seed(1))
    b = gradient_penalty(disc, real, fake, generator=torch.Generator().manual_seed(1))
    assert a.item() == b.item()
    a.backward()
    _assert_weights_get_finite_grads(d)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("penalty", [r1_penalty, r2_penalty])
def test_r1_r2_of_linear_d(shape: tuple[int, ...], penalty) -> None:
    d = _linear_d(shape, 2.5)
    x = torch.randn(5, *shape, dtype=torch.float64).requires_grad_(True)
    value = penalty(x, d(x))
    assert value.item() == pytest.approx(2.5**2, rel=1e-10)
    value.backward()
    assert torch.allclose(d.w.grad, 2 * d.w.detach())  # d/dw ||w||^2


@pytest.mark.parametrize("penalty", [r1_penalty, r2_penalty])
def test_r1_r2_backprop_into_nonlinear_d(penalty) -> None:
    d = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))
    x = torch.randn(3, 3, 8, 8).requires_grad_(True)
    value = penalty(x, d(x).view(-1))
    assert value.item() > 0
    value.backward()
    _assert_weights_get_finite_grads(d)


def test_r1_requires_grad_on_input() -> None:
    d = _linear_d((2,), 1.0)
    x = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="requires_grad_"):
        r1_penalty(x, d(x))


def test_clip_weights_clamps_in_place() -> None:
    d = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        for p in d.parameters():
            p.mul_(100)
    untouched = d[0].weight.detach().abs() <= 0.01
    before = d[0].weight.detach().clone()
    clip_weights(d, 0.01)
    for p in d.parameters():
        assert p.abs().max().item() <= 0.01 + 1e-12
    assert torch.equal(d[0].weight.detach()[untouched], before[untouched])
    with pytest.raises(ValueError):
        clip_weights(d, 0.0)


def test_drift_penalty() -> None:
    r = torch.tensor([2.0, -1.0, 0.5])
    assert drift_penalty(r).item() == pytest.approx((4 + 1 + 0.25) / 3)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_g_against_runs_d_on_the_reals_only_when_the_loss_needs_them(name: str) -> None:
    loss = get_loss(name)
    fake_logits = torch.randn(6, requires_grad=True)
    real_logits = torch.randn(6, requires_grad=True)
    calls = []

    def real_logits_of() -> torch.Tensor:
        calls.append(torch.is_grad_enabled())
        return real_logits * 1.0  # an op, so the no_grad of the call shows in requires_grad

    value = loss.g_against(fake_logits, real_logits_of)
    assert calls == ([False] if loss.needs_real_for_g else [])  # once, without gradients, or never
    expected = loss.g(fake_logits, real_logits.detach() if loss.needs_real_for_g else None)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert real_logits.grad is None and fake_logits.grad is not None  # G's gradient flows through fakes only


def test_r1_and_r2_are_the_one_zero_centred_penalty() -> None:
    assert r1_penalty is zero_centered_penalty and r2_penalty is zero_centered_penalty


def test_one_sided_label_smoothing_against_hand_values():
    real, fake = torch.tensor([0.5, -1.0]), torch.tensor([0.2, 2.0])
    s = 0.1  # real target 0.9
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    expected = (sum(0.9 * softplus(-r) + 0.1 * softplus(r) for r in (0.5, -1.0)) / 2
                + sum(softplus(f) for f in (0.2, 2.0)) / 2)
    for name in ("minimax", "nonsaturating", "ns"):
        loss = get_loss(name, label_smoothing=s)
        assert math.isclose(loss.d(real, fake).item(), expected, rel_tol=1e-6)
        assert loss.g is get_loss(name).g  # only D's real term changes
    # s = 0 is the unsmoothed loss, and at s = 1/2 the real term is minimal at r = 0 (target 1/2)
    assert get_loss("nonsaturating", 0.0) is get_loss("nonsaturating")
    r = torch.tensor([0.0], requires_grad=True)
    get_loss("minimax", 0.5).d(r, torch.zeros(1)).backward()
    assert abs(r.grad.item()) < 1e-7


@pytest.mark.parametrize("name", ["hinge", "wasserstein", "lsgan", "rpgan"])
def test_label_smoothing_is_refused_where_there_is_no_bce_target(name):
    with pytest.raises(ValueError, match="label_smoothing"):
        get_loss(name, label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        get_loss("nonsaturating", label_smoothing=1.0)


def test_families_take_label_smoothing():
    from conftest import digits_gan

    model = digits_gan(label_smoothing=0.1)
    real, fake = torch.tensor([1.0]), torch.tensor([-1.0])
    assert math.isclose(model.adversarial.d(real, fake).item(),
                        losses.minimax_d(real, fake, label_smoothing=0.1).item())
    with pytest.raises(ValueError, match="label_smoothing"):
        digits_gan(loss="hinge", label_smoothing=0.1)
