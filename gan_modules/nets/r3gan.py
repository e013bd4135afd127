"""R3GAN networks (Huang et al. 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline"), torch only.

A modernised StyleGAN2 backbone without its tricks: ResNeXt-style residual blocks with an inverted
bottleneck (1x1 conv expanding the channels, grouped KxK conv, 1x1 conv back), no normalization
layers anywhere, LeakyReLU(0.2) with a learned bias before it, bilinear resampling between stages,
a learned 4x4 basis modulated by a linear map of ``z`` at the generator's input and a depthwise 4x4
convolution at the discriminator's output. Written from the paper and the structure of the official
code (https://github.com/brownvc/R3GAN, ``R3GAN/Networks.py``).

Initialisation (the paper's "fix-up" initialisation, Zhang et al. 2019): every weight is
``N(0, gain^2 / fan_in)``; in each residual branch the first two convolutions get
``gain = sqrt(2 / (1 + 0.2^2)) * L ** (-1 / (2m - 2))`` with ``L`` the number of residual blocks of the
network and ``m = 3`` layers per branch, and the last convolution is zero, so every block starts as
the identity and the network's output variance does not grow with depth.

Per-stage arguments (``widths``, ``cardinalities``, ``blocks``) are listed from the 4x4 stage up, for
the discriminator too (the official code reverses them for D); a list shorter than the number of
stages repeats its last entry for the higher resolutions, so ``[768]`` means 768 everywhere.

Departures: resampling is ``F.interpolate`` (bilinear; antialiased when downsampling), whose
``[1, 3, 3, 1] / 8`` filter equals the official FIR filter away from the borders but renormalises at
the border instead of zero padding. ``output_activation`` defaults to tanh, which keeps the
framework's ``[-1, 1]`` image contract; ``"linear"`` is the paper's. FP16 stages and the fused CUDA
ops are not reproduced.

Class conditioning, as the official code: :class:`ConditionalR3GANGenerator` concatenates a linear
embedding of the one-hot label (no bias, fan-in initialised) to ``z`` before the generative basis;
:class:`ConditionalR3GANDiscriminator`'s basis gives ``embed_dim`` features instead of one logit, and
the logit is their inner product with a linear embedding of the label, scaled by
``1 / sqrt(embed_dim)`` (a projection discriminator, :class:`~gan_modules.nets.conditional.ProjectionHead`).
The unconditional classes take no ``num_classes``, so ``train.py``'s link from the datamodule never
makes them conditional.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Network, check_sample_shape, get_activation, register_network
from .conditional import ProjectionHead, _check_num_classes, check_labels, generator_labels
from .layers import check_input_shape

LEAKY_SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2 / (1 + LEAKY_SLOPE**2))
"""The gain of LeakyReLU(0.2) that keeps the variance of a layer's output (He et al. 2015)."""


def msr_init_(weight: Tensor, gain: float = 1.0) -> Tensor:
    """Initialises ``weight`` in place with ``N(0, (gain / sqrt(fan_in))^2)``; ``gain = 0`` zeroes it."""
    fan_in = weight.shape[1] * weight[0][0].numel()
    with torch.no_grad():
        return weight.normal_(0.0, gain / math.sqrt(fan_in)) if gain else weight.zero_()


def _conv(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, groups=groups, bias=False)
    msr_init_(conv.weight, gain)
    return conv


