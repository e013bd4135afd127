"""scikit-learn's 8x8 handwritten digits, upsampled: a real image dataset that needs no download.

``load_digits()`` ships with scikit-learn (1,797 grayscale 8x8 images, values 0..16, 10 classes), so
this is the dataset for smoke tests, CI and quick benchmarks on machines without internet.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from datamodules.base import GANDataModule
from datamodules.tensors import TensorDictDataset

# The train/val split must not move when the experiment ``seed`` changes, otherwise metrics computed
# against the validation images would not be comparable between runs.
SPLIT_SEED = 1234


def load_digits_tensors(image_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as tensors.

    Args:
        image_size: output side length (>= 8); 8 keeps the native resolution.

    Returns:
        images ``[1797, 1, image_size, image_size]`` float32 in ``[-1, 1]`` (0 -> -1, 16 -> 1) and
        labels ``[1797]`` int64 in ``0..9``.
    """
    from sklearn.datasets import load_digits  # imported lazily: sklearn is slow to import

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1)  # [N, 1, 8, 8], 0..16
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    if image_size != images.shape[-1]:
        # Upsampling only, so no antialiasing is needed; bilinear keeps values inside [0, 16].
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (images / 8.0 - 1.0).clamp_(-1.0, 1.0)
    return images.contiguous(), labels


def stratified_subset(indices: torch.Tensor, labels: torch.Tensor, fraction: float) -> torch.Tensor:
    """A deterministic class-stratified subset of ``indices``: ``max(1, round(fraction * n_c))`` of each
    class's ``n_c``, chosen by a permutation with a fixed seed (``SPLIT_SEED``), returned sorted.

    Args:
        indices: ``[N]`` int64 dataset indices.
        labels: ``[N]`` int64 classes of those indices.
        fraction: share to keep, in ``(0, 1]``.
    """
    gen = torch.Generator().manual_seed(SPLIT_SEED)
    kept = []
    for c in labels.unique(sorted=True).tolist():
        members = indices[labels == c]
        keep = max(1, int(round(fraction * len(members))))
        kept.append(members[torch.randperm(len(members), generator=gen)[:keep]])
    return torch.cat(kept).sort().values


class DigitsDataModule(GANDataModule):
    """scikit-learn digits, 1 channel, labelled (10 classes), upsampled to ``image_size``.

    Items are ``{"image": float32 [1, image_size, image_size] in [-1, 1], "label": int64 scalar}``.
    The split is a permutation with a fixed seed (independent of ``seed``): it never changes.

    Args:
        image_size: output side length, any int >= 8 (32 and 64 are the usual choices).
        val_fraction: share of the 1,797 images held out for validation, in ``[0, 1)``.
        train_fraction: share of the training split to train on, in ``(0, 1]``: a class-stratified
            subset (``round(train_fraction * n_c)`` of each class's ``n_c`` images, at least one), the
            same for every ``seed``; the validation split is unchanged. For data-efficiency studies.
        batch_size: samples per batch and per process.
        num_workers: DataLoader worker processes.
        seed: seeds everything else the datamodule draws; the split does not depend on it.
        predict_samples: how many samples ``train.py predict`` writes.
    """

    def __init__(self, image_size: int = 32, val_fraction: float = 0.2, train_fraction: float = 1.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8 (digits are 8x8), got {image_size}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"data.train_fraction must be in (0, 1], got {train_fraction}")
        self.image_size = image_size
        self.val_fraction = val_fraction
        self.train_fraction = train_fraction
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (1, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        return 10

    def setup(self, stage: str | None = None) -> None:
        if self._tensors:  # idempotent: Lightning calls setup once per stage
            return
        images, labels = load_digits_tensors(self.image_size)
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SPLIT_SEED))
        num_val = int(round(self.val_fraction * len(images)))
        val_idx, train_idx = order[:num_val].sort().values, order[num_val:].sort().values
        if self.train_fraction < 1.0:
            train_idx = stratified_subset(train_idx, labels[train_idx], self.train_fraction)
        self._tensors["train"] = (images[train_idx], labels[train_idx])
        self._tensors["val"] = (images[val_idx], labels[val_idx])
        self.train_set = TensorDictDataset(*self._tensors["train"])
        # An empty val set would give an empty val loader; fall back to train like the base class.
        self.val_set = TensorDictDataset(*self._tensors["val"]) if num_val else None

    def tensors(self, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """All images and labels of one split (calls ``setup`` if needed).

        Args:
            split: ``"train"`` or ``"val"``.

        Returns:
            images ``[N, 1, H, W]`` float32 in ``[-1, 1]`` and labels ``[N]`` int64.
        """
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.setup()
        return self._tensors[split]
