"""DCGAN generator and discriminator (Radford et al. 2016) for square power-of-two images.

Generator: ``z`` is projected to a 4x4 map with ``base_channels * H/8`` channels, then stride-2
stages double the resolution and halve the channels until ``H``; the last stage outputs
``sample_shape[0]`` channels through tanh. Discriminator: the mirror image, down to 4x4, then a 4x4
convolution to one logit. 32 and 64 px are the documented sizes; any power of two >= 8 works.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .base import Network, check_sample_shape, get_activation, get_norm2d, register_network
from .layers import GatedShortcut, check_choice, check_input_shape

UPSAMPLE_MODES = ("nearest_conv", "transposed")
INIT_MODES = ("dcgan", "default")
BLOCKS = ("plain", "residual", "gated")
_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation for one module; use as ``net.apply(dcgan_init)``.

    Conv/ConvTranspose/Linear weights ~ N(0, 0.02); affine norm weights ~ N(1, 0.02); biases 0.
    On a spectral-normalised layer the unnormalised ``original`` weight is initialised.
    """
    if isinstance(module, _WEIGHTED):
        if parametrize.is_parametrized(module, "weight"):
            weight = module.parametrizations.weight.original
        else:
            weight = module.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, _NORMS) and getattr(module, "weight", None) is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _check_image_shape(sample_shape: Sequence[int], name: str) -> tuple[int, int]:
    """Validates a square power-of-two ``(C, H, W)`` with ``H >= 8``; returns ``(channels, stages)``.

    ``stages`` is the number of stride-2 stages between 4x4 and ``H`` (3 for 32 px, 4 for 64 px).
    """
    channels, height, width = check_sample_shape(sample_shape, ndim=3, name=name)
    if height != width or height < 8 or height & (height - 1):
        raise ValueError(
            f"{name}: images must be square with a power-of-two size >= 8 (32 or 64 documented), "
            f"got sample_shape {tuple(sample_shape)}"
        )
    return channels, height.bit_length() - 3  # log2(H) - log2(4)


def _finish_init(net: nn.Module, init: str, spectral_norm: bool) -> None:
    """Applies the initialisation, then spectral norm (its power-iteration vectors must see final weights)."""
    if init == "dcgan":
        net.apply(dcgan_init)
    if spectral_norm:
        for layer in [m for m in net.modules() if isinstance(m, _WEIGHTED)]:
            _spectral_norm(layer)


def _upsample_layer(mode: str, c_in: int, c_out: int, bias: bool) -> nn.Module:
    """One stride-2 upsampling layer (doubles H and W)."""
    if mode == "transposed":
        return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias))


class UpsampleBlock(nn.Module):
    """One generator stage with a shortcut: doubles H and W, ``[N, c_in, H, W] -> [N, c_out, 2H, 2W]``.

    ``f = act(norm(up(x)))`` is the plain stage (``up`` the stage's upsampling layer); the shortcut is
    ``s = conv1x1(nearest_x2(x))`` (the learnable shortcut of BigGAN/SNGAN's generator blocks, needed
    because the channels change). ``block`` merges them: ``"residual"``: ``s + f``; ``"gated"``:
    :class:`GatedShortcut` ``g * s + (1 - g) * f``.

    Args:
        up: the upsampling layer of the features path (``c_in -> c_out``, doubles H and W).
        norm: norm layer after it; activation: activation after the norm.
        c_in: input channels; c_out: output channels.
        block: ``"residual"`` or ``"gated"``.
    """

    def __init__(self, up: nn.Module, norm: nn.Module, activation: nn.Module, c_in: int, c_out: int,
                 block: str) -> None:
        super().__init__()
        check_choice("UpsampleBlock", "block", block, BLOCKS[1:])
        self.up, self.norm, self.activation = up, norm, activation
        self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.gate = GatedShortcut(c_out) if block == "gated" else None

    def forward(self, x: Tensor) -> Tensor:
        features = self.activation(self.norm(self.up(x)))
        shortcut = self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return shortcut + features if self.gate is None else self.gate(shortcut, features)


def generator_layers(in_dim: int, out_channels: int, stages: int, base_channels: int, upsample: str, norm: str,
                     activation: str, block: str = "plain") -> tuple[nn.Module, nn.Sequential]:
    """The DCGAN generator's layers: ``project`` (a vector ``[N, in_dim]`` to a 4x4 map) and ``body``.

    ``body`` doubles the resolution ``stages`` times, halving the channels from ``base_channels * 2 **
    (stages - 1)`` down to ``base_channels``, and ends in ``out_channels`` through tanh. Shared by the
    unconditional and the conditional generators (which feed ``[z, label code]`` as the vector).
    ``block`` other than ``"plain"`` makes every hidden stage an :class:`UpsampleBlock` with a shortcut
    (the last stage, to the image, stays plain); ``"plain"`` keeps the paper's layers and their names.
    """
    bias = norm == "none"  # a bias right before a norm layer is cancelled by it
    width = base_channels * 2 ** (stages - 1)
    if upsample == "transposed":
        project = nn.Sequential(nn.Unflatten(1, (in_dim, 1, 1)), nn.ConvTranspose2d(in_dim, width, 4, 1, 0, bias=bias))
    else:
        project = nn.Sequential(nn.Linear(in_dim, width * 16, bias=bias), nn.Unflatten(1, (width, 4, 4)))
    layers: list[nn.Module] = [get_norm2d(norm, width), get_activation(activation)]
    for stage in range(stages):
        last = stage == stages - 1
        c_out = out_channels if last else width // 2
        layers.append(_upsample_layer(upsample, width, c_out, bias=bias or last))
        if last:
            layers.append(nn.Tanh())
        elif block != "plain":
            layers.append(UpsampleBlock(layers.pop(), get_norm2d(norm, c_out), get_activation(activation), width, c_out,
                                        block))
        else:
            layers += [get_norm2d(norm, c_out), get_activation(activation)]
        width = c_out
    return project, nn.Sequential(*layers)


