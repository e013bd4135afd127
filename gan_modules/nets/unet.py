"""U-Net generators: pix2pix's (Isola et al. 2017) and an inpainting one that reads image + mask.

The U-Net is pix2pix's ``unet_256`` built iteratively: ``num_downs`` stride-2 4x4 convolutions
(LeakyReLU 0.2, channels ``C, 2C, 4C, 8C, 8C, ...``), then as many transposed convolutions (ReLU), each
decoder layer reading the concatenation of the previous decoder output and the encoder output of the
same resolution (the skips). The outermost and innermost encoder layers have no norm (the innermost
is 1x1 at the paper's depth, where a batch of 1 has no statistics to normalise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import get_norm2d, register_network
from .translation import ImageToImageNetwork, check_images, finish_init, image_shape, same_size_input


class AlwaysDropout(nn.Module):
    """Dropout that can stay active in eval mode: pix2pix's only source of noise.

    Isola et al. found that a noise input ``z`` is ignored by the generator, so they "provide noise
    only in the form of dropout, applied on several layers of our generator at both training and test
    time". With ``at_inference=True`` this layer drops units whatever ``module.training`` says, so
    ``net.eval()`` (used for sampling, to switch batch norm to its running statistics) keeps the noise;
    seed torch's RNG for reproducible outputs. With ``at_inference=False`` it is plain ``nn.Dropout``.
    """

    def __init__(self, p: float, at_inference: bool = True) -> None:
        super().__init__()
        self.p, self.at_inference = p, at_inference

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training or self.at_inference)

    def extra_repr(self) -> str:
        return f"p={self.p}, at_inference={self.at_inference}"


def default_depth(height: int, width: int) -> int:
    """The deepest U-Net whose bottleneck is still at least 1x1: the largest d with 2**d dividing H and W."""
    depth = 0
    while height % 2 ** (depth + 1) == 0 and width % 2 ** (depth + 1) == 0:
        depth += 1
    return depth


class _UNet(nn.Module):
    """The encoder-decoder with skips (no contract attributes; the Network classes wrap it)."""

    def __init__(self, in_channels: int, out_channels: int, depth: int, base_channels: int, norm: str,
                 dropout: float, num_dropout: int, dropout_at_inference: bool) -> None:
        super().__init__()
        widths = [base_channels * min(2 ** level, 8) for level in range(depth)]
        self.down = nn.ModuleList()
        for level in range(depth):
            outer, inner = level == 0, level == depth - 1
            normed = not (outer or inner)
            conv = nn.Conv2d(in_channels if outer else widths[level - 1], widths[level], 4, 2, 1,
                             bias=not normed or norm == "none")
            layers = ([] if outer else [nn.LeakyReLU(0.2, inplace=False)]) + [conv]
            self.down.append(nn.Sequential(*layers, *([get_norm2d(norm, widths[level])] if normed else [])))
        self.up = nn.ModuleList()
        for level in range(depth):
            outer, inner = level == 0, level == depth - 1
            c_in = widths[level] if inner else 2 * widths[level]
            c_out = out_channels if outer else widths[level - 1]
            layers = [nn.ReLU(inplace=False), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=outer or norm == "none")]
            if outer:
                layers.append(nn.Tanh())
            else:
                layers.append(get_norm2d(norm, c_out))
                # pix2pix puts dropout on the decoder layers right after the innermost one
                if dropout > 0 and depth - 1 - num_dropout <= level <= depth - 2:
                    layers.append(AlwaysDropout(dropout, dropout_at_inference))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for level in range(len(self.down) - 2, -1, -1):
            x = self.up[level](torch.cat([skips[level], x], dim=1))
        return x


def _depth(num_downs: int | None, shape: Sequence[int], name: str) -> int:
    depth = default_depth(shape[1], shape[2]) if num_downs is None else int(num_downs)
    if depth < 2 or shape[1] % 2 ** depth or shape[2] % 2 ** depth:
        raise ValueError(f"{name}: num_downs={depth} needs height and width divisible by 2**num_downs and "
                         f"num_downs >= 2; got sample_shape {tuple(shape)}")
    return depth


@register_network(small_configs=[{"base_channels": 4, "dropout_at_inference": False}])
class UNetGenerator(ImageToImageNetwork):
    """pix2pix U-Net: ``input [N, C_in, H, W] -> output [N, C_out, H, W]`` in ``[-1, 1]``.

    Stochastic by design: ``num_dropout`` decoder layers apply dropout at training and at inference
    (see :class:`AlwaysDropout`), so two calls on the same input differ unless torch's RNG is seeded.

    Args:
        sample_shape: ``(C_out, H, W)`` of the output (the datamodule's target shape).
        input_shape: ``(C_in, H, W)`` of the input; None for the output's shape.
        base_channels: channels of the first encoder layer (64 in the paper); capped at 8x deeper.
        num_downs: encoder depth; None goes down to the smallest map that divides evenly (1x1 for
            power-of-two sizes: 8 for 256 px, as ``unet_256``).
        norm: ``batch`` (paper), ``instance``, ``layer`` or ``none``. At batch size 1 with
            ``eval()`` sampling, ``instance`` avoids the train/test gap of batch statistics.
        dropout: dropout probability (0.5 in the paper); 0 makes the generator deterministic.
        num_dropout: decoder layers with dropout, counted from the innermost (3 in the paper).
        dropout_at_inference: keep dropout active in eval mode (the paper's noise); False for the
            usual train-only dropout.
        init: ``dcgan`` (N(0, 0.02), the paper's) or ``default``.
    """

    is_generator = True

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 256, 256),
        input_shape: Sequence[int] | None = None,
        base_channels: int = 64,
        num_downs: int | None = None,
        norm: str = "batch",
        dropout: float = 0.5,
        num_dropout: int = 3,
        dropout_at_inference: bool = True,
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.sample_shape = image_shape(sample_shape, name)
        self.input_shape = same_size_input(self.sample_shape, input_shape, name)
        self.latent_dim, self.num_classes = 0, 0
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        depth = _depth(num_downs, self.sample_shape, name)
        self.body = _UNet(self.input_shape[0], self.sample_shape[0], depth, base_channels, norm,
                          dropout, num_dropout, dropout_at_inference)
        finish_init(self, init, name)

    def forward(self, x: Tensor) -> Tensor:
        """Maps inputs ``[N, *input_shape]`` to outputs ``[N, *sample_shape]`` in ``[-1, 1]``."""
        check_images(type(self).__name__, x, self.input_shape)
        return self.body(x)


def composite(output: Tensor, known: Tensor, mask: Tensor) -> Tensor:
    """``mask * output + (1 - mask) * known``: generated pixels in the hole, the known ones elsewhere.

    Args:
        output: generated images ``[N, C, H, W]``.
        known: images whose pixels outside the hole are known ``[N, C, H, W]``.
        mask: ``[N, 1, H, W]``, 1 in the hole and 0 on known pixels; a soft mask blends the two.
    """
    # For a binary mask and finite outputs this is exact on known pixels: 1 * known + 0 * output == known.
    return mask * output + (1 - mask) * known


@register_network(small_configs=[{"base_channels": 4}])
class InpaintingGenerator(ImageToImageNetwork):
    """Inpainting U-Net: ``(image [N, C, H, W] with the hole zeroed, mask [N, 1, H, W]) -> image``.

    The network reads the masked image and the mask (1 = hole) as ``C + 1`` channels, like the
    context encoder of Pathak et al. 2016 with U-Net skips, and returns the composite: generated
    pixels in the hole, the input's pixels elsewhere (exactly, for a binary mask).

    Args:
        sample_shape: ``(C, H, W)`` of the completed image.
        input_shape: ``(C, H, W)`` of the masked image; None for ``sample_shape`` (must have its channels).
        base_channels: channels of the first encoder layer.
        num_downs: encoder depth; None: down to the smallest even map (1x1 for power-of-two sizes).
            The hole is filled from the context through the deep layers, so keep the bottleneck
            smaller than the hole.
        norm: ``batch``, ``instance``, ``layer`` or ``none``.
        init: ``dcgan`` (N(0, 0.02)) or ``default``.
    """

    is_generator = True

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 128, 128),
        input_shape: Sequence[int] | None = None,
        base_channels: int = 64,
        num_downs: int | None = None,
        norm: str = "batch",
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.sample_shape = image_shape(sample_shape, name)
        self.input_shape = same_size_input(self.sample_shape, input_shape, name)
        if self.input_shape[0] != self.sample_shape[0]:
            raise ValueError(f"{name}: the masked input must have the output's channels to be composited, "
                             f"got input_shape {self.input_shape} and sample_shape {self.sample_shape}")
        self.latent_dim, self.num_classes = 0, 0
        depth = _depth(num_downs, self.sample_shape, name)
        self.body = _UNet(self.input_shape[0] + 1, self.sample_shape[0], depth, base_channels, norm,
                          dropout=0.0, num_dropout=0, dropout_at_inference=False)
        finish_init(self, init, name)

    def example_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A random image batch and a centred square hole of half the size."""
        image = torch.rand(n, *self.input_shape, generator=generator) * 2 - 1
        _, h, w = self.input_shape
        mask = torch.zeros(n, 1, h, w)
        mask[:, :, h // 4: h // 4 + math.ceil(h / 2), w // 4: w // 4 + math.ceil(w / 2)] = 1
        return image * (1 - mask), mask

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Completes ``x [N, *input_shape]`` in the hole ``mask [N, 1, H, W]`` (1 = missing pixel)."""
        name = type(self).__name__
        check_images(name, x, self.input_shape)
        check_images(name, mask, (1, *self.input_shape[1:]), "mask ")
        mask = mask.to(x.dtype)
        known = x * (1 - mask)  # the hole is zeroed again, so whatever the data left there is ignored
        return composite(self.body(torch.cat([known, mask], dim=1)), known, mask)
