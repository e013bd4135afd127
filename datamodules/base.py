"""The base DataModule: the contract every GAN datamodule keeps.

Contract (see docs/architecture.md):
    * ``sample_shape``: the shape of one sample, ``(C, H, W)`` or ``(D,)``; linked by ``train.py`` into
      the networks' ``sample_shape`` so a config never states a shape twice.
    * ``num_classes``: number of labels, 0 when unlabelled; linked into conditional networks.
    * batches are dicts: ``{"image": x}`` plus ``"label"`` when labelled; images are ``[N, C, H, W]``
      float in ``[-1, 1]``, vectors ``[N, D]``.
    * ``predict_dataloader`` yields ``{"index": i}`` (plus ``"label"`` when labelled) for
      ``predict_samples`` items: ``train.py predict`` turns each index into one generated sample,
      seeded by its index so the files are reproducible.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[int]):
    """A fresh permutation each epoch, seeded by ``(seed, epoch)``.

    The order of the data is then a function of the epoch alone, not of the global RNG, so a run
    resumed from a checkpoint sees the same batches as the uninterrupted run. Lightning calls
    ``set_epoch`` at the start of every epoch.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):  # noqa: ANN204
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class _PredictIndices(Dataset):
    def __init__(self, count: int, num_classes: int) -> None:
        self.count, self.num_classes = count, num_classes

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {"index": torch.tensor(index)}
        if self.num_classes:
            item["label"] = torch.tensor(index % self.num_classes)
        return item


class GANDataModule(L.LightningDataModule):
    """Shared options and loaders; subclasses build ``self.train_set`` / ``self.val_set`` in ``setup``.

    Args:
        batch_size: samples per batch and per process.
        num_workers: DataLoader worker processes.
        seed: seeds everything the datamodule draws (splits, toy samples).
        predict_samples: how many samples ``train.py predict`` writes.
    """

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 0, predict_samples: int = 64) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.predict_samples = predict_samples
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return 0

    def _loader(self, dataset: Dataset | None, shuffle: bool, drop_last: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for a dataloader")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(len(dataset), self.seed) if shuffle else None,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # the loader's own generator seeds its workers, so creating an iterator leaves the global RNG alone
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set if self.val_set is not None else self.train_set, shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(_PredictIndices(self.predict_samples, self.num_classes), batch_size=self.batch_size)
