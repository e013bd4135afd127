"""Dataset x-flips as the official StyleGAN/R3GAN loaders make them: the set doubled by mirror images.

stylegan2-ada-pytorch's ``training/dataset.py`` (``xflip=True``, the ``--mirror=1`` option, also in
R3GAN) tiles the raw indices twice and flips the second copy, so an epoch shows every image once as
it is and once mirrored; ProGAN's ``mirror_augment`` flips a random half of every minibatch. The
doubled set is deterministic, so a resumed run sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class XFlipDataset(Dataset):
    """Items ``0 .. N-1`` of ``base`` as they are, items ``N .. 2N-1`` with ``"image"`` mirrored left-right.

    Args:
        base: a dataset of ``{"image": [C, H, W], ...}`` dicts; one with ``__getitems__`` (batched
            fetch, :class:`~datamodules.tensors.BatchFetch`) keeps it, flipping the rows of the batch.
    """

    def __init__(self, base: Dataset) -> None:
        self.base = base
        self.size = len(base)  # type: ignore[arg-type]
        if hasattr(base, "__getitems__"):
            self.__getitems__ = self._getitems

    def __len__(self) -> int:
        return 2 * self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = dict(self.base[index % self.size])
        if index >= self.size:
            item["image"] = item["image"].flip(-1)
        return item

    def _getitems(self, indices: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        batch = dict(self.base.__getitems__((index % self.size).tolist()))  # type: ignore[attr-defined]
        mirrored = (index >= self.size).view(-1, *([1] * (batch["image"].dim() - 1)))
        batch["image"] = torch.where(mirrored, batch["image"].flip(-1), batch["image"])
        return batch
