"""docs/adding_a_family.md's worked example: the listings match the files, and the family trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import digits_data, make_trainer

from gan_modules import TemplateGAN
from gan_modules.losses import minimax_d
from gan_modules.nets import DCGANDiscriminator, DCGANGenerator

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "adding_a_family.md"


def _model(**kwargs) -> TemplateGAN:
    torch.manual_seed(0)
    return TemplateGAN(DCGANGenerator((1, 32, 32), latent_dim=8, base_channels=8),
                       DCGANDiscriminator((1, 32, 32), base_channels=8), **kwargs)


def test_guide_listings_are_the_files() -> None:
    listings = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert {path for path, _ in listings} == {"gan_modules/template.py", "configs/template_digits.yaml"}
    for path, text in listings:
        assert text == (ROOT / path).read_text(), f"docs/adding_a_family.md shows an old {path}"


def test_discriminator_loss_smooths_the_real_target() -> None:
    model = _model(smoothing=0.25)
    batch = {"image": torch.rand(6, 1, 32, 32) * 2 - 1}
    torch.manual_seed(1)
    out = model.discriminator_loss(batch, reg_weight=1.0)
    torch.manual_seed(1)
    with torch.no_grad():
        fake = model.generate(model.latents(6))
    r, f = model.discriminator(batch["image"]), model.discriminator(fake)
    # BCE with target t on logits x: t softplus(-x) + (1 - t) softplus(x)
    expected = (0.75 * F.softplus(-r) + 0.25 * F.softplus(r)).mean() + F.softplus(f).mean()
    torch.testing.assert_close(out["loss"], expected)
    model.smoothing = 0.0  # no smoothing: the original GAN's discriminator loss
    torch.manual_seed(1)
    torch.testing.assert_close(model.discriminator_loss(batch, 1.0)["loss"], minimax_d(r, f))


def test_bad_smoothing_names_the_argument() -> None:
    with pytest.raises(ValueError, match="smoothing"):
        _model(smoothing=1.0)


def test_template_trains_a_few_steps(tmp_path) -> None:
    model = _model(max_generator_steps=3)
    trainer = make_trainer(tmp_path, log_every_n_steps=1)
    trainer.fit(model, digits_data(batch_size=8))
    assert model.generator_steps == 3 and model.discriminator_steps == 3
    assert all(torch.isfinite(trainer.callback_metrics[k]) for k in ("loss/D", "loss/G", "D/real", "D/fake"))
