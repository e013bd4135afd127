"""A Dataset over precomputed tensors that keeps the dict-item contract."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, default_collate


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


class BatchFetch(Dataset):
    """A :class:`TensorDictDataset` that a DataLoader reads a whole batch at a time (``__getitems__``:
    one indexing op per tensor instead of a dict per item and a collate over them, which at a toy
    batch of 512 points is a noticeable part of a step on a CPU). Its loader needs ``collate_fn=collate_batched``;
    :class:`~datamodules.base.GANDataModule`'s loaders wrap their tensor datasets in it. The batches
    equal the per-item ones, and the plain dataset keeps working with any loader."""

    def __init__(self, dataset: TensorDictDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.dataset[index]

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return self.dataset[torch.as_tensor(indices, dtype=torch.long)]  # a tensor index selects the batch


def collate_batched(batch):
    """A DataLoader ``collate_fn`` that passes through a batch already made by ``BatchFetch.__getitems__``
    (a dict of stacked tensors) and collates a list of items as usual."""
    return batch if isinstance(batch, dict) else default_collate(batch)
