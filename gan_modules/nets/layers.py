"""The layers several networks share: input checks, equalized layers, FIR resampling, pixel norm,
minibatch standard deviation, the channel schedule, the gated shortcut. Torch only.

* **Equalized learning rate** (ProGAN, Karras et al. 2018; kept by StyleGAN): weights are stored as
  ``N(0, 1) / lr_multiplier`` and scaled at run time by ``gain * lr_multiplier / sqrt(fan_in)``. Adam's
  step is invariant to the scale of the gradient, so the effective step of the run-time weight is
  ``lr * lr_multiplier / sqrt(fan_in)``: a layer with ``lr_multiplier = 0.01`` (StyleGAN's mapping
  network) learns exactly 100x slower than one with 1, from one optimizer with one learning rate.
  :class:`EqualizedConv2d` and :class:`EqualizedLinear` are StyleGAN's layers (stylegan2-ada-pytorch's
  ``networks.py``: bias, activation, FIR up/downsampling, learning-rate multiplier) with a ``gain`` on
  the weights, which gives ProGAN's layers (``gain = sqrt(2)``, linear activation).
* **Resampling** by the FIR filter ``[1, 3, 3, 1]`` (StyleGAN2) and, for StyleGAN's upsampling,
  nearest-neighbour followed by the ``[1, 2, 1]`` blur (StyleGAN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)
ACTIVATIONS = ("linear", "lrelu")


def check_input_shape(name: str, x: Tensor, expected: Sequence[int], what: str = "") -> None:
    """Raises ValueError naming the expected shape when ``x`` is not ``[N, *expected]``.

    Cheap (compares ``x.shape[1:]`` only); used at every network's input boundary.
    """
    if x.dim() < 1 or tuple(x.shape[1:]) != tuple(expected):
        want = ", ".join(["N", *map(str, expected)])
        got = ", ".join(["N", *map(str, x.shape[1:])])
        raise ValueError(f"{name} expects {what}[{want}], got [{got}]")


def check_choice(name: str, what: str, value: str, valid: Sequence[str]) -> None:
    """Raises ValueError naming the network, the argument and the valid values when ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"{name}: unknown {what} '{value}'; valid: {', '.join(valid)}")


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature channels at a resolution: ``min(channel_base // resolution, channel_max)``, at least 1
    (ProGAN's and StyleGAN's channel schedule)."""
    return max(1, min(channel_base // resolution, channel_max))


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Normalizes each feature vector to unit RMS over dim 1: ``x / sqrt(mean(x^2) + eps)``.

    ProGAN's pixel norm on ``[N, C, H, W]``, and StyleGAN's normalisation of ``z [N, latent_dim]``
    before the mapping network (stylegan2-ada's ``normalize_2nd_moment``).
    """
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: Tensor, group_size: int = 4, num_channels: int = 1, eps: float = 1e-8) -> Tensor:
    """Appends the minibatch standard deviation as ``num_channels`` extra feature maps:
    ``[N, C, H, W] -> [N, C + num_channels, H, W]`` (ProGAN, Karras et al. 2018; stylegan2-ada's
    ``MinibatchStdLayer``).

    The batch is split into groups of ``group_size`` (the largest divisor of ``N`` not above it; sample
    ``i`` joins group ``i mod (N / G)``); the standard deviation of each feature at each pixel over a
    group is averaged over each of ``num_channels`` slices of the channels and over the pixels, and
    broadcast as constant maps to the group's members. It lets D see the batch's variety (a cure for
    mode collapse), and is why D's samples are not independent within a group.
    """
    n, c, h, w = x.shape
    if c % num_channels:
        raise ValueError(f"minibatch_stddev: {c} channels are not divisible by num_channels={num_channels}")
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(eps).sqrt()  # [N/G, F, c, H, W]
    y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
    return torch.cat([x, y], dim=1)


