"""Progressive GAN networks (Karras et al. 2018, "Progressive Growing of GANs"), torch only.

Both networks hold the layers of EVERY resolution from the start (4x4 up to the target), so their
parameter lists never change and the optimizers are built once. Which layers run is set by the
training progress ``(stage, alpha)`` (:meth:`ProgressiveGenerator.set_progress`): stage ``s`` works at
``4 * 2**s`` pixels, and ``alpha`` in ``[0, 1]`` fades the new stage's layers in over the previous
stage's output. Layers that do not run get no gradient (``grad is None``), and torch's Adam skips
parameters without a gradient, so not-yet-active layers keep their initial weights and an empty
optimizer state (their Adam step count starts when they first train).

Resolution contract: the generator always returns the target ``sample_shape``; an image made at a
lower resolution is upsampled (nearest) to full size, so data, metrics and sample grids need no
change. The discriminator takes full-size images and average-pools them to the current resolution,
so it sees real and generated images at the same resolution (average pooling inverts the nearest
upsampling exactly). Real images are also faded between resolutions during a transition, as in the
paper, with :func:`progressive_images`.

The progress is kept as the networks' extra state (``get_extra_state``), so it is in every
``state_dict``: a checkpoint resumes at the right stage and ``load_generator`` rebuilds a generator
that samples at the resolution it was trained to.

Paper settings reproduced: pixel norm after every generator convolution, minibatch standard
deviation (group size 4, one extra feature map) before the discriminator's last block, equalized
learning rate (weights ``N(0, 1)`` scaled at runtime by He's constant ``gain / sqrt(fan_in)``),
LeakyReLU(0.2), nearest upsampling, average-pool downsampling, 1x1 toRGB / fromRGB per resolution,
channels ``min(channel_base / resolution, max_channels)`` (16384 and 512 give the paper's 512 up to
32 px, then 256, 128, 64, 32, 16). Departure: ``output_activation`` defaults to tanh, which keeps the
framework's ``[-1, 1]`` image contract; ``"linear"`` is the paper's toRGB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Network, check_sample_shape, get_activation, register_network
from .layers import (
    SQRT2,
    EqualizedConv2d,
    EqualizedLinear,
    channels_at,
    check_input_shape,
    minibatch_stddev,
    pixel_norm,
)


def _check_power_of_two_image(sample_shape: Sequence[int], name: str) -> tuple[int, int]:
    """Validates a square power-of-two ``(C, H, W)`` with ``H >= 8``; returns ``(channels, num_stages)``."""
    channels, height, width = check_sample_shape(sample_shape, ndim=3, name=name)
    if height != width or height < 8 or height & (height - 1):
        raise ValueError(f"{name}: images must be square with a power-of-two size >= 8, got sample_shape "
                         f"{tuple(sample_shape)}")
    return channels, height.bit_length() - 2  # stages 4, 8, ..., H


def downscale(x: Tensor, factor: int) -> Tensor:
    """Average-pools ``[N, C, H, W]`` by an integer ``factor`` (identity for 1)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def upscale(x: Tensor, factor: int) -> Tensor:
    """Nearest-neighbour upsampling by an integer ``factor`` (identity for 1)."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def progressive_images(x: Tensor, stage: int, alpha: float) -> Tensor:
    """Real images as the networks see them at ``(stage, alpha)``, at full size (the paper's real fade).

    ``x`` is average-pooled to the stage's resolution ``r = 4 * 2**stage``; during a fade (``alpha < 1``)
    it is blended with its own ``r/2`` version, ``lerp(up(down(x_r)), x_r, alpha)``, just as the
    generator blends its two toRGB outputs; the result is upsampled (nearest) back to full size.
    """
    res = 4 << stage
    factor = x.shape[-1] // res
    x = downscale(x, factor)
    if stage > 0 and alpha < 1.0:
        x = torch.lerp(upscale(downscale(x, 2), 2), x, alpha)
    return upscale(x, factor)


def _he_conv(in_channels: int, out_channels: int, kernel_size: int) -> EqualizedConv2d:
    """ProGAN's convolution: He's constant on the weights, the activation applied by the caller."""
    return EqualizedConv2d(in_channels, out_channels, kernel_size, activation="linear", gain=SQRT2)


class _Progressive(Network):
    """What both networks share: the ``(stage, alpha)`` progress, kept in the state dict."""

    num_stages: int = 1

    def _init_progress(self) -> None:
        # A freshly built network is the full, fully faded-in model; ProgressiveGAN sets its own progress.
        self.stage, self.alpha = self.num_stages - 1, 1.0

    def set_progress(self, stage: int, alpha: float) -> None:
        """Selects the active resolution ``4 * 2**stage`` and the fade-in ``alpha`` in ``[0, 1]`` of its layers.

        ``alpha == 0`` is exactly the previous stage (its new layers do not run); ``alpha == 1`` is the
        new stage alone (the previous toRGB/fromRGB do not run).
        """
        if not 0 <= stage < self.num_stages:
            raise ValueError(f"{type(self).__name__}: stage must be in [0, {self.num_stages - 1}], got {stage}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"{type(self).__name__}: alpha must be in [0, 1], got {alpha}")
        self.stage, self.alpha = int(stage), float(alpha)

    def _effective_progress(self) -> tuple[int, float]:
        # alpha 0 of stage s is stage s-1 fully faded in: run that, so the new layers get no gradient.
        # Stage 0 has nothing to fade from.
        if self.stage == 0:
            return 0, 1.0
        if self.alpha == 0.0:
            return self.stage - 1, 1.0
        return self.stage, self.alpha

    def inactive_parameters(self) -> set[str]:
        """Names of the parameters the current progress does not use (they get no gradient)."""
        used = self._used_prefixes(*self._effective_progress())
        return {name for name, _ in self.named_parameters() if not name.startswith(used)}

    def _used_prefixes(self, stage: int, alpha: float) -> tuple[str, ...]:
        raise NotImplementedError

    def get_extra_state(self) -> dict[str, Any]:
        return {"stage": self.stage, "alpha": self.alpha}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.set_progress(int(state["stage"]), float(state["alpha"]))

    def extra_repr(self) -> str:
        return f"stage={self.stage} ({4 << self.stage} px), alpha={self.alpha:.4f}"


@register_network(small_configs=[{"latent_dim": 16, "channel_base": 128, "max_channels": 16}])
class ProgressiveGenerator(_Progressive):
    """Progressive GAN generator: ``z [N, latent_dim] -> images [N, *sample_shape]`` at every stage.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8; stages run 4, 8, ..., H.
        latent_dim: size of ``z`` (512 in the paper); ``z`` is pixel-normalized first.
        channel_base: feature maps are ``min(channel_base // resolution, max_channels)``.
        max_channels: the cap on feature maps (512 in the paper).
        output_activation: applied to the image: ``tanh`` (default, keeps ``[-1, 1]``) or ``linear`` (paper).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 32, 32),
        latent_dim: int = 512,
        channel_base: int = 16384,
        max_channels: int = 512,
        output_activation: str = "tanh",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        out_channels, self.num_stages = _check_power_of_two_image(sample_shape, name)
        if latent_dim < 1 or channel_base < 1 or max_channels < 1:
            raise ValueError(f"{name}: latent_dim, channel_base and max_channels must be >= 1")
        if output_activation not in ("tanh", "linear"):
            raise ValueError(f"{name}: unknown output_activation '{output_activation}'; valid: linear, tanh")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim, self.num_classes = int(latent_dim), 0
        ch = [channels_at(4 << s, channel_base, max_channels) for s in range(self.num_stages)]
        # The paper's first layer is a 4x4 convolution of the 1x1 latent, i.e. a dense layer; the official
        # code gives it gain sqrt(2)/4.
        self.project = EqualizedLinear(latent_dim, ch[0] * 16, gain=SQRT2 / 4)
        self.blocks = nn.ModuleList([_he_conv(ch[0], ch[0], 3)])
        for s in range(1, self.num_stages):
            self.blocks.append(nn.Sequential(_he_conv(ch[s - 1], ch[s], 3), _he_conv(ch[s], ch[s], 3)))
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, out_channels, 1, activation="linear") for c in ch])
        self.output_activation = get_activation(output_activation)
        self._init_progress()

    def _used_prefixes(self, stage: int, alpha: float) -> tuple[str, ...]:
        used = ["project.", *(f"blocks.{s}." for s in range(stage + 1)), f"to_rgb.{stage}."]
        if alpha < 1.0:
            used.append(f"to_rgb.{stage - 1}.")
        return tuple(used)

    @staticmethod
    def _conv(conv: nn.Module, x: Tensor) -> Tensor:
        return pixel_norm(F.leaky_relu(conv(x), 0.2))

    def _features(self, z: Tensor, stage: int) -> tuple[Tensor, Tensor | None]:
        """The stage's feature map and the previous stage's (the input of the last block)."""
        x = pixel_norm(F.leaky_relu(self.project(pixel_norm(z)).view(len(z), -1, 4, 4), 0.2))
        x = self._conv(self.blocks[0], x)
        previous = None
        for s in range(1, stage + 1):
            previous = x
            x = upscale(x, 2)
            for conv in self.blocks[s]:
                x = self._conv(conv, x)
        return x, previous

    def forward(self, z: Tensor) -> Tensor:
        """Maps ``z [N, latent_dim]`` to images ``[N, C, H, W]`` made at the current stage's resolution."""
        check_input_shape(type(self).__name__, z, (self.latent_dim,), "z ")
        stage, alpha = self._effective_progress()
        x, previous = self._features(z, stage)
        rgb = self.to_rgb[stage](x)
        if alpha < 1.0:
            rgb = torch.lerp(upscale(self.to_rgb[stage - 1](previous), 2), rgb, alpha)
        return self.output_activation(upscale(rgb, self.sample_shape[-1] // (4 << stage)))


@register_network(small_configs=[{"channel_base": 128, "max_channels": 16, "mbstd_group_size": g} for g in (4, 0)])
class ProgressiveDiscriminator(_Progressive):
    """Progressive GAN critic: full-size images ``[N, *sample_shape] -> logits [N]`` at every stage.

    Inputs are average-pooled to the current resolution first. The last block (4x4) appends the
    minibatch standard deviation, then 3x3 conv, 4x4 conv (a dense layer) and a linear output.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        channel_base: feature maps are ``min(channel_base // resolution, max_channels)``.
        max_channels: the cap on feature maps.
        mbstd_group_size: group size of the minibatch standard deviation (4 in the paper); 0 disables it.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (3, 32, 32),
        channel_base: int = 16384,
        max_channels: int = 512,
        mbstd_group_size: int = 4,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels, self.num_stages = _check_power_of_two_image(sample_shape, name)
        if channel_base < 1 or max_channels < 1 or mbstd_group_size < 0:
            raise ValueError(f"{name}: channel_base and max_channels must be >= 1, mbstd_group_size >= 0")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim = self.num_classes = 0
        self.mbstd_group_size = mbstd_group_size
        ch = [channels_at(4 << s, channel_base, max_channels) for s in range(self.num_stages)]
        self.from_rgb = nn.ModuleList([_he_conv(in_channels, c, 1) for c in ch])
        # blocks[s] (s >= 1) takes stage s's resolution to stage s-1's: conv, conv to fewer maps, pool.
        self.blocks = nn.ModuleList([nn.Sequential(_he_conv(ch[0] + (mbstd_group_size > 0), ch[0], 3),
                                                   EqualizedLinear(ch[0] * 16, ch[0], gain=SQRT2))])
        for s in range(1, self.num_stages):
            self.blocks.append(nn.Sequential(_he_conv(ch[s], ch[s], 3), _he_conv(ch[s], ch[s - 1], 3)))
        self.output = EqualizedLinear(ch[0], 1)
        self._init_progress()

    def _used_prefixes(self, stage: int, alpha: float) -> tuple[str, ...]:
        used = ["output.", *(f"blocks.{s}." for s in range(stage + 1)), f"from_rgb.{stage}."]
        if alpha < 1.0:
            used.append(f"from_rgb.{stage - 1}.")
        return tuple(used)

    def forward(self, x: Tensor) -> Tensor:
        """Maps full-size images ``[N, C, H, W]`` to logits ``[N]`` (larger = more real)."""
        check_input_shape(type(self).__name__, x, self.sample_shape)
        stage, alpha = self._effective_progress()
        x = downscale(x, self.sample_shape[-1] // (4 << stage))
        h = F.leaky_relu(self.from_rgb[stage](x), 0.2)
        for s in range(stage, 0, -1):
            for conv in self.blocks[s]:
                h = F.leaky_relu(conv(h), 0.2)
            h = downscale(h, 2)
            if s == stage and alpha < 1.0:  # fade: the previous fromRGB on the half-resolution input
                h = torch.lerp(F.leaky_relu(self.from_rgb[stage - 1](downscale(x, 2)), 0.2), h, alpha)
        if self.mbstd_group_size > 0:
            h = minibatch_stddev(h, self.mbstd_group_size)
        conv, dense = self.blocks[0]
        h = F.leaky_relu(conv(h), 0.2)
        h = F.leaky_relu(dense(h.flatten(1)), 0.2)
        return self.output(h).flatten()
