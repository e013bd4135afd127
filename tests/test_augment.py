"""Augmentation of the discriminator's inputs: DiffAugment, ADA's pipeline and its adaptive p, in a GAN."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from conftest import digits_data, digits_gan, make_trainer
from test_resume import LossRecorder, SaveAt  # SaveAt(k): a checkpoint at generator step k
from torch import nn

from gan_modules.augment import ada_augment, diffaugment, parse_policy
from gan_modules.discriminator_augment import DiscriminatorAugment


def _images(n: int = 6, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


PIPELINES = {
    "color": lambda x, g: diffaugment(x, "color", generator=g),
    "translation": lambda x, g: diffaugment(x, "translation", generator=g),
    "cutout": lambda x, g: diffaugment(x, "cutout", generator=g),
    "diffaugment": lambda x, g: diffaugment(x, generator=g),
    "ada_p0.5": lambda x, g: ada_augment(x, 0.5, generator=g),
    "ada_p1": lambda x, g: ada_augment(x, 1.0, generator=g),
}


@pytest.mark.parametrize("name", list(PIPELINES))
@pytest.mark.parametrize("channels", [1, 3])
def test_augmentation_keeps_shape_and_range_and_is_seeded(name, channels):
    x = _images(c=channels)
    out = PIPELINES[name](x, _seeded(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= -1 and out.max() <= 1
    assert not torch.equal(out, x)  # it did something
    torch.testing.assert_close(PIPELINES[name](x, _seeded(1)), out, rtol=0, atol=0)  # same seed, same draws
    assert not torch.equal(PIPELINES[name](x, _seeded(2)), out)


@pytest.mark.parametrize("name", ["diffaugment", "ada_p1"])
def test_gradients_reach_the_input_through_the_augmentation(name):
    x = _images(n=4, c=3).requires_grad_(True)
    weights = torch.randn(x.shape, generator=_seeded(3))
    (PIPELINES[name](x, _seeded(4)) * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # and a double backward (R1 through the augmentation) works
    x2 = _images(n=4, c=3).requires_grad_(True)
    conv = nn.Conv2d(3, 1, 3)
    logits = conv(PIPELINES[name](x2, _seeded(4))).sum()
    (grad,) = torch.autograd.grad(logits, x2, create_graph=True)
    grad.pow(2).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_diffaugment_translation_is_a_zero_padded_integer_shift():
    x = _images(n=32, c=1, size=8)
    out = diffaugment(x, "translation", generator=_seeded(5))
    max_shift = int(8 * 0.125 + 0.5)  # 1 pixel
    for image, shifted in zip(x, out, strict=True):
        candidates = []
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                padded = torch.nn.functional.pad(image, (max_shift,) * 4)
                window = padded[:, max_shift - dy:max_shift - dy + 8, max_shift - dx:max_shift - dx + 8]
                candidates.append(torch.equal(window, shifted))
        assert any(candidates)


def test_diffaugment_cutout_zeroes_a_square_of_half_the_side():
    x = _images(n=16, c=1, size=8) * 0.5 + 0.75  # no zeros in the input
    out = diffaugment(x, "cutout", generator=_seeded(6))
    for shifted in out:
        zeros = shifted[0] == 0
        rows, cols = zeros.any(1).sum(), zeros.any(0).sum()
        assert 1 <= rows <= 4 and 1 <= cols <= 4 and zeros.sum() == rows * cols  # a (clipped) 4x4 box


def test_policy_names_the_option():
    assert parse_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="augment_policy.*colour"):
        parse_policy("colour")


def test_ada_with_p_zero_is_the_identity_and_p_is_checked():
    x = _images()
    torch.testing.assert_close(ada_augment(x, 0.0, generator=_seeded(0)), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="p must be in"):
        ada_augment(x, 1.5)


def test_ada_xflip_and_rot90_are_exact_at_p_one_on_symmetric_draws():
    # a ring image is invariant under flips and 90-degree rotations; with only those two transforms
    # chosen the resampling must reproduce it to rounding (checks the pixel-centre conventions)
    size = 16
    ys, xs = torch.meshgrid(torch.arange(size) - 7.5, torch.arange(size) - 7.5, indexing="ij")
    ring = ((ys**2 + xs**2).sqrt() - 5).abs().neg().exp().mul(2).sub(1).view(1, 1, size, size)
    from gan_modules.augment import _resample, _rotation, _scale

    one = torch.ones(1)
    for inverse in (_scale(1, torch.device("cpu"), -one, one), _rotation(1, torch.device("cpu"), torch.tensor([math.pi / 2]))):
        torch.testing.assert_close(_resample(ring, inverse), ring, rtol=0, atol=1e-5)


@pytest.mark.parametrize("pipeline", ["diffaugment", "ada"])
def test_two_blocks_augment_as_the_whole_batch(pipeline):
    x = _images(n=8)

    def run(part, block):
        if pipeline == "diffaugment":
            return diffaugment(part, generator=_seeded(7), block=block)
        return ada_augment(part, 0.8, generator=_seeded(7), block=block)

    whole = run(x, (0, 1))
    halves = torch.cat([run(x[:4], (0, 2)), run(x[4:], (1, 2))])
    torch.testing.assert_close(halves, whole, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ ADA's p


def _scripted_adjustments(sign: float, initial_p: float, steps: int, batch: int = 8) -> DiscriminatorAugment:
    aug = DiscriminatorAugment("ada", interval=4, kimg=0.1, initial_p=initial_p)
    for step in range(1, steps + 1):
        aug.observe(torch.full((batch,), sign))
        aug.adjust(step)
    return aug


def test_ada_p_moves_by_images_over_kimg_every_interval():
    # 4 steps of 8 images = 32 images per adjustment; p moves by 32 / (0.1 * 1000) = 0.32
    assert _scripted_adjustments(+1.0, 0.0, 3).p.item() == 0.0  # no adjustment before the interval
    torch.testing.assert_close(_scripted_adjustments(+1.0, 0.0, 4).p, torch.tensor(0.32))
    torch.testing.assert_close(_scripted_adjustments(+1.0, 0.0, 8).p, torch.tensor(0.64))
    torch.testing.assert_close(_scripted_adjustments(+1.0, 0.0, 16).p, torch.tensor(1.0))  # clamped
    torch.testing.assert_close(_scripted_adjustments(-1.0, 0.5, 4).p, torch.tensor(0.18))
    torch.testing.assert_close(_scripted_adjustments(-1.0, 0.5, 8).p, torch.tensor(0.0))  # clamped
    aug = _scripted_adjustments(+1.0, 0.0, 4)
    assert aug.rt.item() == 1.0 and aug.stats.abs().sum() == 0


def test_ada_r_t_is_the_mean_sign_over_samples():
    aug = DiscriminatorAugment("ada", interval=1, kimg=1.0)
    aug.observe(torch.tensor([2.0, -0.5, 3.0, 0.1]))  # signs +1, -1, +1, +1: r_t = 0.5 < 0.6
    logs = aug.adjust(1)
    assert logs["augment/rt"].item() == 0.5 and logs["augment/p"].item() == 0.0
    aug.p.fill_(0.5)
    aug.observe(torch.tensor([[1.0, 1.0], [1.0, -1.0]]).view(2, 1, 1, 2))  # a patch map: per-sample mean 1, 0
    logs = aug.adjust(2)
    assert logs["augment/rt"].item() == 0.5 and math.isclose(logs["augment/p"].item(), 0.5 - 2 / 1000, abs_tol=1e-7)


class ScriptedDiscriminator(nn.Module):
    """Logits of one sign whatever the input: +1 is a D certain that everything is real."""

    def __init__(self, sign: float) -> None:
        super().__init__()
        self.sign = sign
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).mean(1) * self.weight + self.sign


@pytest.mark.parametrize("sign,initial,expected", [(+1.0, 0.0, 2 * 64 / 1000), (-1.0, 0.5, 0.5 - 2 * 64 / 1000)])
def test_ada_p_follows_a_scripted_discriminator_in_training(tmp_path, sign, initial, expected):
    model = digits_gan(augment="ada", ada_interval=4, ada_kimg=1.0, max_generator_steps=8)
    model.discriminator = ScriptedDiscriminator(sign)
    model.augmenter.p.fill_(initial)
    make_trainer(tmp_path).fit(model, digits_data(batch_size=16))
    # 8 D steps of 16 images: two adjustments of 64 images each, 64 / 1000 apiece
    assert math.isclose(model.augmenter.p.item(), expected, abs_tol=1e-6)
    assert model.augmenter.rt.item() == sign


def test_ada_p_and_seed_are_saved_and_restored(tmp_path):
    model = digits_gan(augment="ada", ada_interval=1, ada_kimg=0.1, max_generator_steps=3)
    model.discriminator = ScriptedDiscriminator(+1.0)
    trainer = make_trainer(tmp_path)
    trainer.fit(model, digits_data(batch_size=16))
    assert model.augmenter.p.item() > 0
    trainer.save_checkpoint(tmp_path / "ada.ckpt")
    state = torch.load(tmp_path / "ada.ckpt", weights_only=True)["state_dict"]
    assert state["augmenter.p"].item() == model.augmenter.p.item()
    fresh = digits_gan(augment="ada", ada_interval=1, ada_kimg=0.1)
    fresh.augmenter.seed.fill_(model.augmenter.seed.item() + 1)
    fresh.discriminator = ScriptedDiscriminator(+1.0)
    fresh.load_state_dict(state)
    assert fresh.augmenter.p.item() == model.augmenter.p.item()
    assert fresh.augmenter.seed.item() == model.augmenter.seed.item()
    x = _images(c=1, size=32)
    torch.testing.assert_close(fresh.augmenter(x, (5, 2)), model.augmenter(x, (5, 2)), rtol=0, atol=0)


def test_a_family_that_does_not_report_real_logits_gets_a_clear_error():
    aug = DiscriminatorAugment("ada")
    with pytest.raises(RuntimeError, match="observe_real_logits"):
        aug.adjust(1, family="MyGAN")


def test_bad_options_name_themselves():
    with pytest.raises(ValueError, match="augment must be one of"):
        digits_gan(augment="adaptive")
    with pytest.raises(ValueError, match="augment_policy"):
        digits_gan(augment="diffaugment", augment_policy="color,zoom")
    with pytest.raises(ValueError, match="ada_interval"):
        digits_gan(augment="ada", ada_interval=0)


def test_validation_and_eval_see_unaugmented_images():
    model = digits_gan(augment="diffaugment")
    x = _images(n=4, c=1, size=32)
    model.eval()
    torch.testing.assert_close(model.augment_images(x), x, rtol=0, atol=0)
    model.train()
    assert not torch.equal(model.augment_images(x), x)


# ------------------------------------------------------------------------------------------ resume


def _fit(root, augment, steps, ckpt_path=None, seed=0, extra=()):
    L.seed_everything(seed)
    model = digits_gan(augment=augment, ada_interval=3, ada_kimg=0.05, r1_gamma=0.1, reg_interval=2,
                       max_generator_steps=steps)
    if augment == "ada":
        model.augmenter.p.fill_(0.3)  # so p can move either way (a resumed run takes it from the checkpoint)
    L.seed_everything(seed)
    recorder = LossRecorder()
    make_trainer(root, callbacks=[recorder, *extra]).fit(model, digits_data(batch_size=16), ckpt_path=ckpt_path)
    return model, recorder


@pytest.mark.parametrize("augment", ["ada", "diffaugment"])
def test_augmented_gan_resumes_exactly(tmp_path, augment):
    full, full_log = _fit(tmp_path / "full", augment, 8)
    ckpt = tmp_path / "mid.ckpt"
    _fit(tmp_path / "first", augment, 6, extra=[SaveAt(4, ckpt)])  # step 4: mid ADA interval (3)
    resumed, resumed_log = _fit(tmp_path / "resumed", augment, 8, ckpt_path=str(ckpt), seed=99)
    if augment == "ada":
        assert full.augmenter.p.item() != pytest.approx(0.3)  # p moved, and the resumed run moved it the same way
    for key, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert resumed_log.losses == full_log.losses[-len(resumed_log.losses):]


def test_families_without_the_base_discriminator_path_refuse_augment():
    from gan_modules import UnrolledGAN
    from gan_modules.nets import MLPDiscriminator, MLPGenerator

    with pytest.raises(ValueError, match="augment: UnrolledGAN"):
        UnrolledGAN(MLPGenerator((2,), latent_dim=2, hidden_dim=8), MLPDiscriminator((2,), hidden_dim=8), augment="ada")
