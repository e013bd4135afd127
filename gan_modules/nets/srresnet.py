"""SRResNet generator and SRGAN discriminator (Ledig et al. 2017).

Generator: a 9x9 convolution + PReLU, ``n_blocks`` residual blocks (conv3x3, BN, PReLU, conv3x3, BN,
skip), a conv3x3 + BN closed by a skip from before the blocks, then ``log2(scale)`` upsampling stages
(conv3x3 to 4x channels, pixel shuffle x2, PReLU) and a 9x9 convolution; tanh keeps the output in
``[-1, 1]`` (the framework's range; the paper's output layer is linear on ``[-1, 1]`` targets).

Discriminator: eight 3x3 convolutions (64, 64, 128, 128, 256, 256, 512, 512 channels; every second one
stride 2; LeakyReLU 0.2; BN after all but the first), a dense layer of 1024, LeakyReLU, one logit. The
paper's 96 px crops leave a 6x6 map before the dense layers; larger images are average-pooled to 6x6
first, so the dense layer's size does not grow with the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .base import get_norm2d, register_network
from .layers import check_choice
from .translation import ImageToImageNetwork, check_divisible, check_images, finish_init, image_shape

INPUT_SKIPS = ("none", "bicubic", "nearest")


class SRResidualBlock(nn.Module):
    """``x + (conv3x3, norm, PReLU, conv3x3, norm)(x)``."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), get_norm2d(norm, channels), nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), get_norm2d(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@register_network(small_configs=[{"base_channels": 4, "n_blocks": 1}])
