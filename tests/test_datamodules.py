"""Datamodule contracts: shapes, ranges, labels, determinism, and every bad-input error message."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
import torch
from PIL import Image

from datamodules import (
    DigitsDataModule,
    GANDataModule,
    ImageFolderDataModule,
    TorchvisionDataModule,
    Toy2DDataModule,
)
from datamodules.toy import sample_toy, toy_mixture

# ---------------------------------------------------------------- helpers


def _save(path: Path, size: tuple[int, int], mode: str = "RGB", value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 255 - value, value // 2)
    Image.new(mode, size, color).save(path)
    return path


def _write_fake_mnist(root: Path, folder: str, n: int = 8) -> None:
    """Tiny MNIST-format (idx) files, so torchvision's loader runs without a download."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = (torch.arange(n) % 10).to(torch.uint8)
    for prefix in ("train", "t10k"):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.numpy().tobytes())


def _first_batch(dm: GANDataModule) -> dict[str, torch.Tensor]:
    return next(iter(dm.train_dataloader()))


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    dm = DigitsDataModule(image_size=32, batch_size=16)
    dm.setup("fit")
    return dm


def test_digits_shapes_range_labels(digits: DigitsDataModule) -> None:
    train_x, train_y = digits.tensors("train")
    val_x, val_y = digits.tensors("val")
    assert train_x.shape[1:] == (1, 32, 32) and train_x.dtype == torch.float32
    assert len(train_x) + len(val_x) == 1797 and len(val_x) == round(0.2 * 1797)
    both = torch.cat([train_x, val_x])
    assert both.min() == -1.0 and both.max() == 1.0
    assert train_y.dtype == torch.int64 and set(train_y.tolist()) == set(range(10)) == set(val_y.tolist())
    assert digits.num_classes == 10
    batch = _first_batch(digits)
    assert batch["image"].shape == (16, 1, 32, 32) and batch["label"].shape == (16,)


def test_digits_split_fixed_across_seeds_and_disjoint(digits: DigitsDataModule) -> None:
    other = DigitsDataModule(image_size=8, seed=123)
    x8, _ = other.tensors("val")  # tensors() runs setup itself
    native = DigitsDataModule(image_size=8, seed=0)
    assert torch.equal(native.tensors("val")[0], x8)
    # Disjoint: no native 8x8 image of val appears in train (duplicates aside, compare as rows).
    train8 = native.tensors("train")[0].flatten(1)
    val8 = x8.flatten(1)
    overlap = (torch.cdist(val8, train8) == 0).any(1).float().mean()
    assert overlap < 0.05  # a few digits in the raw data are exact duplicates of each other
    assert len(train8) + len(val8) == 1797
    with pytest.raises(ValueError, match="split"):
        native.tensors("test")


def test_digits_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="image_size"):
        DigitsDataModule(image_size=4)
    with pytest.raises(ValueError, match="val_fraction"):
        DigitsDataModule(val_fraction=1.0)


# ---------------------------------------------------------------- toy


@pytest.mark.parametrize("name, modes", [("ring", 8), ("grid", 25)])
def test_toy_points_near_modes_and_all_modes_covered(name: str, modes: int) -> None:
    dm = Toy2DDataModule(dataset=name, num_samples=5000, batch_size=100)
    dm.setup()
    assert dm.modes.shape == (modes, 2) and dm.sample_shape == (2,) and dm.num_classes == 0
    points = dm.train_set.images
    dist, nearest = torch.cdist(points, dm.modes).min(1)
    assert (dist < 5 * dm.std * 2**0.5).all()  # 5 sigma per axis
    assert torch.bincount(nearest, minlength=modes).min() > 0
    assert len(dm.val_set) == 2500
    centers, std = toy_mixture(name)
    assert torch.equal(centers, dm.modes) and std == dm.std


