"""Paired image-to-image data (pix2pix): an input image and its target, aligned pixel for pixel.

Two layouts under ``<root>/<split>/`` (``split`` is ``train``, ``val``, ``test``):

* ``aligned``: pix2pix's side-by-side files, one image per pair, A in the left half, B in the right;
* ``folders``: ``<split>/A/`` and ``<split>/B/`` with the same file names (extensions may differ).

Training items get pix2pix's augmentation: both sides resized to ``load_size`` squared, one random
``crop_size`` crop and one random horizontal flip applied to both, so they stay aligned. The random
parameters of an item come from a generator seeded by ``(seed, epoch, index)``: the sampler passes the
epoch with the index (``EpochItemSampler``), so a resumed run draws the same crops as an uninterrupted
one. Validation, test and predict items are resized to ``crop_size`` without crop or flip.

Batches: ``{"input": [N, C_in, H, W], "target": [N, C_out, H, W]}`` float in ``[-1, 1]``; predict
batches ``{"index": [N], "input": [N, C_in, H, W]}`` over the ``predict_split`` images, in file order.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from datamodules.base import EpochItemSampler, GANDataModule, resumable_train_loader, seeded_generator
from datamodules.folder import DEFAULT_EXTENSIONS, _scan, open_image

# ---------------------------------------------------------------- image helpers shared with unpaired.py


def to_tensor(img: Image.Image) -> torch.Tensor:
    """A PIL image as ``float32 [C, H, W]`` in ``0..255`` (resizing happens on these values)."""
    return TF.pil_to_tensor(img).float()


def resize_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[C, H, W]`` to ``[C, size, size]`` (bilinear, antialiased; aspect ratio not kept, as pix2pix)."""
    if tuple(img.shape[-2:]) == (size, size):  # an exact no-op, so a write-out round trip is lossless
        return img
    return TF.resize(img, [size, size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)


def to_signed(img: torch.Tensor) -> torch.Tensor:
    """``0..255`` values to ``[-1, 1]``."""
    return (img / 127.5 - 1.0).clamp_(-1.0, 1.0).contiguous()


@dataclass(frozen=True)
class CropFlip:
    """One item's augmentation: the crop's top-left corner (in ``load_size`` pixels) and the flip."""

    top: int
    left: int
    flip: bool

    @staticmethod
    def draw(generator: torch.Generator, load_size: int, crop_size: int, flip: bool, step: int = 1) -> CropFlip:
        """Random corner (a multiple of ``step``, so a ``step``-times smaller input crops at whole pixels)."""
        positions = (load_size - crop_size) // step + 1
        top, left = (step * int(v) for v in torch.randint(positions, (2,), generator=generator))
        flipped = bool(torch.rand((), generator=generator) < 0.5) if flip else False
        return CropFlip(top, left, flipped)

    def apply(self, img: torch.Tensor, crop_size: int, scale: int = 1) -> torch.Tensor:
        """Crop ``[C, H, W]`` (an image ``scale`` times smaller than the ``load_size`` one) and flip it."""
        top, left, size = self.top // scale, self.left // scale, crop_size // scale
        img = img[:, top:top + size, left:left + size]
        return img.flip(-1) if self.flip else img


def check_sizes(load_size: int, crop_size: int, scale: int = 1) -> None:
    if crop_size < 1 or load_size < crop_size:
        raise ValueError(f"need load_size >= crop_size >= 1, got load_size={load_size}, crop_size={crop_size}")
    if scale < 1 or crop_size % scale or load_size % scale:
        raise ValueError(f"load_size ({load_size}) and crop_size ({crop_size}) must be multiples of input_scale ({scale})")


def check_channels(**channels: int) -> None:
    for name, value in channels.items():
        if value not in (1, 3):
            raise ValueError(f"data.{name} must be 1 (grayscale) or 3 (RGB), got {value}")


def normalize_extensions(extensions: list[str] | None) -> tuple[str, ...]:
    exts = DEFAULT_EXTENSIONS if extensions is None else extensions
    out = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in exts)
    if not out:
        raise ValueError("data.extensions is empty")
    return out


