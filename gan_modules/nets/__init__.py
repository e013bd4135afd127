"""Networks: generators ``z [N, latent_dim] -> [N, *sample_shape]`` and discriminators ``x -> logits [N]``.

Conditional networks (``nets.conditional``, and the ``Conditional...`` subclasses of the StyleGAN and
R3GAN networks) take labels too: ``G(z, labels)``, ``D(x, labels)``.
Image-to-image networks (``nets.translation``: U-Net, PatchGAN, ResNet, SRResNet) map images to images
(``latent_dim = 0``, an ``input_shape`` beside ``sample_shape``) or judge them.
Every class subclasses :class:`Network` (rebuildable from ``init_spec`` with :func:`build_network`) and
is listed in :data:`NETWORKS` by the :func:`register_network` decorator, with the small configurations
its tests use. The layers several networks share are in :mod:`gan_modules.nets.layers`.
This package imports only torch, never lightning.
"""

from .base import NETWORKS, Network, build_network, register_network
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
from .r3gan import (
    ConditionalR3GANDiscriminator,
    ConditionalR3GANGenerator,
    R3GANDiscriminator,
    R3GANGenerator,
)
from .resnet_gen import ResnetGenerator
from .srresnet import SRDiscriminator, SRResNetGenerator
from .stackgan import StackGANDiscriminator, StackGANStage1Generator, StackGANStage2Generator
from .stylegan import (
    ConditionalStyleGANDiscriminator,
    ConditionalStyleGANGenerator,
    StyleGANDiscriminator,
    StyleGANGenerator,
)
from .stylegan_layers import MappingNetwork
from .translation import ImageToImageNetwork
from .unet import InpaintingGenerator, UNetGenerator

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
    "register_network",
    "dcgan_init",
    "ConditionalR3GANDiscriminator",
    "ConditionalR3GANGenerator",
    "ConditionalStyleGANDiscriminator",
    "ConditionalStyleGANGenerator",
]