def fir_filter(taps: list[float]) -> Tensor:
    """The separable 2D filter ``outer(taps, taps)``, normalised to sum 1 (keeps a constant image)."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def _depthwise(f: Tensor, x: Tensor, gain: float = 1.0) -> Tensor:
    return (f * gain).to(x.dtype)[None, None].expand(x.shape[1], 1, *f.shape)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """Doubles H and W: zero insertion, then the 4-tap FIR ``f`` with gain 4 (stylegan2-ada's ``upsample2d``).

    A transposed depthwise convolution with stride 2 and padding 1 is exactly that for a 4x4 filter.
    """
    return F.conv_transpose2d(x, _depthwise(f, x, 4.0), stride=2, padding=1, groups=x.shape[1])


def blur2d(x: Tensor, f: Tensor, padding: int) -> Tensor:
    """Depthwise low-pass filter with zero padding ``padding`` on each side."""
    return F.conv2d(x, _depthwise(f, x), padding=padding, groups=x.shape[1])


def downsample2d(x: Tensor, f: Tensor) -> Tensor:
    """Halves H and W: the 4-tap FIR ``f``, then every second pixel (stylegan2-ada's ``downsample2d``)."""
    return F.conv2d(x, _depthwise(f, x), stride=2, padding=1, groups=x.shape[1])


def _activate(x: Tensor, activation: str, gain: float) -> Tensor:
    if activation == "lrelu":  # sqrt(2) keeps the second moment of a zero-mean input (He et al.)
        return F.leaky_relu(x, 0.2) * (SQRT2 * gain)
    if activation == "linear":
        return x * gain if gain != 1.0 else x
    raise ValueError(f"unknown activation '{activation}'; valid: {', '.join(ACTIVATIONS)}")


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate and a learning-rate multiplier.

    Args:
        in_features: input size.
        out_features: output size.
        bias: learn a bias.
        bias_init: the initial (effective) bias, e.g. 1 for style affines so styles start near 1.
        lr_multiplier: scales the effective learning rate of the weight and bias (0.01 in the mapping).
        activation: ``"linear"`` or ``"lrelu"`` (LeakyReLU 0.2 times sqrt 2).
        gain: multiplies the run-time weight (ProGAN's He constant: ``sqrt(2)``, or 1 for an output layer,
            with a linear activation; StyleGAN: 1, the ``sqrt(2)`` is in the activation).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: str = "linear", gain: float = 1.0) -> None:
        super().__init__()
        check_choice("EqualizedLinear", "activation", activation, ACTIVATIONS)
        if lr_multiplier <= 0:
            raise ValueError(f"lr_multiplier must be > 0, got {lr_multiplier}")
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        bias_value = torch.full([out_features], float(bias_init) / lr_multiplier)
        self.bias = nn.Parameter(bias_value) if bias else None
        self.weight_gain = gain * lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier = lr_multiplier
        self.activation = activation

    def effective_weight(self) -> Tensor:
        """The run-time weight ``[out, in]``."""
        return self.weight * self.weight_gain

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_multiplier
        return _activate(F.linear(x, self.effective_weight(), bias), self.activation, 1.0)

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        return (f"{in_features}, {out_features}, lr_multiplier={self.lr_multiplier}, "
                f"activation={self.activation}")


class EqualizedConv2d(nn.Module):
    """Convolution with equalized learning rate, optional FIR up/downsampling, bias and activation.

    ``up`` upsamples by 2 (FIR) before the convolution; a 1x1 convolution runs first instead, which
    is the same operator at a quarter of the cost. ``down`` low-passes, then convolves with stride 2,
    as stylegan2-ada's ``conv2d_resample``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size (1 or 3).
        bias: learn a bias.
        activation: ``"linear"`` or ``"lrelu"``.
        up: upsample by 2 first.
        down: downsample by 2.
        gain: multiplies the run-time weight (ProGAN: ``sqrt(2)`` with a linear activation, 1 for toRGB;
            StyleGAN: 1, the ``sqrt(2)`` is in the activation).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "lrelu", up: bool = False, down: bool = False, gain: float = 1.0) -> None:
        super().__init__()
        check_choice("EqualizedConv2d", "activation", activation, ACTIVATIONS)
        if up and down:
            raise ValueError("EqualizedConv2d: up and down are exclusive")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation, self.up, self.down, self.kernel_size = activation, up, down, kernel_size
        self.register_buffer("resample_filter", fir_filter([1, 3, 3, 1]), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        """Maps ``[N, in, H, W]`` to ``[N, out, H', W']``; ``gain`` scales the output after the activation."""
        weight = self.weight * self.weight_gain
        if self.up and self.kernel_size == 1:  # a 1x1 convolution commutes with the upsampling: run it first
            x = upsample2d(F.conv2d(x, weight), self.resample_filter)
        elif self.up:
            x = F.conv2d(upsample2d(x, self.resample_filter), weight, padding=self.kernel_size // 2)
        elif self.down:
            # blur padding (k + 1) / 2 then a valid stride-2 convolution gives exactly H / 2
            x = blur2d(x, self.resample_filter, padding=(self.kernel_size + 1) // 2)
            x = F.conv2d(x, weight, stride=2)
        else:
            x = F.conv2d(x, weight, padding=self.kernel_size // 2)
        if self.bias is not None:
            x = x + self.bias[None, :, None, None]
        return _activate(x, self.activation, gain)

    def extra_repr(self) -> str:
        out_channels, in_channels = self.weight.shape[:2]
        return (f"{in_channels}, {out_channels}, kernel_size={self.kernel_size}, weight_gain={self.weight_gain:.4g}, "
                f"activation={self.activation}, up={self.up}, down={self.down}")


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (ProGAN; stylegan2-ada's ``MinibatchStdLayer``).

    Splits the batch into groups of ``group_size`` (sample ``i`` joins group ``i mod (N / G)``), takes
    the standard deviation of each feature over the group, averages it per ``num_channels`` slice and
    appends it as extra constant channels. When ``group_size`` does not divide the batch, the largest
    divisor of ``N`` below it is used, so any batch size works.

    Args:
        group_size: samples per group (4 in StyleGAN2's config-f, 32 for CIFAR-10 in stylegan2-ada).
        num_channels: number of appended statistic channels.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        if group_size < 1 or num_channels < 1:
            raise ValueError(f"MinibatchStd: group_size and num_channels must be >= 1, "
                             f"got {group_size}, {num_channels}")
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        return minibatch_stddev(x, self.group_size, self.num_channels)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class GatedShortcut(nn.Module):
    """Merges a shortcut and a block's features through a learned sigmoid gate (the gated shortcut of
    "Effective Shortcut Technique for GAN", arXiv:2201.11351).

    ``g = sigmoid(W_g * [s, f] + b_g)``, ``out = g * s + (1 - g) * f`` for a shortcut ``s`` and features
    ``f``, both ``[N, C, H, W]``; ``W_g`` is a 1x1 convolution from the ``2C`` concatenated channels to
    ``C`` gate channels, so each channel at each pixel decides what stays of the residual stream and what
    is taken from the block. This is the paper's idea (a gate that keeps or removes information in the
    residual block, as a GRU's update gate does) in the form written above.

    ``W_g`` and ``b_g`` start at zero, so ``g = 1/2`` everywhere at initialisation (the mean of the two
    paths); they are plain parameters, not an ``nn.Conv2d``, so that a network-wide initialisation such
    as ``dcgan_init`` leaves them at zero.

    Args:
        channels: ``C``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"GatedShortcut: channels must be >= 1, got {channels}")
        self.weight = nn.Parameter(torch.zeros(channels, 2 * channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))

    def gate(self, shortcut: Tensor, features: Tensor) -> Tensor:
        """The gate ``g [N, C, H, W]`` in ``(0, 1)``."""
        return torch.sigmoid(F.conv2d(torch.cat([shortcut, features], dim=1), self.weight, self.bias))

    def forward(self, shortcut: Tensor, features: Tensor) -> Tensor:
        """``g * shortcut + (1 - g) * features``, shape ``[N, C, H, W]``."""
        if shortcut.shape != features.shape:
            raise ValueError(f"GatedShortcut: shortcut {tuple(shortcut.shape)} and features "
                             f"{tuple(features.shape)} must have the same shape")
        g = self.gate(shortcut, features)
        return features + g * (shortcut - features)

    def extra_repr(self) -> str:
        return f"channels={self.bias.shape[0]}"

