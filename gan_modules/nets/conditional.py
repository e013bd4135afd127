"""Class-conditional generators and discriminators: cGAN, projection discriminator, AC-GAN.

* Generators (Mirza & Osindero 2014): the label's code (one-hot, or a learned embedding) is
  concatenated to ``z`` and the result goes through the unconditional network's layers, so
  ``G(z, labels)`` with ``z [N, latent_dim]`` and ``labels [N]`` int64 in ``0..num_classes-1``;
  ``G(z)`` cycles the classes ``0, 1, ..., K-1, 0, ...`` like ``GANModule.sample``.
* Discriminators ``D(x, labels) -> logits [N]`` with ``conditioning``:

  - ``"concat"``: one-hot label maps (images) or a one-hot vector (MLP) concatenated to the input,
    as in Mirza & Osindero 2014 and the usual conditional DCGAN;
  - ``"projection"`` (Miyato & Koyama 2018): ``logit = linear(phi(x)) + <embed(y), phi(x)>`` with
    ``phi`` the features before the last layer.

* :class:`ACGANDiscriminator` (Odena et al. 2017) does not take the label as input: a shared trunk
  feeds a real/fake head ``[N]`` and a class head ``[N, num_classes]``; it returns both as a tuple.

``num_classes`` is a constructor argument of every class here (``train.py`` links the datamodule's
``num_classes`` into it); the unconditional networks deliberately lack it. Torch only, no Lightning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .base import Network, check_sample_shape, get_activation, register_network
from .dcgan import (
    INIT_MODES,
    UPSAMPLE_MODES,
    _check_image_shape,
    _finish_init,
    discriminator_trunk,
    generator_layers,
)
from .layers import check_choice, check_input_shape
from .mlp import _mlp

CONDITIONING_MODES = ("concat", "projection")


def check_labels(name: str, labels: Tensor | None, n: int) -> Tensor:
    """Raises ValueError unless ``labels`` is an integer tensor ``[n]``; returns it.

    Only the shape and dtype are checked (the range check would cost a device sync per call; an
    out-of-range label fails in ``one_hot`` / ``nn.Embedding`` anyway).
    """
    if labels is None:
        raise ValueError(f"{name} is conditional: call it as {name}(input, labels) with labels [N] int64")
    if labels.dim() != 1 or labels.shape[0] != n or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name} expects labels [N={n}] of integer class indices, got {labels.dtype} "
                         f"[{', '.join(map(str, labels.shape))}]")
    return labels


def generator_labels(name: str, labels: Tensor | None, z: Tensor, num_classes: int) -> Tensor:
    """A generator's labels: checked, or ``0, 1, ..., K-1, 0, ...`` when None (as ``GANModule.sample``).

    The default lets code written for unconditional generators (``G(z)``) sample every class.
    """
    if labels is None:
        return torch.arange(z.shape[0], device=z.device) % num_classes
    return check_labels(name, labels, z.shape[0])


def _check_num_classes(name: str, num_classes: int) -> int:
    if num_classes < 1:
        raise ValueError(f"{name}: num_classes must be >= 1 (link it from data.num_classes), got {num_classes}")
    return int(num_classes)


class LabelCode(nn.Module):
    """Labels ``[N]`` to a code ``[N, dim]``: one-hot (``embed_dim=None``, ``dim = num_classes``) or learned.

    The learned embedding keeps PyTorch's N(0, 1) initialisation, the same scale as ``z``.
    """

    def __init__(self, num_classes: int, embed_dim: int | None = None) -> None:
        super().__init__()
        if embed_dim is not None and embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1 or None (one-hot), got {embed_dim}")
        self.num_classes = num_classes
        self.dim = num_classes if embed_dim is None else int(embed_dim)
        self.embedding = nn.Embedding(num_classes, embed_dim) if embed_dim is not None else None

    def forward(self, labels: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        if self.embedding is not None:
            return self.embedding(labels).to(dtype)
        return F.one_hot(labels.long(), self.num_classes).to(dtype)


class ProjectionHead(nn.Module):
    """``linear(phi) + scale * <embed(y), phi>`` on flattened features ``phi [N, ...]`` (Miyato & Koyama 2018).

    Without ``head`` the logit is the projection alone, ``scale * <embed(y), phi>``: stylegan2-ada's
    conditional epilogue (``cmap``, with ``scale = 1 / sqrt(feature_dim)``) and R3GAN's.

    Args:
        head: the unconditional logit layer, applied to the features as they are (a 4x4 conv on a 4x4
            map, or a Linear); its output is flattened to ``[N]``. None: no unconditional term.
        feature_dim: the number of elements of one sample's features.
        num_classes: the number of embedded classes.
        scale: factor of the inner product (1 in Miyato & Koyama 2018).
    """

    def __init__(self, head: nn.Module | None, feature_dim: int, num_classes: int, scale: float = 1.0) -> None:
        super().__init__()
        self.head = head
        self.scale = scale
        self.embed = nn.Embedding(num_classes, feature_dim)

    def init_embedding(self, init: str, spectral_norm: bool) -> None:
        """Initialises the class embedding like the head (DCGAN: N(0, 0.02); else Xavier, as the paper's code)."""
        if init == "dcgan":
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        else:
            nn.init.xavier_uniform_(self.embed.weight)
        if spectral_norm:  # the paper normalises the embedding matrix V as well
            _spectral_norm(self.embed)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        projection = (self.embed(labels) * features.flatten(1)).sum(1)
        if self.scale != 1.0:
            projection = projection * self.scale
        return projection if self.head is None else self.head(features).flatten() + projection


@register_network(small_configs=[{"num_classes": 3, "latent_dim": 16, "base_channels": 8, "upsample": up, "embed_dim": e}
                                   for up, e in (("transposed", None), ("nearest_conv", 4))])
class ConditionalDCGANGenerator(Network):
    """Conditional DCGAN generator: ``G(z [N, latent_dim], labels [N]) -> images [N, C, H, W]`` in ``[-1, 1]``.

    ``[z, code(label)]`` goes through the layers of :class:`~gan_modules.nets.DCGANGenerator`.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        num_classes: the number of classes (linked from ``data.num_classes`` by ``train.py``).
        latent_dim: size of ``z``.
        embed_dim: size of a learned label embedding; None concatenates the one-hot label (the paper's y).
        base_channels, upsample, norm, activation, init: as for ``DCGANGenerator``.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        num_classes: int = 10,
        latent_dim: int = 100,
        embed_dim: int | None = None,
        base_channels: int = 64,
        upsample: str = "transposed",
        norm: str = "batch",
        activation: str = "relu",
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        out_channels, stages = _check_image_shape(sample_shape, name)
        check_choice(name, "upsample", upsample, UPSAMPLE_MODES)
        check_choice(name, "init", init, INIT_MODES)
        if latent_dim < 1 or base_channels < 1:
            raise ValueError(f"{name}: latent_dim and base_channels must be >= 1")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.num_classes = _check_num_classes(name, num_classes)
        self.latent_dim = int(latent_dim)
        self.code = LabelCode(self.num_classes, embed_dim)
        self.project, self.body = generator_layers(latent_dim + self.code.dim, out_channels, stages, base_channels,
                                                   upsample, norm, activation)
        _finish_init(self, init, spectral_norm=False)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Maps ``z [N, latent_dim]`` and ``labels [N]`` (None: classes cycled) to images ``[N, C, H, W]``."""
        name = type(self).__name__
        check_input_shape(name, z, (self.latent_dim,), "z ")
        labels = generator_labels(name, labels, z, self.num_classes)
        return self.body(self.project(torch.cat([z, self.code(labels, z.dtype)], 1)))


def _init_trunk_discriminator(net: Network, sample_shape: Sequence[int], num_classes: int, base_channels: int,
                              norm: str, activation: str, init: str, extra_channels: int = 0) -> int:
    """What the DCGAN-style conditional discriminators share: checks, attributes, ``net.trunk`` down to
    4x4 (its input has ``extra_channels`` beyond the image's). Returns the trunk's output channels."""
    name = type(net).__name__
    in_channels, stages = _check_image_shape(sample_shape, name)
    check_choice(name, "init", init, INIT_MODES)
    if base_channels < 1:
        raise ValueError(f"{name}: base_channels must be >= 1, got {base_channels}")
    net.sample_shape = tuple(int(s) for s in sample_shape)
    net.latent_dim = 0
    net.num_classes = _check_num_classes(name, num_classes)
    layers, width = discriminator_trunk(in_channels + extra_channels, stages, base_channels, norm, activation)
    net.trunk = nn.Sequential(*layers)
    return width


@register_network(small_configs=[{"num_classes": 3, "base_channels": 8, "conditioning": c, "spectral_norm": sn}
                                   for c, sn in (("concat", False), ("projection", False), ("projection", True))])
class ConditionalDCGANDiscriminator(Network):
    """Conditional DCGAN discriminator: ``D(images [N, C, H, W], labels [N]) -> logits [N]``.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        num_classes: the number of classes (linked from ``data.num_classes`` by ``train.py``).
        conditioning: ``"concat"``: ``num_classes`` one-hot maps are concatenated to the image
            channels; ``"projection"``: ``logit = conv4x4(phi) + <embed(y), phi>`` with ``phi`` the
            trunk's ``[width, 4, 4]`` map flattened (Miyato & Koyama 2018).
        base_channels, norm, activation, spectral_norm, init: as for ``DCGANDiscriminator``
            (spectral norm also covers the projection embedding).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        num_classes: int = 10,
        conditioning: str = "projection",
        base_channels: int = 64,
        norm: str = "batch",
        activation: str = "leaky_relu",
        spectral_norm: bool = False,
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        check_choice(type(self).__name__, "conditioning", conditioning, CONDITIONING_MODES)
        self.conditioning = conditioning
        extra = num_classes if conditioning == "concat" else 0
        width = _init_trunk_discriminator(self, sample_shape, num_classes, base_channels, norm, activation, init, extra)
        head = nn.Conv2d(width, 1, 4, 1, 0)  # 4x4 -> 1x1 logit, as in DCGAN
        self.head = ProjectionHead(head, width * 16, self.num_classes) if conditioning == "projection" else head
        _finish_init(self, init, spectral_norm)
        if conditioning == "projection":
            self.head.init_embedding(init, spectral_norm)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        """Maps images ``[N, C, H, W]`` and labels ``[N]`` to logits ``[N]`` (larger = more real)."""
        name = type(self).__name__
        check_input_shape(name, x, self.sample_shape)
        labels = check_labels(name, labels, x.shape[0])
        if self.conditioning == "projection":
            return self.head(self.trunk(x), labels)
        maps = F.one_hot(labels.long(), self.num_classes).to(x.dtype)[:, :, None, None]
        x = torch.cat([x, maps.expand(-1, -1, *x.shape[2:])], 1)
        return self.head(self.trunk(x)).flatten()


@register_network(small_configs=[{"num_classes": 3, "base_channels": 8, "spectral_norm": sn} for sn in (False, True)])
class ACGANDiscriminator(Network):
    """AC-GAN discriminator (Odena et al. 2017): ``images -> (logits [N], class_logits [N, num_classes])``.

    A DCGAN trunk down to 4x4 shared by two 4x4-conv heads: real/fake and the auxiliary classifier.
    The labels are predicted, not given: ``D(x)`` and ``D(x, labels)`` are the same.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        num_classes: the classes of the auxiliary head (linked from ``data.num_classes``).
        base_channels, norm, activation, spectral_norm, init: as for ``DCGANDiscriminator``.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        num_classes: int = 10,
        base_channels: int = 64,
        norm: str = "batch",
        activation: str = "leaky_relu",
        spectral_norm: bool = False,
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        width = _init_trunk_discriminator(self, sample_shape, num_classes, base_channels, norm, activation, init)
        self.head = nn.Conv2d(width, 1, 4, 1, 0)
        self.class_head = nn.Conv2d(width, self.num_classes, 4, 1, 0)
        _finish_init(self, init, spectral_norm)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Maps images ``[N, C, H, W]`` to real/fake logits ``[N]`` and class logits ``[N, num_classes]``."""
        del labels  # predicted by the class head, never an input
        check_input_shape(type(self).__name__, x, self.sample_shape)
        features = self.trunk(x)
        return self.head(features).flatten(), self.class_head(features).flatten(1)


@register_network(small_configs=[{"num_classes": 3, "latent_dim": 8, "hidden_dim": 32, "embed_dim": e} for e in (None, 4)])
class ConditionalMLPGenerator(Network):
    """Conditional MLP generator (Mirza & Osindero 2014): ``G(z, labels) -> [N, *sample_shape]``.

    Args:
        sample_shape: shape of one sample, ``(D,)`` or ``(C, H, W)``.
        num_classes: the number of classes (linked from ``data.num_classes``).
        latent_dim: size of ``z``.
        embed_dim: size of a learned label embedding; None concatenates the one-hot label.
        hidden_dim, num_layers, activation, output_activation: as for ``MLPGenerator``.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (2,),
        num_classes: int = 10,
        latent_dim: int = 2,
        embed_dim: int | None = None,
        hidden_dim: int = 128,
        num_layers: int = 3,
        activation: str = "relu",
        output_activation: str = "auto",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.sample_shape = check_sample_shape(sample_shape, name=name)
        if latent_dim < 1:
            raise ValueError(f"{name}: latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = int(latent_dim)
        self.num_classes = _check_num_classes(name, num_classes)
        if output_activation == "auto":
            output_activation = "tanh" if len(self.sample_shape) == 3 else "linear"
        self.code = LabelCode(self.num_classes, embed_dim)
        self.net = _mlp(latent_dim + self.code.dim, hidden_dim, math.prod(self.sample_shape), num_layers,
                        activation, False)
        self.output_activation = get_activation(output_activation)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Maps ``z [N, latent_dim]`` and ``labels [N]`` (None: classes cycled) to samples ``[N, *sample_shape]``."""
        name = type(self).__name__
        check_input_shape(name, z, (self.latent_dim,), "z ")
        labels = generator_labels(name, labels, z, self.num_classes)
        out = self.net(torch.cat([z, self.code(labels, z.dtype)], 1))
        return self.output_activation(out).reshape(z.shape[0], *self.sample_shape)


@register_network(small_configs=[{"num_classes": 3, "hidden_dim": 32, "conditioning": c, "spectral_norm": sn}
                                   for c, sn in (("concat", False), ("projection", True))])
class ConditionalMLPDiscriminator(Network):
    """Conditional MLP discriminator: ``D(x [N, *sample_shape], labels [N]) -> logits [N]``.

    Args:
        sample_shape: shape of one sample, ``(D,)`` or ``(C, H, W)``.
        num_classes: the number of classes (linked from ``data.num_classes``).
        conditioning: ``"concat"`` (the one-hot label joins the flattened input) or ``"projection"``
            (``linear(phi) + <embed(y), phi>``, ``phi`` the last hidden layer; needs ``num_layers >= 2``).
        hidden_dim, num_layers, activation, spectral_norm: as for ``MLPDiscriminator``.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (2,),
        num_classes: int = 10,
        conditioning: str = "concat",
        hidden_dim: int = 128,
        num_layers: int = 3,
        activation: str = "leaky_relu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        check_choice(name, "conditioning", conditioning, CONDITIONING_MODES)
        self.sample_shape = check_sample_shape(sample_shape, name=name)
        self.latent_dim = 0
        self.num_classes = _check_num_classes(name, num_classes)
        self.conditioning = conditioning
        in_dim = math.prod(self.sample_shape)
        if conditioning == "concat":
            self.net = _mlp(in_dim + self.num_classes, hidden_dim, 1, num_layers, activation, spectral_norm)
            return
        if num_layers < 2:
            raise ValueError(f"{name}: projection needs a hidden layer (num_layers >= 2), got {num_layers}")
        self.trunk = nn.Sequential(_mlp(in_dim, hidden_dim, hidden_dim, num_layers - 1, activation, spectral_norm),
                                   get_activation(activation))
        linear = nn.Linear(hidden_dim, 1)
        self.head = ProjectionHead(_spectral_norm(linear) if spectral_norm else linear, hidden_dim, self.num_classes)
        self.head.init_embedding("default", spectral_norm)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        """Maps samples ``[N, *sample_shape]`` and labels ``[N]`` to logits ``[N]`` (larger = more real)."""
        name = type(self).__name__
        check_input_shape(name, x, self.sample_shape)
        labels = check_labels(name, labels, x.shape[0])
        flat = torch.flatten(x, 1)
        if self.conditioning == "projection":
            return self.head(self.trunk(flat), labels)
        one_hot = F.one_hot(labels.long(), self.num_classes).to(flat.dtype)
        return self.net(torch.cat([flat, one_hot], 1)).view(-1)
