"""The base of every network in ``nets/``: rebuildable from plain data, with its contract as attributes.

A checkpoint must be enough to rebuild a generator (``gan_modules.load_generator``) without the YAML
and without unpickling objects. Every :class:`Network` therefore records the arguments it was
constructed with, as plain data (numbers, strings, lists, dicts), under ``init_spec``; the
LightningModule stores that spec in the checkpoint beside the weights. The same idea as
stylegan2-ada's ``persistence`` decorator, without pickling source code.

Attributes every network sets:
    sample_shape: the shape of one sample, ``(C, H, W)`` for images, ``(D,)`` for vectors.
    latent_dim: the size of ``z`` for generators, 0 for discriminators.
    num_classes: the number of classes it is conditioned on, 0 when unconditional.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from torch import nn

_PLAIN = (bool, int, float, str, type(None))


def _to_plain(value: Any) -> Any:
    """Converts tuples to lists recursively; raises TypeError on anything that is not plain data."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _to_plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not plain data")


class Network(nn.Module):
    """An ``nn.Module`` that records its constructor arguments as ``init_spec``.

    ``init_spec`` is ``{"class_path": "package.module.Class", "init_args": {...}}``, or ``None`` when an
    argument is not plain data (such a network trains normally but ``load_generator`` cannot rebuild
    it, and says so).
    """

    sample_shape: tuple[int, ...] = ()
    latent_dim: int = 0
    num_classes: int = 0
    small_configs: ClassVar[list[dict[str, Any]]] = []
    """Small constructor arguments (beside ``sample_shape``) the network tests build it with."""

    def recorded_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The constructor arguments as ``init_spec`` records them (called after ``__init__``).

        A network whose argument names a file it reads at construction (a pretrained encoder, an earlier
        stage's checkpoint) replaces it here by what it read, as plain data, so the checkpoint alone
        rebuilds it (the weights come from the state dict).
        """
        return arguments

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: Network, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            if type(self) is not cls:  # only the most derived constructor records
                return
            bound = signature.bind(self, *args, **kw)
            bound.apply_defaults()
            arguments = self.recorded_arguments({k: v for k, v in bound.arguments.items() if k != "self"})
            try:
                spec = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": _to_plain(arguments)}
            except TypeError as error:
                spec = None
                self._spec_error = f"argument of {cls.__qualname__} is not plain data ({error})"
            object.__setattr__(self, "init_spec", spec)

        cls.__init__ = recording_init  # type: ignore[method-assign]


NETWORKS: dict[str, type[Network]] = {}
"""Every registered network class by class name (the network tests parametrize over it)."""

_N = TypeVar("_N", bound=type[Network])


def register_network(small_configs: list[dict[str, Any]]) -> Callable[[_N], _N]:
    """Class decorator: lists a :class:`Network` in :data:`NETWORKS` with the small configurations its tests use.

    Args:
        small_configs: constructor arguments besides ``sample_shape`` (narrow widths, one entry per
            variant worth testing: spectral norm on and off, each architecture, ...).
    """
    if not small_configs:
        raise ValueError("register_network needs at least one small configuration to test the network with")

    def register(cls: _N) -> _N:
        if not (isinstance(cls, type) and issubclass(cls, Network)):
            raise TypeError(f"register_network: {cls!r} is not a gan_modules.nets.Network subclass")
        if NETWORKS.get(cls.__name__, cls) is not cls:
            raise ValueError(f"register_network: two networks are called {cls.__name__}")
        cls.small_configs = [dict(config) for config in small_configs]
        NETWORKS[cls.__name__] = cls
        return cls

    return register


def build_network(spec: dict[str, Any]) -> nn.Module:
    """Rebuilds a network from an ``init_spec`` dict; the class must be an ``nn.Module`` subclass."""
    class_path = spec["class_path"]
    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ImportError(f"cannot import network class '{class_path}' named in the checkpoint: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"'{class_path}' named in the checkpoint is not an nn.Module subclass")
    return cls(**spec["init_args"])


def check_sample_shape(sample_shape: Sequence[int], *, ndim: int | None = None, name: str = "network") -> tuple[int, ...]:
    """Validates ``sample_shape`` (positive ints, optionally of a given length) and returns it as a tuple."""
    shape = tuple(int(s) for s in sample_shape)
    if not shape or any(s <= 0 for s in shape) or (ndim is not None and len(shape) != ndim):
        want = f"{ndim} positive dimensions" if ndim else "positive dimensions"
        raise ValueError(f"{name}: sample_shape must have {want}, got {tuple(sample_shape)}")
    return shape


_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "linear": nn.Identity,
    "none": nn.Identity,
}


def get_activation(name: str) -> nn.Module:
    """An activation layer by name (``relu``, ``leaky_relu`` (slope 0.2), ``gelu``, ``silu``, ``tanh``, ...)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation '{name}'; valid: {', '.join(sorted(_ACTIVATIONS))}") from None


_NORMS_2D = {
    "batch": nn.BatchNorm2d,
    "instance": lambda c: nn.InstanceNorm2d(c, affine=True),
    # pytorch-CycleGAN-and-pix2pix's "instance" (models/networks.py, get_norm_layer): no learned scale/shift
    "instance_noaffine": lambda c: nn.InstanceNorm2d(c, affine=False),
    "layer": lambda c: nn.GroupNorm(1, c),
    "none": lambda c: nn.Identity(),
}


def get_norm2d(name: str, channels: int) -> nn.Module:
    """A 2D normalization layer by name (``batch``, ``instance`` (affine), ``instance_noaffine``, ``layer``, ``none``)."""
    try:
        return _NORMS_2D[name](channels)
    except KeyError:
        raise ValueError(f"unknown norm '{name}'; valid: {', '.join(sorted(_NORMS_2D))}") from None
