"""``lazy_regularization: separate`` against a hand-written stylegan2-ada update (training_loop.py's
Gmain/Greg/Dmain/Dreg phases with ``mb_ratio``), and its pieces."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from datamodules.tensors import TensorDictDataset
from gan_modules import StyleGAN
from gan_modules.lazy_regularization import check_lazy_mode, minibatch_ratio, scale_for_lazy_steps
from gan_modules.nets import StyleGANDiscriminator, StyleGANGenerator

LR, BETA2, GAMMA, D_INTERVAL, G_INTERVAL = 0.002, 0.99, 1.0, 2, 4


def _model(mode: str) -> StyleGAN:
    torch.manual_seed(0)
    g = StyleGANGenerator((1, 16, 16), latent_dim=8, w_dim=8, channel_base=64, channel_max=8, mapping_layers=2)
    d = StyleGANDiscriminator((1, 16, 16), channel_base=64, channel_max=8, mbstd_group_size=4)
    adam = lambda params: torch.optim.Adam(params, lr=LR, betas=(0.0, BETA2), eps=1e-8)  # noqa: E731
    return StyleGAN(g, d, r1_gamma=GAMMA, reg_interval=D_INTERVAL, pl_weight=0.0, pl_interval=G_INTERVAL,
                    style_mixing_prob=0.0, ema_half_life_kimg=None, max_generator_steps=1, num_fixed_samples=2,
                    lazy_regularization=mode, g_optimizer=adam, d_optimizer=adam)


def _official_update(generator, discriminator, real, z_d, z_g) -> None:
    """One batch of stylegan2-ada's loop (Dmain, Dreg on batch 0, Gmain; Greg is empty with pl_weight 0)."""
    d_ratio, g_ratio = D_INTERVAL / (D_INTERVAL + 1), G_INTERVAL / (G_INTERVAL + 1)
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=LR * d_ratio, betas=(0.0, BETA2**d_ratio), eps=1e-8)
    g_opt = torch.optim.Adam(generator.parameters(), lr=LR * g_ratio, betas=(0.0, BETA2**g_ratio), eps=1e-8)
    # Dmain: softplus(D(fake)) + softplus(-D(real)), no penalty
    with torch.no_grad():
        fake = generator.synthesis(generator.mapping(z_d))
    loss = F.softplus(discriminator(fake)).mean() + F.softplus(-discriminator(real)).mean()
    d_opt.zero_grad(set_to_none=True)
    loss.backward()
    d_opt.step()
    # Dreg: R1 alone on a fresh forward, times the interval (the phase's gain)
    real_tmp = real.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(discriminator(real_tmp).sum(), real_tmp, create_graph=True)
    loss = (grads.square().sum([1, 2, 3]) * (GAMMA / 2)).mean() * D_INTERVAL
    d_opt.zero_grad(set_to_none=True)
    loss.backward()
    d_opt.step()
    # Gmain
    discriminator.requires_grad_(False)
    loss = F.softplus(-discriminator(generator.synthesis(generator.mapping(z_g)))).mean()
    g_opt.zero_grad(set_to_none=True)
    loss.backward()
    g_opt.step()


def _fit(model: StyleGAN, real: torch.Tensor, latents: list[torch.Tensor], trainer_factory) -> None:
    queue = list(latents)
    model.latents = lambda n, generator=None: queue.pop(0)[:n]  # the same z as the reference, in order
    loader = DataLoader(TensorDictDataset(real), batch_size=len(real))
    trainer_factory().fit(model, train_dataloaders=loader)
    assert not queue


def _compare(model: StyleGAN, generator, discriminator) -> tuple[float, float]:
    d_err = max((a - b).abs().max().item() for a, b in zip(model.discriminator.parameters(), discriminator.parameters(), strict=True))
    # The noise strengths' gradients depend on the random noise maps, which are not replayed; every other
    # generator parameter sees outputs that do not depend on them (the strengths start at 0)
    g_err = max((a - b).abs().max().item() for (name, a), b in zip(model.generator.named_parameters(),
                                                                    generator.parameters(), strict=True) if "noise" not in name)
    return d_err, g_err


def test_separate_steps_match_the_official_update(trainer_factory) -> None:
    torch.manual_seed(1)
    real, z_d, z_g = torch.randn(4, 1, 16, 16).clamp(-1, 1), torch.randn(4, 8), torch.randn(4, 8)
    model = _model("separate")
    generator, discriminator = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
    _official_update(generator, discriminator, real, z_d, z_g)
    _fit(model, real, [z_d, z_g], trainer_factory)
    assert model.discriminator_steps == 1 and model.generator_steps == 1
    d_err, g_err = _compare(model, generator, discriminator)
    assert d_err < 1e-6 and g_err < 1e-6
    # the optimizers carry the corrected hyperparameters (checkpointed with their state)
    d_opt, g_opt = model.trainer.optimizers
    assert d_opt.param_groups[0]["lr"] == pytest.approx(LR * 2 / 3)
    assert g_opt.param_groups[0]["betas"][1] == pytest.approx(BETA2**0.8)

    added = _model("added")  # one step on the summed loss at the uncorrected lr: a different update
    _fit(added, real, [z_d, z_g], trainer_factory)
    d_err, g_err = _compare(added, generator, discriminator)
    assert d_err > 1e-4 and g_err > 1e-4


def test_separate_needs_a_family_with_the_penalty_hook() -> None:
    from conftest import digits_gan

    with pytest.raises(ValueError, match="discriminator_regularization"):
        digits_gan(r1_gamma=1.0, reg_interval=4, lazy_regularization="separate")


def test_pieces() -> None:
    assert minibatch_ratio(16) == pytest.approx(16 / 17)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=0.0025, betas=(0.5, 0.99))
    scale_for_lazy_steps(optimizer, 4)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.002)
    assert optimizer.param_groups[0]["betas"] == pytest.approx((0.5**0.8, 0.99**0.8))
    with pytest.raises(ValueError, match="lazy_regularization"):
        check_lazy_mode("official")
