"""torchvision's standard GAN datasets (MNIST, FashionMNIST, CIFAR10, CelebA) behind the dict contract.

The train split feeds training, the test split validation. Nothing is downloaded unless
``download: true``; a missing copy fails with a message saying how to get one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from datamodules.base import GANDataModule


@dataclass(frozen=True)
class _Spec:
    name: str  # canonical spelling, also the torchvision class name
    channels: int
    image_size: int  # default output side
    num_classes: int  # 0: the datamodule serves the set unlabelled
    center_crop: int | None = None  # square crop (in source pixels) applied before resizing


# CelebA: 178x218 aligned faces; by default the 178 centre crop then a resize (a common DCGAN-era choice).
# ProGAN's official CelebA data is instead the 128x128 square at (x 89, y 121), not resized: crop_center.
SPECS = {
    spec.name.lower(): spec
    for spec in (
        _Spec("MNIST", channels=1, image_size=32, num_classes=10),
        _Spec("FashionMNIST", channels=1, image_size=32, num_classes=10),
        _Spec("CIFAR10", channels=3, image_size=32, num_classes=10),
        _Spec("CelebA", channels=3, image_size=64, num_classes=0, center_crop=178),
    )
}


def get_spec(name: str) -> _Spec:
    """The dataset description for ``name`` (case-insensitive); ValueError listing valid names."""
    try:
        return SPECS[name.lower()]
    except KeyError:
        valid = ", ".join(spec.name for spec in SPECS.values())
        raise ValueError(f"unknown torchvision dataset {name!r} (data.name); valid names: {valid}") from None


def build_transform(spec: _Spec, image_size: int, crop: tuple[int, int, int] | None = None) -> Callable:
    """PIL image -> ``float32 [C, image_size, image_size]`` in ``[-1, 1]``.

    Args:
        spec: the dataset (its default centre crop).
        image_size: output side.
        crop: ``(x, y, size)``: the ``size``-pixel square centred at column ``x``, row ``y`` of the source
            (rows ``y - size/2 .. y + size/2 - 1``, as ProGAN's ``dataset_tool.py`` slices
            ``img[cy - 64 : cy + 64, cx - 64 : cx + 64]``), replacing the dataset's centre crop; no
            resize follows when ``size == image_size``.
    """
    steps: list = [v2.ToImage()]
    if crop is not None:
        x, y, size = crop
        # a partial (not a lambda) so the transform pickles into spawned loader workers
        steps.append(v2.Lambda(partial(v2.functional.crop, top=y - size // 2, left=x - size // 2, height=size, width=size)))
    elif spec.center_crop is not None:
        steps.append(v2.CenterCrop(spec.center_crop))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if crop is None or crop[2] != image_size:
        # Resize works on float so the bilinear result is not rounded back to 8 bits; square size
        # because CIFAR/MNIST are square and CelebA was cropped square above.
        steps.append(v2.Resize([image_size, image_size], antialias=True))
    steps += [v2.Normalize([0.5] * spec.channels, [0.5] * spec.channels)]  # [0, 1] -> [-1, 1]
    return v2.Compose(steps)


class TorchvisionDictDataset(Dataset):
    """Wraps a torchvision ``(image, target)`` dataset as ``{"image", ["label"]}`` dicts.

    Args:
        base: a torchvision dataset whose transform already yields ``[C, H, W]`` float tensors.
        labelled: when true items carry ``"label"`` (int64 scalar); CelebA's attributes are dropped.
    """

    def __init__(self, base: Dataset, labelled: bool) -> None:
        self.base, self.labelled = base, labelled

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, target = self.base[index]
        item = {"image": image.clamp(-1.0, 1.0)}  # antialiased resize can overshoot by rounding error
        if self.labelled:
            item["label"] = torch.as_tensor(target, dtype=torch.int64)
        return item


class TorchvisionDataModule(GANDataModule):
    """MNIST / FashionMNIST / CIFAR10 / CelebA as ``float32 [C, S, S]`` images in ``[-1, 1]``.

    Defaults: MNIST and FashionMNIST 1x32x32 (resized from 28, as in DCGAN setups), CIFAR10 3x32x32,
    CelebA 3x64x64 (centre crop 178, then resize). MNIST, FashionMNIST and CIFAR10 are labelled
    (10 classes); CelebA is served unlabelled.

    Args:
        name: dataset name, case-insensitive.
        root: folder holding (or receiving) the torchvision copy.
        download: fetch missing files (needs internet).
        image_size: output side; None uses the dataset's default.
        crop_center: ``[x, y]``: crop the ``crop_size`` square centred there (source pixels) instead of
            the default centre crop; ProGAN's CelebA is ``[89, 121]`` with ``crop_size`` 128.
        crop_size: side of that square (needs ``crop_center``); resized only if it differs from ``image_size``.
        train_split: the torchvision split used for training (CelebA: ``"train"``, 162,770 images, or
            ``"all"``, 202,599, the set ProGAN trained on); None: the dataset's training split.
        batch_size: samples per batch and per process.
        num_workers: DataLoader worker processes.
        seed: experiment seed (the splits are torchvision's own, fixed).
        predict_samples: how many samples ``train.py predict`` writes.
    """

    def __init__(self, name: str = "CIFAR10", root: str = "data", download: bool = False,
                 image_size: int | None = None, crop_center: tuple[int, int] | None = None,
                 crop_size: int | None = None, train_split: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = get_spec(name)
        if image_size is not None and image_size < 1:
            raise ValueError(f"data.image_size must be >= 1, got {image_size}")
        if (crop_center is None) != (crop_size is None) or (crop_size is not None and crop_size < 1):
            raise ValueError("data.crop_center and data.crop_size go together (crop_size >= 1), got "
                             f"{crop_center} and {crop_size}")
        if train_split is not None and self.spec.name != "CelebA":
            raise ValueError(f"data.train_split chooses among CelebA's splits; {self.spec.name} has train/test only")
        if train_split not in (None, "train", "all"):
            raise ValueError(f"data.train_split must be 'train' or 'all', got '{train_split}'")
        self.crop = None if crop_center is None else (int(crop_center[0]), int(crop_center[1]), int(crop_size))
        self.train_split = train_split
        self.name = self.spec.name
        self.root = os.path.expanduser(str(root))
        self.download = download
        self.image_size = self.spec.image_size if image_size is None else image_size

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.spec.channels, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def _load(self, train: bool) -> Dataset:
        import torchvision.datasets as tvd  # lazily: only this datamodule needs it

        cls = getattr(tvd, self.spec.name)
        transform = build_transform(self.spec, self.image_size, self.crop)
        if self.spec.name == "CelebA":
            # target_type="attr" keeps torchvision's default loading path; the attributes are ignored.
            kwargs = {"split": (self.train_split or "train") if train else "test", "target_type": "attr"}
        else:
            kwargs = {"train": train}
        try:
            return cls(root=self.root, transform=transform, download=self.download, **kwargs)
        except (RuntimeError, FileNotFoundError) as exc:
            if self.download:
                raise  # a failed download has its own, more useful message
            raise RuntimeError(
                f"{self.spec.name} not found under '{self.root}'; set data.download: true on a machine "
                f"with internet, or point data.root at a copy"
            ) from exc

    def prepare_data(self) -> None:
        # Lightning calls this on one process only, so concurrent ranks do not download twice.
        if self.download:
            self._load(train=True)
            self._load(train=False)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        labelled = self.spec.num_classes > 0
        self.train_set = TorchvisionDictDataset(self._load(train=True), labelled)
        self.val_set = TorchvisionDictDataset(self._load(train=False), labelled)
