"""Loading a trained generator from a checkpoint alone: no YAML, no unpickled objects, no foreign imports.

A checkpoint names the class of its generator (``init_spec["class_path"]``). Importing a module runs its
import-time code, so the class path is checked against an allow-list *before* anything is imported:
the classes registered in ``gan_modules.nets.NETWORKS``, plus the classes a caller passes as
``allowed_classes``. A crafted checkpoint naming any other module is refused without importing it.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_modules.nets import NETWORKS
from gan_modules.nets.base import build_network


def class_path_of(cls: type) -> str:
    """``"package.module.Class"``, the form ``init_spec`` records."""
    return f"{cls.__module__}.{cls.__qualname__}"


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint with ``torch.load(weights_only=True)``; every failure names the file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty, truncated or not a torch checkpoint, or holds pickled objects
            (which ``weights_only`` refuses to run).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint '{path}' is empty (0 bytes): the write that made it did not finish")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"checkpoint '{path}' holds data that weights_only loading refuses (pickled objects) or "
                         f"is not a torch checkpoint: {str(error).splitlines()[0]}") from error
    except (EOFError, RuntimeError, OSError) as error:
        raise ValueError(f"checkpoint '{path}' is truncated, corrupted or not a torch checkpoint, and cannot be read "
                         f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'unexpected end of file'})"
                         ) from error
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint '{path}' holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint


def _generator_entry(path: Path, state: dict[str, Any], which: str | None) -> dict[str, Any]:
    """The recorded fields of the generator ``which`` names (None: the family's sampling generator)."""
    entry = {"key": state["generator_key"], "spec": state["generator_spec"], "latent_dim": state["latent_dim"],
             "num_classes": state["num_classes"], "sample_shape": state["sample_shape"],
             "latent_distribution": state.get("latent_distribution", "normal")}  # older checkpoints: normal
    others = state.get("generators") or {}
    if which is None:
        return entry
    if which not in others:
        valid = ", ".join(sorted(others)) if others else "none: it holds one generator, load it with which=None"
        raise ValueError(f"which='{which}': checkpoint '{path}' has no such generator (valid: {valid})")
    return {**entry, **others[which]}


def load_generator(path: str | Path, map_location: str | torch.device = "cpu", use_ema: bool = True,
                   which: str | None = None, allowed_classes: Iterable[type | str] = ()) -> nn.Module:
    """Rebuilds a generator of a GANModule checkpoint, in eval mode with gradients off.

    The checkpoint is read with ``torch.load(weights_only=True)``: tensors and plain data only. The
    network class named by the ``class_path`` its ``init_spec`` recorded must be registered in
    ``gan_modules.nets.NETWORKS`` or listed in ``allowed_classes``; it is checked before its module is
    imported, then built with the recorded arguments. Its weights are the EMA generator's when the run
    kept one (``use_ema``).

    Args:
        path: a ``.ckpt`` written by a GANModule.
        map_location: where the tensors go.
        use_ema: the EMA generator's weights when the run kept one.
        which: another generator the family recorded: ``"AtoB"`` or ``"BtoA"`` for CycleGAN (None is
            its A→B generator).
        allowed_classes: network classes (or their ``"module.Class"`` paths) trusted beside the registry,
            e.g. a generator of your own project.

    Returns:
        An ``nn.Module`` with ``latent_dim``, ``num_classes``, ``sample_shape`` and ``latent_distribution``
        (the prior it was trained with, ``"normal"`` or ``"uniform"``) attributes; ``G(z)``
        (or ``G(z, labels)`` when ``num_classes > 0``) with ``z [N, latent_dim]`` gives samples
        ``[N, *sample_shape]``, images in ``[-1, 1]``. Image-to-image generators (``latent_dim == 0``)
        map ``[N, *input_shape]`` to ``[N, *sample_shape]``.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_checkpoint`; ``which`` unknown.
        KeyError: the checkpoint was not written by a GANModule.
        PermissionError: the recorded class is neither registered nor allowed (nothing was imported).
    """
    path = Path(path)
    checkpoint = read_checkpoint(path, map_location)
    state = checkpoint.get("gan")
    if state is None:
        raise KeyError(f"'{path}' has no 'gan' entry: it was not written by a GANModule")
    entry = _generator_entry(path, state, which)
    spec = entry["spec"]
    if spec is None:
        raise ValueError(f"'{path}': the generator was built with arguments that are not plain data, so it "
                         "cannot be rebuilt from the checkpoint; subclass gan_modules.nets.Network with plain arguments")
    allowed = {class_path_of(cls) for cls in NETWORKS.values()}
    allowed |= {c if isinstance(c, str) else class_path_of(c) for c in allowed_classes}
    if spec.get("class_path") not in allowed:
        raise PermissionError(f"checkpoint '{path}' names the generator class '{spec.get('class_path')}', which is not "
                              "a registered network (gan_modules.nets.NETWORKS); it was not imported. If you trust "
                              "the file, pass the class in load_generator(..., allowed_classes=[...])")
    key = entry["key"] if use_ema else entry.get("raw_key", "generator")
    prefix = key + "."
    weights = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    generator = build_network(spec)
    generator.load_state_dict(weights)
    generator.latent_dim = entry["latent_dim"]
    generator.num_classes = entry["num_classes"]
    generator.sample_shape = tuple(entry["sample_shape"])
    generator.latent_distribution = entry["latent_distribution"]
    return generator.eval().requires_grad_(False)
