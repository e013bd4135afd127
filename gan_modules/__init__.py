"""GAN families as LightningModules with manual optimization, and what they share."""

from gan_modules.base import GANModule, ema_beta
from gan_modules.conditional import ACGAN, ConditionalGAN
from gan_modules.cyclegan import CycleGAN
from gan_modules.export import load_generator
from gan_modules.gan import GAN
from gan_modules.inpainting import InpaintingGAN
from gan_modules.pix2pix import Pix2Pix
from gan_modules.progressive import ProgressiveGAN
from gan_modules.r3gan import R3GAN
from gan_modules.srgan import SRGAN
from gan_modules.stackgan import StackGAN
from gan_modules.strategy import GANDDPStrategy
from gan_modules.stylegan import StyleGAN
from gan_modules.translation import TranslationModule
from gan_modules.unrolled import UnrolledGAN

__all__ = ["ACGAN", "CycleGAN", "GAN", "InpaintingGAN", "Pix2Pix", "SRGAN", "StackGAN", "TranslationModule", "ConditionalGAN", "GANDDPStrategy", "GANModule", "ema_beta", "load_generator", "ProgressiveGAN", "R3GAN", "StyleGAN", "UnrolledGAN"]