def discriminator_trunk(in_channels: int, stages: int, base_channels: int, norm: str,
                        activation: str) -> tuple[list[nn.Module], int]:
    """The DCGAN discriminator's stride-2 stages from ``H`` down to 4x4, and their output channels.

    Shared by every DCGAN-style discriminator; each adds its own head(s) on the ``[N, width, 4, 4]`` map.
    """
    bias = norm == "none"
    layers: list[nn.Module] = []
    c_in, c_out = in_channels, base_channels
    for stage in range(stages):
        first = stage == 0
        layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias or first))
        if not first:  # the paper leaves the input layer unnormalised
            layers.append(get_norm2d(norm, c_out))
        layers.append(get_activation(activation))
        c_in, c_out = c_out, c_out * 2
    return layers, c_in


@register_network(small_configs=[{"latent_dim": 16, "base_channels": 8, "upsample": up, "block": b}
                                 for up, b in (("transposed", "plain"), ("nearest_conv", "plain"),
                                               ("transposed", "residual"), ("nearest_conv", "gated"))])
class DCGANGenerator(Network):
    """DCGAN generator: ``z [N, latent_dim] -> images [N, C, H, W]`` in ``[-1, 1]``.

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        latent_dim: size of ``z``.
        base_channels: channels of the last hidden stage; earlier stages have 2x, 4x, ...
        upsample: ``"transposed"`` (ConvTranspose2d(4, 2, 1), as in the paper) or
            ``"nearest_conv"`` (nearest upsampling + Conv2d(3, 1, 1): no checkerboard artifacts,
            Odena et al. 2016).
        norm: norm of the hidden layers (``batch``, ``instance``, ``layer``, ``none``); none on the output.
        activation: hidden activation.
        init: ``"dcgan"`` (N(0, 0.02), see :func:`dcgan_init`) or ``"default"`` (PyTorch's).
        block: ``"plain"`` (the paper's stages), ``"residual"`` (each hidden stage plus a 1x1-conv
            shortcut of its nearest-upsampled input) or ``"gated"`` (the two merged by a learned sigmoid
            gate, ``g * shortcut + (1 - g) * stage``: :class:`~gan_modules.nets.layers.GatedShortcut`,
            arXiv:2201.11351); see :class:`UpsampleBlock`.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        latent_dim: int = 100,
        base_channels: int = 64,
        upsample: str = "transposed",
        norm: str = "batch",
        activation: str = "relu",
        init: str = "dcgan",
        block: str = "plain",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        out_channels, stages = _check_image_shape(sample_shape, name)
        check_choice(name, "upsample", upsample, UPSAMPLE_MODES)
        check_choice(name, "init", init, INIT_MODES)
        check_choice(name, "block", block, BLOCKS)
        if latent_dim < 1 or base_channels < 1:
            raise ValueError(f"{name}: latent_dim and base_channels must be >= 1")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim = int(latent_dim)
        self.num_classes = 0
        self.upsample = upsample
        self.block = block
        self.project, self.body = generator_layers(latent_dim, out_channels, stages, base_channels, upsample,
                                                   norm, activation, block)
        _finish_init(self, init, spectral_norm=False)

    def forward(self, z: Tensor) -> Tensor:
        """Maps ``z [N, latent_dim]`` to images ``[N, C, H, W]`` in ``[-1, 1]``."""
        check_input_shape(type(self).__name__, z, (self.latent_dim,), "z ")
        return self.body(self.project(z))


@register_network(small_configs=[{"base_channels": 8, "spectral_norm": sn} for sn in (False, True)])
class DCGANDiscriminator(Network):
    """DCGAN discriminator: ``images [N, C, H, W] -> logits [N]`` (no sigmoid; larger = more real).

    Args:
        sample_shape: ``(C, H, W)``, square, ``H`` a power of two >= 8.
        base_channels: channels of the first stage; later stages have 2x, 4x, ...
        norm: norm of the hidden layers except the first (``batch``, ``instance``, ``layer``,
            ``none``). Use ``none`` or ``layer`` with gradient penalties, since batch statistics make
            each sample's gradient depend on the rest of the batch; ``none`` is usual with spectral norm.
        activation: hidden activation; LeakyReLU(0.2) by default.
        spectral_norm: wrap every convolution with spectral normalization (Miyato et al. 2018).
        init: ``"dcgan"`` (N(0, 0.02), see :func:`dcgan_init`) or ``"default"`` (PyTorch's).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 32, 32),
        base_channels: int = 64,
        norm: str = "batch",
        activation: str = "leaky_relu",
        spectral_norm: bool = False,
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels, stages = _check_image_shape(sample_shape, name)
        check_choice(name, "init", init, INIT_MODES)
        if base_channels < 1:
            raise ValueError(f"{name}: base_channels must be >= 1, got {base_channels}")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim = 0
        self.num_classes = 0
        trunk, width = discriminator_trunk(in_channels, stages, base_channels, norm, activation)
        self.body = nn.Sequential(*trunk, nn.Conv2d(width, 1, 4, 1, 0))  # 4x4 -> 1x1 logit
        _finish_init(self, init, spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        """Maps images ``[N, C, H, W]`` to logits ``[N]``."""
        check_input_shape(type(self).__name__, x, self.sample_shape)
        return self.body(x).flatten()
