"""Networks: generators ``z [N, latent_dim] -> [N, *sample_shape]`` and discriminators ``x -> logits [N]``.

Conditional networks (``nets.conditional``) take labels too: ``G(z, labels)``, ``D(x, labels)``.
Image-to-image networks (``nets.translation``: U-Net, PatchGAN, ResNet, SRResNet) map images to images
(``latent_dim = 0``, an ``input_shape`` beside ``sample_shape``) or judge them.
Every class subclasses :class:`Network` (rebuildable from ``init_spec`` with :func:`build_network`).
This package imports only torch, never lightning.
"""

from .base import Network, build_network
from .conditional import (
    ACGANDiscriminator,
    ConditionalDCGANDiscriminator,
    ConditionalDCGANGenerator,
    ConditionalMLPDiscriminator,
    ConditionalMLPGenerator,
)
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init
from .mlp import MLPDiscriminator, MLPGenerator
from .patchgan import PatchDiscriminator
from .progressive import ProgressiveDiscriminator, ProgressiveGenerator
from .r3gan import R3GANDiscriminator, R3GANGenerator
from .resnet_gen import ResnetGenerator
from .srresnet import SRDiscriminator, SRResNetGenerator
from .stackgan import StackGANDiscriminator, StackGANStage1Generator, StackGANStage2Generator
from .stylegan import StyleGANDiscriminator, StyleGANGenerator
from .stylegan_layers import MappingNetwork
from .translation import ImageToImageNetwork
from .unet import InpaintingGenerator, UNetGenerator

NETWORKS: dict[str, type[Network]] = {
    cls.__name__: cls
    for cls in (
        MLPGenerator,
        MLPDiscriminator,
        DCGANGenerator,
        DCGANDiscriminator,
        ConditionalMLPGenerator,
        ConditionalMLPDiscriminator,
        ConditionalDCGANGenerator,
        ConditionalDCGANDiscriminator,
        ACGANDiscriminator,
        UNetGenerator,
        PatchDiscriminator,
        ResnetGenerator,
        SRResNetGenerator,
        SRDiscriminator,
        InpaintingGenerator,
        StyleGANGenerator,
        StyleGANDiscriminator,
        ProgressiveGenerator,
        ProgressiveDiscriminator,
        R3GANGenerator,
        R3GANDiscriminator,
    )
}
"""Every network class by class name (tests parametrize over it). The StackGAN networks are not in it:
they take captions, not labels, and tests/test_stackgan.py tests them."""

__all__ = [
    "NETWORKS",
    "ACGANDiscriminator",
    "ConditionalDCGANDiscriminator",
    "ConditionalDCGANGenerator",
    "ConditionalMLPDiscriminator",
    "ConditionalMLPGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "ImageToImageNetwork",
    "InpaintingGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "MappingNetwork",
    "Network",
    "PatchDiscriminator",
    "ProgressiveDiscriminator",
    "ProgressiveGenerator",
    "R3GANDiscriminator",
    "R3GANGenerator",
    "ResnetGenerator",
    "SRDiscriminator",
    "SRResNetGenerator",
    "StackGANDiscriminator",
    "StackGANStage1Generator",
    "StackGANStage2Generator",
    "StyleGANDiscriminator",
    "StyleGANGenerator",
    "UNetGenerator",
    "build_network",
    "dcgan_init",
]
