"""The uniform latent prior through training, sample, predict, the fixed batch, metrics and load_generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import digits_data, digits_gan, make_trainer
from PIL import Image

import generate
from callbacks.images import to_uint8
from gan_modules import load_generator
from gan_modules.latent_prior import draw_latents
from gan_modules.sampling import generate_images, seed_latents


def test_draw_latents_follows_the_named_prior():
    gen = torch.Generator().manual_seed(0)
    z = draw_latents((4000, 2), "uniform", gen)
    assert z.min() >= -1 and z.max() <= 1
    assert abs(z.var().item() - 1 / 3) < 0.02  # U[-1, 1] has variance 1/3
    torch.testing.assert_close(draw_latents((3, 2), "normal", torch.Generator().manual_seed(1)),
                               torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="latent_distribution"):
        draw_latents((1,), "gaussian")


def test_module_latents_fixed_batch_sample_and_predict_use_the_prior():
    model = digits_gan(latent_distribution="uniform", num_fixed_samples=200)
    z = model.latents(500)
    assert z.min() >= -1 and z.max() <= 1 and z.abs().max() > 0.9
    assert model.fixed_latents.min() >= -1 and model.fixed_latents.max() <= 1
    # sample(generator=...) draws uniform latents from that generator
    expected = model.generate(draw_latents((3, model.latent_dim), "uniform", torch.Generator().manual_seed(5)),
                              net=model.sampling_network().eval())
    torch.testing.assert_close(model.sample(3, generator=torch.Generator().manual_seed(5)), expected)
    # predict: the latent of index i is seeded by (sample_seed, i), drawn from the prior
    out = model.predict_step({"index": torch.tensor([7])}, 0)
    z7 = draw_latents((model.latent_dim,), "uniform", torch.Generator().manual_seed(model.sample_seed * 1_000_003 + 7))
    torch.testing.assert_close(out["image"], model.sample(1, z=z7.view(1, -1)))
    with pytest.raises(ValueError, match="latent_distribution"):
        digits_gan(latent_distribution="gaussian")


def test_metric_samples_draw_from_the_prior():
    # GenerativeMetrics draws its latents with pl_module.latents(n, seeded generator)
    model = digits_gan(latent_distribution="uniform")
    z = model.latents(100, torch.Generator().manual_seed(3))
    assert z.min() >= -1 and z.max() <= 1 and (z < -0.5).any()


def test_load_generator_and_generate_use_the_trained_prior(tmp_path):
    model = digits_gan(latent_distribution="uniform", max_generator_steps=1)
    trainer = make_trainer(tmp_path)
    trainer.fit(model, digits_data(batch_size=8))
    trainer.save_checkpoint(tmp_path / "u.ckpt")
    g = load_generator(tmp_path / "u.ckpt")
    assert g.latent_distribution == "uniform"
    z = seed_latents([3, 4], g.latent_dim, distribution="uniform")
    assert z.abs().max() <= 1
    torch.testing.assert_close(generate_images(g, [3, 4]), g(z))
    # generate.py images: the same pictures as the module's own generator on those latents
    # generate.py writes G(z of the seed) with z from the uniform prior
    (png,) = generate.main(["images", "--ckpt", str(tmp_path / "u.ckpt"), "--seeds", "3", "--outdir", str(tmp_path / "out")])
    torch.testing.assert_close(torch.from_numpy(np.array(Image.open(png))), to_uint8(g(z[:1]))[0, 0], rtol=0, atol=0)
    torch.testing.assert_close(model.sample(2, z=z), g(z))
