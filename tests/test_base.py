"""The GANModule loop: counters, n_critic, stopping, EMA, lazy regularization, schedulers, toggling."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from conftest import digits_data, digits_gan, toy_data, toy_gan

from gan_modules import GAN, ema_beta
from gan_modules.nets import MLPDiscriminator, MLPGenerator


def test_counters_and_global_step(trainer_factory):
    model = toy_gan(max_generator_steps=6)
    trainer = trainer_factory()
    trainer.fit(model, toy_data(batch_size=32))
    assert model.generator_steps == 6
    assert model.discriminator_steps == 6
    assert model.images_seen == 6 * 32
    assert trainer.global_step == 12  # Lightning counts the D and the G optimizer steps


def test_n_critic_runs_n_discriminator_steps_per_generator_step(trainer_factory):
    model = toy_gan(n_critic=5, max_generator_steps=3)
    trainer = trainer_factory()
    trainer.fit(model, toy_data())
    assert (model.discriminator_steps, model.generator_steps) == (15, 3)
    assert trainer.global_step == 18


def test_trainer_max_steps_also_stops(trainer_factory):
    model = toy_gan()
    trainer_factory(max_steps=10).fit(model, toy_data())
    assert model.generator_steps == 5


@pytest.mark.parametrize("decay", [0.5, 0.9])
def test_ema_follows_the_decay_formula(trainer_factory, decay):
    model = toy_gan(ema_decay=decay, max_generator_steps=3, g_optimizer=partial(torch.optim.SGD, lr=0.1))
    history = []
    original = model._update_ema

    def spy(batch_size):
        history.append([p.detach().clone() for p in model.generator.parameters()])
        original(batch_size)

    model._update_ema = spy
    start = [p.detach().clone() for p in model.generator.parameters()]
    trainer_factory().fit(model, toy_data())
    expected = start
    for params in history:  # ema_{t} = decay * ema_{t-1} + (1 - decay) * theta_t
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, params, strict=True)]
    for e, p in zip(expected, model.generator_ema.parameters(), strict=True):
        torch.testing.assert_close(p, e)
    assert not all(torch.equal(a, b) for a, b in zip(model.generator.parameters(), model.generator_ema.parameters(), strict=True))


def test_ema_beta_half_life_is_batch_size_independent():
    # after 10k images the weight of the start is 0.5, whatever the batch size
    for batch in (16, 64, 256):
        steps = 10_000 // batch
        assert ema_beta(batch, 10**9, None, 10.0, None) ** steps == pytest.approx(0.5, rel=0.03)
    assert ema_beta(32, 1000, None, 10.0, 0.05) == pytest.approx(0.5 ** (32 / 50))  # ramp-up caps the half-life
    assert ema_beta(32, 0, 0.999, None, None) == 0.999


def test_lazy_regularization_runs_every_kth_step_scaled_by_k(trainer_factory):
    model = toy_gan(r1_gamma=1.0, reg_interval=4, max_generator_steps=8)
    seen = []
    original = model.discriminator_loss
    model.discriminator_loss = lambda batch, reg_weight: (seen.append(reg_weight), original(batch, reg_weight))[1]
    trainer_factory().fit(model, toy_data())
    assert seen == [4.0, 0, 0, 0, 4.0, 0, 0, 0]


def test_discriminator_step_leaves_generator_without_gradients(trainer_factory):
    model = toy_gan(max_generator_steps=1)
    grads = {}
    original = model._optimize

    def spy(opt, loss):
        original(opt, loss)
        grads[len(grads)] = ([None if p.grad is None else p.grad.clone() for p in model.generator.parameters()],
                             [None if p.grad is None else p.grad.clone() for p in model.discriminator.parameters()])

    model._optimize = spy
    trainer_factory().fit(model, toy_data())
    g_after_d, d_after_d = grads[0]
    assert all(g is None for g in g_after_d) and all(g is not None for g in d_after_d)
    g_after_g, d_after_g = grads[1]
    assert all(g is not None for g in g_after_g)
    # D is frozen in the G step: its gradients are still those of its own step
    assert all(torch.equal(a, b) for a, b in zip(d_after_d, d_after_g, strict=True))


def test_schedulers_step_on_their_players_counter(trainer_factory):
    sched = partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    model = toy_gan(n_critic=2, max_generator_steps=3, g_scheduler=sched, d_scheduler=sched,
                    g_optimizer=partial(torch.optim.SGD, lr=1.0), d_optimizer=partial(torch.optim.SGD, lr=1.0))
    trainer = trainer_factory()
    trainer.fit(model, toy_data())
    d_opt, g_opt = trainer.optimizers
    assert d_opt.param_groups[0]["lr"] == pytest.approx(0.5**6)
    assert g_opt.param_groups[0]["lr"] == pytest.approx(0.5**3)


def test_epoch_scheduler_steps_once_per_epoch(trainer_factory):
    sched = partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    model = toy_gan(g_scheduler=sched, scheduler_interval="epoch", g_optimizer=partial(torch.optim.SGD, lr=1.0))
    trainer = trainer_factory(max_epochs=3)
    trainer.fit(model, toy_data(batch_size=64, num_samples=256))  # 4 batches an epoch
    assert model.generator_steps == 12
    assert trainer.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.5**3)


def test_gradient_clipping_bounds_the_step(trainer_factory):
    model = toy_gan(gradient_clip_val=1e-3, max_generator_steps=1, g_optimizer=partial(torch.optim.SGD, lr=1.0),
                    d_optimizer=partial(torch.optim.SGD, lr=1.0))
    before = torch.cat([p.detach().flatten().clone() for p in model.discriminator.parameters()])
    trainer_factory().fit(model, toy_data())
    after = torch.cat([p.detach().flatten() for p in model.discriminator.parameters()])
    assert 0 < (after - before).norm() <= 1e-3 * 1.0001


def test_weight_clipping_keeps_the_critic_in_the_box(trainer_factory):
    model = toy_gan(loss="wasserstein", clip_value=0.01, n_critic=2, max_generator_steps=2)
    trainer_factory().fit(model, toy_data())
    assert max(p.abs().max().item() for p in model.discriminator.parameters()) <= 0.01 + 1e-7


@pytest.mark.parametrize("kwargs", [dict(loss="wasserstein", gp_weight=10.0), dict(loss="rpgan", r1_gamma=1.0, r2_gamma=1.0),
                                    dict(loss="hinge"), dict(loss="lsgan"), dict(loss="minimax")])
def test_every_objective_trains_on_images_and_logs(trainer_factory, kwargs):
    model = digits_gan(max_generator_steps=2, **kwargs)
    trainer = trainer_factory()
    trainer.fit(model, digits_data())
    metrics = trainer.callback_metrics
    for key in ("loss/D", "loss/G", "D/real", "D/fake"):
        assert key in metrics and math.isfinite(metrics[key].item())
    for key, name in (("gp_weight", "loss/D/gp"), ("r1_gamma", "loss/D/r1"), ("r2_gamma", "loss/D/r2")):
        assert (name in metrics) == (key in kwargs)


def test_unknown_loss_names_the_valid_ones():
    with pytest.raises(ValueError, match="hinge.*lsgan"):
        toy_gan(loss="hnge")


def test_shape_mismatch_between_data_and_generator_is_explained(trainer_factory):
    model = GAN(MLPGenerator((3,), latent_dim=2), MLPDiscriminator((3,)), max_generator_steps=1)
    with pytest.raises(ValueError, match=r"data gives samples of shape \(2,\) but the generator makes \(3,\)"):
        trainer_factory().fit(model, toy_data())


def test_sample_uses_ema_and_is_reproducible():
    model = toy_gan(ema_decay=0.9)
    with torch.no_grad():
        for p in model.generator_ema.parameters():
            p.zero_()
    a = model.sample(5, generator=torch.Generator().manual_seed(1))
    b = model.sample(5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (5, 2)
    assert torch.equal(a, torch.zeros_like(a))  # a zeroed EMA generator, not the training one
    assert model.sample_fixed().shape == (64, 2)
