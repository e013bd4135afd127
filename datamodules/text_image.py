"""Captioned images for text-to-image models: the embedded captioned shapes, or a folder of your own.

Batches are ``{"image": [N, 3, S, S] in [-1, 1], "caption_tokens": [N, max_length] int64,
"caption_length": [N] int64}``, plus ``"attributes": [N, 4] int64`` (colour, shape, size, position)
for the embedded set. An item is one (image, caption) pair: an image with five captions is five items,
so an epoch shows every caption once. The vocabulary is built from the training captions
(``datamodules``' :class:`~gan_modules.nets.text.Vocabulary`: 0 pads, 1 is an unknown word).

Folder layout (the CUB-200 / Oxford-102 layout StackGAN used, one captions file per image)::

    root/train/images/<any/sub/path>/<name>.png   (or .jpg, ...)
    root/train/text/<any/sub/path>/<name>.txt     one caption per line
    root/val/...  root/test/...                   optional, same layout

An image without its captions file, an empty captions file or an empty caption is an error naming
the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from datamodules.base import GANDataModule
from datamodules.folder import DEFAULT_EXTENSIONS, _scan, load_image
from datamodules.shapes_captions import IMAGE_SIZE, make_split
from gan_modules.nets.text import Vocabulary

EMBEDDED_SPLITS = ("train", "val", "test", "heldout")


class CaptionedImages(Dataset):
    """(image, caption) pairs; items are dicts (see the module docstring). Reads a batch at a time.

    Args:
        images: ``[M, 3, S, S]`` uint8.
        captions: per image, its captions (at least one).
        vocabulary: maps the captions to tokens.
        max_length: tokens per caption (longer captions are cut).
        attributes: ``[M, 4]`` int64, or None.
    """

    def __init__(self, images: Tensor, captions: list[list[str]], vocabulary: Vocabulary, max_length: int,
                 attributes: Tensor | None = None) -> None:
        if len(captions) != len(images):
            raise ValueError(f"{len(images)} images but {len(captions)} caption lists")
        self.images, self.attributes, self.captions = images, attributes, captions
        self.pairs = torch.tensor([(i, j) for i, caps in enumerate(captions) for j in range(len(caps))],
                                  dtype=torch.int64)
        flat = [c for caps in captions for c in caps]
        self.tokens, self.lengths = vocabulary.encode_batch(flat, max_length)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        index = torch.as_tensor(indices, dtype=torch.int64)
        image = self.pairs[index, 0]
        batch = {"image": self.images[image].float() / 127.5 - 1.0, "caption_tokens": self.tokens[index],
                 "caption_length": self.lengths[index]}
        if self.attributes is not None:
            batch["attributes"] = self.attributes[image]
        return batch

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}

    def caption(self, index: int) -> str:
        """The caption string of item ``index``."""
        i, j = self.pairs[index].tolist()
        return self.captions[i][j]


def read_captions(path: Path, image: str) -> list[str]:
    """The captions of one image, one per non-blank line; a missing or empty file names the image."""
    if not path.is_file():
        raise FileNotFoundError(f"image '{image}' has no captions file: expected '{path}'")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    captions = [line for line in lines if line]
    if not captions:
        raise ValueError(f"captions file '{path}' (for image '{image}') has no caption")
    return captions


def read_captioned_folder(folder: Path, image_size: int) -> tuple[Tensor, list[list[str]]]:
    """Images ``[M, 3, S, S]`` uint8 and their captions from ``folder/images`` and ``folder/text``."""
    images_dir, text_dir = folder / "images", folder / "text"
    if not images_dir.is_dir():
        raise FileNotFoundError(f"data.root: '{images_dir}' does not exist (layout: <root>/<split>/images, "
                                "<root>/<split>/text)")
    files = _scan(str(images_dir), DEFAULT_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"data.root: no images under '{images_dir}'")
    captions, tensors = [], []
    for file in files:
        relative = Path(os.path.relpath(file, images_dir)).with_suffix(".txt")
        captions.append(read_captions(text_dir / relative, file))
        tensors.append(((load_image(file, image_size, 3) + 1) * 127.5).round().to(torch.uint8))
    return torch.stack(tensors), captions


class _PredictCaptions(Dataset):
    """The first ``count`` pairs of a split as predict items ``{"index", "caption_tokens", ...}``."""

    def __init__(self, data: CaptionedImages, count: int) -> None:
        self.data, self.count = data, min(count, len(data))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self.data[index]
        return {"index": torch.tensor(index), "caption_tokens": item["caption_tokens"],
                "caption_length": item["caption_length"]}


class TextImageDataModule(GANDataModule):
    """Captioned images: the embedded captioned shapes (``root`` None) or a captioned folder.

    The embedded set (``datamodules.shapes_captions``) has fixed ``train`` / ``val`` / ``test`` splits of
    seen colour-shape pairs and a ``heldout`` split of pairs training never sees; all are a function of
    ``dataset_seed``. Validation uses ``val``; ``test`` uses ``test_split``; ``predict`` writes one
    image per caption of the first ``predict_samples`` pairs of ``predict_split``.

    Args:
        root: a folder in the layout of the module docstring; None for the embedded set.
        image_size: side of the images (the embedded set is 64 px and only 64 is accepted for it).
        max_length: tokens per caption; longer captions are cut.
        dataset_seed: seed of the embedded set (its images and captions; the splits are fixed by it).
        test_split: split of ``test``: ``test`` or (embedded) ``heldout``.
        predict_split: split whose captions ``predict`` draws.
        **kwargs: :class:`~datamodules.base.GANDataModule`'s ``batch_size``, ``num_workers``, ``seed``,
            ``predict_samples``.
    """

    def __init__(self, root: str | None = None, image_size: int = IMAGE_SIZE, max_length: int = 16,
                 dataset_seed: int = 0, test_split: str = "test", predict_split: str = "test", **kwargs) -> None:
        super().__init__(**kwargs)
        if root is None and image_size != IMAGE_SIZE:
            raise ValueError(f"data.image_size: the embedded captioned shapes are {IMAGE_SIZE} px, got {image_size}")
        if max_length < 1:
            raise ValueError(f"data.max_length must be >= 1, got {max_length}")
        splits = EMBEDDED_SPLITS if root is None else ("train", "val", "test")
        for option, split in (("test_split", test_split), ("predict_split", predict_split)):
            if split not in splits:
                raise ValueError(f"data.{option} must be one of {', '.join(splits)}, got {split!r}")
        self.root, self.image_size, self.max_length = root, image_size, max_length
        self.dataset_seed, self.test_split, self.predict_split = dataset_seed, test_split, predict_split
        self.vocabulary: Vocabulary | None = None
        self.sets: dict[str, CaptionedImages] = {}

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    def _raw(self, split: str) -> tuple[Tensor, list[list[str]], Tensor | None] | None:
        if self.root is None:
            images, attributes, captions = make_split(split, self.dataset_seed)
            return images, captions, attributes
        folder = Path(self.root).expanduser() / split
        if split != "train" and not folder.exists():
            return None
        return (*read_captioned_folder(folder, self.image_size), None)

    def setup(self, stage: str | None = None) -> None:
        if self.sets:  # idempotent: Lightning calls setup once per stage
            return
        train = self._raw("train")
        self.vocabulary = Vocabulary.build(c for caps in train[1] for c in caps)
        names = EMBEDDED_SPLITS if self.root is None else ("train", "val", "test")
        for split in names:
            raw = train if split == "train" else self._raw(split)
            if raw is not None:
                images, captions, attributes = raw
                self.sets[split] = CaptionedImages(images, captions, self.vocabulary, self.max_length, attributes)
        self.train_set, self.val_set = self.sets["train"], self.sets.get("val")

    def split(self, name: str) -> CaptionedImages:
        """One split's dataset (calls ``setup`` if needed); a split the data lacks is an error."""
        self.setup()
        if name not in self.sets:
            raise ValueError(f"no split {name!r}; this data has {', '.join(self.sets)}")
        return self.sets[name]

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.split(self.test_split), shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(_PredictCaptions(self.split(self.predict_split), self.predict_samples),
                          batch_size=self.batch_size)
