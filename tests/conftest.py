"""Shared test helpers: tiny models and trainers that run in seconds on 2 CPU cores."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from datamodules import DigitsDataModule, Toy2DDataModule
from gan_modules import GAN
from gan_modules.nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator

torch.set_num_threads(2)


def toy_gan(**kwargs) -> GAN:
    torch.manual_seed(0)
    return GAN(MLPGenerator((2,), latent_dim=2, hidden_dim=16), MLPDiscriminator((2,), hidden_dim=16), **kwargs)


def digits_gan(**kwargs) -> GAN:
    torch.manual_seed(0)
    g = DCGANGenerator((1, 32, 32), latent_dim=8, base_channels=8)
    d = DCGANDiscriminator((1, 32, 32), base_channels=8)
    return GAN(g, d, **kwargs)


def toy_data(batch_size: int = 32, num_samples: int = 256) -> Toy2DDataModule:
    return Toy2DDataModule("ring", num_samples=num_samples, batch_size=batch_size)


def digits_data(batch_size: int = 16) -> DigitsDataModule:
    return DigitsDataModule(image_size=32, batch_size=batch_size)


def make_trainer(tmp_path, **kwargs) -> L.Trainer:
    defaults = dict(default_root_dir=str(tmp_path), accelerator="cpu", devices=1, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                    num_sanity_val_steps=0, limit_val_batches=0, max_epochs=-1)
    defaults.update(kwargs)
    return L.Trainer(**defaults)


@pytest.fixture
def trainer_factory(tmp_path):
    return lambda **kw: make_trainer(tmp_path, **kw)
