"""Unpaired image-to-image data (CycleGAN): two domains, no correspondence between their images.

Layout (CycleGAN's datasets, e.g. horse2zebra): ``<root>/trainA``, ``trainB``, ``testA``, ``testB``
(and ``valA``/``valB`` where a dataset has them). Each side is augmented independently (resize to
``load_size`` squared, random ``crop_size`` crop, random flip).

An epoch is ``max(|A|, |B|)`` items. The two sides are shuffled independently, each by its own
permutation seeded by ``(seed, epoch, side)``; the smaller side cycles, drawing a fresh permutation per
pass, so every image of either side appears in every epoch. ``UnpairedSampler`` yields
``(epoch, position, index_A, index_B)``: the order and the augmentation are pure functions of the seed
and the epoch, and a run resumed mid-epoch skips exactly the items already consumed.

Batches: ``{"A": [N, C_A, H, W], "B": [N, C_B, H, W]}`` float in ``[-1, 1]``; predict batches
``{"index": [N], "A": [N, C_A, H, W]}`` over the ``predict_split`` A images, in file order.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.base import EpochShuffleSampler, resumable_train_loader, seeded_generator
from datamodules.folder import open_image
from datamodules.paired import (
    CropFlip,
    ImageToImageFolderDataModule,
    require_dir,
    resize_square,
    scan_images,
    split_hint,
    to_signed,
    to_tensor,
    warn_if_no_batch,
)


def cycled_order(size: int, length: int, keys: tuple[int, ...]) -> list[int]:
    """``length`` indices of ``range(size)``: permutations seeded by ``(*keys, pass)``, concatenated."""
    passes = -(-length // size)
    order = torch.cat([torch.randperm(size, generator=seeded_generator(*keys, p)) for p in range(passes)])
    return order[:length].tolist()


class UnpairedSampler(EpochShuffleSampler):
    """Yields ``(epoch, position, index_A, index_B)`` for the ``max(size_a, size_b)`` positions of an epoch.

    The positions come in the base class's order (a permutation, sharded across processes, resumable);
    position ``p`` pairs the ``p``-th entries of the two sides' own cycled permutations.

    Args:
        size_a: number of A images. size_b: number of B images.
        seed: seeds the two sides' permutations (side A with key 0, side B with key 1).
        num_replicas: processes. rank: this process. batch_size: per process (see ``EpochShuffleSampler``).
    """

    def __init__(self, size_a: int, size_b: int, seed: int, num_replicas: int = 1, rank: int = 0,
                 batch_size: int = 1) -> None:
        super().__init__(max(size_a, size_b), seed, num_replicas=num_replicas, rank=rank, batch_size=batch_size)
        self.size_a, self.size_b = size_a, size_b

    def __iter__(self):  # noqa: ANN204
        epoch = self.epoch  # read before super() clears resume_at, both belong to this iteration
        order_a = cycled_order(self.size_a, self.size, (self.seed, epoch, 0))
        order_b = cycled_order(self.size_b, self.size, (self.seed, epoch, 1))
        return ((epoch, p, order_a[p], order_b[p]) for p in super().__iter__())


class UnpairedFileDataset(Dataset):
    """Two lists of files as ``{"A": [C_A, S, S], "B": [C_B, S, S]}``.

    An item asked for by ``(epoch, position, index_A, index_B)`` (``UnpairedSampler``, training) is
    augmented, each side with its own random parameters seeded by ``(seed, epoch, position)``; a plain
    ``i`` (val, test) pairs ``A[i % |A|]`` with ``B[i % |B|]``, both resized to ``crop_size``.

    Args:
        files_a: the A images. files_b: the B images.
        channels_a: channels of A (1 or 3). channels_b: of B.
        load_size: side both images are resized to before the random crop.
        crop_size: side of the crop.
        flip: random horizontal flips in training.
        seed: seeds the augmentation.
    """

    def __init__(self, files_a: list[str], files_b: list[str], channels_a: int, channels_b: int,
                 load_size: int, crop_size: int, flip: bool, seed: int) -> None:
        self.files_a, self.files_b, self.channels_a, self.channels_b = files_a, files_b, channels_a, channels_b
        self.load_size, self.crop_size, self.flip, self.seed = load_size, crop_size, flip, seed

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __getitem__(self, item: int | tuple[int, int, int, int]) -> dict[str, torch.Tensor]:
        if not isinstance(item, tuple):
            return {"A": self.load("A", item % len(self.files_a)), "B": self.load("B", item % len(self.files_b))}
        epoch, position, index_a, index_b = item
        generator = seeded_generator(self.seed, epoch, position)  # A draws first, then B: independent crops
        return {"A": self.load("A", index_a, generator), "B": self.load("B", index_b, generator)}

    def load(self, side: str, index: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """One image of ``side`` (``"A"`` or ``"B"``): augmented with ``generator``, else resized to ``crop_size``."""
        path, channels = (self.files_a[index], self.channels_a) if side == "A" else (self.files_b[index], self.channels_b)
        img = to_tensor(open_image(path, channels))
        if generator is None:
            return to_signed(resize_square(img, self.crop_size))
        params = CropFlip.draw(generator, self.load_size, self.crop_size, self.flip)
        return to_signed(params.apply(resize_square(img, self.load_size), self.crop_size))


class _PredictA(Dataset):
    """``{"index": i, "A": A[i]}`` without reading any B image."""

    def __init__(self, data: UnpairedFileDataset, count: int | None) -> None:
        self.data = data
        self.count = len(data.files_a) if count is None else min(count, len(data.files_a))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(index), "A": self.data.load("A", index)}


class UnpairedImageDataModule(ImageToImageFolderDataModule):
    """Two unpaired domains from ``<root>/{split}A`` and ``<root>/{split}B`` (CycleGAN's datasets).

    ``input_shape`` is A's ``(channels_a, crop_size, crop_size)``, ``sample_shape`` B's.

    Args:
        root: the dataset folder, holding ``trainA``, ``trainB``, ``testA``, ``testB``.
        val_split: prefix of the validation folders (``testA``/``testB`` by default, since CycleGAN's
            datasets have no val split); None validates on the training images (no augmentation).
        Other arguments: see :class:`datamodules.paired.ImageToImageFolderDataModule` (flips are drawn
        per side; ``predict_split`` is the prefix of the folders whose A images ``predict`` translates).
    """

    def __init__(self, root: str, val_split: str | None = "test", **kwargs: Any) -> None:
        super().__init__(root, val_split=val_split, **kwargs)
        self.test_set: UnpairedFileDataset | None = None

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.channels_b, self.crop_size, self.crop_size)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels_a, self.crop_size, self.crop_size)

    def files(self, split: str) -> tuple[list[str], list[str]]:
        """The sorted image files of ``<root>/<split>A`` and ``<root>/<split>B``."""
        require_dir(self.root, "unpaired image folder (data.root)")
        sides = []
        for side in ("A", "B"):
            folder = os.path.join(self.root, split + side)
            require_dir(folder, f"domain folder (the layout is <root>/{split}A and <root>/{split}B)",
                        split_hint(split, self.val_split, self.predict_split))
            sides.append(scan_images(folder, self.extensions))
        return sides[0], sides[1]

    def _dataset(self, split: str) -> UnpairedFileDataset:
        return UnpairedFileDataset(*self.files(split), self.channels_a, self.channels_b, self.load_size,
                                   self.crop_size, self.flip, self.seed)

    def setup(self, stage: str | None = None) -> None:
        if stage in ("test", "predict"):
            if self.test_set is None:
                self.test_set = self._dataset(self.predict_split)
            return
        if self.train_set is None:
            self.train_set = self._dataset("train")
            warn_if_no_batch(len(self.train_set), self.batch_size, os.path.join(self.root, "trainA/B"))
            self.val_set = self._dataset(self.val_split) if self.val_split is not None else None

    def train_dataloader(self) -> DataLoader:
        data = self.train_set
        sizes = (0, 0) if data is None else (len(data.files_a), len(data.files_b))
        return resumable_train_loader(self, data, functools.partial(UnpairedSampler, *sizes, self.seed))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        if self.test_set is None:
            raise RuntimeError(f"{type(self).__name__}: call setup('predict') before asking for a dataloader")
        return DataLoader(_PredictA(self.test_set, self.predict_samples), batch_size=self.batch_size)
