"""Progressive GAN: the fade-in schedule, the networks' layers and fades, and exact resume mid-fade."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from conftest import digits_data, make_trainer

from gan_modules import ProgressiveGAN, load_generator
from gan_modules.nets import ProgressiveDiscriminator, ProgressiveGenerator
from gan_modules.nets.layers import EqualizedConv2d, minibatch_stddev, pixel_norm
from gan_modules.nets.progressive import downscale, progressive_images, upscale
from gan_modules.progressive import progressive_schedule
from gan_modules.regularizers import drift_penalty

SMALL = {"channel_base": 128, "max_channels": 8}


def _nets(shape=(1, 32, 32), **g_kwargs):
    torch.manual_seed(0)
    return (ProgressiveGenerator(shape, latent_dim=8, **SMALL, **g_kwargs), ProgressiveDiscriminator(shape, **SMALL))


def _model(kimg_per_phase=0.064, **kwargs) -> ProgressiveGAN:
    return ProgressiveGAN(*_nets(), kimg_per_phase=kimg_per_phase, **kwargs)


@pytest.mark.parametrize(("images", "expected"), [
    (0, (0, 1.0)), (999, (0, 1.0)),  # 4x4: stabilisation only
    (1000, (1, 0.0)), (1250, (1, 0.25)), (1500, (1, 0.5)), (2000, (1, 1.0)), (2999, (1, 1.0)),  # 8x8
    (3000, (2, 0.0)), (3500, (2, 0.5)), (4000, (2, 1.0)),  # 16x16
    (5000, (3, 0.0)), (6000, (3, 1.0)), (7000, (3, 1.0)), (10**9, (3, 1.0)),  # 32x32, then stays
])
def test_schedule_at_phase_boundaries(images, expected):
    stage, alpha = progressive_schedule(images, kimg_per_phase=1.0, num_stages=4)
    assert stage == expected[0] and alpha == pytest.approx(expected[1])


def test_schedule_is_monotone_and_rejects_bad_arguments():
    points = [progressive_schedule(n, 0.5, 5) for n in range(0, 10_000, 37)]
    assert all(a <= b for a, b in zip(points[:-1], points[1:], strict=True))  # (stage, alpha) never goes back
    with pytest.raises(ValueError):
        progressive_schedule(0, 0.0, 4)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_fade_endpoints_and_linearity(stage):
    g, d = _nets(output_activation="linear")
    z, x = torch.randn(4, 8), torch.rand(4, 1, 32, 32) * 2 - 1

    def run(net, arg, s, a):
        net.set_progress(s, a)
        return net(arg)

    previous, new = run(g, z, stage - 1, 1.0), run(g, z, stage, 1.0)
    assert torch.equal(run(g, z, stage, 0.0), previous)  # alpha 0 is exactly the previous stage
    torch.testing.assert_close(run(g, z, stage, 1e-6), previous, atol=1e-5, rtol=0)
    torch.testing.assert_close(run(g, z, stage, 1 - 1e-6), new, atol=1e-5, rtol=0)
    # the output is the blend of the two toRGB images (nearest upsampling is linear)
    torch.testing.assert_close(run(g, z, stage, 0.3), torch.lerp(previous, new, 0.3), atol=1e-5, rtol=1e-5)
    # the generator always makes full-size images, piecewise constant at the stage's resolution
    factor = 32 // (4 << stage)
    assert new.shape == (4, 1, 32, 32)
    torch.testing.assert_close(upscale(downscale(new, factor), factor), new)

    d_previous, d_new = run(d, x, stage - 1, 1.0), run(d, x, stage, 1.0)
    assert torch.equal(run(d, x, stage, 0.0), d_previous)
    torch.testing.assert_close(run(d, x, stage, 1e-6), d_previous, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(run(d, x, stage, 1 - 1e-6), d_new, atol=1e-5, rtol=1e-4)
    # D average-pools its input to the stage's resolution: it cannot tell x from its pooled version
    torch.testing.assert_close(run(d, upscale(downscale(x, factor), factor), stage, 1.0), d_new)


def test_real_images_are_faded_like_the_generator():
    x = torch.rand(2, 1, 32, 32)
    at_8 = upscale(downscale(x, 4), 4)
    torch.testing.assert_close(progressive_images(x, 1, 1.0), at_8)
    torch.testing.assert_close(progressive_images(x, 1, 0.0), upscale(downscale(x, 8), 8))
    torch.testing.assert_close(progressive_images(x, 1, 0.25), torch.lerp(upscale(downscale(x, 8), 8), at_8, 0.25))
    torch.testing.assert_close(progressive_images(x, 3, 1.0), x)


def test_equalized_learning_rate_scales_weights_at_runtime():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3, activation="linear", gain=math.sqrt(2))  # ProGAN's layer
    assert conv.weight.std().item() == pytest.approx(1.0, rel=0.05)  # stored weights are N(0, 1)
    assert conv.weight_gain == pytest.approx(math.sqrt(2 / (64 * 9)))  # He's constant
    x = torch.randn(2, 64, 8, 8)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * conv.weight_gain, conv.bias, padding=1))
    # so the output has the variance He initialisation gives (gain^2 = 2; interior pixels: no zero padding)
    assert conv(torch.randn(64, 64, 8, 8))[..., 1:-1, 1:-1].var().item() == pytest.approx(2.0, rel=0.1)


def test_minibatch_stddev_channel():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], x)
    for i in range(8):  # groups are i % 2 (the official reshape [G, N/G, ...])
        members = x[i % 2::2]
        expected = members.std(dim=0, unbiased=False).mean()
        torch.testing.assert_close(out[i, 3], torch.full((4, 4), expected.item()), atol=1e-4, rtol=1e-4)
    assert minibatch_stddev(torch.randn(6, 3, 4, 4), 4).shape == (6, 4, 4, 4)  # group size 3 divides 6


def test_pixel_norm_gives_unit_rms():
    x = torch.randn(3, 16, 5, 5) * 7 + 2
    assert torch.allclose(pixel_norm(x).pow(2).mean(dim=1), torch.ones(3, 5, 5), atol=1e-5)


def test_drift_term_in_discriminator_loss():
    batch = {"image": torch.rand(8, 1, 32, 32) * 2 - 1}
    outs = []
    for drift in (0.0, 0.001):
        model = _model(drift_weight=drift, gp_weight=0.0)
        torch.manual_seed(1)
        outs.append(model.discriminator_loss(batch, reg_weight=1.0))
    torch.manual_seed(1)
    real_logits = _model().discriminator(progressive_images(batch["image"], 0, 1.0))
    torch.testing.assert_close(outs[1]["loss/D/drift"], drift_penalty(real_logits).detach())
    torch.testing.assert_close(outs[1]["loss"] - outs[0]["loss"], 0.001 * outs[1]["loss/D/drift"])
    assert outs[1]["progress/resolution"].item() == 4.0 and outs[1]["progress/alpha"].item() == 1.0


class SaveAt(L.Callback):
    """Saves a checkpoint at the end of the batch that makes generator step ``step``."""

    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_steps == self.step:
            trainer.save_checkpoint(self.path)


class Recorder(L.Callback):
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.rows.append((outputs["loss/D"].item(), outputs["loss/G"].item(), outputs["progress/resolution"].item(),
                          outputs["progress/alpha"].item()))


def _fit(root, steps, ckpt_path=None, extra=(), seed=0):
    L.seed_everything(seed)
    model = _model(max_generator_steps=steps)
    recorder = Recorder()
    trainer = make_trainer(root, callbacks=[recorder, *extra])
    trainer.fit(model, digits_data(batch_size=16), ckpt_path=ckpt_path)
    return model, trainer, recorder.rows


def test_resume_in_the_middle_of_a_fade_is_exact(tmp_path):
    # 64 images a phase, 16 a batch: batches 0-3 train 4x4, 4-7 fade in 8x8; the stop after 6 batches
    # is half-way through that fade, and the resumed run crosses into the 8x8 stabilisation phase.
    full_model, full_trainer, full_rows = _fit(tmp_path / "full", 10)
    ckpt = tmp_path / "mid_fade.ckpt"
    _fit(tmp_path / "first", 7, extra=[SaveAt(6, ckpt)])
    torch.manual_seed(123)
    model, trainer, rows = _fit(tmp_path / "resumed", 10, ckpt_path=str(ckpt), seed=99)
    assert [r[2:] for r in full_rows] == [(4.0, 1.0)] * 4 + [(8.0, a) for a in (0.0, 0.25, 0.5, 0.75)] + [(8.0, 1.0)] * 2
    assert rows == full_rows[6:]  # same losses and progress after the stop
    assert (model.generator.stage, model.generator.alpha) == (1, 1.0) == (full_model.stage, full_model.alpha)
    for key, value in full_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    for a, b in zip(full_trainer.optimizers, trainer.optimizers, strict=True):
        for pa, pb in zip(a.state_dict()["state"].values(), b.state_dict()["state"].values(), strict=True):
            for name in pa:
                torch.testing.assert_close(pa[name], pb[name], rtol=0, atol=0)


def test_inactive_layers_get_no_adam_updates_and_load_generator_restores_progress(tmp_path):
    L.seed_everything(0)
    model = _model(kimg_per_phase=1.0, max_generator_steps=3)  # 48 images: all at 4x4
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    trainer = make_trainer(tmp_path, log_every_n_steps=1)
    trainer.fit(model, digits_data(batch_size=16))
    assert {"blocks.3.0.weight", "to_rgb.1.weight"} <= model.generator.inactive_parameters()
    for prefix, net in (("generator.", model.generator), ("discriminator.", model.discriminator)):
        unused = net.inactive_parameters()
        for name, p in net.named_parameters():
            changed = not torch.equal(before[prefix + name], p)
            assert changed == (name not in unused), name  # used layers train, unused ones stay as built
        state = trainer.optimizers[0 if prefix == "discriminator." else 1].state
        assert all((p in state) == (name not in unused) for name, p in net.named_parameters())
    assert trainer.callback_metrics["progress/resolution"] == 4.0
    assert trainer.callback_metrics["progress/alpha"] == 1.0

    model.images_seen = 1500  # half-way through the 8x8 fade: the networks carry it into the checkpoint
    model.apply_schedule()
    trainer.save_checkpoint(tmp_path / "g.ckpt")
    generator = load_generator(tmp_path / "g.ckpt")
    assert (generator.stage, generator.alpha) == (1, 0.5) and generator.sample_shape == (1, 32, 32)
    z = torch.randn(5, 8)
    torch.testing.assert_close(generator(z), model.sample(5, z=z))


class BatchRecorder(L.Callback):
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.rows.append((len(batch["image"]), outputs["progress/resolution"].item(), outputs["loss/D"].item(),
                          outputs["loss/G"].item()))


def _fit_batch_schedule(root, steps, ckpt_path=None, extra=(), seed=0, reload=1):
    # 2000 images a phase; every epoch is the 22 batches of 64 the 1438 digits make. Epoch 0 (1408 images)
    # ends before the 8 px fade (image 2000); epoch 1 may reach it, so it runs at 8 px's 32 (704 images)
    L.seed_everything(seed)
    model = _model(kimg_per_phase=2.0, batch_sizes={4: 64, 8: 32}, max_generator_steps=steps)
    recorder = BatchRecorder()
    trainer = make_trainer(root, callbacks=[recorder, *extra], reload_dataloaders_every_n_epochs=reload)
    trainer.fit(model, digits_data(batch_size=64), ckpt_path=ckpt_path)
    return model, recorder.rows


def test_batch_size_per_resolution_switches_before_the_stage_and_resumes_exactly(tmp_path):
    full_model, full_rows = _fit_batch_schedule(tmp_path / "full", 45)
    assert [r[0] for r in full_rows] == [64] * 22 + [32] * 23
    # the 8 px fade starts at image 2000: batch 19 of epoch 1 is the first to start past it (1408 + 19 * 32)
    assert [r[1] for r in full_rows] == [4.0] * (22 + 19) + [8.0] * 4
    assert full_model.images_seen == 22 * 64 + 23 * 32
    mid_epoch, epoch_end = tmp_path / "mid.ckpt", tmp_path / "end.ckpt"
    _fit_batch_schedule(tmp_path / "first", 30, extra=[SaveAt(22, epoch_end), SaveAt(27, mid_epoch)])
    for ckpt, done in ((mid_epoch, 27), (epoch_end, 22)):
        model, rows = _fit_batch_schedule(tmp_path / f"resumed{done}", 45, ckpt_path=str(ckpt), seed=7)
        assert rows == full_rows[done:], ckpt.name
        for key, value in full_model.state_dict().items():
            torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_batch_size_per_resolution_takes_the_smallest_size_an_epoch_can_reach(tmp_path):
    model = _model(kimg_per_phase=1.0, batch_sizes={4: 128, 16: 32})  # 8 px: the datamodule's size
    assert model.train_batch_size(64, epoch=0, batches=7) == 128  # 896 images, all 4 px
    assert model.train_batch_size(64, epoch=0, batches=10**6) == 128  # remembered for epoch 0
    assert model.train_batch_size(64, epoch=1, batches=10) == 64  # up to 1280 images: 4 px -> 8 px
    model.images_seen = 2500
    assert model.train_batch_size(64, epoch=2, batches=10) == 32  # 2500 + 10 * 64: 8 px -> 16 px
    assert _model().train_batch_size(48, epoch=0, batches=10**6) == 48  # no schedule: the datamodule's
    assert _model(batch_sizes={4: 8, 1024: 2}).train_batch_size(48, epoch=0, batches=1) == 8  # 1024: unused here
    for bad in ({12: 8}, {2: 8}, {8: 0}):
        with pytest.raises(ValueError, match="must map a resolution 4, 8, 16"):
            _model(batch_sizes=bad)
    with pytest.raises(ValueError, match="reload_dataloaders_every_n_epochs: 1"):
        _fit_batch_schedule(tmp_path, 2, reload=0)


class AdamSteps(L.Callback):
    """Each player's largest Adam step count over its parameters after each batch (the 4x4 layers train
    at every stage, so it counts the steps since the last reset)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.rows.append(tuple(max(int(s["step"]) for s in opt.state.values()) for opt in trainer.optimizers))


@pytest.mark.parametrize("reset", [True, False])
def test_adam_state_resets_when_a_fade_in_or_a_stabilisation_starts(tmp_path, reset):
    # 64 images a phase, 16 a batch: 4x4 for batches 0-3, the 8x8 fade for 4-7, its stabilisation from 8
    L.seed_everything(0)
    model = _model(max_generator_steps=10, reset_optimizers=reset)
    steps = AdamSteps()
    make_trainer(tmp_path, callbacks=[steps]).fit(model, digits_data(batch_size=16))
    counts = [d for d, g in steps.rows]
    assert counts == ([1, 2, 3, 4, 1, 2, 3, 4, 1, 2] if reset else list(range(1, 11)))
    assert [g for d, g in steps.rows] == counts