def test_toy_ring_geometry_and_unknown_name() -> None:
    centers, std = toy_mixture("ring")
    assert torch.allclose(centers.norm(dim=1), torch.ones(8)) and std == 0.01
    assert torch.allclose(centers[2], torch.tensor([0.0, 1.0]), atol=1e-6)
    grid, _ = toy_mixture("grid")
    assert set(grid[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    with pytest.raises(ValueError, match="ring, grid"):
        Toy2DDataModule(dataset="spiral")


def test_toy_determinism() -> None:
    def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        dm = Toy2DDataModule(num_samples=1000, seed=seed)
        dm.setup()
        return dm.train_set.images, dm.val_set.images

    a, b, c = draw(0), draw(0), draw(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0][:100], a[1][:100])  # val is a separate draw
    g = torch.Generator().manual_seed(5)
    assert sample_toy("grid", 10, g).shape == (10, 2)


def test_tensor_loaders_fetch_whole_batches_equal_to_per_item_collation(digits: DigitsDataModule) -> None:
    """Train and val loaders of tensor-backed datamodules fetch a batch in one indexing op
    (``__getitems__``); the batches are the per-item ones, collated by ``default_collate``."""
    from torch.utils.data import default_collate

    for loader in (digits.train_dataloader(), digits.val_dataloader()):
        dataset, indices = loader.dataset, list(loader.batch_sampler)[:3]
        assert hasattr(dataset, "__getitems__") and not hasattr(digits.train_set, "__getitems__")
        for batch, index in zip(loader, indices, strict=False):  # the first 3 batches
            expected = default_collate([dataset[i] for i in index])
            assert batch.keys() == expected.keys() == {"image", "label"}
            assert all(torch.equal(batch[k], expected[k]) and batch[k].dtype == expected[k].dtype for k in batch)
    toy = Toy2DDataModule(num_samples=64, batch_size=16)
    toy.setup()
    batch = next(iter(toy.train_dataloader()))
    assert set(batch) == {"image"} and batch["image"].shape == (16, 2)
    plain = next(iter(torch.utils.data.DataLoader(digits.train_set, batch_size=4)))  # a user's own loader
    assert plain["image"].shape == (4, 1, 32, 32) and plain["label"].shape == (4,)


# ---------------------------------------------------------------- image folder


def test_folder_recursive_unlabelled_resize_crop(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", (40, 20))  # wide
    _save(tmp_path / "sub" / "deeper" / "b.JPG", (10, 30))  # tall, upper-case extension
    _save(tmp_path / "sub" / "c.bmp", (16, 16), mode="L")
    (tmp_path / "notes.txt").write_text("not an image")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=16, channels=3, batch_size=3)
    dm.setup()
    assert len(dm.train_set) == 3 and dm.val_set is None and dm.num_classes == 0
    assert dm.train_set.files == sorted(dm.train_set.files)
    batch = _first_batch(dm)
    assert batch["image"].shape == (3, 3, 16, 16) and "label" not in batch
    assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    # Solid colour survives resize + crop: R channel of value 128 maps to 128/127.5 - 1.
    first = dm.train_set[0]["image"]
    assert torch.allclose(first[0], torch.full((16, 16), 128 / 127.5 - 1), atol=1e-4)


def test_folder_labels_from_subfolders_and_one_channel(tmp_path: Path) -> None:
    for cls, n in (("cat", 2), ("dog", 3)):
        for i in range(n):
            _save(tmp_path / cls / f"{i}.png", (24, 12))
    _save(tmp_path / "dog" / "nested" / "x.png", (12, 12))
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, channels=1, labels=True, batch_size=2)
    assert dm.num_classes == 2 and dm.class_names == ["cat", "dog"]  # known before setup
    dm.setup()
    labels = [dm.train_set[i]["label"] for i in range(len(dm.train_set))]
    assert [int(x) for x in labels] == [0, 0, 1, 1, 1, 1]
    assert labels[0].dtype == torch.int64 and labels[0].ndim == 0
    assert dm.train_set[0]["image"].shape == (1, 8, 8)


def test_folder_val_split_fixed(tmp_path: Path) -> None:
    for i in range(10):
        _save(tmp_path / f"{i}.png", (8, 8))
    splits = []
    for seed in (0, 1):
        dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, val_fraction=0.3, seed=seed, batch_size=1)
        dm.setup()
        assert len(dm.val_set) == 3 and not set(dm.val_set.files) & set(dm.train_set.files)
        splits.append(dm.val_set.files)
    assert splits[0] == splits[1]


