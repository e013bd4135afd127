"""The official data recipes: x-flips, the total batch split over devices, box downsampling, ProGAN's CelebA crop."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import ImageFolderDataModule
from datamodules.base import GANDataModule
from datamodules.folder import load_image
from datamodules.tensors import BatchFetch, TensorDictDataset, collate_batched
from datamodules.torchvision_sets import TorchvisionDataModule, build_transform, get_spec
from datamodules.xflip import XFlipDataset


def test_xflip_doubles_the_set_with_mirrors_and_batched_fetch_agrees() -> None:
    images, labels = torch.randn(5, 1, 3, 4), torch.arange(5)
    flipped = XFlipDataset(TensorDictDataset(images, labels))
    assert len(flipped) == 10
    torch.testing.assert_close(flipped[2]["image"], images[2])
    torch.testing.assert_close(flipped[7]["image"], images[2][..., [3, 2, 1, 0]])
    assert int(flipped[7]["label"]) == 2
    batched = XFlipDataset(BatchFetch(TensorDictDataset(images, labels)))
    indices = [0, 7, 9, 3]
    batch = batched.__getitems__(indices)
    torch.testing.assert_close(batch["image"], collate_batched([flipped[i] for i in indices])["image"])
    torch.testing.assert_close(batch["label"], torch.tensor([0, 2, 4, 3]))


class _Tensors(GANDataModule):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.train_set = TensorDictDataset(torch.randn(12, 1, 2, 2))

    @property
    def sample_shape(self):
        return (1, 2, 2)


def test_xflip_reaches_the_train_loader_only() -> None:
    data = _Tensors(batch_size=4, xflip=True)
    train = torch.cat([b["image"] for b in data.train_dataloader()])
    assert len(train) == 24  # 12 images and their 12 mirrors
    originals = data.train_set.images
    expected = torch.cat([originals, originals.flip(-1)])
    assert torch.equal(train.sort(dim=0).values, expected.sort(dim=0).values)
    assert sum(len(b["image"]) for b in data.val_dataloader()) == 12


def test_total_batch_size_gives_the_per_process_batch() -> None:
    data = _Tensors(batch_size=3, total_batch_size=8)
    assert data.batch_size == 8  # no trainer: one process
    data.trainer = SimpleNamespace(world_size=2, global_rank=1)
    assert data.batch_size == 4
    data.trainer = SimpleNamespace(world_size=3, global_rank=0)
    with pytest.raises(ValueError, match="total_batch_size 8"):
        data.batch_size  # noqa: B018
    data.trainer = None
    assert _Tensors(batch_size=3).batch_size == 3
    with pytest.raises(ValueError, match="total_batch_size"):
        _Tensors(total_batch_size=0)


def test_box_resize_averages_blocks(tmp_path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)  # H 8, W 12
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = load_image(str(tmp_path / "a.png"), 4, 3, resize="box")
    square = pixels[:, 2:10].astype(np.float64)  # the centre 8x8
    blocks = square.reshape(4, 2, 4, 2, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
    np.testing.assert_allclose(image.numpy(), blocks / 127.5 - 1, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of data.image_size 3"):
        load_image(str(tmp_path / "a.png"), 3, 3, resize="box")
    with pytest.raises(ValueError, match="data.resize"):
        ImageFolderDataModule(root=str(tmp_path), resize="area")


def test_celeba_crop_is_progans_square_at_89_121() -> None:
    # a 178x218 image whose red channel is the column and green the row: the crop's corners say where it is
    cols, rows = np.meshgrid(np.arange(178), np.arange(218))
    pixels = np.stack([cols, rows, np.zeros_like(cols)], axis=-1).astype(np.uint8)
    out = build_transform(get_spec("CelebA"), 128, (89, 121, 128))(Image.fromarray(pixels))
    assert out.shape == (3, 128, 128)
    to_pixels = ((out + 1) * 127.5).round()
    assert to_pixels[0, 0, 0] == 25 and to_pixels[0, 0, -1] == 152  # columns 89 - 64 .. 89 + 63
    assert to_pixels[1, 0, 0] == 57 and to_pixels[1, -1, 0] == 184  # rows 121 - 64 .. 121 + 63
    default = build_transform(get_spec("CelebA"), 64)(Image.fromarray(pixels))
    assert default.shape == (3, 64, 64)
    data = TorchvisionDataModule("CelebA", image_size=128, crop_center=(89, 121), crop_size=128, train_split="all")
    assert data.crop == (89, 121, 128) and data.train_split == "all"
    with pytest.raises(ValueError, match="crop_center and data.crop_size"):
        TorchvisionDataModule("CelebA", crop_center=(89, 121))
    with pytest.raises(ValueError, match="train_split"):
        TorchvisionDataModule("CIFAR10", train_split="all")