def require_dir(path: str, what: str, hint: str = "") -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} '{path}' does not exist{hint}")


def split_hint(split: str, val_split: str | None, predict_split: str) -> str:
    """Which option named a split folder, so a missing one says what to change."""
    if split == val_split:
        return f" (data.val_split is '{split}'; set it to null to validate on the training data)"
    if split == predict_split:
        return f" (data.predict_split is '{split}'; the held-out images predict and test use)"
    return ""


def scan_images(folder: str, extensions: tuple[str, ...]) -> list[str]:
    """Image files under ``folder`` (recursive, sorted); an error naming the folder when there are none."""
    files = _scan(folder, extensions)
    if not files:
        raise FileNotFoundError(f"no images with extensions {', '.join(extensions)} found under '{folder}'")
    return files


def match_pairs(folder_a: str, folder_b: str, extensions: tuple[str, ...]) -> list[tuple[str, str]]:
    """Files of two folders paired by their path relative to the folder, extension dropped.

    Raises:
        ValueError: a name present on one side only (all such names listed, per side), or two files
            with the same name and different extensions on one side.
    """
    sides = []
    for folder in (folder_a, folder_b):
        keyed: dict[str, str] = {}
        for path in scan_images(folder, extensions):
            key = os.path.splitext(os.path.relpath(path, folder))[0]
            if key in keyed:
                raise ValueError(f"'{keyed[key]}' and '{path}' have the same name; pairs are matched by name")
            keyed[key] = path
        sides.append(keyed)
    only_a, only_b = sorted(sides[0].keys() - sides[1].keys()), sorted(sides[1].keys() - sides[0].keys())
    if only_a or only_b:
        raise ValueError(
            f"unmatched file names between '{folder_a}' and '{folder_b}' (pairs need the same name on both sides): "
            f"only in A: {_listing(only_a)}; only in B: {_listing(only_b)}"
        )
    return [(sides[0][k], sides[1][k]) for k in sorted(sides[0])]


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit]) or "none"
    return f"{shown} (and {len(names) - limit} more)" if len(names) > limit else shown