def test_folder_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=r"image folder '.*nope' does not exist \(data.root\)"):
        ImageFolderDataModule(root=str(missing)).setup()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no images with extensions .*\.png.* found under '.*empty'"):
        ImageFolderDataModule(root=str(empty)).setup()
    with pytest.raises(ValueError, match="channels"):
        ImageFolderDataModule(root=str(tmp_path), channels=2)
    one = tmp_path / "one"
    _save(one / "a.png", (8, 8))
    with pytest.warns(UserWarning, match="batch_size"):  # drop_last would leave no training batch
        ImageFolderDataModule(root=str(one), batch_size=2).setup()
    loose = tmp_path / "loose"
    _save(loose / "cls" / "a.png", (8, 8))
    _save(loose / "stray.png", (8, 8))
    with pytest.raises(ValueError, match="stray.png"):
        ImageFolderDataModule(root=str(loose), labels=True).setup()


def test_folder_corrupt_image_raises_or_is_skipped(tmp_path: Path) -> None:
    _save(tmp_path / "good.png", (8, 8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    truncated = tmp_path / "trunc.png"
    _save(tmp_path / "full.png", (64, 64))
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:60])
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, batch_size=1)
    dm.setup()
    with pytest.raises(RuntimeError, match=re.escape(str(bad))):
        dm.train_set[dm.train_set.files.index(str(bad))]
    with pytest.raises(RuntimeError, match=re.escape(str(truncated))):
        dm.train_set[dm.train_set.files.index(str(truncated))]
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, skip_bad_images=True, batch_size=2)
    with pytest.warns(UserWarning, match="skipped 2"):
        dm.setup()
    assert sorted(dm.skipped_images) == sorted([str(bad), str(truncated)])
    assert len(dm.train_set) == 2
    assert _first_batch(dm)["image"].shape == (2, 3, 8, 8)
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"junk")
    with pytest.warns(UserWarning), pytest.raises(FileNotFoundError, match="no images"):
        ImageFolderDataModule(root=str(only_bad), skip_bad_images=True).setup()


def test_folder_strict_channels_names_file(tmp_path: Path) -> None:
    _save(tmp_path / "gray.png", (8, 8), mode="L")
    rgb = _save(tmp_path / "rgb.png", (8, 8), mode="RGB")
    lenient = ImageFolderDataModule(root=str(tmp_path), image_size=8, channels=1, batch_size=1)
    lenient.setup()
    assert lenient.train_set[1]["image"].shape == (1, 8, 8)  # converted silently
    strict = ImageFolderDataModule(root=str(tmp_path), image_size=8, channels=1, strict_channels=True, batch_size=1)
    strict.setup()
    strict.train_set[0]  # the grayscale file is fine
    with pytest.raises(ValueError, match=re.escape(str(rgb))):
        strict.train_set[1]
    with pytest.raises(ValueError, match=re.escape(str(rgb))):  # also up front when verifying every file
        ImageFolderDataModule(
            root=str(tmp_path), channels=1, strict_channels=True, skip_bad_images=True
        ).setup()


# ---------------------------------------------------------------- torchvision


def test_torchvision_unknown_name_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MNIST, FashionMNIST, CIFAR10, CelebA"):
        TorchvisionDataModule(name="ImageNet")
    for name in ("mnist", "FashionMNIST", "cifar10", "CelebA"):
        dm = TorchvisionDataModule(name=name, root=str(tmp_path))
        with pytest.raises(RuntimeError, match="download") as info:
            dm.setup()
        assert str(tmp_path) in str(info.value) and dm.name in str(info.value)


def test_torchvision_shapes_before_setup() -> None:
    assert TorchvisionDataModule("mnist").sample_shape == (1, 32, 32)
    assert TorchvisionDataModule("FashionMNIST", image_size=64).sample_shape == (1, 64, 64)
    assert TorchvisionDataModule("CIFAR10").sample_shape == (3, 32, 32)
    celeba = TorchvisionDataModule("celeba")
    assert celeba.sample_shape == (3, 64, 64) and celeba.num_classes == 0
    assert TorchvisionDataModule("cifar10").num_classes == 10


