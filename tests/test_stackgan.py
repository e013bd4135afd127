"""StackGAN: conditioning augmentation, the matching-aware D loss, Stage-II on a frozen Stage-I, bad input."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from conftest import make_trainer
from torch import nn

from datamodules.text_image import TextImageDataModule
from gan_modules import GAN, StackGAN, load_generator
from gan_modules.nets import DCGANDiscriminator, DCGANGenerator
from gan_modules.nets.stackgan import (
    ConditioningAugmentation,
    StackGANDiscriminator,
    StackGANStage1Generator,
    StackGANStage2Generator,
    conditioning_kl,
)
from gan_modules.stackgan import mismatched_rows


def _stage1(**kwargs) -> StackGAN:
    torch.manual_seed(0)
    g = StackGANStage1Generator(resolution=16, noise_dim=8, cond_dim=8, base_channels=8)
    d = StackGANDiscriminator(resolution=16, cond_dim=8, base_channels=8)
    return StackGAN(g, d, num_fixed_samples=4, **kwargs)


@pytest.fixture(scope="module")
def data() -> TextImageDataModule:
    data = TextImageDataModule(batch_size=4)
    data.setup()
    return data


@pytest.fixture(scope="module")
def stage1_ckpt(tmp_path_factory, data) -> str:
    path = tmp_path_factory.mktemp("stage1") / "stage1.ckpt"
    model = _stage1(ema_decay=0.9, max_generator_steps=2)
    trainer = make_trainer(path.parent)
    trainer.fit(model, data)
    trainer.save_checkpoint(path)
    return str(path)


def test_conditioning_kl_against_hand_computation():
    mu = torch.tensor([[1.0, 0.0], [0.5, -2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [-1.0, 0.0]])
    # KL per element: 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2)
    elements = [0.5 * (1 + 1 - 1 - 0), 0.5 * (0 + 2 - 1 - math.log(2)), 0.5 * (0.25 + math.exp(-1) - 1 + 1),
                0.5 * (4 + 1 - 1 - 0)]
    assert conditioning_kl(mu, logvar).item() == pytest.approx(sum(elements) / 4, abs=1e-6)
    assert conditioning_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_conditioning_augmentation_draws_mu_plus_sigma_eps():
    ca = ConditioningAugmentation(embed_dim=3, cond_dim=2)
    phi, eps = torch.randn(5, 3), torch.randn(5, 2)
    c, mu, logvar = ca(phi, eps)
    out = phi @ ca.fc.weight.T + ca.fc.bias
    torch.testing.assert_close(mu, out[:, :2])
    torch.testing.assert_close(logvar, out[:, 2:])
    torch.testing.assert_close(c, mu + torch.exp(0.5 * logvar) * eps)


def test_mismatched_rows_pair_neighbours():
    assert mismatched_rows(4).tolist() == [1, 0, 3, 2]
    assert mismatched_rows(5).tolist() == [1, 0, 3, 2, 0]


class _ScoringD(nn.Module):
    """Logit = 3 * mean pixel + first embedding entry: known values for hand-built batches."""

    def forward(self, x, phi):
        return 3 * x.flatten(1).mean(1) + phi[:, 0]


def test_matching_aware_discriminator_loss_on_a_hand_built_batch(data):
    model = _stage1()
    model.discriminator = _ScoringD()
    batch = data.split("train").__getitems__([0, 5, 10, 15])
    batch["image"] = torch.tensor([-0.5, 0.0, 0.5, 1.0]).view(4, 1, 1, 1).expand(4, 3, 64, 64).clone()
    torch.manual_seed(3)
    out = model.discriminator_loss(batch, reg_weight=0.0)
    torch.manual_seed(3)
    phi = model.generator.embed(batch["caption_tokens"])
    fake = model.generator(torch.randn(4, model.latent_dim), batch["caption_tokens"])
    real_pixels = torch.tensor([-0.5, 0.0, 0.5, 1.0])  # box-downsampled constant images keep their value
    r = 3 * real_pixels + phi[:, 0]
    f = 3 * fake.flatten(1).mean(1) + phi[:, 0]
    w = 3 * real_pixels + phi[[1, 0, 3, 2], 0]  # each real image with its neighbour's caption
    # StackGAN's errD = BCE(real, 1) + (BCE(fake, 0) + BCE(wrong, 0)) / 2
    expected = (F.binary_cross_entropy_with_logits(r, torch.ones(4))
                + 0.5 * (F.binary_cross_entropy_with_logits(f, torch.zeros(4))
                         + F.binary_cross_entropy_with_logits(w, torch.zeros(4))))
    torch.testing.assert_close(out["loss"], expected)
    torch.testing.assert_close(out["D/wrong"], w.mean())


def test_generator_loss_adds_the_weighted_kl(data):
    model = _stage1(kl_weight=3.0)
    batch = data.split("train").__getitems__([0, 1, 2, 3])
    torch.manual_seed(4)
    out = model.generator_loss(batch)
    torch.manual_seed(4)
    z = torch.randn(4, model.latent_dim)
    fake, kl = model.generator.forward_with_kl(z, batch["caption_tokens"])
    logits = model.discriminator(fake, model.generator.embed(batch["caption_tokens"]))
    torch.testing.assert_close(out["loss"], F.softplus(-logits).mean() + 3.0 * kl)
    torch.testing.assert_close(out["loss/G/kl"], kl)


def test_samples_are_a_function_of_latents_and_captions(data):
    g = _stage1().generator.eval()
    z, tokens = g.example_inputs(3)
    torch.testing.assert_close(g(z, tokens), g(z, tokens))
    assert g(z, tokens).shape == (3, 3, 16, 16)
    assert not torch.equal(g(z, tokens), g(z, tokens.flip(0)))
    with pytest.raises(ValueError, match="G\\(z, tokens\\)"):
        g(z, None)


def test_stage2_trains_with_stage1_frozen(stage1_ckpt, data, tmp_path):
    torch.manual_seed(0)
    g = StackGANStage2Generator(sample_shape=(3, 32, 32), stage1_checkpoint=stage1_ckpt, cond_dim=8, base_channels=8)
    checkpoint = torch.load(stage1_ckpt, weights_only=True)
    ema = {k[len("generator_ema."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("generator_ema.")}
    for key, value in g.stage1.state_dict().items():  # read from the checkpoint, EMA weights
        torch.testing.assert_close(value, ema[key], rtol=0, atol=0)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    model = StackGAN(g, StackGANDiscriminator((3, 32, 32), cond_dim=8, base_channels=8), max_generator_steps=3,
                     num_fixed_samples=4)
    make_trainer(tmp_path).fit(model, data)  # 64 px data, 32 px Stage-II: the real images are box-downsampled
    after = g.state_dict()
    for key, value in before.items():
        if key.startswith(("stage1.", "text_encoder.")):
            torch.testing.assert_close(after[key], value, rtol=0, atol=0, msg=key)  # weights and BN statistics
    assert any(not torch.equal(after[k], v) for k, v in before.items() if k.startswith("joint."))
    assert g.stage1.training is False and g.training is True


def test_load_generator_samples_from_caption_strings(stage1_ckpt, tmp_path, data):
    g = StackGANStage2Generator(sample_shape=(3, 32, 32), stage1_checkpoint=stage1_ckpt, cond_dim=8, base_channels=8)
    model = StackGAN(g, StackGANDiscriminator((3, 32, 32), cond_dim=8, base_channels=8), max_generator_steps=1,
                     num_fixed_samples=4)
    trainer = make_trainer(tmp_path)
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp_path / "stage2.ckpt")
    loaded = load_generator(tmp_path / "stage2.ckpt")
    assert isinstance(loaded, StackGANStage2Generator) and loaded.latent_dim == g.latent_dim
    assert loaded.init_spec["init_args"]["stage1_checkpoint"]["spec"]["class_path"].endswith("StackGANStage1Generator")
    captions = ["a small red circle at the top left", "a big white box in the middle"]
    images = loaded.sample_captions(captions, seed=1)
    assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1
    torch.testing.assert_close(images, model.sample(2, labels=loaded.encode(captions), z=torch.randn(
        2, loaded.latent_dim, generator=torch.Generator().manual_seed(1))))
    with pytest.raises(ValueError, match="empty"):
        loaded.sample_captions([""])
    with pytest.raises(ValueError, match="only words the vocabulary does not know"):
        loaded.sample_captions(["xylophone quartz"])


def test_stage2_bad_stage1_checkpoint(tmp_path, stage1_ckpt):
    with pytest.raises(FileNotFoundError, match="stage1_checkpoint.*train Stage-I first"):
        StackGANStage2Generator(stage1_checkpoint=str(tmp_path / "missing.ckpt"))
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator((3, 32, 32), latent_dim=4, base_channels=4), DCGANDiscriminator((3, 32, 32), base_channels=4))
    torch.save({"state_dict": gan.state_dict(), "gan": {"generator_spec": gan.generator.init_spec,
                                                        "generator_key": "generator"}}, tmp_path / "dcgan.ckpt")
    with pytest.raises(ValueError, match="not a StackGAN Stage-I checkpoint: its generator is .*DCGANGenerator"):
        StackGANStage2Generator(stage1_checkpoint=str(tmp_path / "dcgan.ckpt"))
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        StackGANStage2Generator(stage1_checkpoint=str(tmp_path / "text.ckpt"))
    with pytest.raises(ValueError, match="at most 4 times"):
        StackGANStage2Generator(sample_shape=(3, 128, 128), stage1_checkpoint=stage1_ckpt)


def test_family_checks_generator_batch_and_vocabulary(tmp_path):
    with pytest.raises(TypeError, match="text-conditioned generator"):
        StackGAN(DCGANGenerator((3, 32, 32), latent_dim=4, base_channels=4), DCGANDiscriminator((3, 32, 32)))
    model = _stage1()
    with pytest.raises(KeyError, match="caption_tokens"):
        model.discriminator_loss({"image": torch.zeros(2, 3, 64, 64)}, 0.0)
    with pytest.raises(ValueError, match="pass their tokens"):
        model.sample(2)
    other = TextImageDataModule(batch_size=4)
    other.setup()
    other.vocabulary = type(other.vocabulary)([*other.vocabulary.words, "zebra"])
    with pytest.raises(ValueError, match="vocabulary .* is not the text encoder's"):
        L.Trainer(logger=False, enable_checkpointing=False, max_steps=1, default_root_dir=str(tmp_path),
                  enable_progress_bar=False, enable_model_summary=False).fit(model, other)


def test_missing_text_encoder_file_names_the_option(tmp_path):
    with pytest.raises(FileNotFoundError, match="text_encoder"):
        StackGANStage1Generator(text_encoder=str(tmp_path / "none.pt"))


def test_stage2_preset_pointed_at_a_missing_checkpoint_fails_clearly(tmp_path):
    import train

    config = str(train.Path(__file__).resolve().parents[1] / "configs" / "stackgan_stage2_shapes.yaml")
    # the message reaches the user through jsonargparse's report of the failed model instantiation
    with pytest.raises((ValueError, FileNotFoundError), match=r"stage1_checkpoint\) does not exist; train Stage-I"):
        train.main(["fit", "--config", config, f"--trainer.default_root_dir={tmp_path}",
                    f"--model.init_args.generator.init_args.stage1_checkpoint={tmp_path / 'nope.ckpt'}"])


def test_predict_step_draws_one_seeded_image_per_caption(data):
    model = _stage1()
    batch = next(iter(data.predict_dataloader()))
    out = model.predict_step(batch, 0)
    assert out["image"].shape == (len(batch["index"]), 3, 16, 16)
    again = model.predict_step({k: v[:2] for k, v in batch.items()}, 0)  # seeded by the index, not the batch
    torch.testing.assert_close(again["image"], out["image"][:2])


def test_matching_loss_against_hand_computation():
    from gan_modules.stackgan import matching_loss

    image = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    text = torch.tensor([[2.0, 0.0], [1.0, 0.0], [4.0, -3.0]])
    # cosines 1, 0 and (12 - 12) / 25 = 0: mean of 1 - cos = (0 + 1 + 1) / 3
    assert matching_loss(image, text).item() == pytest.approx(2 / 3, abs=1e-6)
    assert matching_loss(text, text).item() == pytest.approx(0.0, abs=1e-6)


def test_matching_term_trains_g_through_a_frozen_image_encoder(data, tmp_path):
    from gan_modules.stackgan import matching_loss

    model = _stage1(matching_weight=1.0, max_generator_steps=2)
    encoder = model.matching_image_encoder
    assert encoder is not None and not any(p.requires_grad for p in encoder.parameters())
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    batch = next(iter(data.train_dataloader()))
    out = model.generator_loss(batch)
    assert 0.0 < out["loss/G/matching"].item() <= 2.0
    plain = _stage1(max_generator_steps=2)
    assert plain.matching_image_encoder is None and "loss/G/matching" not in plain.generator_loss(batch)
    # the term's gradient reaches G (and only G)
    model.generator.zero_grad()
    phi = model.generator.embed(batch["caption_tokens"])
    matching_loss(encoder(model.generator.from_embedding(model.latents(len(phi)), phi)[0]), phi).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())
    assert all(p.grad is None for p in encoder.parameters())
    make_trainer(tmp_path).fit(model, data)
    assert not encoder.training
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())


def test_matching_encoder_must_hold_the_generators_text_encoder(tmp_path):
    from gan_modules.nets.text import ImageEncoder, TextEncoder, Vocabulary, save_text_image_encoders

    other = tmp_path / "other.pt"
    torch.manual_seed(5)
    save_text_image_encoders(other, Vocabulary.build(["a b"]), TextEncoder(4), ImageEncoder(), 8)
    with pytest.raises(ValueError, match="holds another text encoder than the generator's"):
        _stage1(matching_weight=1.0, matching_encoder=str(other))
    with pytest.raises(FileNotFoundError, match="matching_encoder"):
        _stage1(matching_weight=1.0, matching_encoder=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="matching_weight must be >= 0"):
        _stage1(matching_weight=-1.0)


def test_without_conditioning_augmentation_the_code_is_mu_and_there_is_no_kl():
    ca = ConditioningAugmentation(embed_dim=3, cond_dim=2, noise=False)
    phi = torch.randn(4, 3)
    c, mu, logvar = ca(phi, torch.randn(4, 2))
    assert torch.equal(c, mu) and ca.kl(mu, logvar).item() == 0.0
    g = StackGANStage1Generator(resolution=16, noise_dim=8, cond_dim=8, base_channels=8,
                                conditioning_augmentation=False).eval()
    z, tokens = g.example_inputs(3)
    other_eps = torch.cat([z[:, :8], torch.randn(3, 8)], dim=1)
    assert torch.equal(g(z, tokens), g(other_eps, tokens))  # the eps part of z is unused
    assert g.forward_with_kl(z, tokens)[1].item() == 0.0
    with_ca = StackGANStage1Generator(resolution=16, noise_dim=8, cond_dim=8, base_channels=8).eval()
    assert not torch.equal(with_ca(z, tokens), with_ca(other_eps, tokens))
