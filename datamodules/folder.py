"""Any folder of images, optionally labelled by its immediate subfolders.

Every image becomes ``float32 [channels, image_size, image_size]`` in ``[-1, 1]``: the shorter side is
resized to ``image_size`` (bilinear, antialiased) and the centre square is cropped; or, with
``resize: box``, the centre square is cropped and box-downsampled (each output pixel the mean of a
``k x k`` block), as the official StyleGAN dataset tools build FFHQ's lower resolutions (repeated 2x2
averages in ``TFRecordExporter.add_image`` of stylegan2's ``dataset_tool.py``; equal to one ``k x k``
mean for ``k`` a power of two, without the 8-bit rounding between levels).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from datamodules.base import GANDataModule

DEFAULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
SPLIT_SEED = 1234  # fixed so the val split does not move when the experiment seed changes
# PIL modes without colour; everything else (RGB, RGBA, P, CMYK, ...) counts as a 3-channel file.
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


class BadImageError(RuntimeError):
    """An image file PIL cannot read; the message names the file."""


class ChannelMismatchError(ValueError):
    """With ``strict_channels``: a file whose colour mode does not match ``channels``."""


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {channels}")


# 16-bit greyscale PNG/TIFF modes (PIL opens 16-bit colour PNGs as 8-bit RGB itself)
_WIDE_GRAY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit integer) greyscale image scaled to 8 bits, ``round(v * 255 / 65535)``.

    PIL's ``convert("L")`` clips such values at 255 instead, which turns almost every pixel white.
    ``I`` images whose values all fit in 0..255 (an 8-bit file stored wide) are kept as they are.
    """
    values = np.asarray(img, dtype=np.float64)
    peak = 255.0 if values.max(initial=0) <= 255 and img.mode == "I" else 65535.0
    return Image.fromarray(np.clip(np.rint(values * (255.0 / peak)), 0, 255).astype(np.uint8), mode="L")


def open_image(path: str, channels: int, strict_channels: bool = False) -> Image.Image:
    """Fully decode ``path`` and convert it to ``"L"`` (1 channel) or ``"RGB"`` (3 channels).

    16-bit greyscale files are scaled to 8 bits (:func:`to_8bit`), not clipped.

    Raises:
        BadImageError: the file is missing, truncated or not an image.
        ChannelMismatchError: ``strict_channels`` and the file's colour mode does not match ``channels``.
    """
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not in a worker later
            file_channels = 1 if img.mode in _GRAY_MODES else 3
            if strict_channels and file_channels != channels:
                raise ChannelMismatchError(
                    f"image '{path}' has mode {img.mode} ({file_channels} channel(s)) but data.channels is "
                    f"{channels}; set strict_channels: false to convert it"
                )
            if img.mode in _WIDE_GRAY_MODES:
                img = to_8bit(img)
            # convert() drops alpha and maps grey <-> RGB, so tensors always have `channels` channels.
            return img.convert("L" if channels == 1 else "RGB")
    except ChannelMismatchError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, DecompressionBombError, ...
        raise BadImageError(f"cannot read image '{path}': {type(exc).__name__}: {exc}") from exc


RESIZE_MODES = ("bilinear", "box")


def box_downsample(img: torch.Tensor, image_size: int, path: str = "") -> torch.Tensor:
    """The centre square of ``[C, H, W]`` averaged over ``k x k`` blocks to ``image_size`` (``k`` = side / size).

    Raises:
        ValueError: the square's side is not a multiple of ``image_size`` (naming ``path``).
    """
    side = min(img.shape[-2:])
    if side % image_size:
        raise ValueError(f"image '{path}' is {img.shape[-1]}x{img.shape[-2]}: data.resize: box needs a side that "
                         f"is a multiple of data.image_size {image_size}; use resize: bilinear")
    img = TF.center_crop(img, [side, side])
    factor = side // image_size
    return torch.nn.functional.avg_pool2d(img[None], factor)[0] if factor > 1 else img


