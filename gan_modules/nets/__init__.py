"""Networks: generators ``z [N, latent_dim] -> [N, *sample_shape]`` and discriminators ``x -> logits [N]``.

Every class subclasses :class:`Network` (rebuildable from ``init_spec`` with :func:`build_network`).
This package imports only torch, never lightning.
"""

from .base import Network, build_network
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init
from .mlp import MLPDiscriminator, MLPGenerator

NETWORKS: dict[str, type[Network]] = {
    cls.__name__: cls for cls in (MLPGenerator, MLPDiscriminator, DCGANGenerator, DCGANDiscriminator)
}
"""Every network class by class name (tests parametrize over it)."""

__all__ = [
    "NETWORKS",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "Network",
    "build_network",
    "dcgan_init",
]
