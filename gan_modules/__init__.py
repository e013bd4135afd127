"""GAN families as LightningModules with manual optimization, and what they share.

The names below load their module on first use (PEP 562 ``__getattr__``), so ``import gan_modules.nets``,
``gan_modules.losses`` or ``gan_modules.regularizers`` does not import Lightning: a network, a loss or a
penalty can be taken into another project with torch alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ACGAN": "conditional",
    "ConditionalGAN": "conditional",
    "CycleGAN": "cyclegan",
    "GAN": "gan",
    "GANDDPStrategy": "strategy",
    "GANModule": "base",
    "InpaintingGAN": "inpainting",
    "Pix2Pix": "pix2pix",
    "ProgressiveGAN": "progressive",
    "R3GAN": "r3gan",
    "SRGAN": "srgan",
    "StackGAN": "stackgan",
    "StyleGAN": "stylegan",
    "TemplateGAN": "template",
    "TranslationModule": "translation",
    "UnrolledGAN": "unrolled",
    "ema_beta": "training_state",
    "load_generator": "export",
}
__all__ = [
    "ACGAN", "ConditionalGAN", "CycleGAN", "GAN", "GANDDPStrategy", "GANModule", "InpaintingGAN",
    "Pix2Pix", "ProgressiveGAN", "R3GAN", "SRGAN", "StackGAN", "StyleGAN", "TemplateGAN", "TranslationModule",
    "UnrolledGAN", "ema_beta", "load_generator",
]

if TYPE_CHECKING:
    from gan_modules.base import GANModule
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
    from gan_modules.template import TemplateGAN
    from gan_modules.training_state import ema_beta
    from gan_modules.translation import TranslationModule
    from gan_modules.unrolled import UnrolledGAN


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gan_modules' has no attribute '{name}'")
    return getattr(importlib.import_module(f"gan_modules.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