def test_torchvision_fake_mnist_copy(tmp_path: Path) -> None:
    _write_fake_mnist(tmp_path, "MNIST")
    dm = TorchvisionDataModule("MNIST", root=str(tmp_path), batch_size=4)
    dm.setup()
    batch = _first_batch(dm)
    assert batch["image"].shape == (4, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert batch["label"].dtype == torch.int64 and len(dm.val_set) == 8


# ---------------------------------------------------------------- shared contract


def _all_datamodules(tmp_path: Path) -> list[GANDataModule]:
    _save(tmp_path / "imgs" / "a" / "1.png", (30, 20))
    _save(tmp_path / "imgs" / "b" / "2.png", (20, 30), mode="L")
    _write_fake_mnist(tmp_path / "tv", "FashionMNIST")
    return [
        DigitsDataModule(image_size=16, batch_size=8, predict_samples=10),
        Toy2DDataModule(dataset="grid", num_samples=64, batch_size=8, predict_samples=10),
        ImageFolderDataModule(root=str(tmp_path / "imgs"), image_size=12, labels=True, batch_size=2, predict_samples=10),
        TorchvisionDataModule("FashionMNIST", root=str(tmp_path / "tv"), batch_size=8, predict_samples=10),
    ]


def test_contract_shape_before_setup_matches_batches(tmp_path: Path) -> None:
    for dm in _all_datamodules(tmp_path):
        shape, classes = dm.sample_shape, dm.num_classes  # must not need setup()
        dm.setup("fit")
        dm.setup("validate")  # idempotent
        for loader in (dm.train_dataloader(), dm.val_dataloader()):
            batch = next(iter(loader))
            assert isinstance(batch, dict), type(dm).__name__
            assert set(batch) == ({"image", "label"} if classes else {"image"}), type(dm).__name__
            assert batch["image"].dtype == torch.float32
            assert tuple(batch["image"].shape[1:]) == shape, type(dm).__name__
            if classes:
                assert batch["label"].dtype == torch.int64 and batch["label"].ndim == 1
                assert 0 <= batch["label"].min() and batch["label"].max() < classes
        indices = torch.cat([b["index"] for b in dm.predict_dataloader()])
        assert indices.tolist() == list(range(10)), type(dm).__name__


def test_dataloader_before_setup_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="setup"):
        Toy2DDataModule().train_dataloader()


def test_epoch_sampler_with_more_or_fewer_items_than_the_dataset():
    from datamodules.base import EpochShuffleSampler
    full = EpochShuffleSampler(10, seed=3)
    full.set_epoch(2)
    fewer = EpochShuffleSampler(10, seed=3, num_items=6)
    fewer.set_epoch(2)
    assert list(fewer) == list(full)[:6] and len(fewer) == 6  # a prefix of the epoch's permutation
    more = EpochShuffleSampler(10, seed=3, num_items=25)
    more.set_epoch(2)
    order = list(more)
    assert len(order) == len(more) == 25 and order[:10] == list(full)
    assert sorted(order[10:20]) == list(range(10)) and order[10:20] != order[:10]  # a second, other permutation
    ranks = [EpochShuffleSampler(10, seed=3, num_replicas=2, rank=r, batch_size=4, num_items=25) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(2)
    # 3 global batches of 8 (the 25th item fills none); rank r takes block r of each
    assert [list(s) for s in ranks] == [order[0:4] + order[8:12] + order[16:20], order[4:8] + order[12:16] + order[20:24]]


def test_digits_train_fraction_is_a_fixed_stratified_subset() -> None:
    full = DigitsDataModule(image_size=8)
    images, labels = full.tensors("train")
    counts = torch.bincount(labels, minlength=10)
    for fraction in (0.25, 0.1):
        part = DigitsDataModule(image_size=8, train_fraction=fraction, seed=7)
        sub_images, sub_labels = part.tensors("train")
        expected = torch.clamp(torch.round(fraction * counts.double()).long(), min=1)
        assert torch.equal(torch.bincount(sub_labels, minlength=10), expected)  # stratified
        # a subset of the training images, the same whatever the seed; validation unchanged
        rows = {tuple(x.flatten().tolist()) for x in images}
        assert all(tuple(x.flatten().tolist()) in rows for x in sub_images)
        again = DigitsDataModule(image_size=8, train_fraction=fraction, seed=99).tensors("train")[0]
        assert torch.equal(again, sub_images)
        assert torch.equal(part.tensors("val")[0], full.tensors("val")[0])
    with pytest.raises(ValueError, match="train_fraction"):
        DigitsDataModule(train_fraction=0.0)
