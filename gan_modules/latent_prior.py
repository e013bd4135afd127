"""The latent prior p(z): standard normal (the default everywhere) or uniform in ``[-1, 1]``.

DCGAN (Radford et al. 2016) drew ``z`` uniformly from ``[-1, 1]``; most later work uses ``N(0, I)``.
Every place that draws latents for a model (training, ``sample``, ``predict``, the fixed grid batch,
the metric samples, ``load_generator`` / ``generate.py``) draws them through :func:`draw_latents`,
so a generator is always sampled from the prior it was trained with. Pure torch.
"""

from __future__ import annotations

import torch
from torch import Tensor

LATENT_DISTRIBUTIONS = ("normal", "uniform")
"""Names accepted by ``latent_distribution``."""


def check_latent_distribution(name: str) -> str:
    """Returns ``name`` if it is a known prior, else raises a ValueError naming ``latent_distribution``."""
    if name not in LATENT_DISTRIBUTIONS:
        raise ValueError(f"latent_distribution must be one of {', '.join(LATENT_DISTRIBUTIONS)}, got '{name}'")
    return name


def draw_latents(shape: tuple[int, ...] | list[int], distribution: str = "normal",
                 generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Tensor:
    """Latents of ``shape`` (usually ``[N, latent_dim]``) from the named prior.

    Args:
        shape: output shape.
        distribution: ``"normal"`` (``N(0, I)``) or ``"uniform"`` (``U[-1, 1]`` per entry).
        generator: torch RNG to draw from (the global one when None); the draws are made on its device.
        device: where the result goes (the generator's device, or the default, when None).

    Returns:
        float32 tensor of ``shape``.
    """
    check_latent_distribution(distribution)
    draw_device = generator.device if generator is not None else device
    if distribution == "uniform":
        z = torch.rand(tuple(shape), generator=generator, device=draw_device) * 2.0 - 1.0
    else:
        z = torch.randn(tuple(shape), generator=generator, device=draw_device)
    return z if device is None else z.to(device)