class BiasedLeakyReLU(nn.Module):
    """``leaky_relu(x + b, 0.2)`` with a learned per-channel bias (the convolutions have none)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.bias.view(1, -1, *([1] * (x.dim() - 2))), LEAKY_SLOPE)


class ResidualBlock(nn.Module):
    """``x + conv1x1(act(grouped convKxK(act(conv1x1(x)))))``: inverted bottleneck, no normalization.

    Args:
        channels: input and output channels.
        cardinality: groups of the KxK convolution; must divide ``channels * expansion``.
        expansion: channel expansion of the bottleneck (2 in the paper).
        kernel_size: the grouped convolution's kernel size.
        num_blocks: ``L``, the network's total number of residual blocks, for the fix-up scaling.
    """

    def __init__(self, channels: int, cardinality: int, expansion: int, kernel_size: int, num_blocks: int) -> None:
        super().__init__()
        hidden = channels * expansion
        if hidden % cardinality:
            raise ValueError(f"cardinality {cardinality} must divide the expanded channels {hidden}")
        gain = ACTIVATION_GAIN * num_blocks ** (-1 / (2 * 3 - 2))  # m = 3 linear layers per branch
        self.expand = _conv(channels, hidden, 1, gain=gain)
        self.act1 = BiasedLeakyReLU(hidden)
        self.grouped = _conv(hidden, hidden, kernel_size, groups=cardinality, gain=gain)
        self.act2 = BiasedLeakyReLU(hidden)
        self.project = _conv(hidden, channels, 1, gain=0.0)  # zero: the block starts as the identity

    def forward(self, x: Tensor) -> Tensor:
        return x + self.project(self.act2(self.grouped(self.act1(self.expand(x)))))


class Upsample(nn.Module):
    """1x1 convolution to the new width (when it changes), then bilinear 2x upsampling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)


class Downsample(nn.Module):
    """Bilinear (antialiased) 2x downsampling, then a 1x1 convolution to the new width (when it changes)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        # float32: PyTorch's antialiased bilinear kernel has no bfloat16 CPU implementation (bf16-mixed)
        down = F.interpolate(x.float(), scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
        return self.conv(down.to(x.dtype))


class GenerativeBasis(nn.Module):
    """``z [N, D] -> [N, C, 4, 4]``: a learned 4x4 basis per channel, scaled by a linear map of ``z``."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, 4, 4))
        self.linear = nn.Linear(latent_dim, channels, bias=False)
        msr_init_(self.linear.weight)

    def forward(self, z: Tensor) -> Tensor:
        return self.basis.unsqueeze(0) * self.linear(z).view(len(z), -1, 1, 1)


class DiscriminativeBasis(nn.Module):
    """``[N, C, 4, 4] -> [N, out_features]``: a depthwise 4x4 convolution, then a linear map."""

    def __init__(self, channels: int, out_features: int) -> None:
        super().__init__()
        self.basis = nn.Conv2d(channels, channels, 4, groups=channels, bias=False)
        msr_init_(self.basis.weight)
        self.linear = nn.Linear(channels, out_features, bias=False)
        msr_init_(self.linear.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.basis(x).flatten(1))


def _per_stage(values: Sequence[int], stages: int, what: str, name: str, minimum: int = 1) -> list[int]:
    values = [int(v) for v in values]
    if not values or len(values) > stages or min(values) < minimum:
        raise ValueError(f"{name}: {what} must list 1 to {stages} values >= {minimum} (one per stage from 4x4 up), "
                         f"got {values}")
    return values + [values[-1]] * (stages - len(values))


def _stages(sample_shape: Sequence[int], name: str) -> tuple[int, int]:
    channels, height, width = check_sample_shape(sample_shape, ndim=3, name=name)
    if height != width or height < 8 or height & (height - 1):
        raise ValueError(f"{name}: images must be square with a power-of-two size >= 8, got sample_shape "
                         f"{tuple(sample_shape)}")
    return channels, height.bit_length() - 2  # stages 4, 8, ..., H


def _stage_blocks(width: int, cardinality: int, count: int, expansion: int, kernel_size: int, total: int) -> list[nn.Module]:
    return [ResidualBlock(width, cardinality, expansion, kernel_size, total) for _ in range(count)]


