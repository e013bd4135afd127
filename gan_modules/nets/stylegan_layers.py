"""StyleGAN building blocks: equalized learning rate, FIR resampling, AdaIN, modulated convolution.

Pure PyTorch (no custom CUDA ops), after the reference implementations of Karras et al. 2019
(StyleGAN) and 2020 (StyleGAN2, stylegan2-ada-pytorch's ``networks.py``):

* **Equalized learning rate** (ProGAN): weights are stored as ``N(0, 1) / lr_multiplier`` and scaled
  at run time by ``lr_multiplier / sqrt(fan_in)``. Adam's step is invariant to the scale of the
  gradient, so the effective step of the run-time weight is ``lr * lr_multiplier / sqrt(fan_in)``:
  a layer with ``lr_multiplier = 0.01`` (the mapping network) learns exactly 100x slower than one
  with 1, from one optimizer with one learning rate.
* **Resampling** by the FIR filter ``[1, 3, 3, 1]`` (StyleGAN2) and, for StyleGAN's upsampling,
  nearest-neighbour followed by the ``[1, 2, 1]`` blur (StyleGAN).
* **AdaIN** (StyleGAN): instance-normalise, then per-channel ``scale * x + bias`` from an affine of w.
* **Modulated convolution** (StyleGAN2): scale the input channels by the style, convolve, and
  (demodulation) rescale each output channel by ``1 / sqrt(sum (w * s)^2)``; the activation-scaling
  form here is the exact equivalent of scaling the weights per sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)
NOISE_MODES = ("random", "const", "none")


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


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Pixel norm: ``x / sqrt(mean(x^2) + eps)`` over dim 1 (applied to z before the mapping network)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def _activate(x: Tensor, activation: str, gain: float) -> Tensor:
    if activation == "lrelu":  # sqrt(2) keeps the second moment of a zero-mean input (He et al.)
        return F.leaky_relu(x, 0.2) * (SQRT2 * gain)
    if activation == "linear":
        return x * gain if gain != 1.0 else x
    raise ValueError(f"unknown activation '{activation}'; valid: linear, lrelu")


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate and a learning-rate multiplier.

    Args:
        in_features: input size.
        out_features: output size.
        bias: learn a bias.
        bias_init: the initial (effective) bias, e.g. 1 for style affines so styles start near 1.
        lr_multiplier: scales the effective learning rate of the weight and bias (0.01 in the mapping).
        activation: ``"linear"`` or ``"lrelu"`` (LeakyReLU 0.2 times sqrt 2).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: str = "linear") -> None:
        super().__init__()
        if lr_multiplier <= 0:
            raise ValueError(f"lr_multiplier must be > 0, got {lr_multiplier}")
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        bias_value = torch.full([out_features], float(bias_init) / lr_multiplier)
        self.bias = nn.Parameter(bias_value) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
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
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "lrelu", up: bool = False, down: bool = False) -> None:
        super().__init__()
        if up and down:
            raise ValueError("EqualizedConv2d: up and down are exclusive")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
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


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True,
                     padding: int = 0) -> Tensor:
    """StyleGAN2's modulated convolution (Karras et al. 2020, eq. 1-3), per sample.

    Equivalent to convolving sample ``n`` with ``w'_oik = s_ni * w_oik``, demodulated by
    ``1 / sqrt(sum_ik w'_oik^2 + 1e-8)``; computed by scaling activations instead of weights, which
    needs one ordinary convolution for the whole batch (stylegan2-ada's non-fused path).

    Args:
        x: ``[N, I, H, W]``.
        weight: ``[O, I, k, k]``, already multiplied by its run-time gain.
        styles: ``[N, I]``.
        demodulate: normalise each output channel to unit expected variance for unit-variance input.
        padding: zero padding of the convolution.

    Returns:
        ``[N, O, H', W']``.
    """
    x = F.conv2d(x * styles[:, :, None, None], weight, padding=padding)
    if demodulate:
        # sum_ik (s_i w_oik)^2 = sum_i s_i^2 * sum_k w_oik^2
        dcoefs = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # [N, O]
        x = x * dcoefs[:, :, None, None]
    return x


def modulated_upconv2d(x: Tensor, weight: Tensor, styles: Tensor, f: Tensor,
                       demodulate: bool = True) -> Tensor:
    """:func:`modulated_conv2d` (3x3, padding 1) on the FIR-upsampled input: ``[N, I, H, W] -> [N, O, 2H, 2W]``.

    Computed as stylegan2-ada does: a stride-2 transposed convolution (the flipped kernel), then the FIR
    filter with gain 4, which costs a quarter of convolving at the high resolution. Zero insertion,
    convolution and filtering are all linear and shift-invariant on the fine grid, so this equals
    ``modulated_conv2d(upsample2d(x, f), ...)`` away from the border (at the border it keeps the
    terms the zero-padded high-resolution convolution drops).
    """
    kernel = weight.flip(2, 3).transpose(0, 1)  # a transposed convolution scatters: flip to correlate
    x = F.conv_transpose2d(x * styles[:, :, None, None], kernel, stride=2)  # 2H + 1
    x = blur2d(x, f * 4.0, padding=1)  # 4-tap filter, padding 1: back to 2H
    if demodulate:
        x = x * (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()[:, :, None, None]
    return x


class NoiseInput(nn.Module):
    """Per-pixel Gaussian noise (one map per sample, shared by all channels), scaled per channel.

    The scales start at 0 (as in both papers), so noise enters only as the network learns to use it.

    Args:
        channels: channels of the feature map.
        resolution: side of the feature map; a fixed noise map of that size is kept for ``"const"``.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: Tensor, noise_mode: str) -> Tensor:
        """Adds noise to ``[N, C, H, W]``: ``random`` draws new maps, ``const`` reuses the stored one."""
        if noise_mode == "none":
            return x
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)[None, None]
        return x + noise * self.strength[None, :, None, None]


