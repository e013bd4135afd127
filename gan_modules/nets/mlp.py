"""Fully connected generator and discriminator, as in the original GAN (Goodfellow et al. 2014).

Work on vectors (``sample_shape=(D,)``, e.g. 2D toy mixtures) and on images (``(C, H, W)``,
flattened), which makes them the baseline for every family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .base import Network, check_sample_shape, get_activation, register_network
from .layers import check_input_shape


def _mlp(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, activation: str, sn: bool) -> nn.Sequential:
    """``num_layers`` Linear layers (``num_layers - 1`` hidden ones, each followed by ``activation``)."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if hidden_dim < 1:
        raise ValueError(f"hidden_dim must be >= 1, got {hidden_dim}")
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        linear = nn.Linear(d_in, d_out)
        layers.append(_spectral_norm(linear) if sn else linear)
        if i < num_layers - 1:
            layers.append(get_activation(activation))
    return nn.Sequential(*layers)


@register_network(small_configs=[{"latent_dim": 8, "hidden_dim": 32}])
class MLPGenerator(Network):
    """MLP generator: ``z [N, latent_dim] -> [N, *sample_shape]``.

    Args:
        sample_shape: shape of one sample, ``(D,)`` or ``(C, H, W)``.
        latent_dim: size of ``z``.
        hidden_dim: width of the hidden layers.
        num_layers: number of Linear layers (>= 1).
        activation: hidden activation (see ``base.get_activation``).
        output_activation: ``"auto"`` = ``tanh`` for images (outputs in ``[-1, 1]``), ``linear``
            for vectors (toy data is unbounded); or any activation name.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (2,),
        latent_dim: int = 2,
        hidden_dim: int = 128,
        num_layers: int = 3,
        activation: str = "relu",
        output_activation: str = "auto",
    ) -> None:
        super().__init__()
        self.sample_shape = check_sample_shape(sample_shape, name="MLPGenerator")
        if latent_dim < 1:
            raise ValueError(f"MLPGenerator: latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = int(latent_dim)
        self.num_classes = 0
        if output_activation == "auto":
            output_activation = "tanh" if len(self.sample_shape) == 3 else "linear"
        self.net = _mlp(latent_dim, hidden_dim, math.prod(self.sample_shape), num_layers, activation, False)
        self.output_activation = get_activation(output_activation)

    def forward(self, z: Tensor) -> Tensor:
        """Maps ``z [N, latent_dim]`` to samples ``[N, *sample_shape]``."""
        check_input_shape("MLPGenerator", z, (self.latent_dim,), "z ")
        return self.output_activation(self.net(z)).reshape(z.shape[0], *self.sample_shape)


@register_network(small_configs=[{"hidden_dim": 32, "spectral_norm": sn} for sn in (False, True)])
class MLPDiscriminator(Network):
    """MLP discriminator: ``x [N, *sample_shape] -> logits [N]`` (no dropout, no sigmoid).

    Args:
        sample_shape: shape of one sample, ``(D,)`` or ``(C, H, W)``.
        hidden_dim: width of the hidden layers.
        num_layers: number of Linear layers (>= 1).
        activation: hidden activation; LeakyReLU(0.2) by default.
        spectral_norm: wrap every Linear with spectral normalization (Miyato et al. 2018).
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (2,),
        hidden_dim: int = 128,
        num_layers: int = 3,
        activation: str = "leaky_relu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.sample_shape = check_sample_shape(sample_shape, name="MLPDiscriminator")
        self.latent_dim = 0
        self.num_classes = 0
        self.net = _mlp(math.prod(self.sample_shape), hidden_dim, 1, num_layers, activation, spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        """Maps samples ``[N, *sample_shape]`` to logits ``[N]``; larger = more real."""
        check_input_shape("MLPDiscriminator", x, self.sample_shape)
        return self.net(torch.flatten(x, 1)).view(-1)