def read_pair(pair: tuple[str, str | None], channels_a: int, channels_b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` as ``float32 [C, H, W]`` in ``0..255``; ``pair[1]`` None means one side-by-side file."""
    path_a, path_b = pair
    if path_b is not None:
        a, b = open_image(path_a, channels_a), open_image(path_b, channels_b)
        if a.width * b.height != b.width * a.height:  # resizing both to squares would stretch one against the other
            raise ValueError(f"pair of different sizes: '{path_a}' is {a.width}x{a.height} and '{path_b}' is "
                             f"{b.width}x{b.height} (width x height); a pair's two images must have the same aspect "
                             "ratio (a low-resolution input may be a scaled copy), so crop or resize one of them")
        return to_tensor(a), to_tensor(b)
    # RGB first, then each half to its own mode: L -> RGB -> L is lossless, so gray files stay exact.
    img = open_image(path_a, 3)
    half = img.width // 2
    if half < 1 or img.width % 2:
        raise ValueError(f"side-by-side image '{path_a}' is {img.width} pixel(s) wide; it needs A and B halves of "
                         "equal width (an even width)")
    a, b = img.crop((0, 0, half, img.height)), img.crop((half, 0, 2 * half, img.height))
    return (to_tensor(a if channels_a == 3 else a.convert("L")),
            to_tensor(b if channels_b == 3 else b.convert("L")))


# ---------------------------------------------------------------- dataset and datamodule


class PairedFileDataset(Dataset):
    """Pairs of files (or side-by-side files) as ``{"input": [C_in, h, h], "target": [C_out, H, H]}``.

    An item asked for by ``(epoch, index)`` (``EpochItemSampler``, training) is augmented with random
    parameters seeded by ``(seed, epoch, index)``; one asked for by a plain ``index`` (val, test,
    predict) is only resized to ``crop_size``. ``h = crop_size // input_scale``.

    Args:
        pairs: ``(path_A, path_B)``, or ``(path, None)`` for a side-by-side file.
        channels_a: channels of A (1 or 3). channels_b: channels of B.
        direction: ``"AtoB"`` (input A, target B) or ``"BtoA"``.
        load_size: side both images are resized to before the random crop.
        crop_size: side of the crop (the target's side).
        input_scale: the input is this many times smaller than the target (super-resolution data).
        flip: random horizontal flips in training.
        seed: seeds the augmentation.
    """

    def __init__(self, pairs: list[tuple[str, str | None]], channels_a: int, channels_b: int, direction: str,
                 load_size: int, crop_size: int, input_scale: int, flip: bool, seed: int) -> None:
        self.pairs, self.channels_a, self.channels_b, self.direction = pairs, channels_a, channels_b, direction
        self.load_size, self.crop_size, self.input_scale, self.flip, self.seed = (
            load_size, crop_size, input_scale, flip, seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        train = isinstance(item, tuple)
        index = item[1] if train else item
        a, b = read_pair(self.pairs[index], self.channels_a, self.channels_b)
        x, y = (a, b) if self.direction == "AtoB" else (b, a)
        size, s = (self.load_size if train else self.crop_size), self.input_scale
        x, y = resize_square(x, size // s), resize_square(y, size)
        if train:
            params = CropFlip.draw(seeded_generator(self.seed, item[0], index), size, self.crop_size, self.flip, step=s)
            x, y = params.apply(x, self.crop_size, scale=s), params.apply(y, self.crop_size)
        return {"input": to_signed(x), "target": to_signed(y)}


class PredictInputs(Dataset):
    """``{"index": i, key: dataset[i][source]}``: the inputs to translate, without their targets."""

    def __init__(self, dataset: Dataset, count: int | None, source: str, key: str) -> None:
        self.dataset, self.source, self.key = dataset, source, key
        self.count = len(dataset) if count is None else min(count, len(dataset))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(index), self.key: self.dataset[index][self.source]}


def warn_if_no_batch(size: int, batch_size: int, where: str) -> None:
    if size < batch_size:  # the train loader drops the last partial batch
        warnings.warn(f"only {size} training item(s) in '{where}' but data.batch_size is {batch_size}: "
                      "the train loader drops partial batches and will be empty", stacklevel=3)


class ImageToImageFolderDataModule(GANDataModule):
    """What the paired and the unpaired folder datamodules share: the folder, the augmentation sizes,
    the channels of each side, the splits, the file types and the predict count.

    Args:
        root: the dataset folder.
        load_size: side every image is resized to in training (pix2pix and CycleGAN: 286).
        crop_size: side of the random training crop, and of val/test images (256).
        channels_a: channels of the A images (1 or 3); files are converted. channels_b: of B.
        flip: random horizontal flips in training.
        val_split: the validation split; None validates on the training images (no augmentation).
        predict_split: the split whose inputs ``predict`` translates and ``test`` uses.
        extensions: file endings to load (case-insensitive); None means common image types.
        batch_size: items per batch and per process (1 in both papers).
        predict_samples: translate at most this many ``predict_split`` images; None: all.
        Other arguments (``num_workers``, ``seed``: the augmentation and the order): see
        :class:`datamodules.base.GANDataModule`.
    """

    def __init__(self, root: str, load_size: int = 286, crop_size: int = 256, channels_a: int = 3,
                 channels_b: int = 3, flip: bool = True, val_split: str | None = "val",
                 predict_split: str = "test", extensions: list[str] | None = None, batch_size: int = 1,
                 predict_samples: int | None = None, **kwargs: Any) -> None:
        super().__init__(batch_size=batch_size, predict_samples=0, **kwargs)
        check_sizes(load_size, crop_size)
        check_channels(channels_a=channels_a, channels_b=channels_b)
        self.root = os.path.expanduser(str(root))
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.channels_a, self.channels_b = channels_a, channels_b
        self.val_split, self.predict_split = val_split, predict_split
        self.extensions = normalize_extensions(extensions)
        self.predict_samples = predict_samples


class PairedImageDataModule(ImageToImageFolderDataModule):
    """Aligned pairs from ``<root>/{train,val,test}/`` (pix2pix's datasets: facades, maps, edges2shoes, ...).

    ``input_shape`` is ``(C_in, crop_size // input_scale, ...)`` and ``sample_shape`` ``(C_out, crop_size,
    crop_size)``, where ``C_in``/``C_out`` are ``channels_a``/``channels_b`` swapped by ``direction``.

    Args:
        root: the dataset folder, holding one folder per split.
        direction: ``"AtoB"``: A is the input, B the target; ``"BtoA"``: the reverse.
        layout: ``"aligned"`` (side-by-side files, A left), ``"folders"`` (``<split>/A/``, ``<split>/B/``,
            paired by file name) or ``"auto"`` (``folders`` where ``<split>/A`` exists, else ``aligned``).
        input_scale: the input side is ``crop_size // input_scale`` (1; e.g. 4 for 4x super-resolution).
        Other arguments: see :class:`ImageToImageFolderDataModule` (flips are the same for both sides;
        ``val_split`` and ``predict_split`` are folders of pairs).
    """

    def __init__(self, root: str, direction: Literal["AtoB", "BtoA"] = "AtoB",
                 layout: Literal["auto", "aligned", "folders"] = "auto", input_scale: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"data.direction must be 'AtoB' or 'BtoA', got {direction!r}")
        if layout not in ("auto", "aligned", "folders"):
            raise ValueError(f"data.layout must be 'auto', 'aligned' or 'folders', got {layout!r}")
        check_sizes(self.load_size, self.crop_size, input_scale)
        self.direction, self.layout, self.input_scale = direction, layout, input_scale
        self.test_set: PairedFileDataset | None = None

    @property
    def _channels_in_out(self) -> tuple[int, int]:
        pair = (self.channels_a, self.channels_b)
        return pair if self.direction == "AtoB" else pair[::-1]

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self._channels_in_out[1], self.crop_size, self.crop_size)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        side = self.crop_size // self.input_scale
        return (self._channels_in_out[0], side, side)

    def pairs(self, split: str) -> list[tuple[str, str | None]]:
        """The pairs of one split folder, sorted: ``(path_A, path_B)``, or ``(path, None)`` side-by-side."""
        require_dir(self.root, "paired image folder (data.root)")
        folder = os.path.join(self.root, split)
        require_dir(folder, "split folder", split_hint(split, self.val_split, self.predict_split))
        folder_a, folder_b = os.path.join(folder, "A"), os.path.join(folder, "B")
        layout = self.layout
        if layout == "auto":
            layout = "folders" if os.path.isdir(folder_a) or os.path.isdir(folder_b) else "aligned"
        if layout == "aligned":
            return [(path, None) for path in scan_images(folder, self.extensions)]
        for side in (folder_a, folder_b):
            require_dir(side, "folder (the 'folders' layout needs <split>/A and <split>/B with matching names)")
        return list(match_pairs(folder_a, folder_b, self.extensions))

    def _dataset(self, split: str) -> PairedFileDataset:
        return PairedFileDataset(self.pairs(split), self.channels_a, self.channels_b, self.direction, self.load_size,
                                 self.crop_size, self.input_scale, self.flip, self.seed)

    def setup(self, stage: str | None = None) -> None:
        if stage in ("test", "predict"):
            if self.test_set is None:
                self.test_set = self._dataset(self.predict_split)
            return
        if self.train_set is None:
            self.train_set = self._dataset("train")
            warn_if_no_batch(len(self.train_set), self.batch_size, os.path.join(self.root, "train"))
            self.val_set = self._dataset(self.val_split) if self.val_split is not None else None

    def train_dataloader(self) -> DataLoader:
        size = 0 if self.train_set is None else len(self.train_set)
        return resumable_train_loader(self, self.train_set, functools.partial(EpochItemSampler, size, self.seed))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        if self.test_set is None:
            raise RuntimeError(f"{type(self).__name__}: call setup('predict') before asking for a dataloader")
        return DataLoader(PredictInputs(self.test_set, self.predict_samples, "input", "input"),
                          batch_size=self.batch_size)
