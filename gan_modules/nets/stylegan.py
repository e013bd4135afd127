"""StyleGAN (Karras et al. 2019) and StyleGAN2 (Karras et al. 2020): generator and discriminator.

:class:`StyleGANGenerator` = ``mapping`` (:class:`~gan_modules.nets.stylegan_layers.MappingNetwork`,
``z -> ws``) + ``synthesis`` (:class:`~gan_modules.nets.stylegan_synthesis.SynthesisNetwork`,
``ws -> image``), with the sampling API of the papers: the truncation trick towards the tracked
w̄, style mixing (by crossover layer or by coarse/middle/fine level) and interpolation in W or Z.

:class:`StyleGANDiscriminator` is stylegan2-ada's: ``"resnet"`` (config-e/f), ``"skip"`` or
``"orig"`` (ProGAN/StyleGAN) blocks from the image size down to 4x4, then minibatch standard
deviation, a 3x3 convolution and two dense layers to one logit.

Class conditioning (stylegan2-ada's ``c_dim``): :class:`ConditionalStyleGANGenerator` embeds the
one-hot label into the mapping network's input (:class:`~gan_modules.nets.stylegan_layers.MappingNetwork`)
and truncates towards the label's class's w̄; :class:`ConditionalStyleGANDiscriminator` is a
projection discriminator, ``logit = <out(h), embed(y)> / sqrt(cmap_dim)``, stylegan2-ada's epilogue
with ``cmap`` a learned embedding of the label (stylegan2-ada computes ``cmap`` with an 8-layer mapping
network of the label; the plain embedding is the projection discriminator of Miyato & Koyama 2018).
The unconditional classes take no ``num_classes`` (``train.py`` links the datamodule's into any
network that does), so a labelled dataset never makes them conditional.

Sizes at the papers' settings: ``channel_base`` 32768 (config-f) or 16384 (``fmaps`` 0.5, the 256-px
setting), ``channel_max`` 512, 8 mapping layers with learning-rate multiplier 0.01.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import Network, check_sample_shape, register_network
from .conditional import ProjectionHead, _check_num_classes, check_labels, generator_labels
from .layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStd,
    channels_at,
    check_choice,
    check_input_shape,
    downsample2d,
    fir_filter,
)
from .stylegan_layers import MappingNetwork
from .stylegan_synthesis import SynthesisNetwork

ARCHITECTURES = ("stylegan", "stylegan2")
BLOCK_ARCHITECTURES = ("orig", "skip", "resnet")
OUTPUT_ACTIVATIONS = ("tanh", "clamp")
STYLE_LEVELS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}
"""Resolution ranges of the style levels of the StyleGAN paper (figure 3), inclusive."""
_SQRT_HALF = math.sqrt(0.5)


def _image_shape(sample_shape: Sequence[int], name: str) -> tuple[int, int]:
    """Validates a square power-of-two ``(C, H, W)`` with ``H >= 8``; returns ``(channels, H)``."""
    channels, height, width = check_sample_shape(sample_shape, ndim=3, name=name)
    if height != width or height < 8 or height & (height - 1):
        raise ValueError(f"{name}: images must be square with a power-of-two size >= 8, got sample_shape "
                         f"{tuple(sample_shape)}")
    return channels, height





def _slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (``[N, d]``) at ``t [T]``: ``[N, T, d]``."""
    a_n, b_n = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]
    t = t[None, :, None]
    return (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / torch.sin(omega)


@register_network(small_configs=[{"latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16, "mapping_layers": 2,
                                    "architecture": a, "block_architecture": b}
                                   for a, b in (("stylegan", "orig"), ("stylegan2", "skip"), ("stylegan2", "resnet"))])
class StyleGANGenerator(Network):
    """Style-based generator: ``z [N, latent_dim] -> images [N, C, H, W]`` in ``[-1, 1]``.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        latent_dim: size of z.
        w_dim: size of w.
        architecture: ``"stylegan"`` (AdaIN layers) or ``"stylegan2"`` (modulated convolutions).
        block_architecture: ``"skip"`` (StyleGAN2 config-f), ``"resnet"`` or ``"orig"`` (StyleGAN).
        channel_base: ``min(channel_base // resolution, channel_max)`` channels at each resolution.
        channel_max: the widest layer.
        mapping_layers: layers of the mapping network (8 in the papers).
        mapping_lr_multiplier: the mapping network's learning-rate multiplier (0.01 in the papers).
        w_avg_beta: decay of the w̄ moving average per training forward (0.995).
        output_activation: ``"tanh"`` (keeps ``[-1, 1]`` while training) or ``"clamp"`` (the papers'
            linear output while training, clamped to ``[-1, 1]`` in eval mode).

    Attributes:
        mapping: ``z -> ws [N, num_ws, w_dim]``, holds ``w_avg``.
        synthesis: ``ws -> images``.
        num_ws: style inputs of the synthesis network, ``2 * log2(H) - 2``.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        latent_dim: int = 512,
        w_dim: int = 512,
        architecture: str = "stylegan2",
        block_architecture: str = "skip",
        channel_base: int = 16384,
        channel_max: int = 512,
        mapping_layers: int = 8,
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
        output_activation: str = "tanh",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        channels, resolution = _image_shape(sample_shape, name)
        check_choice(name, "architecture", architecture, ARCHITECTURES)
        check_choice(name, "block_architecture", block_architecture, BLOCK_ARCHITECTURES)
        check_choice(name, "output_activation", output_activation, OUTPUT_ACTIVATIONS)
        if min(latent_dim, w_dim, channel_base, channel_max, mapping_layers) < 1:
            raise ValueError(f"{name}: latent_dim, w_dim, channel_base, channel_max and mapping_layers "
                             "must be >= 1")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim, self.w_dim, self.num_classes = int(latent_dim), int(w_dim), 0
        self.synthesis = SynthesisNetwork(w_dim, resolution, channels, architecture, block_architecture,
                                          channel_base, channel_max, output_activation)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(latent_dim, w_dim, self.num_ws, mapping_layers,
                                      lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta)

    @property
    def w_avg(self) -> Tensor:
        """w̄ ``[w_dim]``, the running mean of w (the truncation centre)."""
        return self.mapping.w_avg

    @property
    def layer_resolutions(self) -> list[int]:
        """The feature resolution each of the ``num_ws`` style inputs acts on."""
        return list(self.synthesis.layer_resolutions)

    def labels_for(self, labels: Tensor | None, z: Tensor) -> Tensor | None:
        """The labels of a batch of latents ``z [N, latent_dim]``: None when unconditional (``labels`` is
        ignored), else ``labels [N]`` checked, or the classes cycled ``0, 1, ..., K-1, 0, ...`` when None."""
        if labels is not None and not isinstance(labels, Tensor):  # G(z, 0.7) meant truncation_psi=0.7
            raise TypeError(f"{type(self).__name__}: labels must be a tensor [N] of class indices, got "
                            f"{type(labels).__name__}; pass truncation_psi by keyword")
        return generator_labels(type(self).__name__, labels, z, self.num_classes) if self.num_classes else None

    def forward(self, z: Tensor, labels: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str | None = None) -> Tensor:
        """Maps ``z [N, latent_dim]`` (and ``labels [N]`` when conditional) to images ``[N, C, H, W]``.

        Args:
            z: latents.
            labels: class indices ``[N]`` of a conditional generator (None: classes cycled); ignored when
                unconditional.
            truncation_psi: the truncation trick ``w̄ + psi (w - w̄)``; 0.5-0.7 trades variety for quality.
            truncation_cutoff: truncate only the first this many style inputs (the StyleGAN paper used
                the coarse ones); all when None.
            noise_mode: ``"random"``, ``"const"`` (the stored noise maps) or ``"none"``; None means
                random while training and const in eval mode, so eval samples depend on z alone.
        """
        check_input_shape(type(self).__name__, z, (self.latent_dim,), "z ")
        ws = self.mapping(z, self.labels_for(labels, z), truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    def style_layers(self, level: str) -> list[int]:
        """Indices of the style inputs of a level: ``coarse`` (4-8 px), ``middle`` (16-32 px), ``fine`` (64+ px)."""
        check_choice(type(self).__name__, "style level", level, tuple(STYLE_LEVELS))
        low, high = STYLE_LEVELS[level]
        return [i for i, r in enumerate(self.layer_resolutions) if low <= r <= high]

    def mix_styles(self, z1: Tensor, z2: Tensor, crossover_layer: int | None = None,
                   layers: str | Sequence[int] | None = None, truncation_psi: float = 1.0,
                   noise_mode: str | None = None, labels: Tensor | None = None) -> Tensor:
        """Style mixing: images whose style inputs come from ``z1`` except a chosen set taken from ``z2``.

        Args:
            z1: source A latents ``[N, latent_dim]``.
            z2: source B latents, same shape.
            crossover_layer: style inputs ``< crossover_layer`` from z1, the rest from z2 (the training
                regularizer's form).
            layers: instead, the inputs to take from z2: a level name (``"coarse"``, ``"middle"``,
                ``"fine"``, the paper's figure 3) or a list of indices.
            truncation_psi: truncation applied to both ws.
            noise_mode: see :meth:`forward`.
            labels: ``[N]`` classes of both latents of a pair (conditional generators; see :meth:`forward`).
        """
        if (crossover_layer is None) == (layers is None):
            raise ValueError("mix_styles: give exactly one of crossover_layer and layers")
        if crossover_layer is not None and not 0 <= crossover_layer <= self.num_ws:
            raise ValueError(f"mix_styles: crossover_layer must be in [0, {self.num_ws}], "
                             f"got {crossover_layer}")
        if z1.shape != z2.shape:
            raise ValueError(f"mix_styles: z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)} differ")
        labels = self.labels_for(labels, z1)
        ws1 = self.mapping(z1, labels, truncation_psi=truncation_psi)
        ws2 = self.mapping(z2, labels, truncation_psi=truncation_psi, update_w_avg=False)
        if crossover_layer is not None:
            from_z2 = list(range(crossover_layer, self.num_ws))
        else:
            from_z2 = self.style_layers(layers) if isinstance(layers, str) else [int(i) for i in layers]
        mask = torch.zeros(self.num_ws, dtype=torch.bool, device=ws1.device)
        mask[from_z2] = True
        return self.synthesis(torch.where(mask[None, :, None], ws2, ws1), noise_mode=noise_mode)

    def interpolate(self, z1: Tensor, z2: Tensor, steps: int = 8, space: str = "w",
                    truncation_psi: float = 1.0, noise_mode: str | None = None,
                    labels: Tensor | None = None) -> Tensor:
        """Images along paths from ``z1`` to ``z2`` (``[N, latent_dim]`` each): ``[N * steps, C, H, W]``.

        ``space="w"`` interpolates linearly in W (the StyleGAN paper's perceptual path length in W),
        ``"z"`` spherically in Z. Row ``i`` of a grid with ``steps`` images per row is the path of pair ``i``.
        A conditional generator keeps pair ``i``'s class ``labels[i]`` along its path (None: cycled).
        """
        if space not in ("w", "z"):
            raise ValueError(f"interpolate: space must be 'w' or 'z', got '{space}'")
        if steps < 2:
            raise ValueError(f"interpolate: steps must be >= 2, got {steps}")
        n = z1.shape[0]
        t = torch.linspace(0.0, 1.0, steps, device=z1.device, dtype=z1.dtype)
        labels = self.labels_for(labels, z1)
        if space == "z":
            z = _slerp(z1, z2, t).reshape(n * steps, -1)
            path_labels = None if labels is None else labels.repeat_interleave(steps)
            ws = self.mapping(z, path_labels, truncation_psi=truncation_psi, update_w_avg=False)
        else:
            w1 = self.mapping(z1, labels, truncation_psi=truncation_psi, update_w_avg=False)
            w2 = self.mapping(z2, labels, truncation_psi=truncation_psi, update_w_avg=False)
            ws = torch.lerp(w1[:, None], w2[:, None], t[None, :, None, None])
            ws = ws.reshape(n * steps, self.num_ws, -1)
        return self.synthesis(ws, noise_mode=noise_mode)


class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: two 3x3 convolutions, the second one downsampling."""

    def __init__(self, c_in: int, c_tmp: int, c_out: int, img_channels: int, architecture: str) -> None:
        super().__init__()
        self.architecture = architecture
        has_fromrgb = c_in == 0 or architecture == "skip"
        self.fromrgb = EqualizedConv2d(img_channels, c_tmp, 1) if has_fromrgb else None
        self.conv0 = EqualizedConv2d(c_tmp, c_tmp, 3)
        self.conv1 = EqualizedConv2d(c_tmp, c_out, 3, down=True)
        self.skip = EqualizedConv2d(c_tmp, c_out, 1, bias=False, activation="linear", down=True) \
            if architecture == "resnet" else None
        self.register_buffer("resample_filter", fir_filter([1, 3, 3, 1]), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.fromrgb is not None:
            y = self.fromrgb(img)
            x = y if x is None else x + y
        img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.skip is not None:  # both branches scaled by sqrt(1/2) keep the variance (stylegan2-ada)
            return self.skip(x, gain=_SQRT_HALF) + self.conv1(self.conv0(x), gain=_SQRT_HALF), img
        return self.conv1(self.conv0(x)), img


@register_network(small_configs=[{"channel_base": 128, "channel_max": 16, "architecture": a} for a in ("resnet", "skip", "orig")])
class StyleGANDiscriminator(Network):
    """StyleGAN2 discriminator: ``images [N, C, H, W] -> logits [N]`` (no sigmoid; larger = more real).

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        architecture: ``"resnet"`` (StyleGAN2 config-e/f), ``"skip"`` or ``"orig"`` (ProGAN/StyleGAN).
        channel_base: ``min(channel_base // resolution, channel_max)`` channels at each resolution.
        channel_max: the widest layer.
        mbstd_group_size: group size of the minibatch standard deviation (4 in config-f; 0 disables it).
        mbstd_channels: statistic channels it appends.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        architecture: str = "resnet",
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        mbstd_channels: int = 1,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        img_channels, resolution = _image_shape(sample_shape, name)
        check_choice(name, "architecture", architecture, BLOCK_ARCHITECTURES)
        if min(channel_base, channel_max, mbstd_channels) < 1 or mbstd_group_size < 0:
            raise ValueError(f"{name}: channel_base, channel_max and mbstd_channels must be >= 1, "
                             "mbstd_group_size >= 0")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim, self.num_classes = 0, 0
        self.architecture = architecture
        blocks, c_in, res = [], 0, resolution
        while res > 4:
            c_tmp = channels_at(res, channel_base, channel_max)
            c_out = channels_at(res // 2, channel_base, channel_max)
            blocks.append(DiscriminatorBlock(c_in, c_tmp, c_out, img_channels, architecture))
            c_in, res = c_out, res // 2
        self.blocks = nn.ModuleList(blocks)
        self.fromrgb = EqualizedConv2d(img_channels, c_in, 1) if architecture == "skip" else None
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_channels) if mbstd_group_size > 0 else None
        extra = mbstd_channels if self.mbstd is not None else 0
        self.conv = EqualizedConv2d(c_in + extra, c_in, 3)
        self.fc = EqualizedLinear(c_in * 16, c_in, activation="lrelu")
        self.out = EqualizedLinear(c_in, 1)
        self.projection: ProjectionHead | None = None  # set by ConditionalStyleGANDiscriminator

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Maps images ``[N, C, H, W]`` (and ``labels [N]`` when conditional) to logits ``[N]``."""
        name = type(self).__name__
        check_input_shape(name, x, self.sample_shape)
        if self.projection is not None:
            labels = check_labels(name, labels, x.shape[0])
        h, img = None, x
        for block in self.blocks:
            h, img = block(h, img)
        if self.fromrgb is not None:
            h = h + self.fromrgb(img)
        if self.mbstd is not None:
            h = self.mbstd(h)
        h = self.out(self.fc(self.conv(h).flatten(1)))
        return h.flatten() if self.projection is None else self.projection(h, labels)



@register_network(small_configs=[{"num_classes": 3, "latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16,
                                    "mapping_layers": 2, "architecture": a, "block_architecture": b}
                                   for a, b in (("stylegan", "orig"), ("stylegan2", "skip"))])
class ConditionalStyleGANGenerator(StyleGANGenerator):
    """Class-conditional :class:`StyleGANGenerator`: ``G(z [N, latent_dim], labels [N]) -> [N, C, H, W]``.

    The mapping network's input is ``[pixel_norm(z), pixel_norm(embed(one_hot(y)))]`` with a linear
    embedding to ``w_dim`` features (stylegan2-ada's ``MappingNetwork`` with ``c_dim > 0``); truncation
    pulls w towards the w̄ of its own class. ``G(z)`` cycles the classes ``0, 1, ..., K-1, 0, ...``.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        num_classes: the number of classes (linked from ``data.num_classes`` by ``train.py``).
        Other arguments: as :class:`StyleGANGenerator`.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        num_classes: int = 10,
        latent_dim: int = 512,
        w_dim: int = 512,
        architecture: str = "stylegan2",
        block_architecture: str = "skip",
        channel_base: int = 16384,
        channel_max: int = 512,
        mapping_layers: int = 8,
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
        output_activation: str = "tanh",
    ) -> None:
        super().__init__(sample_shape, latent_dim, w_dim, architecture, block_architecture, channel_base, channel_max,
                         mapping_layers, mapping_lr_multiplier, w_avg_beta, output_activation)
        self.num_classes = _check_num_classes(type(self).__name__, num_classes)
        # the unconditional mapping built above, replaced by one with the label input
        self.mapping = MappingNetwork(self.latent_dim, self.w_dim, self.num_ws, mapping_layers,
                                      lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta,
                                      num_classes=self.num_classes)


@register_network(small_configs=[{"num_classes": 3, "channel_base": 128, "channel_max": 16, "cmap_dim": c}
                                   for c in (None, 8)])
class ConditionalStyleGANDiscriminator(StyleGANDiscriminator):
    """Projection :class:`StyleGANDiscriminator`: ``D(images [N, C, H, W], labels [N]) -> logits [N]``.

    The last dense layer gives ``cmap_dim`` features ``h`` instead of one logit, and the logit is
    ``<h, embed(y)> / sqrt(cmap_dim)`` (stylegan2-ada's conditional epilogue, with the label's
    embedding in place of its mapping network; see :class:`~gan_modules.nets.conditional.ProjectionHead`).
    The embedding keeps ``nn.Embedding``'s N(0, 1) entries: unit second moment, as stylegan2-ada's
    normalized label code.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        num_classes: the number of classes (linked from ``data.num_classes`` by ``train.py``).
        cmap_dim: size of the features and of the label embedding; None: the 4x4 stage's width
            (stylegan2-ada's default).
        Other arguments: as :class:`StyleGANDiscriminator`.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        num_classes: int = 10,
        cmap_dim: int | None = None,
        architecture: str = "resnet",
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group_size: int = 4,
        mbstd_channels: int = 1,
    ) -> None:
        super().__init__(sample_shape, architecture, channel_base, channel_max, mbstd_group_size, mbstd_channels)
        name = type(self).__name__
        self.num_classes = _check_num_classes(name, num_classes)
        width = self.fc.weight.shape[0]  # the 4x4 stage's channels
        cmap_dim = width if cmap_dim is None else int(cmap_dim)
        if cmap_dim < 1:
            raise ValueError(f"{name}: cmap_dim must be >= 1 or None, got {cmap_dim}")
        self.out = EqualizedLinear(width, cmap_dim)  # replaces the one-logit layer
        self.projection = ProjectionHead(None, cmap_dim, self.num_classes, scale=cmap_dim ** -0.5)