@register_network(small_configs=[{"latent_dim": 16, "widths": [16, 8], "cardinalities": [4, 2], "blocks": [1]}])
class R3GANGenerator(Network):
    """R3GAN generator: ``z [N, latent_dim] -> images [N, C, H, W]``.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8; stages run 4, 8, ..., H.
        latent_dim: size of ``z`` (64 in the paper).
        widths: channels per stage from 4x4 up (CIFAR-10: 768 everywhere).
        cardinalities: groups of the grouped convolutions per stage (CIFAR-10: 96).
        blocks: residual blocks per stage (the paper: 2; 0 leaves a stage with its resampling only).
        expansion: bottleneck expansion (2).
        kernel_size: kernel of the grouped convolutions (3).
        output_activation: ``tanh`` (default, keeps ``[-1, 1]``) or ``linear`` (the paper).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 32, 32),
        latent_dim: int = 64,
        widths: Sequence[int] = (768,),
        cardinalities: Sequence[int] = (96,),
        blocks: Sequence[int] = (2,),
        expansion: int = 2,
        kernel_size: int = 3,
        output_activation: str = "tanh",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        out_channels, stages = _stages(sample_shape, name)
        if latent_dim < 1 or expansion < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"{name}: latent_dim and expansion must be >= 1 and kernel_size odd")
        if output_activation not in ("tanh", "linear"):
            raise ValueError(f"{name}: unknown output_activation '{output_activation}'; valid: linear, tanh")
        widths = _per_stage(widths, stages, "widths", name)
        cards = _per_stage(cardinalities, stages, "cardinalities", name)
        counts = _per_stage(blocks, stages, "blocks", name, minimum=0)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim, self.num_classes = int(latent_dim), 0
        total = max(sum(counts), 1)
        self.stages = nn.ModuleList()
        for s in range(stages):
            entry = GenerativeBasis(latent_dim, widths[0]) if s == 0 else Upsample(widths[s - 1], widths[s])
            self.stages.append(nn.Sequential(entry, *_stage_blocks(widths[s], cards[s], counts[s], expansion,
                                                                   kernel_size, total)))
        self.to_image = _conv(widths[-1], out_channels, 1)
        self.output_activation = get_activation(output_activation)
        self.embed: nn.Embedding | None = None  # set by ConditionalR3GANGenerator

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Maps ``z [N, latent_dim]`` (and ``labels [N]`` when conditional; None: classes cycled) to images
        ``[N, C, H, W]``; ``labels`` is ignored by an unconditional generator."""
        name = type(self).__name__
        check_input_shape(name, z, (self.latent_dim,), "z ")
        x = z
        if self.embed is not None:
            x = torch.cat([z, self.embed(generator_labels(name, labels, z, self.num_classes)).to(z.dtype)], dim=1)
        for stage in self.stages:
            x = stage(x)
        return self.output_activation(self.to_image(x))


@register_network(small_configs=[{"widths": [16, 8], "cardinalities": [4, 2], "blocks": [1]}])
class R3GANDiscriminator(Network):
    """R3GAN discriminator: ``images [N, C, H, W] -> logits [N]`` (no sigmoid; larger = more real).

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        widths: channels per stage, listed from 4x4 UP (the same list as the generator's).
        cardinalities: groups of the grouped convolutions per stage, from 4x4 up.
        blocks: residual blocks per stage, from 4x4 up (0 allowed).
        expansion: bottleneck expansion (2).
        kernel_size: kernel of the grouped convolutions (3).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 32, 32),
        widths: Sequence[int] = (768,),
        cardinalities: Sequence[int] = (96,),
        blocks: Sequence[int] = (2,),
        expansion: int = 2,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels, stages = _stages(sample_shape, name)
        if expansion < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"{name}: expansion must be >= 1 and kernel_size odd")
        widths = _per_stage(widths, stages, "widths", name)
        cards = _per_stage(cardinalities, stages, "cardinalities", name)
        counts = _per_stage(blocks, stages, "blocks", name, minimum=0)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim = self.num_classes = 0
        total = max(sum(counts), 1)
        self.from_image = _conv(in_channels, widths[-1], 1)
        self.stages = nn.ModuleList()
        for s in reversed(range(stages)):  # from the full resolution down to 4x4
            exit_ = DiscriminativeBasis(widths[0], 1) if s == 0 else Downsample(widths[s], widths[s - 1])
            self.stages.append(nn.Sequential(*_stage_blocks(widths[s], cards[s], counts[s], expansion, kernel_size,
                                                            total), exit_))
        self.projection: ProjectionHead | None = None  # set by ConditionalR3GANDiscriminator

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Maps images ``[N, C, H, W]`` (and ``labels [N]`` when conditional) to logits ``[N]``."""
        name = type(self).__name__
        check_input_shape(name, x, self.sample_shape)
        if self.projection is not None:
            labels = check_labels(name, labels, x.shape[0])
        x = self.from_image(x)
        for stage in self.stages:
            x = stage(x)
        return x.flatten() if self.projection is None else self.projection(x, labels)



