"""What the image-to-image networks share (pix2pix, CycleGAN, SRGAN, inpainting).

An image-to-image generator maps an input image ``[N, *input_shape]`` to an output
``[N, *sample_shape]`` in ``[-1, 1]``; its ``latent_dim`` is 0 (the only noise, where there is any, is
dropout: see :class:`~gan_modules.nets.unet.UNetGenerator`). A translation discriminator maps an
output image (and, when conditional, the input it was made from) to logits: ``[N]`` or a patch map
``[N, 1, h, w]``.

Both take ``sample_shape`` and ``input_shape`` constructor arguments, so ``train.py`` fills them from
the datamodule (``data.sample_shape`` is the target's shape, ``data.input_shape`` the source's);
``input_shape=None`` means "the same as ``sample_shape``" (or, for super-resolution, a quarter of its
size). The networks live in ``unet.py``, ``patchgan.py``, ``resnet_gen.py`` and ``srresnet.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import Network, check_sample_shape
from .dcgan import dcgan_init
from .layers import check_choice

INIT_MODES = ("dcgan", "default")


class ImageToImageNetwork(Network):
    """Base of the translation networks: adds ``input_shape``, ``is_generator`` and ``example_inputs``.

    Attributes:
        input_shape: ``(C_in, H_in, W_in)`` of the source image a generator reads (or that a
            conditional discriminator is conditioned on); None for an unconditional discriminator.
        is_generator: True for networks that output images, False for discriminators (they all have
            ``latent_dim == 0``, so that attribute cannot tell them apart).
    """

    input_shape: tuple[int, ...] | None = None
    is_generator: bool = False

    def example_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """Random valid arguments of ``forward`` for a batch of ``n`` (images uniform in ``[-1, 1]``).

        Tests and ``load_generator`` users call ``net(*net.example_inputs(n))`` without knowing whether
        the network also wants a mask or a condition.
        """
        if self.is_generator:
            return (_uniform(n, self.input_shape, generator),)
        sample = _uniform(n, self.sample_shape, generator)
        return (sample,) if self.input_shape is None else (sample, _uniform(n, self.input_shape, generator))


def _uniform(n: int, shape: Sequence[int] | None, generator: torch.Generator | None) -> Tensor:
    assert shape is not None
    return torch.rand(n, *shape, generator=generator) * 2 - 1


def image_shape(shape: Sequence[int], name: str, what: str = "sample_shape") -> tuple[int, int, int]:
    """Validates ``(C, H, W)`` with positive entries and returns it as a tuple of ints."""
    try:
        checked = check_sample_shape(shape, ndim=3, name=name)
    except ValueError:
        raise ValueError(f"{name}: {what} must be (C, H, W) with positive entries, got {tuple(shape)}") from None
    return checked  # type: ignore[return-value]


def same_size_input(sample_shape: Sequence[int], input_shape: Sequence[int] | None, name: str) -> tuple[int, int, int]:
    """The input shape of a network whose input and output have the same height and width.

    ``None`` means the input has the output's shape. The channels may differ (edges -> photo).
    """
    if input_shape is None:
        return image_shape(sample_shape, name)
    checked = image_shape(input_shape, name, "input_shape")
    if checked[1:] != tuple(sample_shape)[1:]:
        raise ValueError(f"{name}: input_shape {tuple(input_shape)} must have the height and width of "
                         f"sample_shape {tuple(sample_shape)}")
    return checked


def check_divisible(shape: Sequence[int], factor: int, name: str, why: str) -> None:
    """Raises ValueError when the height or width of ``(C, H, W)`` is not a multiple of ``factor``."""
    if shape[1] % factor or shape[2] % factor:
        raise ValueError(f"{name}: height and width must be multiples of {factor} ({why}), got {tuple(shape)}")


def check_images(name: str, x: Tensor, expected: Sequence[int], what: str = "") -> None:
    """Raises ValueError naming the expected ``[N, C, H, W]`` when ``x`` does not match."""
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(expected):
        want = ", ".join(["N", *map(str, expected)])
        raise ValueError(f"{name} expects {what}[{want}], got {list(x.shape)}")


def finish_init(net: nn.Module, init: str, name: str) -> None:
    """Applies ``init``: ``"dcgan"`` (N(0, 0.02), what pix2pix and CycleGAN use) or ``"default"`` (PyTorch's)."""
    check_choice(name, "init", init, INIT_MODES)
    if init == "dcgan":
        net.apply(dcgan_init)
