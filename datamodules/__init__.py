"""Datamodules: every one yields dict batches (``"image"`` + optional ``"label"``), see ``base.py``."""

from datamodules.base import GANDataModule
from datamodules.digits import DigitsDataModule
from datamodules.folder import ImageFolderDataModule
from datamodules.torchvision_sets import TorchvisionDataModule
from datamodules.toy import Toy2DDataModule

__all__ = [
    "DigitsDataModule",
    "GANDataModule",
    "ImageFolderDataModule",
    "Toy2DDataModule",
    "TorchvisionDataModule",
]
