"""CycleGAN's ResNet generator (Zhu et al. 2017, after Johnson et al. 2016).

``c7s1-C, d2C, d4C, R4C x n_blocks, u2C, uC, c7s1-C_out``: a 7x7 convolution with reflection padding,
``n_downsampling`` stride-2 3x3 convolutions, residual blocks at the lowest resolution (3x3
convolutions with reflection padding), as many stride-1/2 transposed convolutions, a 7x7 convolution
and tanh. Instance norm throughout. The paper uses 6 blocks for 128 px and 9 for 256 px.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .base import get_norm2d, register_network
from .layers import GatedShortcut, check_choice
from .translation import (
    ImageToImageNetwork,
    check_divisible,
    check_images,
    finish_init,
    image_shape,
    same_size_input,
)

BLOCKS = ("residual", "gated")


class ResnetBlock(nn.Module):
    """``x + f(x)``, ``f = (pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm)`` with reflection padding.

    With ``block="gated"`` the sum becomes the gated shortcut ``g * x + (1 - g) * f(x)``, ``g`` a sigmoid
    of a 1x1 convolution of ``[x, f(x)]`` (:class:`~gan_modules.nets.layers.GatedShortcut`,
    arXiv:2201.11351), ``g = 1/2`` at initialisation.
    """

    def __init__(self, channels: int, norm: str, dropout: float, block: str = "residual") -> None:
        super().__init__()
        bias = norm == "none"
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                   get_norm2d(norm, channels), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), get_norm2d(norm, channels)]
        self.body = nn.Sequential(*layers)
        self.gate = GatedShortcut(channels) if block == "gated" else None

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x) if self.gate is None else self.gate(x, self.body(x))


@register_network(small_configs=[{"base_channels": 4, "n_blocks": 1, "block": b} for b in BLOCKS])
class ResnetGenerator(ImageToImageNetwork):
    """ResNet generator: ``input [N, C_in, H, W] -> output [N, C_out, H, W]`` in ``[-1, 1]``.

    Args:
        sample_shape: ``(C_out, H, W)`` of the output.
        input_shape: ``(C_in, H, W)`` of the input; None for the output's shape.
        base_channels: channels after the first layer (64 in the paper).
        n_blocks: residual blocks (6 for 128 px, 9 for 256 px in the paper).
        n_downsampling: stride-2 stages before the blocks (2 in the paper); H and W must be
            multiples of ``2 ** n_downsampling``.
        norm: ``instance_noaffine`` (the official code's InstanceNorm2d(affine=False)), ``instance`` (affine),
            ``batch``, ``layer`` or ``none``.
        dropout: dropout inside the residual blocks (0 in CycleGAN).
        init: ``dcgan`` (N(0, 0.02), the paper's) or ``default``.
        upsampling: ``transpose`` (the paper's stride-2 3x3 transposed convolutions) or ``nearest``
            (nearest-neighbour x2 then a 3x3 convolution with reflection padding, which cannot make
            the checkerboard pattern of a transposed convolution's uneven overlap: Odena et al.
            2016, "Deconvolution and Checkerboard Artifacts").
        block: ``residual`` (the paper's ``x + f(x)``) or ``gated`` (the gated shortcut ``g * x + (1 - g) *
            f(x)``, see :class:`ResnetBlock`).
    """

    is_generator = True

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 256, 256),
        input_shape: Sequence[int] | None = None,
        base_channels: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        norm: str = "instance",
        dropout: float = 0.0,
        init: str = "dcgan",
        upsampling: str = "transpose",
        block: str = "residual",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.sample_shape = image_shape(sample_shape, name)
        self.input_shape = same_size_input(self.sample_shape, input_shape, name)
        self.latent_dim, self.num_classes = 0, 0
        if n_blocks < 0 or n_downsampling < 0:
            raise ValueError(f"{name}: n_blocks and n_downsampling must be >= 0, got {n_blocks}, {n_downsampling}")
        if upsampling not in ("transpose", "nearest"):
            raise ValueError(f"{name}: upsampling must be 'transpose' or 'nearest', got {upsampling!r}")
        check_choice(name, "block", block, BLOCKS)
        check_divisible(self.sample_shape, 2 ** n_downsampling, name, f"n_downsampling={n_downsampling}")
        bias = norm == "none"
        width = base_channels
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(self.input_shape[0], width, 7, bias=bias),
                                   get_norm2d(norm, width), nn.ReLU(True)]
        for _ in range(n_downsampling):
            layers += [nn.Conv2d(width, 2 * width, 3, 2, 1, bias=bias), get_norm2d(norm, 2 * width), nn.ReLU(True)]
            width *= 2
        layers += [ResnetBlock(width, norm, dropout, block) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            if upsampling == "transpose":
                layers.append(nn.ConvTranspose2d(width, width // 2, 3, 2, 1, output_padding=1, bias=bias))
            else:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                           nn.Conv2d(width, width // 2, 3, bias=bias)]
            layers += [get_norm2d(norm, width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, self.sample_shape[0], 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        finish_init(self, init, name)

    def forward(self, x: Tensor) -> Tensor:
        """Maps inputs ``[N, *input_shape]`` to outputs ``[N, *sample_shape]`` in ``[-1, 1]``."""
        check_images(type(self).__name__, x, self.input_shape)
        return self.body(x)
