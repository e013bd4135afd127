"""R3GAN: the schedules, the fix-up initialisation, no normalization, the loss, training and loading."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from conftest import digits_data, make_trainer
from torch import nn

from gan_modules import R3GAN, load_generator
from gan_modules.nets import R3GANDiscriminator, R3GANGenerator
from gan_modules.nets.r3gan import ACTIVATION_GAIN, ResidualBlock
from gan_modules.r3gan import r3gan_schedule
from gan_modules.regularizers import r1_penalty, r2_penalty

SMALL = {"widths": [16, 8], "cardinalities": [4, 2], "blocks": [2, 1]}
PAPER = {"decay_kimg": 20000.0, "gamma": (0.05, 0.005), "lr": (2e-4, 5e-5), "beta2": (0.9, 0.99),
         "ema_kimg": (0.0, 5000.0)}


def _model(**kwargs) -> R3GAN:
    torch.manual_seed(0)
    return R3GAN(R3GANGenerator((1, 32, 32), latent_dim=8, **SMALL), R3GANDiscriminator((1, 32, 32), **SMALL), **kwargs)


def test_schedule_start_midpoint_end():
    start, mid, end, after = (r3gan_schedule(n, **PAPER) for n in (0, 10_000_000, 20_000_000, 10**9))
    assert start == pytest.approx({"gamma": 0.05, "lr": 2e-4, "beta2": 0.9, "ema_kimg": 0.0})
    assert mid == pytest.approx({"gamma": 0.0275, "lr": 1.25e-4, "beta2": 0.945, "ema_kimg": 2500.0})  # cos(π/2)
    assert end == after == pytest.approx({"gamma": 0.005, "lr": 5e-5, "beta2": 0.99, "ema_kimg": 5000.0})
    quarter = (1 - math.cos(math.pi / 4)) / 2  # the cosine moves slowly at first
    assert r3gan_schedule(5_000_000, **PAPER)["gamma"] == pytest.approx(0.05 + quarter * (0.005 - 0.05))
    assert r3gan_schedule(5_000_000, **PAPER, shape="linear")["gamma"] == pytest.approx(0.05 - 0.25 * 0.045)
    with pytest.raises(ValueError, match="cosine, linear"):
        r3gan_schedule(0, shape="step")


@pytest.mark.parametrize("cls", [R3GANGenerator, R3GANDiscriminator])
def test_residual_blocks_start_as_identity_with_fixup_scaling(cls):
    torch.manual_seed(0)
    net = cls((3, 32, 32), **SMALL)
    blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 2 + 1 + 1 + 1  # 4x4 has 2, the other three stages repeat the last entry, 1
    for block in blocks:
        x = torch.randn(2, block.expand.in_channels, 8, 8)
        assert torch.equal(block(x), x)  # the branch's last convolution is zero
        assert torch.count_nonzero(block.project.weight) == 0
    big = ResidualBlock(256, 8, 2, 3, num_blocks=16)
    expected = ACTIVATION_GAIN * 16 ** -0.25 / math.sqrt(256)  # gain L^(-1/(2m-2)), m = 3, over sqrt(fan_in)
    assert big.expand.weight.std().item() == pytest.approx(expected, rel=0.02)
    assert big.grouped.weight.std().item() == pytest.approx(ACTIVATION_GAIN * 16 ** -0.25 / math.sqrt(64 * 9), rel=0.02)


@pytest.mark.parametrize("cls", [R3GANGenerator, R3GANDiscriminator])
def test_no_normalization_layers(cls):
    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm,
             nn.LocalResponseNorm)
    net = cls((3, 64, 64), **SMALL)
    assert not any(isinstance(m, norms) for m in net.modules())
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in net.modules())  # no spectral norm
    grouped = {m.groups for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)}
    assert grouped == {4, 2}  # ResNeXt: every 3x3 convolution is grouped


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="cardinality 3 must divide"):
        R3GANGenerator((1, 32, 32), widths=[16], cardinalities=[3], blocks=[1])
    with pytest.raises(ValueError, match="widths must list 1 to 4"):
        R3GANDiscriminator((1, 32, 32), widths=[8] * 5)
    with pytest.raises(ValueError, match="decay_shape"):
        _model(decay_shape="exp")


def test_discriminator_loss_is_rpgan_plus_r1_r2():
    batch = {"image": torch.rand(6, 1, 32, 32) * 2 - 1}
    model = _model(gamma=2.0, gamma_final=2.0)
    torch.manual_seed(1)
    out = model.discriminator_loss(batch, reg_weight=1.0)
    torch.manual_seed(1)
    fake = model.generate(model.latents(6)).detach().requires_grad_(True)
    real = batch["image"].clone().requires_grad_(True)
    real_logits, fake_logits = model.discriminator(real), model.discriminator(fake)
    r1, r2 = r1_penalty(real, real_logits), r2_penalty(fake, fake_logits)
    expected = torch.nn.functional.softplus(fake_logits - real_logits).mean() + 1.0 * (r1 + r2)  # γ/2 = 1
    torch.testing.assert_close(out["loss"], expected)
    assert out["schedule/gamma"].item() == 2.0 and out["loss/D/r1"] > 0 and out["loss/D/r2"] > 0


def test_training_applies_and_logs_the_schedule_and_load_generator(tmp_path):
    L.seed_everything(0)
    model = _model(decay_kimg=0.1, ema_kimg_final=1.0, max_generator_steps=4)
    trainer = make_trainer(tmp_path, log_every_n_steps=1)
    trainer.fit(model, digits_data(batch_size=16))
    assert model.images_seen == 64
    last = r3gan_schedule(48, decay_kimg=0.1, gamma=(0.05, 0.005), lr=(2e-4, 5e-5), beta2=(0.9, 0.99),
                          ema_kimg=(0.0, 1.0))  # applied at the start of the last batch
    for optimizer in trainer.optimizers:
        group = optimizer.param_groups[0]
        assert group["lr"] == pytest.approx(last["lr"]) and group["betas"] == pytest.approx((0.0, last["beta2"]))
    assert model.gamma == pytest.approx(last["gamma"]) and model.ema_half_life_kimg == pytest.approx(last["ema_kimg"])
    metrics = trainer.callback_metrics
    for key in ("gamma", "lr", "beta2", "ema_kimg"):
        assert metrics[f"schedule/{key}"].item() == pytest.approx(last[key], rel=1e-6)
    assert metrics["ema/beta"].item() == pytest.approx(0.5 ** (16 / (1000 * last["ema_kimg"])))
    assert all(torch.isfinite(metrics[k]) for k in ("loss/D", "loss/G", "loss/D/r1", "loss/D/r2"))

    trainer.save_checkpoint(tmp_path / "r3.ckpt")
    generator = load_generator(tmp_path / "r3.ckpt")
    assert isinstance(generator, R3GANGenerator) and generator.latent_dim == 8
    z = torch.randn(3, 8)
    torch.testing.assert_close(generator(z), model.sample(3, z=z))


class _Reals(L.Callback):
    """The real images each player's loss reads, per batch, and the loader's batch."""

    def __init__(self, model: R3GAN) -> None:
        self.seen: list[tuple[str, torch.Tensor]] = []
        self.batches: list[torch.Tensor] = []
        real_samples = model.real_samples

        def recording(batch):  # noqa: ANN001, ANN202
            # GAN.discriminator_loss reads the reals first, generator_loss after: label by the step counters
            player = "G" if model.discriminator_steps > model.generator_steps else "D"
            self.seen.append((player, batch["image"].clone()))
            return real_samples(batch)

        model.real_samples = recording

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch["image"].clone())


@pytest.mark.parametrize("fresh", [True, False])
def test_generator_step_draws_its_own_real_batch(tmp_path, fresh):
    model = _model(fresh_generator_reals=fresh, max_kimg=0.024, decay_kimg=1.0)
    reals = _Reals(model)
    make_trainer(tmp_path, callbacks=[reals]).fit(model, digits_data(batch_size=8))
    assert model.generator_steps == 3 and model.images_seen == 24  # max_kimg: images shown to D
    assert [len(b) for b in reals.batches] == [16 if fresh else 8] * 3
    d_reals = [x for player, x in reals.seen if player == "D"]
    g_reals = [x for player, x in reals.seen if player == "G"]
    for batch, d_real, g_real in zip(reals.batches, d_reals, g_reals, strict=True):
        assert torch.equal(d_real, batch[:8])
        assert torch.equal(g_real, batch[8:] if fresh else batch)


def test_fresh_generator_reals_needs_a_gan_datamodule(tmp_path):
    from torch.utils.data import DataLoader

    from datamodules.tensors import TensorDictDataset

    loader = DataLoader(TensorDictDataset(torch.randn(8, 1, 32, 32)), batch_size=4)
    with pytest.raises(ValueError, match="fresh_generator_reals"):
        make_trainer(tmp_path).fit(_model(fresh_generator_reals=True, max_generator_steps=1), train_dataloaders=loader)
