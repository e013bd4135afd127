"""Datamodules: every one yields dict batches, see ``base.py``: ``"image"`` (+ optional ``"label"``) for
noise-to-image data, ``"input"``/``"target"`` (+ ``"mask"``) for paired and ``"A"``/``"B"`` for unpaired
translation data (docs/translation.md), ``"image"``/``"caption_tokens"``/``"caption_length"`` (+ ``"attributes"``)
for captioned images (docs/text_to_image.md)."""

from datamodules.base import GANDataModule
from datamodules.digits import DigitsDataModule
from datamodules.embedded import EmbeddedPairedDataModule, EmbeddedUnpairedDataModule
from datamodules.folder import ImageFolderDataModule
from datamodules.paired import PairedImageDataModule
from datamodules.text_image import TextImageDataModule
from datamodules.torchvision_sets import TorchvisionDataModule
from datamodules.toy import Toy2DDataModule
from datamodules.unpaired import UnpairedImageDataModule

__all__ = [
    "DigitsDataModule",
    "EmbeddedPairedDataModule",
    "EmbeddedUnpairedDataModule",
    "GANDataModule",
    "ImageFolderDataModule",
    "PairedImageDataModule",
    "TextImageDataModule",
    "Toy2DDataModule",
    "TorchvisionDataModule",
    "UnpairedImageDataModule",
]
