"""UnrolledGAN: the unrolled discriminator against hand computations, second-order terms, training."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import toy_data

from gan_modules import GAN, UnrolledGAN
from gan_modules.nets import MLPDiscriminator, MLPGenerator
from gan_modules.unrolled import adam_step


def nets(hidden: int = 8, latent: int = 3) -> tuple[MLPGenerator, MLPDiscriminator]:
    torch.manual_seed(0)
    return MLPGenerator((2,), latent_dim=latent, hidden_dim=hidden), MLPDiscriminator((2,), hidden_dim=hidden)


def unrolled(steps: int, **kwargs) -> UnrolledGAN:
    g, d = nets()
    kwargs.setdefault("unroll_lr", 0.1)
    return UnrolledGAN(g, d, unrolled_steps=steps, **kwargs)


def batch(n: int = 16) -> dict[str, torch.Tensor]:
    return {"image": torch.randn(n, 2, generator=torch.Generator().manual_seed(1))}


def test_zero_steps_is_the_plain_gan_generator_loss():
    model = unrolled(0)
    plain = GAN(copy.deepcopy(model.generator), copy.deepcopy(model.discriminator))
    torch.manual_seed(5)
    ours = model.generator_loss(batch())["loss"]
    torch.manual_seed(5)
    reference = plain.generator_loss(batch())["loss"]
    torch.manual_seed(5)
    by_hand = F.softplus(-model.discriminator(model.generator(torch.randn(16, 3)))).mean()  # non-saturating
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    torch.testing.assert_close(ours, by_hand)


@pytest.mark.parametrize("steps", [1, 2])
def test_sgd_unrolling_equals_hand_computed_steps(steps):
    model = unrolled(steps, unroll_optimizer="sgd", unroll_lr=0.3)
    real = batch()["image"]
    fake = model.generator(torch.randn(16, 3))
    params, _ = model.unrolled_discriminator(real, fake)
    d = copy.deepcopy(model.discriminator)
    for _ in range(steps):  # torch.autograd on a real module, updated in place
        loss = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        grads = torch.autograd.grad(loss, list(d.parameters()))
        with torch.no_grad():
            for p, g in zip(d.parameters(), grads, strict=True):
                p -= 0.3 * g
    for name, p in d.named_parameters():
        torch.testing.assert_close(params[name], p, rtol=1e-5, atol=1e-6)


def test_adam_unrolling_continues_the_optimizers_state():
    model = unrolled(1)
    real, fake = batch()["image"], model.generator(torch.randn(16, 3)).detach()
    d = copy.deepcopy(model.discriminator)
    optimizer = torch.optim.Adam(d.parameters(), lr=0.01, betas=(0.5, 0.99))

    def step() -> None:
        optimizer.zero_grad()
        (F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()).backward()
        optimizer.step()

    for _ in range(3):
        step()
    state = {name: {"step": int(optimizer.state[p]["step"]), "exp_avg": optimizer.state[p]["exp_avg"].clone(),
                    "exp_avg_sq": optimizer.state[p]["exp_avg_sq"].clone()} for name, p in d.named_parameters()}
    params = {name: p.detach().clone().requires_grad_(True) for name, p in d.named_parameters()}
    loss = F.softplus(-torch.func.functional_call(d, params, (real,))).mean() + \
        F.softplus(torch.func.functional_call(d, params, (fake,))).mean()
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    ours, new_state = adam_step(params, grads, state, lr=0.01, betas=(0.5, 0.99), eps=1e-8)
    step()
    for name, p in d.named_parameters():
        torch.testing.assert_close(ours[name], p, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(new_state[name]["exp_avg_sq"], optimizer.state[p]["exp_avg_sq"])
        assert new_state[name]["step"] == 4


def test_adam_step_from_zero_moments_is_finite_for_zero_gradients():
    params = {"w": torch.zeros(3, requires_grad=True)}
    grads = {"w": torch.tensor([0.0, 1.0, -2.0]) * params["w"] + torch.tensor([0.0, 1.0, -2.0])}
    new, _ = adam_step(params, grads, {}, lr=0.1, betas=(0.5, 0.999), eps=1e-8)
    torch.testing.assert_close(new["w"].detach(), torch.tensor([0.0, -0.1, 0.1]), rtol=1e-5, atol=1e-7)
    (grad,) = torch.autograd.grad(new["w"].sum(), params["w"])
    assert torch.isfinite(grad).all()


def _generator_grads(model: UnrolledGAN) -> list[torch.Tensor]:
    model.generator.zero_grad(set_to_none=True)
    torch.manual_seed(7)
    model.generator_loss(batch())["loss"].backward()
    return [p.grad.clone() for p in model.generator.parameters()]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_second_order_terms_change_the_generators_gradient(optimizer):
    with_terms = unrolled(3, unroll_optimizer=optimizer, second_order=True)
    without = unrolled(3, unroll_optimizer=optimizer, second_order=False)
    a, b = _generator_grads(with_terms), _generator_grads(without)
    assert all(torch.isfinite(g).all() for g in a + b)
    assert max((x - y).abs().max().item() for x, y in zip(a, b, strict=True)) > 1e-4
    # and both equal the plain GAN's gradient when nothing is unrolled
    zero_a, zero_b = _generator_grads(unrolled(0, second_order=True)), _generator_grads(unrolled(0, second_order=False))
    for x, y in zip(zero_a, zero_b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


@pytest.mark.parametrize("second_order", [True, False])
def test_generator_gradient_matches_finite_differences(second_order):
    """d L_G(θ_G, θ_D^k(θ_G)) / d θ_G by central differences (float64): only the full gradient matches it."""
    model = unrolled(2, unroll_optimizer="adam", unroll_lr=0.05, second_order=True).double()
    real = batch()["image"].double()
    z = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def loss_at() -> torch.Tensor:
        fake = model.generator(z)
        params, buffers = model.unrolled_discriminator(real, fake)
        return model.adversarial.g(model._functional_d(params, buffers, fake, None))

    model.second_order = second_order
    weight = model.generator.net[0].weight
    (analytic,) = torch.autograd.grad(loss_at(), weight)
    h, numeric = 1e-6, torch.zeros_like(weight)
    for index in [(0, 0), (1, 2), (5, 1)]:
        values = []
        for delta in (h, -h):
            with torch.no_grad():
                weight[index] += delta
            values.append(loss_at().item())  # the unrolling itself needs autograd: not under no_grad
            with torch.no_grad():
                weight[index] -= delta
        numeric[index] = (values[0] - values[1]) / (2 * h)
    picked = [(0, 0), (1, 2), (5, 1)]
    diff = max(abs(analytic[i].item() - numeric[i].item()) for i in picked)
    scale = max(abs(numeric[i].item()) for i in picked)
    if second_order:
        assert diff <= 1e-6 * max(scale, 1.0)
    else:
        assert diff > 1e-4 * scale  # dropping the second-order terms is an approximation


def test_unrolling_leaves_the_real_discriminator_alone():
    model = unrolled(3, r1_gamma=1.0, r2_gamma=1.0, loss="rpgan")
    before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    model.generator_loss(batch())["loss"].backward()
    for name, p in model.discriminator.named_parameters():
        torch.testing.assert_close(p, before[name], rtol=0, atol=0)
        assert p.grad is None
    assert all(p.grad is not None for p in model.generator.parameters())


def test_spectral_norm_buffers_are_not_advanced_by_the_unrolling():
    g, _ = nets()
    torch.manual_seed(0)
    model = UnrolledGAN(g, MLPDiscriminator((2,), hidden_dim=8, spectral_norm=True), unrolled_steps=2,
                        loss="hinge", unroll_lr=0.1)
    before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    model.generator_loss(batch())["loss"].backward()
    for name, value in model.discriminator.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_bad_arguments_are_explained():
    g, d = nets()
    with pytest.raises(ValueError, match="unrolled_steps"):
        UnrolledGAN(g, d, unrolled_steps=-1)
    with pytest.raises(ValueError, match="adam, sgd"):
        UnrolledGAN(g, d, unroll_optimizer="rmsprop")
    with pytest.raises(RuntimeError, match="unroll_lr"):
        UnrolledGAN(g, d, unrolled_steps=1).generator_loss(batch())


@pytest.mark.parametrize("kwargs", [dict(), dict(unroll_optimizer="sgd", loss="rpgan", r1_gamma=0.1, r2_gamma=0.1),
                                    dict(loss="wasserstein", gp_weight=0.1, n_critic=2, second_order=False)])
def test_a_few_training_steps_change_both_players(trainer_factory, kwargs):
    g, d = nets(hidden=16)
    d_optimizer = lambda params: torch.optim.Adam(params, lr=2e-3, betas=(0.5, 0.999))  # noqa: E731
    model = UnrolledGAN(g, d, unrolled_steps=2, max_generator_steps=4, d_optimizer=d_optimizer, **kwargs)
    g_before = [p.clone() for p in model.generator.parameters()]
    d_before = [p.clone() for p in model.discriminator.parameters()]
    trainer = trainer_factory()
    trainer.fit(model, toy_data(batch_size=32))
    assert model.generator_steps == 4
    assert all(not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters(), strict=True))
    d_changed = [not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters(), strict=True)]
    assert all(d_changed[:-1])  # the output bias cancels in the relativistic loss (rpgan): it may not move
    metrics = trainer.callback_metrics
    for key in ("loss/D", "loss/G", "D/fake/unrolled"):
        assert math.isfinite(metrics[key].item())
    lr, betas, eps, state = model._unroll_hyperparameters()  # read from the discriminator's optimizer
    assert (lr, betas, eps) == (2e-3, (0.5, 0.999), 1e-8)
    if model.unroll_optimizer == "adam":
        assert {s["step"] for s in state.values()} == {model.discriminator_steps}
