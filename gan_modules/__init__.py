"""GAN families as LightningModules with manual optimization, and what they share."""

from gan_modules.base import GANModule, ema_beta
from gan_modules.export import load_generator
from gan_modules.gan import GAN

__all__ = ["GAN", "GANModule", "ema_beta", "load_generator"]
