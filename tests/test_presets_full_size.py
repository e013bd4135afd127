"""The GPU-scale presets build at their full size, and their networks run once on the preset's shapes.

Training and resume tests run these presets with narrower networks at 32 px (``presets.SMALL_NETWORKS``),
which keeps the suite inside its CPU budget; this test checks what those runs cannot: that the networks
exactly as written in the YAML, at the dataset's resolution, are consistent (shapes, channel lists,
cardinalities) and produce finite outputs of the right shape.
"""

from __future__ import annotations

import pytest
import torch
from presets import CONFIGS, data_overrides, needs_standin

from datamodules.base import GANDataModule
from gan_modules.base import GANModule
from train import GANCLI

FULL_SIZE = [c for c in CONFIGS if needs_standin(c)]


def test_there_are_gpu_scale_presets():
    assert len(FULL_SIZE) >= 5


@pytest.mark.parametrize("config", FULL_SIZE, ids=[c.stem for c in FULL_SIZE])
def test_gpu_preset_builds_at_full_size(config, tmp_path):
    # --trainer.callbacks=[]: their FID callbacks need the Inception weights file, which is not here
    args = ["--config", str(config), f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
            "--trainer.callbacks=[]",
            *data_overrides(config, tmp_path, batch_size=1, full_size=True)]
    cli = GANCLI(GANModule, GANDataModule, subclass_mode_model=True, subclass_mode_data=True,
                 auto_configure_optimizers=False, run=False, args=args, save_config_callback=None)
    model, data = cli.model, cli.datamodule
    assert tuple(model.sample_shape) == tuple(data.sample_shape)
    generator, discriminator = model.generator, model.discriminator
    with torch.no_grad():
        if hasattr(generator, "example_inputs"):
            inputs = generator.example_inputs(1)
        else:
            inputs = (torch.randn(1, model.latent_dim),)
        fake = generator(*inputs)
        assert fake.shape == (1, *model.sample_shape) and torch.isfinite(fake).all()
        d_inputs = discriminator.example_inputs(1) if hasattr(discriminator, "example_inputs") else (fake,)
        logits = discriminator(*d_inputs)
    assert logits.shape[0] == 1 and torch.isfinite(logits).all()
