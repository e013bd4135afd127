"""2-D Gaussian mixtures (ring of 8, grid of 25): the classic mode-collapse benchmarks.

``toy_mixture`` and ``sample_toy`` are plain functions so metrics and benchmarks can use the same
definitions without building a datamodule.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from datamodules.base import GANDataModule
from datamodules.tensors import TensorDictDataset

TOY_DATASETS = ("ring", "grid")
VAL_SAMPLES = 2_500


def toy_mixture(name: str) -> tuple[torch.Tensor, float]:
    """Centers and per-axis std of an isotropic, equally weighted Gaussian mixture.

    Args:
        name: ``"ring"`` (8 modes on the unit circle at angles ``2*pi*k/8``, std 0.01) or
            ``"grid"`` (25 modes at ``{-4, -2, 0, 2, 4}^2``, std 0.05).

    Returns:
        centers ``[K, 2]`` float32 and the std (float).

    Raises:
        ValueError: unknown ``name``.
    """
    if name == "ring":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        centers = torch.stack([angles.cos(), angles.sin()], dim=1)
        return centers.float(), 0.01
    if name == "grid":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        centers = torch.cartesian_prod(axis, axis)
        return centers, 0.05
    raise ValueError(f"unknown toy dataset {name!r}; valid names: {', '.join(TOY_DATASETS)}")


def sample_toy(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` points from a mixture, modes chosen uniformly.

    Args:
        name: mixture name, see ``toy_mixture``.
        n: number of points.
        generator: CPU generator for reproducible draws (global RNG when None).

    Returns:
        ``[n, 2]`` float32 points.
    """
    centers, std = toy_mixture(name)
    modes = torch.randint(len(centers), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator)
    return centers[modes] + std * noise


class Toy2DDataModule(GANDataModule):
    """Unlabelled 2-D points from a Gaussian mixture; items are ``{"image": float32 [2]}``.

    The key is ``"image"`` although the samples are vectors: the GAN families read ``batch["image"]``
    whatever the data is. Training points are drawn once with ``seed``, validation points
    (2,500) with ``seed + 1``, so the two sets are independent draws.

    Args:
        dataset: ``"ring"`` or ``"grid"``.
        num_samples: training points drawn once in ``setup``.
        batch_size: samples per batch and per process.
        num_workers: DataLoader worker processes (0 is best: the data is one small tensor).
        seed: seeds the drawn points.
        predict_samples: how many samples ``train.py predict`` writes.
    """

    def __init__(self, dataset: str = "ring", num_samples: int = 100_000, batch_size: int = 256,
                 predict_samples: int = 2500, **kwargs: Any) -> None:
        super().__init__(batch_size=batch_size, predict_samples=predict_samples, **kwargs)
        self._centers, self._std = toy_mixture(dataset)  # validates the name before training starts
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.dataset = dataset
        self.num_samples = num_samples

    @property
    def sample_shape(self) -> tuple[int]:
        return (2,)

    @property
    def num_classes(self) -> int:
        return 0

    @property
    def modes(self) -> torch.Tensor:
        """Mixture centers, ``[K, 2]`` float32."""
        return self._centers.clone()

    @property
    def std(self) -> float:
        """Per-axis std of every mode."""
        return self._std

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train = sample_toy(self.dataset, self.num_samples, torch.Generator().manual_seed(self.seed))
        val = sample_toy(self.dataset, VAL_SAMPLES, torch.Generator().manual_seed(self.seed + 1))
        self.train_set = TensorDictDataset(train)
        self.val_set = TensorDictDataset(val)