def _label_embedding(num_classes: int, dim: int) -> nn.Embedding:
    """The official ``nn.Linear(num_classes, dim, bias=False)`` of the one-hot label, fan-in initialised, as a lookup."""
    embed = nn.Embedding(num_classes, dim)
    nn.init.normal_(embed.weight, 0.0, 1.0 / math.sqrt(num_classes))
    return embed


def _embed_dim(name: str, embed_dim: int | None, default: int) -> int:
    dim = default if embed_dim is None else int(embed_dim)
    if dim < 1:
        raise ValueError(f"{name}: embed_dim must be >= 1 or None, got {embed_dim}")
    return dim


@register_network(small_configs=[{"num_classes": 3, "latent_dim": 16, "widths": [16, 8], "cardinalities": [4, 2],
                                    "blocks": [1], "embed_dim": e} for e in (None, 4)])
class ConditionalR3GANGenerator(R3GANGenerator):
    """Class-conditional :class:`R3GANGenerator`: ``G(z [N, latent_dim], labels [N]) -> [N, C, H, W]``.

    ``[z, embed(y)]`` enters the generative basis; ``G(z)`` cycles the classes ``0, 1, ..., K-1, 0, ...``.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        num_classes: the number of classes (linked from ``data.num_classes`` by ``train.py``).
        embed_dim: size of the label embedding; None: ``latent_dim``.
        Other arguments: as :class:`R3GANGenerator`.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        embed_dim: int | None = None,
        latent_dim: int = 64,
        widths: Sequence[int] = (768,),
        cardinalities: Sequence[int] = (96,),
        blocks: Sequence[int] = (2,),
        expansion: int = 2,
        kernel_size: int = 3,
        output_activation: str = "tanh",
    ) -> None:
        super().__init__(sample_shape, latent_dim, widths, cardinalities, blocks, expansion, kernel_size,
                         output_activation)
        name = type(self).__name__
        self.num_classes = _check_num_classes(name, num_classes)
        dim = _embed_dim(name, embed_dim, self.latent_dim)
        width = self.stages[0][0].basis.shape[0]
        self.stages[0][0] = GenerativeBasis(self.latent_dim + dim, width)  # takes [z, embed(y)]
        self.embed = _label_embedding(self.num_classes, dim)


@register_network(small_configs=[{"num_classes": 3, "widths": [16, 8], "cardinalities": [4, 2], "blocks": [1],
                                    "embed_dim": e} for e in (None, 4)])
class ConditionalR3GANDiscriminator(R3GANDiscriminator):
    """Projection :class:`R3GANDiscriminator`: ``D(images [N, C, H, W], labels [N]) -> logits [N]``.

    The discriminative basis gives ``embed_dim`` features ``h``; the logit is ``<h, embed(y)> / sqrt(embed_dim)``.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        num_classes: the number of classes (linked from ``data.num_classes`` by ``train.py``).
        embed_dim: size of the features and the label embedding; None: the 4x4 stage's width.
        Other arguments: as :class:`R3GANDiscriminator`.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 32, 32),
        num_classes: int = 10,
        embed_dim: int | None = None,
        widths: Sequence[int] = (768,),
        cardinalities: Sequence[int] = (96,),
        blocks: Sequence[int] = (2,),
        expansion: int = 2,
        kernel_size: int = 3,
    ) -> None:
        super().__init__(sample_shape, widths, cardinalities, blocks, expansion, kernel_size)
        name = type(self).__name__
        self.num_classes = _check_num_classes(name, num_classes)
        width = self.stages[-1][-1].linear.in_features
        dim = _embed_dim(name, embed_dim, width)
        self.stages[-1][-1] = DiscriminativeBasis(width, dim)  # features for the projection, not one logit
        self.projection = ProjectionHead(None, dim, self.num_classes, scale=dim ** -0.5)
        self.projection.embed = _label_embedding(self.num_classes, dim)
