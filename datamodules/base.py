"""The base DataModule: the contract every GAN datamodule keeps.

Contract (see docs/architecture.md):
    * ``sample_shape``: the shape of one sample, ``(C, H, W)`` or ``(D,)``; linked by ``train.py`` into
      the networks' ``sample_shape`` so a config never states a shape twice.
    * ``num_classes``: number of labels, 0 when unlabelled; linked into conditional networks.
    * batches are dicts: ``{"image": x}`` plus ``"label"`` when labelled; images are ``[N, C, H, W]``
      float in ``[-1, 1]``, vectors ``[N, D]``.
    * the train loader's per-process batch size is ``batch_size``, unless the module being fitted
      chooses one: a module with ``train_batch_size(default, epoch, batches)`` is asked each time the
      train loader is built (``ProgressiveGAN``'s per-resolution batch sizes). Every epoch then has
      the ``batches`` batches an epoch has at ``batch_size`` (a smaller batch draws fewer items, a
      larger one more), so Lightning's epoch bookkeeping, and resuming, hold across a change.
    * ``predict_dataloader`` yields ``{"index": i}`` (plus ``"label"`` when labelled) for
      ``predict_samples`` items: ``train.py predict`` turns each index into one generated sample,
      seeded by its index so the files are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from datamodules.tensors import BatchFetch, TensorDictDataset, collate_batched
from datamodules.xflip import XFlipDataset


class EpochShuffleSampler(DistributedSampler):
    """A fresh permutation each epoch, seeded by ``(seed, epoch)``, sharded across processes.

    The order of the data is then a function of the epoch alone, not of the global RNG, so a run
    resumed from a checkpoint sees the same batches as the uninterrupted run. Lightning calls
    ``set_epoch`` at the start of every epoch.

    With ``num_replicas = R`` processes and per-process ``batch_size = b``, global batch ``k`` of the
    permutation (``R*b`` items) is split into ``R`` consecutive blocks and rank ``r`` takes block
    ``r``: the ``R`` per-rank batches of a DDP step are exactly the single-process batch of size
    ``R*b``, in the same order (the tail that fills no global batch is dropped). Being a
    ``DistributedSampler``, Lightning uses it as it is instead of wrapping it.

    ``num_items`` (default ``size``): items of an epoch, all processes together; more than ``size``
    concatenates further permutations, seeded by ``(seed, epoch, pass)``.
    """

    def __init__(self, size: int, seed: int, num_replicas: int = 1, rank: int = 0, batch_size: int = 1,
                 num_items: int | None = None) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        # DistributedSampler's constructor would query the process group; the attributes are set here.
        self.size, self.seed, self.epoch = size, seed, 0
        self.num_items = size if num_items is None else int(num_items)
        self.num_replicas, self.rank, self.batch_size = num_replicas, rank, batch_size
        self.shuffle, self.drop_last = True, True
        self.resume_at: tuple[int, int] | None = None  # (epoch, samples of it consumed before a resume)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        for extra in range(1, -(-self.num_items // self.size)):  # num_items > size: more permutations
            order += torch.randperm(self.size, generator=seeded_generator(self.seed, self.epoch, extra)).tolist()
        return order[:self.num_items]

    def _rank_order(self) -> list[int]:
        order = self._order()
        if self.num_replicas == 1:
            return order
        b, step = self.batch_size, self.batch_size * self.num_replicas
        start = self.rank * b
        return [i for k in range(self.num_items // step) for i in order[k * step + start:k * step + start + b]]

    def __iter__(self):  # noqa: ANN204
        order = self._rank_order()
        if self.resume_at is not None and self.resume_at[0] == self.epoch:
            order = order[self.resume_at[1]:]
        self.resume_at = None
        return iter(order)

    def __len__(self) -> int:
        if self.num_replicas == 1:
            return self.num_items
        return self.num_items // (self.batch_size * self.num_replicas) * self.batch_size


class ResumableDataLoader(DataLoader):
    """A train loader that Lightning saves and restores (it has ``state_dict``), so a run stopped in
    the middle of an epoch resumes with the batches the uninterrupted run would have seen.

    The state is the number of batches the trainer has processed in the current epoch (read from
    ``progress``, not counted here, because Lightning fetches a batch ahead); on load the sampler
    skips that many batches of the same ``(seed, epoch)`` permutation.
    """

    def __init__(self, *args: Any, progress: Callable[[], tuple[int, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self.progress()
        return {"epoch": int(epoch), "batches": int(batches)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        # Applies only if the resumed run continues that epoch; a checkpoint taken on the last batch
        # of an epoch resumes at the next one, which starts from its beginning.
        self.sampler.resume_at = (state["epoch"], state["batches"] * self.batch_size)


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
        total_batch_size: samples per batch, all processes together; when set it replaces
            ``batch_size``, which becomes ``total_batch_size / world_size`` (it must divide evenly), so a
            run sees the same images per step on 1 or 8 devices (the official loops' ``--batch``).
        xflip: train on the set doubled by its left-right mirror images (:class:`~datamodules.xflip.XFlipDataset`,
            the official ``--mirror=1``); an epoch is then twice as long. Validation data is not flipped.
    """

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 0, predict_samples: int = 64,
                 total_batch_size: int | None = None, xflip: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if total_batch_size is not None and total_batch_size < 1:
            raise ValueError(f"total_batch_size must be >= 1, got {total_batch_size}")
        self.batch_size = batch_size
        self.total_batch_size, self.xflip = total_batch_size, xflip
        self.num_workers = num_workers
        self.seed = seed
        self.predict_samples = predict_samples
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    @property
    def batch_size(self) -> int:
        """The per-process batch size: ``total_batch_size / world_size`` when a total is set."""
        if self.total_batch_size is None:
            return self._batch_size
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.total_batch_size % world:
            raise ValueError(f"data.total_batch_size {self.total_batch_size} does not divide among {world} "
                             "processes; choose a multiple of the device count")
        return self.total_batch_size // world

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = value

    @property
    def sample_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return 0

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The shape of a conditioning input (translation data: the source image), None for noise-to-image."""
        return None

    def _epoch_progress(self) -> tuple[int, int]:
        """(epoch, batches processed in it) of the trainer fitting this datamodule."""
        trainer = self.trainer
        if trainer is None:
            return 0, 0
        return trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def train_batch_size(self, batches: int) -> int | None:
        """The per-process batch size the module being fitted chooses for the train loader about to be
        built (its ``train_batch_size(default, epoch, batches)`` for the trainer's current epoch, with
        ``batches`` the per-process batches of an epoch), or None where it does not choose."""
        trainer = self.trainer
        module = getattr(trainer, "lightning_module", None) if trainer is not None else None
        choose = getattr(module, "train_batch_size", None)
        if choose is None:
            return None
        size = int(choose(self.batch_size, trainer.current_epoch, batches))
        if size < 1:
            raise ValueError(f"{type(module).__name__}.train_batch_size returned {size}: it must be >= 1")
        return size

    def _loader(self, dataset: Dataset | None, shuffle: bool, drop_last: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for a dataloader")
        batch_size = self.batch_size
        if shuffle and self.xflip:
            dataset = XFlipDataset(BatchFetch(dataset) if isinstance(dataset, TensorDictDataset) else dataset)
        if shuffle:
            world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
            batches, items = len(dataset) // (self.batch_size * world), None
            chosen = self.train_batch_size(batches)
            if chosen is not None:  # as many batches as at batch_size, of the chosen size
                batch_size, items = chosen, batches * chosen * world
            sampler = EpochShuffleSampler(len(dataset), self.seed, num_replicas=world, rank=rank,
                                          batch_size=batch_size, num_items=items)
            extra: dict[str, Any] = {"sampler": sampler, "progress": self._epoch_progress}
            cls: type[DataLoader] = ResumableDataLoader
        else:
            extra, cls = {}, DataLoader
        return cls(
            BatchFetch(dataset) if isinstance(dataset, TensorDictDataset) else dataset,
            batch_size=batch_size,
            **extra,
            drop_last=drop_last,
            collate_fn=collate_batched,
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


# ----------------------------------------------------------------------------------------------------
# Helpers for datasets whose items are random (augmentation, patches): translation data.


def seeded_generator(*keys: int) -> torch.Generator:
    """A fresh CPU generator seeded by a tuple of ints, e.g. ``(seed, epoch, index)``.

    Items that draw their random parameters from it are a pure function of the keys, in any process
    and any worker, so an interrupted run that resumes draws exactly what the uninterrupted one drew.
    """
    state = 0
    for key in keys:
        state = (state * 1_000_003 + int(key)) % (2**63 - 1)
    return torch.Generator().manual_seed(state)


class EpochItemSampler(EpochShuffleSampler):
    """``EpochShuffleSampler`` that yields ``(epoch, index)`` pairs instead of plain indices.

    The dataset then seeds an item's random augmentation by ``(seed, epoch, index)``. The epoch has to
    travel with the index: a dataset copied into a worker process never sees a later ``set_epoch``.
    Resume (``resume_at``) works as in the base class.
    """

    def __iter__(self):  # noqa: ANN204
        epoch = self.epoch  # read before super() clears resume_at, both belong to this iteration
        return ((epoch, index) for index in super().__iter__())


def resumable_train_loader(datamodule: GANDataModule, dataset: Dataset | None,
                           make_sampler: Callable[..., EpochShuffleSampler]) -> DataLoader:
    """The train loader of ``GANDataModule`` (resumable mid-epoch, sharded across processes, drops the last
    partial batch) with any ``EpochShuffleSampler`` subclass in place of the plain index permutation.

    Args:
        datamodule: supplies the batch size, workers, seed and the trainer's world size and rank.
        dataset: the training set (None before ``setup``: a clear error).
        make_sampler: called with ``num_replicas``, ``rank`` and ``batch_size`` keywords.
    """
    if dataset is None:
        raise RuntimeError(f"{type(datamodule).__name__}: call setup() before asking for a dataloader")
    if datamodule.xflip:
        raise ValueError(f"data.xflip mirrors noise-to-image training sets; {type(datamodule).__name__} "
                         "draws its own flips (see its flip option)")
    trainer = datamodule.trainer
    world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
    return ResumableDataLoader(
        dataset,
        batch_size=datamodule.batch_size,
        sampler=make_sampler(num_replicas=world, rank=rank, batch_size=datamodule.batch_size),
        progress=datamodule._epoch_progress,
        drop_last=True,
        num_workers=datamodule.num_workers,
        persistent_workers=datamodule.num_workers > 0,
        generator=torch.Generator().manual_seed(datamodule.seed),
    )
