"""A Dataset over precomputed tensors that keeps the dict-item contract."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class TensorDictDataset(Dataset):
    """Precomputed tensors served as ``{"image": images[i], "label": labels[i]}`` dicts.

    Args:
        images: ``[N, ...]`` float32 samples (images ``[N, C, H, W]`` or vectors ``[N, D]``).
        labels: ``[N]`` int64 labels, or None for unlabelled data (items then have no ``"label"``).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {"image": self.images[index]}
        if self.labels is not None:
            item["label"] = self.labels[index]
        return item