class SRResNetGenerator(ImageToImageNetwork):
    """SRResNet: ``low-res [N, C, H/s, W/s] -> high-res [N, C, H, W]`` in ``[-1, 1]``, ``s`` a power of 2.

    The scale ``s`` is ``H / H_in``, read from the two shapes (4 in the paper), one pixel-shuffle x2
    stage per factor of 2.

    Args:
        sample_shape: ``(C, H, W)`` of the high-resolution output.
        input_shape: ``(C_in, H/s, W/s)`` of the low-resolution input; None for a quarter of
            ``sample_shape``'s height and width (x4, the paper's setting).
        base_channels: feature channels (64 in the paper).
        n_blocks: residual blocks (16 in the paper).
        norm: ``batch`` (paper), ``instance``, ``layer`` or ``none``.
        init: ``default`` (PyTorch's) or ``dcgan`` (N(0, 0.02)).
        input_skip: ``none`` (the paper's: the network outputs the image through tanh), ``bicubic`` or
            ``nearest``: the network outputs a residual added to the input upsampled that way, clamped to
            ``[-1, 1]`` (global residual learning, Kim et al. 2016's VDSR); it starts from the
            interpolation instead of from grey, which short training budgets need. Needs the input's
            channels to be the output's.
    """

    is_generator = True

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 96, 96),
        input_shape: Sequence[int] | None = None,
        base_channels: int = 64,
        n_blocks: int = 16,
        norm: str = "batch",
        init: str = "default",
        input_skip: str = "none",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        check_choice(name, "input_skip", input_skip, INPUT_SKIPS)
        self.sample_shape = image_shape(sample_shape, name)
        channels, height, width = self.sample_shape
        if input_shape is None:
            check_divisible(self.sample_shape, 4, name, "the default input_shape is a quarter of the size")
            input_shape = (channels, height // 4, width // 4)
        self.input_shape = image_shape(input_shape, name, "input_shape")
        scale = height // self.input_shape[1]
        if (scale * self.input_shape[1] != height or scale * self.input_shape[2] != width
                or scale & (scale - 1)):
            raise ValueError(f"{name}: sample_shape {self.sample_shape} must be input_shape {self.input_shape} "
                             "scaled by a power of two in height and width")
        if input_skip != "none" and self.input_shape[0] != channels:
            raise ValueError(f"{name}: input_skip '{input_skip}' adds the upsampled input to the output, so "
                             f"input_shape {self.input_shape} needs the channels of sample_shape {self.sample_shape}")
        self.scale, self.input_skip = scale, input_skip
        self.latent_dim, self.num_classes = 0, 0
        self.head = nn.Sequential(nn.Conv2d(self.input_shape[0], base_channels, 9, 1, 4), nn.PReLU(base_channels))
        self.blocks = nn.Sequential(
            *[SRResidualBlock(base_channels, norm) for _ in range(n_blocks)],
            nn.Conv2d(base_channels, base_channels, 3, 1, 1, bias=norm == "none"), get_norm2d(norm, base_channels),
        )
        upsample: list[nn.Module] = []
        for _ in range(scale.bit_length() - 1):
            upsample += [nn.Conv2d(base_channels, 4 * base_channels, 3, 1, 1), nn.PixelShuffle(2),
                         nn.PReLU(base_channels)]
        last = [nn.Conv2d(base_channels, channels, 9, 1, 4)] + ([nn.Tanh()] if input_skip == "none" else [])
        self.tail = nn.Sequential(*upsample, *last)
        finish_init(self, init, name)

    def forward(self, x: Tensor) -> Tensor:
        """Upsamples ``x [N, *input_shape]`` to ``[N, *sample_shape]``."""
        check_images(type(self).__name__, x, self.input_shape)
        features = self.head(x)
        out = self.tail(features + self.blocks(features))
        if self.input_skip == "none":
            return out
        if self.input_skip == "bicubic":
            upsampled = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        else:
            upsampled = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return (upsampled + out).clamp(-1.0, 1.0)


@register_network(small_configs=[{"base_channels": 4, "dense_dim": 8}])
class SRDiscriminator(ImageToImageNetwork):
    """SRGAN discriminator: ``images [N, C, H, W] -> logits [N]`` (larger = more real).

    Args:
        sample_shape: ``(C, H, W)`` of the high-resolution images; H and W multiples of ``2 ** n_stages``.
        base_channels: channels of the first stage (64 in the paper); doubled every stage.
        n_stages: stages of two convolutions, the second of stride 2 (4 in the paper).
        dense_dim: width of the hidden dense layer (1024 in the paper).
        norm: ``batch`` (paper), ``instance``, ``layer`` or ``none``; never on the first convolution.
        init: ``default`` (PyTorch's) or ``dcgan`` (N(0, 0.02)).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 96, 96),
        base_channels: int = 64,
        n_stages: int = 4,
        dense_dim: int = 1024,
        norm: str = "batch",
        init: str = "default",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.sample_shape = image_shape(sample_shape, name)
        self.latent_dim, self.num_classes = 0, 0
        if n_stages < 1:
            raise ValueError(f"{name}: n_stages must be >= 1, got {n_stages}")
        check_divisible(self.sample_shape, 2 ** n_stages, name, f"n_stages={n_stages} stride-2 convolutions")
        bias = norm == "none"
        layers: list[nn.Module] = [nn.Conv2d(self.sample_shape[0], base_channels, 3, 1, 1), nn.LeakyReLU(0.2, True)]
        width = base_channels
        for stage in range(n_stages):
            c_out = base_channels * 2 ** stage
            if stage > 0:
                layers += [nn.Conv2d(width, c_out, 3, 1, 1, bias=bias), get_norm2d(norm, c_out), nn.LeakyReLU(0.2, True)]
            layers += [nn.Conv2d(c_out, c_out, 3, 2, 1, bias=bias), get_norm2d(norm, c_out), nn.LeakyReLU(0.2, True)]
            width = c_out
        pooled = (min(6, self.sample_shape[1] // 2 ** n_stages), min(6, self.sample_shape[2] // 2 ** n_stages))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(pooled))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * pooled[0] * pooled[1], dense_dim),
                                  nn.LeakyReLU(0.2, True), nn.Linear(dense_dim, 1))
        finish_init(self, init, name)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[N]`` for high-resolution images ``[N, *sample_shape]``."""
        check_images(type(self).__name__, x, self.sample_shape)
        return self.head(self.features(x)).flatten()