class AdaIN(nn.Module):
    """Adaptive instance normalisation (Huang & Belongie 2017; StyleGAN's style input).

    ``y = scale * (x - mean) / std + bias`` per sample and channel, with ``(scale, bias)`` an affine
    map of w. As in StyleGAN, ``scale = 1 + a(w)`` so that a zero-initialised bias starts at identity.

    Args:
        w_dim: size of w.
        channels: channels of the feature map.
    """

    def __init__(self, w_dim: int, channels: int) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, 2 * channels)
        self.channels = channels

    def styles(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """``(scale, bias)``, each ``[N, C]``, for ``w [N, w_dim]``."""
        style = self.affine(w)
        return 1.0 + style[:, : self.channels], style[:, self.channels:]

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x * (x.square().mean(dim=(2, 3), keepdim=True) + 1e-8).rsqrt()
        scale, bias = self.styles(w)
        return x * scale[:, :, None, None] + bias[:, :, None, None]


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
        n, c, h, w = x.shape
        if c % self.num_channels:
            raise ValueError(f"MinibatchStd: {c} channels are not divisible by "
                             f"num_channels={self.num_channels}")
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # [N/G, F, c, H, W]
        y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class MappingNetwork(nn.Module):
    """StyleGAN's mapping network ``z -> w``: pixel norm, then an MLP with a small learning rate.

    The output is broadcast to ``num_ws`` copies, one per style input of the synthesis network, so that
    style mixing and truncation can treat layers separately. ``w_avg`` (w̄, a buffer) tracks the mean
    of w as a moving average while the module is in training mode; truncation pulls w towards it.

    Args:
        z_dim: size of z.
        w_dim: size of w.
        num_ws: copies of w produced (the synthesis network's style inputs).
        num_layers: fully connected layers (8 in the papers, 2 in stylegan2-ada's CIFAR-10 setting).
        hidden_dim: width of the hidden layers; ``w_dim`` when None.
        lr_multiplier: learning-rate multiplier of every layer (0.01 in the papers).
        w_avg_beta: decay of the w̄ moving average per training forward (0.995); None disables tracking.
    """

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 hidden_dim: int | None = None, lr_multiplier: float = 0.01,
                 w_avg_beta: float | None = 0.995) -> None:
        super().__init__()
        if min(z_dim, w_dim, num_ws, num_layers) < 1:
            raise ValueError("MappingNetwork: z_dim, w_dim, num_ws and num_layers must be >= 1")
        hidden = w_dim if hidden_dim is None else hidden_dim
        sizes = [z_dim] + [hidden] * (num_layers - 1) + [w_dim]
        self.layers = nn.ModuleList(
            EqualizedLinear(a, b, lr_multiplier=lr_multiplier, activation="lrelu")
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, w_dim, num_ws, w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = True) -> Tensor:
        """Maps ``z [N, z_dim]`` to ``ws [N, num_ws, w_dim]``.

        Args:
            z: latents.
            truncation_psi: ``w <- w̄ + psi (w - w̄)``; 1 leaves w unchanged, 0 gives w̄.
            truncation_cutoff: truncate only the first this many style inputs (all when None).
            update_w_avg: update w̄ from this batch (only in training mode); False for the second latent
                of style mixing, as in stylegan2-ada.
        """
        x = normalize_2nd_moment(z)
        for layer in self.layers:
            x = layer(x)
        if update_w_avg and self.training and self.w_avg_beta is not None:
            with torch.no_grad():
                # in float32 (the buffer's dtype): under bf16 autocast x is bfloat16
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            truncated = self.w_avg.to(ws.dtype).lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([truncated, ws[:, cutoff:]], dim=1)
        return ws
