"""PatchGAN discriminator (Isola et al. 2017; also CycleGAN's and the inpainting family's).

A fully convolutional classifier whose every output logit judges one ``N x N`` patch of the image:
``n_layers`` stride-2 4x4 convolutions (channels ``C, 2C, 4C, 8C, 8C, ...``, LeakyReLU 0.2, no norm on
the first), one stride-1 4x4 convolution, and a stride-1 4x4 convolution to one channel. With
``n_layers = 3`` each logit sees a 70x70 patch (the paper's choice), ``1`` gives 16x16 and ``4``
gives 142x142; :func:`receptive_field` computes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .base import get_norm2d, register_network
from .translation import ImageToImageNetwork, check_images, finish_init, image_shape, same_size_input


def receptive_field(n_layers: int) -> int:
    """The side of the input patch one PatchGAN logit sees (70 for ``n_layers = 3``).

    Walks the layers backwards: a k-wide window after a stride-s layer covers ``(size - 1) * s + k`` inputs.
    """
    size = 1
    for stride in [1, 1] + [2] * n_layers:  # last layer first: two stride-1 convs, then the stride-2 ones
        size = (size - 1) * stride + 4
    return size


@register_network(small_configs=[{"base_channels": 4, "n_layers": 2, "conditional": c} for c in (False, True)])
class PatchDiscriminator(ImageToImageNetwork):
    """PatchGAN: ``image [N, C, H, W]`` (and its input, when conditional) ``-> logits [N, 1, h, w]``.

    Larger logit = more real; the losses in ``gan_modules.losses`` average over the patch map.

    Args:
        sample_shape: ``(C_out, H, W)`` of the images judged.
        input_shape: ``(C_in, H, W)`` of the translation's input; read only when ``conditional``
            (None: ``sample_shape``).
        conditional: pix2pix's conditional D, which sees ``concat(input, image)`` along channels
            (input first, as the reference code); False for CycleGAN's and the inpainting D.
        base_channels: channels of the first layer (64 in the papers).
        n_layers: stride-2 layers; 3 gives the 70x70 PatchGAN.
        norm: ``batch`` (pix2pix), ``instance_noaffine`` (CycleGAN's InstanceNorm2d(affine=False)), ``instance``
            (affine), ``layer`` or ``none``; never on the first layer.
        spectral_norm: wrap every convolution with spectral normalization.
        init: ``dcgan`` (N(0, 0.02), the papers') or ``default``.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 256, 256),
        input_shape: Sequence[int] | None = None,
        conditional: bool = False,
        base_channels: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.sample_shape = image_shape(sample_shape, name)
        self.input_shape = same_size_input(self.sample_shape, input_shape, name) if conditional else None
        self.conditional = conditional
        self.latent_dim, self.num_classes = 0, 0
        _, height, width = self.sample_shape
        if n_layers < 1 or min(height, width) < 3 * 2 ** n_layers:
            raise ValueError(f"{name}: n_layers={n_layers} needs n_layers >= 1 and images of at least "
                             f"{3 * 2 ** n_layers} px (the two stride-1 layers need a 3x3 map), got {self.sample_shape}")
        in_channels = self.sample_shape[0] + (self.input_shape[0] if self.input_shape else 0)
        bias = norm == "none"  # a bias right before a norm layer is cancelled by it
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = base_channels
        for layer in range(1, n_layers + 1):
            stride = 2 if layer < n_layers else 1  # the last of these keeps the resolution
            c_out = base_channels * min(2 ** layer, 8)
            layers += [nn.Conv2d(width, c_out, 4, stride, 1, bias=bias), get_norm2d(norm, c_out), nn.LeakyReLU(0.2, True)]
            width = c_out
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.body = nn.Sequential(*layers)
        finish_init(self, init, name)
        if spectral_norm:  # after the init: the power iteration must see the final weights
            for conv in [m for m in self.modules() if isinstance(m, nn.Conv2d)]:
                _spectral_norm(conv)
        self.n_layers = n_layers

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """Logits ``[N, 1, h, w]`` for images ``x [N, *sample_shape]``.

        Args:
            x: the images judged (real targets or generated outputs).
            condition: the translation's inputs ``[N, *input_shape]``; required iff ``conditional``.
        """
        name = type(self).__name__
        check_images(name, x, self.sample_shape)
        if self.conditional:
            if condition is None:
                raise ValueError(f"{name} is conditional: pass the translation's input as `condition`")
            check_images(name, condition, self.input_shape, "condition ")
            x = torch.cat([condition, x], dim=1)
        elif condition is not None:
            raise ValueError(f"{name} is unconditional (conditional=False) but got a condition")
        return self.body(x)
