"""StyleGAN building blocks: AdaIN, modulated convolution, noise inputs, the mapping network.

The equalized layers and the FIR resampling they use are in :mod:`gan_modules.nets.layers`.

Pure PyTorch (no custom CUDA ops), after the reference implementations of Karras et al. 2019
(StyleGAN) and 2020 (StyleGAN2, stylegan2-ada-pytorch's ``networks.py``):

* **AdaIN** (StyleGAN): instance-normalise, then per-channel ``scale * x + bias`` from an affine of w.
* **Modulated convolution** (StyleGAN2): scale the input channels by the style, convolve, and
  (demodulation) rescale each output channel by ``1 / sqrt(sum (w * s)^2)``; the activation-scaling
  form here is the exact equivalent of scaling the weights per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import EqualizedLinear, blur2d, pixel_norm

NOISE_MODES = ("random", "const", "none")


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


class MappingNetwork(nn.Module):
    """StyleGAN's mapping network ``z -> w``: pixel norm, then an MLP with a small learning rate.

    The output is broadcast to ``num_ws`` copies, one per style input of the synthesis network, so that
    style mixing and truncation can treat layers separately. ``w_avg`` (w̄, a buffer) tracks the mean
    of w as a moving average while the module is in training mode; truncation pulls w towards it.

    Class-conditional (``num_classes > 0``, stylegan2-ada's ``c_dim``): the one-hot label goes through
    a linear embedding to ``w_dim`` features, which are normalized like z and concatenated to the
    normalized z before the first layer. ``w_avg_class [num_classes, w_dim]`` then tracks w̄ per class
    (same decay, each class from its samples in the batch), and truncation pulls each w towards its
    own class's w̄: stylegan2-ada keeps one global w̄, towards which a strongly truncated sample
    loses its class; the per-class centre (as StyleGAN-XL, Sauer et al. 2022) keeps it.

    Args:
        z_dim: size of z.
        w_dim: size of w.
        num_ws: copies of w produced (the synthesis network's style inputs).
        num_layers: fully connected layers (8 in the papers, 2 in stylegan2-ada's CIFAR-10 setting).
        hidden_dim: width of the hidden layers; ``w_dim`` when None.
        lr_multiplier: learning-rate multiplier of every layer (0.01 in the papers).
        w_avg_beta: decay of the w̄ moving average per training forward (0.995); None disables tracking.
        num_classes: classes of the label input; 0 (unconditional) builds exactly the layers above.
    """

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 hidden_dim: int | None = None, lr_multiplier: float = 0.01,
                 w_avg_beta: float | None = 0.995, num_classes: int = 0) -> None:
        super().__init__()
        if min(z_dim, w_dim, num_ws, num_layers) < 1 or num_classes < 0:
            raise ValueError("MappingNetwork: z_dim, w_dim, num_ws and num_layers must be >= 1, num_classes >= 0")
        hidden = w_dim if hidden_dim is None else hidden_dim
        # the label's embedding (w_dim features) joins z at the first layer's input
        sizes = [z_dim + (w_dim if num_classes else 0)] + [hidden] * (num_layers - 1) + [w_dim]
        self.layers = nn.ModuleList(
            EqualizedLinear(a, b, lr_multiplier=lr_multiplier, activation="lrelu")
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, w_dim, num_ws, w_avg_beta
        self.num_classes = int(num_classes)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        if num_classes:
            self.embed = EqualizedLinear(num_classes, w_dim)  # lr multiplier 1, as stylegan2-ada's embed
            self.register_buffer("w_avg_class", torch.zeros(num_classes, w_dim))

    def forward(self, z: Tensor, labels: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = True) -> Tensor:
        """Maps ``z [N, z_dim]`` (and ``labels [N]`` int64 when conditional) to ``ws [N, num_ws, w_dim]``.

        Args:
            z: latents.
            labels: class indices in ``0..num_classes-1``; required when ``num_classes > 0``, else ignored.
            truncation_psi: ``w <- w̄ + psi (w - w̄)``; 1 leaves w unchanged, 0 gives w̄ (the label's
                class's w̄ when conditional).
            truncation_cutoff: truncate only the first this many style inputs (all when None).
            update_w_avg: update w̄ from this batch (only in training mode); False for the second latent
                of style mixing, as in stylegan2-ada.
        """
        x = pixel_norm(z)
        if self.num_classes:
            if labels is None:
                raise ValueError(f"MappingNetwork is conditional ({self.num_classes} classes): pass labels [N]")
            code = F.one_hot(labels.long(), self.num_classes).to(x.dtype)
            x = torch.cat([x, pixel_norm(self.embed(code))], dim=1)
        for layer in self.layers:
            x = layer(x)
        if update_w_avg and self.training and self.w_avg_beta is not None:
            with torch.no_grad():
                # in float32 (the buffer's dtype): under bf16 autocast x is bfloat16
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
                if self.num_classes:
                    self._update_class_averages(x.detach().float(), labels.long())
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            centre = self.w_avg_class[labels.long()][:, None] if self.num_classes else self.w_avg
            truncated = centre.to(ws.dtype).lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([truncated, ws[:, cutoff:]], dim=1)
        return ws

    def _update_class_averages(self, w: Tensor, labels: Tensor) -> None:
        """Moves each class's w̄ present in the batch towards the mean of its w (``w [N, w_dim]``)."""
        sums = torch.zeros_like(self.w_avg_class).index_add_(0, labels, w)
        counts = torch.zeros(self.num_classes, device=w.device).index_add_(0, labels, torch.ones_like(labels, dtype=w.dtype))
        means = sums / counts.clamp(min=1)[:, None]
        updated = means.lerp(self.w_avg_class, self.w_avg_beta)
        self.w_avg_class.copy_(torch.where(counts[:, None] > 0, updated, self.w_avg_class))
