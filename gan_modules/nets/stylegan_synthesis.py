"""StyleGAN and StyleGAN2 synthesis networks: ``ws [N, num_ws, w_dim] -> images``.

From a learned constant 4x4 input, doubling the resolution per block up to the image size:

* ``architecture="stylegan"`` (Karras et al. 2019): every layer is noise, bias, LeakyReLU, then AdaIN;
  upsampling is nearest-neighbour, 3x3 convolution, ``[1, 2, 1]`` blur; one ToRGB at the end
  (``block_architecture="orig"`` is the paper's).
* ``architecture="stylegan2"`` (Karras et al. 2020): every layer is a modulated, demodulated 3x3
  convolution, noise, bias, LeakyReLU; ``[1, 3, 3, 1]`` FIR upsampling; ``block_architecture``
  ``"skip"`` (config-f: ToRGB at every resolution, upsampled and summed), ``"resnet"`` or ``"orig"``.

Both have ``num_ws = 2 * log2(H) - 2`` style inputs (8 at 32 px, 14 at 256 px) and per-pixel noise
with learned per-channel scales (StyleGAN2 learns one scale per layer; per channel includes that).
Channel widths are ``min(channel_base // resolution, channel_max)`` at each resolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import (
    SQRT2,
    EqualizedConv2d,
    EqualizedLinear,
    blur2d,
    channels_at,
    check_input_shape,
    fir_filter,
    upsample2d,
)
from .stylegan_layers import NOISE_MODES, AdaIN, NoiseInput, modulated_conv2d, modulated_upconv2d

_SQRT_HALF = math.sqrt(0.5)


class ModulatedLayer(nn.Module):
    """StyleGAN2 layer: (FIR upsampling,) modulated 3x3 convolution, noise, bias, LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, up: bool = False,
                 demodulate: bool = True) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, c_in, bias_init=1.0)  # styles start at 1 (stylegan2-ada)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.noise = NoiseInput(c_out, resolution)
        self.weight_gain = 1.0 / math.sqrt(c_in * 9)
        self.up, self.demodulate = up, demodulate
        self.register_buffer("resample_filter", fir_filter([1, 3, 3, 1]), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        weight, styles = self.weight * self.weight_gain, self.affine(w)
        if self.up:
            x = modulated_upconv2d(x, weight, styles, self.resample_filter, self.demodulate)
        else:
            x = modulated_conv2d(x, weight, styles, self.demodulate, padding=1)
        x = self.noise(x, noise_mode)
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * SQRT2


class AdaINLayer(nn.Module):
    """StyleGAN layer: (upsampling,) 3x3 convolution (none on the constant), noise, bias, LeakyReLU, AdaIN."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, up: bool = False,
                 conv: bool = True) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(c_in, c_out, 3, bias=False, activation="linear") if conv else None
        self.noise = NoiseInput(c_out, resolution)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.adain = AdaIN(w_dim, c_out)
        self.up = up
        self.register_buffer("blur_filter", fir_filter([1, 2, 1]), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.conv is not None:
            x = self.conv(x)
        if self.up:  # StyleGAN's bilinear-like upsampling: blur after the upsampling convolution
            x = blur2d(x, self.blur_filter, padding=1)
        x = F.leaky_relu(self.noise(x, noise_mode) + self.bias[None, :, None, None], 0.2)
        return self.adain(x, w)


class ToRGB(nn.Module):
    """1x1 convolution to image channels: modulated without demodulation (StyleGAN2) or plain (StyleGAN)."""

    def __init__(self, c_in: int, img_channels: int, w_dim: int, modulated: bool) -> None:
        super().__init__()
        self.modulated = modulated
        if modulated:
            self.affine = EqualizedLinear(w_dim, c_in, bias_init=1.0)
            self.weight = nn.Parameter(torch.randn(img_channels, c_in, 1, 1))
            self.bias = nn.Parameter(torch.zeros(img_channels))
            self.weight_gain = 1.0 / math.sqrt(c_in)
        else:
            self.conv = EqualizedConv2d(c_in, img_channels, 1, activation="linear")

    def forward(self, x: Tensor, w: Tensor | None) -> Tensor:
        if not self.modulated:
            return self.conv(x)
        x = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), demodulate=False)
        return x + self.bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: two style layers (the first upsamples) and its output."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, img_channels: int, is_last: bool,
                 architecture: str, block_architecture: str) -> None:
        super().__init__()
        self.is_first = c_in == 0
        if architecture == "stylegan2":
            c_first = c_out if self.is_first else c_in
            layers = [ModulatedLayer(c_first, c_out, w_dim, resolution, up=not self.is_first)]
            if not self.is_first:
                layers.append(ModulatedLayer(c_out, c_out, w_dim, resolution))
        elif self.is_first:  # StyleGAN styles the constant directly, then one convolution
            layers = [AdaINLayer(c_out, c_out, w_dim, resolution, conv=False),
                      AdaINLayer(c_out, c_out, w_dim, resolution)]
        else:
            layers = [AdaINLayer(c_in, c_out, w_dim, resolution, up=True),
                      AdaINLayer(c_out, c_out, w_dim, resolution)]
        self.layers = nn.ModuleList(layers)
        if self.is_first:
            self.const = nn.Parameter(torch.randn(c_out, 4, 4))
        self.block_architecture = block_architecture
        self.skip = None
        if block_architecture == "resnet" and not self.is_first:
            self.skip = EqualizedConv2d(c_in, c_out, 1, bias=False, activation="linear", up=True)
        self.torgb = None
        if is_last or block_architecture == "skip":
            self.torgb = ToRGB(c_out, img_channels, w_dim, modulated=architecture == "stylegan2")
        self.num_conv = len(layers)
        # StyleGAN2's ToRGB takes the style of the next block's first layer (stylegan2-ada's indexing)
        self.num_torgb = int(self.torgb is not None and self.torgb.modulated)
        self.register_buffer("resample_filter", fir_filter([1, 3, 3, 1]), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor,
                noise_mode: str) -> tuple[Tensor, Tensor | None]:
        if self.is_first:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        residual = self.skip(x, gain=_SQRT_HALF) if self.skip is not None else None
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode)
        if residual is not None:  # both branches scaled by sqrt(1/2) keep the variance (stylegan2-ada)
            x = residual + x * _SQRT_HALF
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.torgb is not None:
            y = self.torgb(x, ws[:, self.num_conv] if self.num_torgb else None)
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """``ws [N, num_ws, w_dim] -> images [N, C, H, W]``; see the module docstring for the variants.

    Args:
        w_dim: size of w.
        img_resolution: output side, a power of two >= 8.
        img_channels: output channels.
        architecture: ``"stylegan"`` or ``"stylegan2"``.
        block_architecture: ``"orig"``, ``"skip"`` or ``"resnet"``.
        channel_base: ``min(channel_base // resolution, channel_max)`` channels at each resolution.
        channel_max: the widest layer.
        output_activation: ``"tanh"``, or ``"clamp"``: the papers' linear output while training (the
            discriminator sees raw values), clamped to ``[-1, 1]`` in eval mode, as when they save images.
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, architecture: str = "stylegan2",
                 block_architecture: str = "skip", channel_base: int = 16384, channel_max: int = 512,
                 output_activation: str = "tanh") -> None:
        super().__init__()
        resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        self.blocks = nn.ModuleList()
        c_in, self.layer_resolutions = 0, []
        for res in resolutions:
            c_out = channels_at(res, channel_base, channel_max)
            block = SynthesisBlock(c_in, c_out, w_dim, res, img_channels, res == img_resolution, architecture,
                                   block_architecture)
            self.blocks.append(block)
            self.layer_resolutions += [res] * block.num_conv
            c_in = c_out
        self.layer_resolutions += [img_resolution] * self.blocks[-1].num_torgb
        self.num_ws = len(self.layer_resolutions)
        self.w_dim, self.output_activation = w_dim, output_activation

    def forward(self, ws: Tensor, noise_mode: str | None = None) -> Tensor:
        """Renders ``ws [N, num_ws, w_dim]``; ``noise_mode`` None: ``random`` in training, ``const`` in eval."""
        check_input_shape("SynthesisNetwork", ws, (self.num_ws, self.w_dim), "ws ")
        if noise_mode is None:  # eval-mode sampling is then a function of z alone (reproducible predictions)
            noise_mode = "random" if self.training else "const"
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode '{noise_mode}'; valid: {', '.join(NOISE_MODES)}")
        x = img = None
        w_idx = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + block.num_torgb], noise_mode)
            w_idx += block.num_conv
        if self.output_activation == "tanh":
            return torch.tanh(img)
        return img if self.training else img.clamp(-1.0, 1.0)
