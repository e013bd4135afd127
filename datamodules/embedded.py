"""Image-to-image tasks built from the photos inside scikit-image (and scikit-learn's two sample images):
translation data with no download.

Items are random square patches of the photos of ``datamodules.embedded_photos`` (fixed photo splits:
see that module and docs/translation.md). An epoch of training is ``patches_per_epoch`` patches, each
drawn from a generator seeded by ``(seed, epoch, index)``: fresh patches every epoch, identical across
runs with the same seed, exact on resume. Validation and test patches (``val_patches`` each) are
drawn with a fixed seed from the held-out photos, so they do not change with ``seed``.

Paired tasks (``EmbeddedPairedDataModule``), batches ``{"input", "target"}`` (+ ``"mask"``):

* ``edges2photo``: Canny (or Sobel) edges of the photo, black on white ``[1, P, P]`` -> the patch;
* ``gray2color``: the luminance ``[1, P, P]`` -> the colour patch;
* ``sr4x``: the patch averaged over 4x4 blocks ``[C, P/4, P/4]`` -> the patch;
* ``inpaint``: the patch with a hole set to 0 -> the patch; ``"mask"`` ``[1, P, P]`` is 1 in the hole.

Unpaired tasks (``EmbeddedUnpairedDataModule``), batches ``{"A", "B"}`` drawn independently:

* ``photo2transformed``: photo patches -> other photo patches under a fixed colour matrix;
  ``true_mapping`` (``embedded_photos.color_transform``) is the exact A -> B map a model should learn;
* ``brick2gravel``: grayscale brick texture <-> gravel texture (no true mapping).

``write_folders`` writes a task as files in the layouts that ``PairedImageDataModule`` and
``UnpairedImageDataModule`` read.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datamodules import embedded_photos as ep
from datamodules.base import EpochItemSampler, GANDataModule, resumable_train_loader, seeded_generator
from datamodules.paired import PredictInputs, check_channels

EVAL_SEED = 1234  # val/test patches do not move when the experiment seed changes
PAIRED_TASKS = ("edges2photo", "gray2color", "sr4x", "inpaint")
UNPAIRED_TASKS = ("photo2transformed", "brick2gravel")
SR_FACTOR = 4


class PatchDataset(Dataset):
    """``length`` items made by ``make(generator)``: training items ``(epoch, i)`` are seeded by
    ``(seed, epoch, i)``, plain ``i`` (val, test) by ``(EVAL_SEED, split_key, i)``."""

    def __init__(self, make: Callable[[torch.Generator], dict[str, torch.Tensor]], length: int, seed: int,
                 split_key: int) -> None:
        self.make, self.length, self.seed, self.split_key = make, length, seed, split_key

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        if isinstance(item, tuple):
            return self.make(seeded_generator(self.seed, *item))
        return self.make(seeded_generator(EVAL_SEED, self.split_key, item))


class _PairedMaker:
    """Builds one paired item of ``task`` from a generator (a class, not a closure: workers pickle it)."""

    def __init__(self, task: str, photos: list[torch.Tensor], edges: list[torch.Tensor] | None, patch_size: int,
                 mask_kind: str, dihedral: bool = False, hue_rotation: bool = False) -> None:
        self.task, self.photos, self.edges, self.patch_size, self.mask_kind = task, photos, edges, patch_size, mask_kind
        self.dihedral, self.hue_rotation = dihedral, hue_rotation

    def __call__(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        cut = ep.random_patch(self.photos, self.patch_size, generator, self.edges)
        if self.dihedral:
            cut = ep.random_dihedral(cut, generator)
        target = cut[0].clone()
        if self.hue_rotation and target.shape[0] == 3:  # before the input is made from it (gray2color, sr4x, ...)
            target = ep.rotate_hue(target, 2 * math.pi * float(torch.rand((), generator=generator)))
        if self.task == "edges2photo":
            return {"input": cut[1].clone(), "target": target}
        if self.task == "gray2color":
            return {"input": ep.luminance(target), "target": target}
        if self.task == "sr4x":
            return {"input": ep.downsample(target, SR_FACTOR), "target": target}
        mask = ep.random_mask(self.mask_kind, self.patch_size, generator)
        return {"input": target * (1.0 - mask), "target": target, "mask": mask}


class _UnpairedMaker:
    """Builds one unpaired item: an A patch and, independently, a B patch."""

    def __init__(self, images_a: list[torch.Tensor], images_b: list[torch.Tensor], patch_size: int,
                 transform: str | None) -> None:
        self.images_a, self.images_b, self.patch_size, self.transform = images_a, images_b, patch_size, transform

    def __call__(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        a = ep.random_patch(self.images_a, self.patch_size, generator)[0].clone()
        b = ep.random_patch(self.images_b, self.patch_size, generator)[0]
        b = ep.color_transform(b, self.transform) if self.transform else b.clone()
        return {"A": a, "B": b}


class _EmbeddedBase(GANDataModule):
    """Splits, loaders and write-out shared by the paired and the unpaired embedded datamodules."""

    def __init__(self, patch_size: int, patches_per_epoch: int, val_patches: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if patch_size < 4:
            raise ValueError(f"data.patch_size must be >= 4, got {patch_size}")
        if patches_per_epoch < self.batch_size:
            raise ValueError(f"data.patches_per_epoch ({patches_per_epoch}) must be >= data.batch_size "
                             f"({self.batch_size})")
        if val_patches < 1:
            raise ValueError(f"data.val_patches must be >= 1, got {val_patches}")
        self.patch_size, self.patches_per_epoch, self.val_patches = patch_size, patches_per_epoch, val_patches
        self.test_set: PatchDataset | None = None

    def _maker(self, split: str) -> Callable[[torch.Generator], dict[str, torch.Tensor]]:
        raise NotImplementedError

    def dataset(self, split: str) -> PatchDataset:
        """The patches of ``split`` (``"train"``: one epoch, indexed by ``(epoch, i)``; else ``val_patches``)."""
        length = self.patches_per_epoch if split == "train" else self.val_patches
        return PatchDataset(self._maker(split), length, self.seed, ep.SPLITS.index(split))

    def setup(self, stage: str | None = None) -> None:
        if stage in ("test", "predict"):
            if self.test_set is None:
                self.test_set = self.dataset("test")
        elif self.train_set is None:
            self.train_set, self.val_set = self.dataset("train"), self.dataset("val")

    def train_dataloader(self) -> DataLoader:
        return resumable_train_loader(self, self.train_set,
                                      functools.partial(EpochItemSampler, self.patches_per_epoch, self.seed))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False, drop_last=False)

    def _predict_loader(self, key: str) -> DataLoader:
        if self.test_set is None:
            raise RuntimeError(f"{type(self).__name__}: call setup('predict') before asking for a dataloader")
        return DataLoader(PredictInputs(self.test_set, self.predict_samples, key, key), batch_size=self.batch_size)

    def _split_items(self, split: str, epoch: int = 0) -> list[dict[str, torch.Tensor]]:
        data = self.dataset(split)
        return [data[(epoch, i)] if split == "train" else data[i] for i in range(len(data))]


def _save_png(img: torch.Tensor, path: str) -> None:
    """``[C, H, W]`` in ``[-1, 1]`` as an 8-bit PNG (rounded: a read-back is within 0.5/127.5)."""
    array = ((img.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    array = array[0] if array.shape[0] == 1 else array.permute(1, 2, 0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array.numpy()).save(path)


class EmbeddedPairedDataModule(_EmbeddedBase):
    """A paired task on scikit-image photo patches: ``{"input", "target"}`` (+ ``"mask"`` for ``inpaint``).

    ``sample_shape`` is ``(channels, P, P)``; ``input_shape`` is ``(1, P, P)`` for ``edges2photo`` and
    ``gray2color``, ``(channels, P/4, P/4)`` for ``sr4x``, ``(channels, P, P)`` for ``inpaint``.

    Args:
        task: ``"edges2photo"``, ``"gray2color"``, ``"sr4x"`` or ``"inpaint"``.
        patch_size: side P of the patches (32 or 64 are the usual; a multiple of 4 for ``sr4x``; at most
            the smallest photo side of a split: 300 in colour, 172 in gray).
        channels: 3 (colour photos) or 1 (gray photos; not for ``gray2color``).
        mask_kind: ``inpaint`` holes: ``"box"`` (a rectangle, sides P/4..P/2) or ``"free_form"`` (strokes).
        edge_detector: ``edges2photo`` edges: ``"canny"`` (binary) or ``"sobel"`` (graded).
        edge_sigma: Canny's smoothing in pixels of the (downscaled) photo.
        train_photos: the training photos to cut patches from, names of the train split's colour or gray
            photos (see ``embedded_photos``; a gray one in a colour task is used as R = G = B; default all
            the colour ones, plus the gray ones when ``channels=1``). Val and test photos cannot be named here.
        dihedral: training pairs get the same random flip and quarter-turn on both sides (one of 8).
        hue_rotation: training targets (and the inputs made from them) get their hue turned by a random
            angle about the grey axis, brightness and saturation kept (``embedded_photos.rotate_hue``).
        patches_per_epoch: training patches per epoch (fresh ones every epoch).
        val_patches: patches of the val split and of the test split.
        batch_size: patches per batch and per process.
        num_workers: DataLoader worker processes.
        seed: seeds the training patches; val/test patches do not depend on it.
        predict_samples: how many test inputs ``predict`` translates (at most ``val_patches``).
    """

    def __init__(self, task: Literal["edges2photo", "gray2color", "sr4x", "inpaint"] = "edges2photo",
                 patch_size: int = 64, channels: int = 3, mask_kind: Literal["box", "free_form"] = "box",
                 edge_detector: Literal["canny", "sobel"] = "canny", edge_sigma: float = 2.0,
                 train_photos: Sequence[str] | None = None, dihedral: bool = False,
                 hue_rotation: bool = False, patches_per_epoch: int = 4096, val_patches: int = 256,
                 batch_size: int = 16, **kwargs: Any) -> None:
        super().__init__(patch_size, patches_per_epoch, val_patches, batch_size=batch_size, **kwargs)
        if task not in PAIRED_TASKS:
            raise ValueError(f"data.task must be one of {', '.join(PAIRED_TASKS)}, got {task!r}")
        check_channels(channels=channels)
        if task == "gray2color" and channels != 3:
            raise ValueError("gray2color needs data.channels: 3 (its target is the colour photo)")
        if task == "sr4x" and patch_size % SR_FACTOR:
            raise ValueError(f"sr4x needs data.patch_size divisible by {SR_FACTOR}, got {patch_size}")
        if mask_kind not in ("box", "free_form"):
            raise ValueError(f"data.mask_kind must be 'box' or 'free_form', got {mask_kind!r}")
        if edge_detector not in ("canny", "sobel"):
            raise ValueError(f"data.edge_detector must be 'canny' or 'sobel', got {edge_detector!r}")
        self.task, self.channels, self.mask_kind = task, channels, mask_kind
        self.edge_detector, self.edge_sigma = edge_detector, edge_sigma
        self.dihedral, self.hue_rotation = dihedral, hue_rotation
        self.train_photos = None if train_photos is None else ep.photo_names("train", channels, train_photos,
                                                                              "data.train_photos")

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.patch_size, self.patch_size)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        p = self.patch_size
        if self.task == "sr4x":
            return (self.channels, p // SR_FACTOR, p // SR_FACTOR)
        return (1 if self.task in ("edges2photo", "gray2color") else self.channels, p, p)

    def _maker(self, split: str) -> _PairedMaker:
        images = ep.photos(split, self.channels, self.train_photos if split == "train" else None)
        small = min(min(img.shape[-2:]) for img in images)
        if self.patch_size > small:
            raise ValueError(f"data.patch_size {self.patch_size} exceeds the smallest {split} photo side ({small})")
        edges = None
        if self.task == "edges2photo":  # on the whole photo: a patch's edges do not depend on where it is cut
            edges = [ep.edge_map(img, self.edge_detector, self.edge_sigma) for img in images]
        augment = split == "train"  # val and test patches stay as the photos are
        return _PairedMaker(self.task, images, edges, self.patch_size, self.mask_kind,
                            self.dihedral and augment, self.hue_rotation and augment)

    def predict_dataloader(self) -> DataLoader:
        return self._predict_loader("input")

    def write_folders(self, root: str, layout: Literal["folders", "aligned"] = "folders", epoch: int = 0) -> str:
        """Write the task as files that ``PairedImageDataModule(root, layout=...)`` reads back (A = input, B = target).

        ``train`` holds the training patches of ``epoch``, ``val`` and ``test`` the fixed ones. With
        ``folders``, ``inpaint`` also writes ``<split>/mask/`` (white = hole), which the reader ignores.

        Args:
            root: the output folder (created; existing files with the same names are overwritten).
            layout: ``"folders"`` (``<split>/A``, ``<split>/B``) or ``"aligned"`` (side-by-side files;
                not for ``sr4x``, whose sides differ in size).
            epoch: which epoch's training patches to write.

        Returns:
            ``root``.
        """
        if layout not in ("folders", "aligned"):
            raise ValueError(f"layout must be 'folders' or 'aligned', got {layout!r}")
        if layout == "aligned" and self.task == "sr4x":
            raise ValueError("sr4x inputs are smaller than their targets: write it with layout='folders'")
        for split in ep.SPLITS:
            for i, item in enumerate(self._split_items(split, epoch)):
                name = f"{i:05d}.png"
                if layout == "aligned":
                    x, y = item["input"], item["target"]
                    x = x.expand(y.shape[0], -1, -1) if x.shape[0] < y.shape[0] else x  # gray input in an RGB file
                    _save_png(torch.cat([x, y], dim=-1), os.path.join(root, split, name))
                    continue
                _save_png(item["input"], os.path.join(root, split, "A", name))
                _save_png(item["target"], os.path.join(root, split, "B", name))
                if "mask" in item:
                    _save_png(item["mask"] * 2 - 1, os.path.join(root, split, "mask", name))
        return root


class EmbeddedUnpairedDataModule(_EmbeddedBase):
    """An unpaired task on scikit-image photo patches: ``{"A", "B"}``, the two drawn independently.

    ``input_shape`` is A's shape, ``sample_shape`` B's: ``(3, P, P)`` for ``photo2transformed``,
    ``(1, P, P)`` for ``brick2gravel``.

    Args:
        task: ``"photo2transformed"`` or ``"brick2gravel"``.
        patch_size: side P of the patches (at most 300 for photos, 128 for textures, whose val and
            test regions are 128 pixels high).
        transform: ``photo2transformed``'s colour matrix: ``"mix"`` or ``"permute"``
            (see ``embedded_photos.color_transform``).
        patches_per_epoch: training items per epoch.
        val_patches: items of the val split and of the test split.
        batch_size: items per batch and per process.
        num_workers: DataLoader worker processes.
        seed: seeds the training patches; val/test patches do not depend on it.
        predict_samples: how many test A patches ``predict`` translates (at most ``val_patches``).
    """

    def __init__(self, task: Literal["photo2transformed", "brick2gravel"] = "photo2transformed",
                 patch_size: int = 64, transform: Literal["mix", "permute"] = "mix",
                 patches_per_epoch: int = 4096, val_patches: int = 256, batch_size: int = 16,
                 **kwargs: Any) -> None:
        super().__init__(patch_size, patches_per_epoch, val_patches, batch_size=batch_size, **kwargs)
        if task not in UNPAIRED_TASKS:
            raise ValueError(f"data.task must be one of {', '.join(UNPAIRED_TASKS)}, got {task!r}")
        if transform not in ep.COLOR_MATRICES:
            raise ValueError(f"data.transform must be one of {', '.join(ep.COLOR_MATRICES)}, got {transform!r}")
        if task == "brick2gravel" and patch_size > 128:
            raise ValueError(f"brick2gravel needs data.patch_size <= 128 (the held-out strips), got {patch_size}")
        self.task, self.transform = task, transform

    @property
    def _channels(self) -> int:
        return 3 if self.task == "photo2transformed" else 1

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self._channels, self.patch_size, self.patch_size)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self._channels, self.patch_size, self.patch_size)

    @property
    def true_mapping(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The exact A -> B map (``[N, 3, H, W]`` -> same) for ``photo2transformed``; None for textures."""
        if self.task != "photo2transformed":
            return None
        return functools.partial(ep.color_transform, kind=self.transform)

    def _maker(self, split: str) -> _UnpairedMaker:
        if self.task == "brick2gravel":
            return _UnpairedMaker([ep.texture("brick", split)], [ep.texture("gravel", split)], self.patch_size, None)
        images = ep.photos(split, 3)
        small = min(min(img.shape[-2:]) for img in images)
        if self.patch_size > small:
            raise ValueError(f"data.patch_size {self.patch_size} exceeds the smallest {split} photo side ({small})")
        return _UnpairedMaker(images, images, self.patch_size, self.transform)

    def predict_dataloader(self) -> DataLoader:
        return self._predict_loader("A")

    def write_folders(self, root: str, epoch: int = 0) -> str:
        """Write the task as ``<root>/{train,val,test}{A,B}/`` that ``UnpairedImageDataModule`` reads back.

        Args:
            root: the output folder (created; existing files with the same names are overwritten).
            epoch: which epoch's training patches to write.

        Returns:
            ``root``.
        """
        for split in ep.SPLITS:
            for i, item in enumerate(self._split_items(split, epoch)):
                for side in ("A", "B"):
                    _save_png(item[side], os.path.join(root, split + side, f"{i:05d}.png"))
        return root
