"""Loading a trained generator from a checkpoint alone: no YAML, no unpickled objects."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gan_modules.nets.base import build_network


def load_generator(path: str | Path, map_location: str | torch.device = "cpu", use_ema: bool = True) -> nn.Module:
    """Rebuilds the generator of a GANModule checkpoint, in eval mode with gradients off.

    The checkpoint is read with ``torch.load(weights_only=True)``: tensors and plain data only. The
    network class is imported from the ``class_path`` its ``init_spec`` recorded and built with the
    recorded arguments; its weights are the EMA generator's when the run kept one (``use_ema``).

    Returns:
        An ``nn.Module`` with ``latent_dim``, ``num_classes`` and ``sample_shape`` attributes; ``G(z)``
        (or ``G(z, labels)`` when ``num_classes > 0``) with ``z [N, latent_dim]`` gives samples
        ``[N, *sample_shape]``, images in ``[-1, 1]``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    state = checkpoint.get("gan")
    if state is None:
        raise KeyError(f"'{path}' has no 'gan' entry: it was not written by a GANModule")
    spec = state["generator_spec"]
    if spec is None:
        raise ValueError(f"'{path}': the generator was built with arguments that are not plain data, so it "
                         "cannot be rebuilt from the checkpoint; subclass gan_modules.nets.Network with plain arguments")
    key = state["generator_key"] if use_ema else "generator"
    prefix = key + "."
    weights = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    generator = build_network(spec)
    generator.load_state_dict(weights)
    generator.latent_dim = state["latent_dim"]
    generator.num_classes = state["num_classes"]
    generator.sample_shape = tuple(state["sample_shape"])
    return generator.eval().requires_grad_(False)