def load_image(path: str, image_size: int, channels: int, strict_channels: bool = False,
               resize: str = "bilinear") -> torch.Tensor:
    """Load one file as ``float32 [channels, image_size, image_size]`` in ``[-1, 1]`` (``resize``: see the module)."""
    img = TF.pil_to_tensor(open_image(path, channels, strict_channels)).float()  # [C, H, W], 0..255
    if resize == "box":
        img = box_downsample(img, image_size, path)
    else:
        img = TF.resize(img, [image_size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        img = TF.center_crop(img, [image_size, image_size])
    return (img / 127.5 - 1.0).clamp_(-1.0, 1.0).contiguous()


def _scan(folder: str, extensions: tuple[str, ...]) -> list[str]:
    """Image files under ``folder``, recursively (symlinks followed, loops skipped), sorted."""
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop: do not walk the same directory twice
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # .ipynb_checkpoints, .git, ...
        found += [os.path.join(dirpath, f) for f in filenames if f.lower().endswith(extensions)]
    return sorted(found)


class ImageFileDataset(Dataset):
    """Image files decoded on access; items are ``{"image": [C, S, S]}`` (+ ``"label"`` int64 scalar)."""

    def __init__(self, files: Sequence[str], labels: Sequence[int] | None, image_size: int, channels: int,
                 strict_channels: bool = False, resize: str = "bilinear") -> None:
        self.files, self.labels = list(files), None if labels is None else list(labels)
        self.image_size, self.channels, self.strict_channels = image_size, channels, strict_channels
        self.resize = resize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        try:
            image = load_image(self.files[index], self.image_size, self.channels, self.strict_channels,
                               self.resize)
        except BadImageError as exc:
            raise BadImageError(f"{exc}. Set data.skip_bad_images: true (ImageFolderDataModule) to check every file "
                                "when the data is set up and leave the unreadable ones out") from exc
        item = {"image": image}
        if self.labels is not None:
            item["label"] = torch.tensor(self.labels[index], dtype=torch.int64)
        return item


class ImageFolderDataModule(GANDataModule):
    """Images from a folder tree, decoded lazily.

    Grayscale files are converted to RGB when ``channels=3`` and colour files to grayscale when
    ``channels=1`` (alpha is dropped), so every tensor has exactly ``channels`` channels; set
    ``strict_channels`` to reject such files instead.

    Args:
        root: the folder; scanned recursively, hidden folders skipped, files sorted by path.
        image_size: side of the square output (shorter side resized, then centre crop).
        channels: 1 (``"L"``) or 3 (``"RGB"``).
        labels: when true the immediate subfolders of ``root`` are the classes (sorted names ->
            ``0..K-1``, see ``class_names``); images directly in ``root`` are then an error.
        val_fraction: share of the files held out for validation in ``[0, 1)``, split with a fixed
            seed; 0 means no val set (validation then reuses the training set).
        skip_bad_images: decode every file in ``setup``, drop unreadable ones (listed in
            ``skipped_images``) and warn; otherwise a bad file raises when it is loaded.
        strict_channels: raise for a file whose colour mode does not match ``channels``.
        extensions: file name endings to load (case-insensitive); None means common image types.
        resize: ``"bilinear"`` (shorter side resized, antialiased, then centre crop) or ``"box"``
            (centre square, then ``k x k`` block means: the official FFHQ downsampling; the square's side
            must be a multiple of ``image_size``).
        batch_size: samples per batch and per process.
        num_workers: DataLoader worker processes.
        seed: experiment seed (the val split does not depend on it).
        predict_samples: how many samples ``train.py predict`` writes.
    """

    def __init__(self, root: str, image_size: int = 64, channels: int = 3, labels: bool = False,
                 val_fraction: float = 0.0, skip_bad_images: bool = False, strict_channels: bool = False,
                 extensions: list[str] | None = None, resize: str = "bilinear", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_channels(channels)
        if resize not in RESIZE_MODES:
            raise ValueError(f"data.resize must be one of {', '.join(RESIZE_MODES)}, got '{resize}'")
        self.resize = resize
        if image_size < 1:
            raise ValueError(f"data.image_size must be >= 1, got {image_size}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        exts = DEFAULT_EXTENSIONS if extensions is None else extensions
        self.extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in exts)
        if not self.extensions:
            raise ValueError("data.extensions is empty")
        self.root = os.path.expanduser(str(root))
        self.image_size, self.channels, self.labels = image_size, channels, labels
        self.val_fraction, self.skip_bad_images, self.strict_channels = val_fraction, skip_bad_images, strict_channels
        self.skipped_images: list[str] = []
        self._class_names: list[str] | None = None

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def class_names(self) -> list[str]:
        """Sorted names of the immediate subfolders of ``root`` (empty when ``labels`` is false)."""
        if not self.labels:
            return []
        if self._class_names is None:  # a directory listing only, so it is cheap before setup
            self._check_root()
            self._class_names = sorted(
                e.name for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith(".")
            )
        return list(self._class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _check_root(self) -> None:
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"image folder '{self.root}' does not exist (data.root)")

    def _no_images(self, folder: str) -> FileNotFoundError:
        return FileNotFoundError(f"no images with extensions {', '.join(self.extensions)} found under '{folder}'")

    def _collect(self) -> tuple[list[str], list[int] | None]:
        self._check_root()
        if not self.labels:
            files = _scan(self.root, self.extensions)
            if not files:
                raise self._no_images(self.root)
            return files, None
        loose = sorted(
            e.path for e in os.scandir(self.root) if e.is_file() and e.name.lower().endswith(self.extensions)
        )
        if loose:
            raise ValueError(
                f"labels: true takes classes from the subfolders of '{self.root}', but {len(loose)} image(s) "
                f"lie directly in it (e.g. '{loose[0]}'); move them into a class folder or set labels: false"
            )
        if not self.class_names:
            raise self._no_images(self.root)
        files, targets = [], []
        for label, name in enumerate(self.class_names):
            class_files = _scan(os.path.join(self.root, name), self.extensions)
            if not class_files:  # an empty class would silently shift what the label ids mean
                raise self._no_images(os.path.join(self.root, name))
            files += class_files
            targets += [label] * len(class_files)
        return files, targets

    def _drop_bad(self, files: list[str], targets: list[int] | None) -> tuple[list[str], list[int] | None]:
        keep = []
        for i, path in enumerate(files):
            try:
                with Image.open(path) as img:
                    img.verify()  # catches broken PNG checksums that a plain decode may tolerate
                # verify() leaves the file unusable and misses truncated pixel data: decode it for real.
                # A strict_channels mismatch propagates: it is a config problem, not a broken file.
                open_image(path, self.channels, self.strict_channels)
            except ChannelMismatchError:
                raise
            except Exception:
                self.skipped_images.append(path)
                continue
            keep.append(i)
        if self.skipped_images:
            warnings.warn(
                f"skipped {len(self.skipped_images)} unreadable image(s) under '{self.root}' "
                f"(see skipped_images), e.g. '{self.skipped_images[0]}'",
                stacklevel=2,
            )
        if not keep:
            raise self._no_images(self.root)
        return [files[i] for i in keep], None if targets is None else [targets[i] for i in keep]

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        files, targets = self._collect()
        if self.skip_bad_images:
            self.skipped_images = []
            files, targets = self._drop_bad(files, targets)
        val_idx: list[int] = []
        train_idx = list(range(len(files)))
        if self.val_fraction > 0:
            num_val = int(round(self.val_fraction * len(files)))
            if not 0 < num_val < len(files):
                raise ValueError(
                    f"data.val_fraction={self.val_fraction} of {len(files)} images leaves an empty train or val set"
                )
            order = torch.randperm(len(files), generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
            val_idx, train_idx = sorted(order[:num_val]), sorted(order[num_val:])

        def subset(idx: list[int]) -> ImageFileDataset:
            labels = None if targets is None else [targets[i] for i in idx]
            return ImageFileDataset(
                [files[i] for i in idx], labels, self.image_size, self.channels, self.strict_channels, self.resize
            )

        self.train_set = subset(train_idx)
        if len(train_idx) < self.batch_size:  # the train loader drops the last partial batch
            warnings.warn(
                f"only {len(train_idx)} training image(s) under '{self.root}' but data.batch_size is "
                f"{self.batch_size}: the train loader drops partial batches and will be empty",
                stacklevel=2,
            )
        self.val_set = subset(val_idx) if val_idx else None
