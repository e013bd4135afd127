"""Translation data: paired and unpaired folders, the embedded scikit-image tasks, and their contracts."""

from __future__ import annotations

import math
import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_trainer
from PIL import Image

from datamodules import (
    EmbeddedPairedDataModule,
    EmbeddedUnpairedDataModule,
    PairedImageDataModule,
    UnpairedImageDataModule,
)
from datamodules import embedded_photos as ep
from datamodules.base import EpochItemSampler, seeded_generator
from datamodules.unpaired import UnpairedSampler

# ---------------------------------------------------------------- helpers


def _ramp(width: int, height: int) -> np.ndarray:
    """An RGB image whose every pixel tells where it is: R = column, G = row, B = row + column."""
    x, y = np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height))
    return np.stack([x, y, (x + y) / 2], -1).round().astype(np.uint8)


def _save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _solid(path: Path, value: int, size: tuple[int, int] = (8, 8)) -> Path:
    return _save(np.full((size[1], size[0], 3), value, np.uint8), path)


def _train_items(dm, epoch: int = 0) -> list[dict[str, torch.Tensor]]:
    return [dm.train_set[(epoch, i)] for i in range(len(dm.train_set))]


def _epoch(loader, epoch: int) -> list[dict[str, torch.Tensor]]:
    loader.sampler.set_epoch(epoch)  # what Lightning does at each epoch start
    return list(loader)


def _assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


# ---------------------------------------------------------------- paired folders


@pytest.mark.parametrize("layout", ["aligned", "folders"])
def test_paired_crop_and_flip_identical_on_both_sides(tmp_path: Path, layout: str) -> None:
    ramp = _ramp(30, 20)  # not square: both sides go through the same resize too
    for i in range(4):
        if layout == "aligned":
            _save(np.concatenate([ramp, ramp], axis=1), tmp_path / "train" / f"{i}.png")
        else:
            _save(ramp, tmp_path / "train" / "A" / f"{i}.png")
            _save(ramp, tmp_path / "train" / "B" / f"{i}.{'bmp' if i == 0 else 'png'}")  # matched by name, not type
    dm = PairedImageDataModule(root=str(tmp_path), layout="auto", load_size=24, crop_size=16, val_split=None,
                               batch_size=2)
    dm.setup("fit")
    corners, flips = set(), set()
    for epoch in range(4):
        for item in _train_items(dm, epoch):
            x, y = item["input"], item["target"]
            assert torch.equal(x, y)
            assert x.shape == (3, 16, 16)
            corners.add((round(float(x[0, 0, 0]), 3), round(float(x[1, 0, 0]), 3)))
            flips.add(bool(x[0, 0, -1] < x[0, 0, 0]))  # R grows left to right unless flipped
    assert len(corners) > 4 and flips == {True, False}  # the crops and flips really are random


def test_paired_augmentation_seeded_by_seed_epoch_index(tmp_path: Path) -> None:
    for i in range(3):
        _save(np.concatenate([_ramp(24, 24)] * 2, axis=1), tmp_path / "train" / f"{i}.png")

    def items(seed: int, epoch: int) -> list[torch.Tensor]:
        dm = PairedImageDataModule(root=str(tmp_path), load_size=24, crop_size=8, val_split=None, seed=seed)
        dm.setup()
        return [item["input"] for item in _train_items(dm, epoch)]

    same = items(0, 1)
    assert all(torch.equal(a, b) for a, b in zip(same, items(0, 1), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(same, items(0, 2), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(same, items(1, 1), strict=True))


def test_paired_direction_channels_and_eval_items(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        for i in range(2):
            _solid(tmp_path / split / "A" / f"{i}.png", 40, (12, 10))
            _solid(tmp_path / split / "B" / f"{i}.png", 200, (12, 10))
    for direction, (cin, cout), (vin, vout) in (("AtoB", (1, 3), (40, 200)), ("BtoA", (3, 1), (200, 40))):
        dm = PairedImageDataModule(root=str(tmp_path), direction=direction, load_size=10, crop_size=8, channels_a=1,
                                   channels_b=3, batch_size=2)
        assert dm.input_shape == (cin, 8, 8) and dm.sample_shape == (cout, 8, 8)  # before setup
        dm.setup("fit")
        for batch in (next(iter(dm.train_dataloader())), next(iter(dm.val_dataloader()))):
            assert set(batch) == {"input", "target"}
            assert batch["input"].shape == (2, cin, 8, 8) and batch["target"].shape == (2, cout, 8, 8)
            assert torch.allclose(batch["input"], torch.tensor(vin / 127.5 - 1), atol=1e-5)
            assert torch.allclose(batch["target"], torch.tensor(vout / 127.5 - 1), atol=1e-5)
        dm.setup("predict")
        predict = list(dm.predict_dataloader())
        assert set(predict[0]) == {"index", "input"} and predict[0]["input"].shape == (2, cin, 8, 8)
        assert torch.cat([b["index"] for b in predict]).tolist() == [0, 1]


def test_paired_input_scale_crops_the_same_window(tmp_path: Path) -> None:
    ramp = _ramp(32, 32)
    _save(ramp, tmp_path / "train" / "A" / "0.png")
    _save(np.asarray(Image.fromarray(ramp).resize((8, 8), Image.BILINEAR)), tmp_path / "train" / "B" / "0.png")
    dm = PairedImageDataModule(root=str(tmp_path), direction="BtoA", load_size=32, crop_size=16, input_scale=4,
                               val_split=None)
    assert dm.input_shape == (3, 4, 4) and dm.sample_shape == (3, 16, 16)
    dm.setup()
    for epoch in range(6):
        item = dm.train_set[(epoch, 0)]
        assert item["input"].shape == (3, 4, 4)
        # A linear ramp downsampled is the same ramp: the low-res crop shows the window of the target crop.
        assert (F.avg_pool2d(item["target"][None], 4)[0] - item["input"]).abs().max() < 0.05


def test_paired_unmatched_names_listed(tmp_path: Path) -> None:
    for name in ("a", "b", "only_in_a1", "only_in_a2"):
        _solid(tmp_path / "train" / "A" / f"{name}.png", 1)
    for name in ("a", "b", "only_in_b"):
        _solid(tmp_path / "train" / "B" / f"{name}.png", 1)
    with pytest.raises(ValueError, match=r"only in A: only_in_a1, only_in_a2; only in B: only_in_b"):
        PairedImageDataModule(root=str(tmp_path), val_split=None).setup()


def test_paired_missing_folders_and_unreadable_image(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'.*nope' does not exist"):
        PairedImageDataModule(root=str(tmp_path / "nope")).setup()
    _solid(tmp_path / "train" / "0.png", 1, (16, 8))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "val"))):
        PairedImageDataModule(root=str(tmp_path)).setup()  # val_split defaults to "val"
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "test"))):
        PairedImageDataModule(root=str(tmp_path), val_split=None).setup("predict")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "train" / "A"))):
        PairedImageDataModule(root=str(tmp_path), layout="folders", val_split=None).setup()
    bad = tmp_path / "train" / "1.png"
    bad.write_bytes(b"not an image")
    dm = PairedImageDataModule(root=str(tmp_path), load_size=4, crop_size=4, val_split=None)
    dm.setup()
    with pytest.raises(RuntimeError, match=re.escape(str(bad))):
        list(dm.train_dataloader())
    with pytest.raises(ValueError, match="load_size"):
        PairedImageDataModule(root=str(tmp_path), load_size=8, crop_size=16)
    with pytest.raises(ValueError, match="channels_b"):
        PairedImageDataModule(root=str(tmp_path), channels_b=2)


# ---------------------------------------------------------------- unpaired folders


def _unpaired_root(root: Path, n_a: int, n_b: int, splits: tuple[str, ...] = ("train", "test")) -> Path:
    for split in splits:  # every file a solid value that identifies it: A i -> 10 + i, B j -> 100 + j
        for i in range(n_a):
            _solid(root / f"{split}A" / f"{i:02d}.png", 10 + i)
        for j in range(n_b):
            _solid(root / f"{split}B" / f"{j:02d}.png", 100 + j)
    return root


def _ids(t: torch.Tensor) -> list[int]:
    return [round((float(x.mean()) + 1) * 127.5) for x in t]


def test_unpaired_epoch_is_max_and_covers_both_sides(tmp_path: Path) -> None:
    dm = UnpairedImageDataModule(root=str(_unpaired_root(tmp_path, 3, 7)), load_size=8, crop_size=8, batch_size=1)
    assert dm.input_shape == dm.sample_shape == (3, 8, 8)
    dm.setup("fit")
    for epoch in range(3):
        batches = _epoch(dm.train_dataloader(), epoch)
        a_ids = [i for b in batches for i in _ids(b["A"])]
        b_ids = [i for b in batches for i in _ids(b["B"])]
        assert len(batches) == 7 and sorted(b_ids) == list(range(100, 107))
        counts = np.bincount(np.array(a_ids) - 10)
        assert len(counts) == 3 and counts.min() >= 2  # the smaller side cycles: every image, twice or more
    sampler = UnpairedSampler(3, 7, seed=0)
    first = list(sampler)
    assert sorted(p for _, p, _, _ in first) == list(range(7))
    sampler.set_epoch(1)
    assert [t[2:] for t in sampler] != [t[2:] for t in first]  # a new epoch, a new order on both sides
    dm.setup("predict")
    predict = list(dm.predict_dataloader())
    assert set(predict[0]) == {"index", "A"} and _ids(torch.cat([b["A"] for b in predict])) == [10, 11, 12]


def test_unpaired_sides_shuffled_independently_and_deterministic() -> None:
    orders = [[t[2:] for t in UnpairedSampler(50, 50, seed=s)] for s in (0, 0, 1)]
    assert orders[0] == orders[1] and orders[0] != orders[2]
    a, b = zip(*orders[0], strict=True)
    assert sorted(a) == sorted(b) == list(range(50)) and a != b


@pytest.mark.parametrize("sampler_cls", [EpochItemSampler, UnpairedSampler])
def test_samplers_shard_like_the_base_under_ddp(sampler_cls: type) -> None:
    def make(**shard):  # noqa: ANN003, ANN202
        return sampler_cls(10, 7, seed=5, **shard) if sampler_cls is UnpairedSampler else sampler_cls(10, 5, **shard)

    single = list(make(batch_size=4))  # one process, global batch 4 = two ranks of batch 2
    ranks = [list(make(num_replicas=2, rank=r, batch_size=2)) for r in range(2)]
    interleaved = [x for k in range(2) for r in range(2) for x in ranks[r][2 * k:2 * k + 2]]
    assert len(ranks[0]) == len(ranks[1]) == len(make(num_replicas=2, rank=0, batch_size=2)) == 4
    assert interleaved == single[:8]


def test_unpaired_missing_domain_folder(tmp_path: Path) -> None:
    _unpaired_root(tmp_path, 2, 2, splits=("train",))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "testA"))):
        UnpairedImageDataModule(root=str(tmp_path)).setup("fit")  # val_split defaults to "test"
    (tmp_path / "trainB" / "00.png").unlink()
    (tmp_path / "trainB" / "01.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"no images .* under '.*trainB'"):
        UnpairedImageDataModule(root=str(tmp_path), val_split=None).setup("fit")


# ---------------------------------------------------------------- resume


def _datamodules(tmp_path: Path) -> dict[str, L.LightningDataModule]:
    for i in range(10):
        _save(np.concatenate([_ramp(12, 12)] * 2, axis=1), tmp_path / "paired" / "train" / f"{i}.png")
    return {
        "paired": PairedImageDataModule(root=str(tmp_path / "paired"), load_size=12, crop_size=8, val_split=None,
                                        batch_size=2),
        "unpaired": UnpairedImageDataModule(root=str(_unpaired_root(tmp_path / "unpaired", 4, 9)), load_size=8,
                                            crop_size=4, batch_size=2),
        "embedded": EmbeddedUnpairedDataModule("brick2gravel", patch_size=8, patches_per_epoch=10, val_patches=2,
                                               batch_size=2),
    }


@pytest.mark.parametrize("kind", ["paired", "unpaired", "embedded"])
def test_mid_epoch_resume_of_the_train_loader(tmp_path: Path, kind: str) -> None:
    dm = _datamodules(tmp_path)[kind]
    dm.setup("fit")
    full = [_epoch(dm.train_dataloader(), e) for e in range(2)]
    again = _datamodules(tmp_path)[kind]
    again.setup("fit")
    _assert_same_batches(full[1], _epoch(again.train_dataloader(), 1))  # deterministic across instances
    resumed = again.train_dataloader()
    resumed.load_state_dict({"epoch": 1, "batches": 2})  # what Lightning restores from a checkpoint
    _assert_same_batches(_epoch(resumed, 1), full[1][2:])
    _assert_same_batches(_epoch(resumed, 2)[:1], _epoch(dm.train_dataloader(), 2)[:1])  # next epoch: from its start


class _BatchRecorder(L.LightningModule):
    """Trains nothing; records a fingerprint of every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[float] = []

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.seen.append(sum(float(v.double().mul(i + 1).sum()) for i, (_, v) in enumerate(sorted(batch.items()))))
        return self.weight.square().sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _SaveAt(L.Callback):
    def __init__(self, step: int, path: Path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)


@pytest.mark.parametrize("kind", ["paired", "unpaired", "embedded"])
def test_trainer_resumed_mid_epoch_sees_the_same_batches(tmp_path: Path, kind: str) -> None:
    ckpt = tmp_path / "mid.ckpt"
    full, resumed = _BatchRecorder(), _BatchRecorder()
    # paired and embedded: 5 batches an epoch, unpaired: 4 (9 B images); step 7 is in the middle of an epoch
    make_trainer(tmp_path / "full", max_steps=12, callbacks=[_SaveAt(7, ckpt)]).fit(full, _datamodules(tmp_path)[kind])
    make_trainer(tmp_path / "resumed", max_steps=12).fit(resumed, _datamodules(tmp_path)[kind], ckpt_path=str(ckpt))
    assert len(full.seen) == 12 and resumed.seen == full.seen[7:]


def test_epoch_item_sampler_and_seeded_generator() -> None:
    sampler = EpochItemSampler(6, seed=3)
    sampler.set_epoch(2)
    items = list(sampler)
    assert {e for e, _ in items} == {2} and sorted(i for _, i in items) == list(range(6))
    sampler.resume_at = (2, 4)
    assert list(sampler) == items[4:]
    assert torch.equal(torch.rand(3, generator=seeded_generator(1, 2, 3)), torch.rand(3, generator=seeded_generator(1, 2, 3)))
    assert not torch.equal(torch.rand(3, generator=seeded_generator(1, 2, 3)), torch.rand(3, generator=seeded_generator(1, 3, 2)))


# ---------------------------------------------------------------- embedded tasks


EMBEDDED_TASKS = ("edges2photo", "gray2color", "sr4x", "inpaint", "inpaint_free")  # inpaint_free: free_form masks


@pytest.fixture(scope="module")
def paired_tasks() -> dict[str, EmbeddedPairedDataModule]:
    out = {}
    for task in EMBEDDED_TASKS:
        kind = "free_form" if task == "inpaint_free" else "box"
        dm = EmbeddedPairedDataModule(task.replace("_free", ""), patch_size=32, mask_kind=kind, patches_per_epoch=16,
                                      val_patches=4, batch_size=8, predict_samples=3)
        dm.setup("fit")
        dm.setup("predict")
        out[task] = dm
    return out


@pytest.mark.parametrize("task", EMBEDDED_TASKS)
def test_embedded_paired_shapes_ranges_contract(paired_tasks: dict, task: str) -> None:
    dm = paired_tasks[task]
    keys = {"input", "target", "mask"} if task.startswith("inpaint") else {"input", "target"}
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        assert set(batch) == keys
        assert tuple(batch["input"].shape[1:]) == dm.input_shape and tuple(batch["target"].shape[1:]) == dm.sample_shape
        for x in batch.values():
            assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    predict = list(dm.predict_dataloader())
    assert set(predict[0]) == {"index", "input"} and torch.cat([b["index"] for b in predict]).tolist() == [0, 1, 2]
    expected_in = {"edges2photo": (1, 32, 32), "gray2color": (1, 32, 32), "sr4x": (3, 8, 8)}.get(task, (3, 32, 32))
    assert dm.input_shape == expected_in and dm.sample_shape == (3, 32, 32)


def test_embedded_sr4x_gray2color_edges_semantics(paired_tasks: dict) -> None:
    for item in _train_items(paired_tasks["sr4x"]):
        assert torch.allclose(item["input"], F.avg_pool2d(item["target"][None], 4)[0], atol=1e-6)
    for item in _train_items(paired_tasks["gray2color"]):
        assert torch.allclose(item["input"], ep.luminance(item["target"]), atol=1e-6)
    edges = torch.stack([item["input"] for item in _train_items(paired_tasks["edges2photo"])])
    assert set(edges.unique().tolist()) <= {-1.0, 1.0} and (edges == -1).any()  # black Canny edges on white


@pytest.mark.parametrize("task", ["inpaint", "inpaint_free"])
def test_embedded_inpaint_mask_semantics(paired_tasks: dict, task: str) -> None:
    for item in _train_items(paired_tasks[task]):
        x, y, m = item["input"], item["target"], item["mask"]
        assert m.shape == (1, 32, 32) and set(m.unique().tolist()) <= {0.0, 1.0} and 0 < m.mean() < 0.6
        assert torch.equal(x, y * (1 - m))  # the hole (mask 1) is 0, the rest is the target
        assert (x[:, m[0] == 1] == 0).all() and torch.equal(x[:, m[0] == 0], y[:, m[0] == 0])
        if task == "inpaint":  # a box: the hole is exactly its bounding rectangle
            rows, cols = m[0].any(1).nonzero(), m[0].any(0).nonzero()
            assert m[0, rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()


def test_embedded_determinism_and_fixed_eval_patches() -> None:
    def draw(seed: int, epoch: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        dm = EmbeddedPairedDataModule("sr4x", patch_size=16, patches_per_epoch=8, val_patches=3, seed=seed,
                                      batch_size=4)
        dm.setup()
        return (torch.stack([i["target"] for i in _train_items(dm, epoch)]),
                torch.stack([dm.val_set[i]["target"] for i in range(3)]))

    a, b, c, d = draw(0), draw(0), draw(1), draw(0, epoch=1)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0]) and not torch.equal(a[0], d[0])
    assert torch.equal(a[1], c[1])  # val patches do not depend on the seed
    with pytest.raises(ValueError, match="gray2color"):
        EmbeddedPairedDataModule("gray2color", channels=1)
    with pytest.raises(ValueError, match="task"):
        EmbeddedPairedDataModule("colorize")
    with pytest.raises(ValueError, match="divisible"):
        EmbeddedPairedDataModule("sr4x", patch_size=30)


def test_embedded_photo_splits_are_disjoint() -> None:
    for table in (ep.COLOR_PHOTOS, ep.GRAY_PHOTOS):
        names = [n for split in ep.SPLITS for n in table[split]]
        assert len(names) == len(set(names))
    rows = [set(range(512)[ep.TEXTURE_REGIONS[s][0]]) for s in ep.SPLITS]
    assert not rows[0] & rows[1] and ep.TEXTURE_REGIONS["val"][1].stop <= ep.TEXTURE_REGIONS["test"][1].start


def test_scikit_learn_photos_load_as_photos() -> None:
    """``china`` and ``flower`` are scikit-learn's sample JPEGs, read like the scikit-image photos."""
    from sklearn.datasets import load_sample_image

    for name in ep.SKLEARN_PHOTOS:
        assert name in ep.COLOR_PHOTOS["train"]
        photo = ep.load_photo(name)
        expected = torch.from_numpy(load_sample_image(f"{name}.jpg").astype("float32") / 127.5 - 1).permute(2, 0, 1)
        assert photo.shape == (3, 427, 640) and torch.allclose(photo, expected, atol=1e-6)
        gray = ep.load_photo(name, gray=True)
        assert gray.shape == (1, 427, 640) and torch.allclose(gray, ep.luminance(photo), atol=1e-5)


def test_rotate_hue_turns_colours_about_the_grey_axis() -> None:
    colours = (torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.5  # no clipping
    assert torch.allclose(ep.rotate_hue(colours, 0.0), colours, atol=1e-6)
    # a third of a turn sends R to G, G to B and B to R: output channel c is input channel c - 1
    assert torch.allclose(ep.rotate_hue(colours, 2 * math.pi / 3), colours[[2, 0, 1]], atol=1e-6)
    turned = ep.rotate_hue(colours, 1.0)
    assert torch.allclose(turned.mean(0), colours.mean(0), atol=1e-6)  # brightness kept
    assert torch.allclose((turned - turned.mean(0)).norm(dim=0), (colours - colours.mean(0)).norm(dim=0), atol=1e-5)
    assert not torch.allclose(turned, colours, atol=1e-2)
    assert ep.rotate_hue(torch.ones(3, 2, 2), 1.0).max() <= 1.0  # white stays white (grey axis)


def test_embedded_augmentation_moves_both_sides_alike() -> None:
    """``dihedral`` gives input and target the same flip/turn (the input edges still sit on the target's
    window of the photo); ``hue_rotation`` changes the target's hue only; val patches are never augmented."""
    kwargs = dict(task="edges2photo", patch_size=16, patches_per_epoch=24, val_patches=2, batch_size=4,
                  train_photos=["hubble_deep_field"])
    dm = EmbeddedPairedDataModule(**kwargs, dihedral=True)
    dm.setup()
    photo = ep.load_photo("hubble_deep_field")
    edges = ep.edge_map(photo)
    transforms = [(k, f) for k in range(4) for f in (False, True)]
    seen = set()
    for item in _train_items(dm):
        found = False
        for k, f in transforms:  # undo each candidate transform; the right one gives a window of the photo
            target = item["target"].rot90(-k, (-2, -1))
            target = target.flip(-1) if f else target
            corners = (photo[:, :-15, :-15] == target[:, :1, :1]).all(0).nonzero().tolist()
            for r, c in corners:
                if torch.equal(photo[:, r:r + 16, c:c + 16], target):
                    edge = item["input"].rot90(-k, (-2, -1))
                    assert torch.equal(edges[:, r:r + 16, c:c + 16], edge.flip(-1) if f else edge)
                    found = True
                    seen.add((k, f))
        assert found
    assert len(seen) > 2  # several transforms drawn, not only the identity

    plain = EmbeddedPairedDataModule(**kwargs)
    hue = EmbeddedPairedDataModule(**kwargs, hue_rotation=True)
    plain.setup()
    hue.setup()
    a, b = _train_items(plain)[0], _train_items(hue)[0]
    assert torch.equal(a["input"], b["input"]) and not torch.allclose(a["target"], b["target"], atol=1e-3)
    assert torch.allclose(a["target"].mean(0), b["target"].mean(0), atol=0.05)  # brightness kept (up to clipping)
    assert torch.equal(plain.val_set[0]["target"], hue.val_set[0]["target"])
    assert torch.equal(plain.val_set[0]["target"], dm.val_set[0]["target"])


def test_embedded_train_photos_subset() -> None:
    """``train_photos`` cuts training patches from the named photos only; val and test keep theirs."""
    dm = EmbeddedPairedDataModule("gray2color", patch_size=16, patches_per_epoch=32, val_patches=2, batch_size=4,
                                  train_photos=["hubble_deep_field"])
    dm.setup()
    hubble = ep.load_photo("hubble_deep_field")
    for item in _train_items(dm):  # each patch is a window of the one photo kept
        patch = item["target"]
        corners = (hubble[:, :-15, :-15] == patch[:, :1, :1]).all(0).nonzero().tolist()  # where its corner is
        assert any(torch.equal(hubble[:, r:r + 16, c:c + 16], patch) for r, c in corners)
    full = EmbeddedPairedDataModule("gray2color", patch_size=16, patches_per_epoch=32, val_patches=2, batch_size=4)
    full.setup()
    assert torch.equal(dm.val_set[0]["target"], full.val_set[0]["target"])
    for bad in (["chelsea"], ["coffee"], ["coins"], ["clock"], [], ["astronaut", "nope"]):  # test, val, empty, unknown
        with pytest.raises(ValueError, match="data.train_photos"):
            EmbeddedPairedDataModule("edges2photo", train_photos=bad)


def test_embedded_gray_train_photo_in_colour_task() -> None:
    """A gray train photo named in a colour task's ``train_photos`` is used with R = G = B."""
    dm = EmbeddedPairedDataModule("edges2photo", patch_size=16, patches_per_epoch=8, val_patches=2, batch_size=4,
                                  train_photos=["camera"])
    dm.setup()
    camera = ep.load_photo("camera")
    for item in _train_items(dm):
        target = item["target"]
        assert target.shape == (3, 16, 16) and torch.equal(target[0], target[1]) and torch.equal(target[0], target[2])
        corners = (camera[0, :-15, :-15] == target[0, 0, 0]).nonzero().tolist()
        assert any(torch.equal(camera[0, r:r + 16, c:c + 16], target[0]) for r, c in corners)
    assert ep.photo_names("train", 3) == ep.COLOR_PHOTOS["train"]  # not in the colour default


def test_embedded_unpaired_true_mapping() -> None:
    dm = EmbeddedUnpairedDataModule("photo2transformed", patch_size=16, patches_per_epoch=8, val_patches=2,
                                    batch_size=4)
    assert dm.input_shape == dm.sample_shape == (3, 16, 16)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"A", "B"} and batch["A"].shape == batch["B"].shape == (4, 3, 16, 16)
    mapped = dm.true_mapping(batch["A"])
    assert mapped.shape == batch["A"].shape and mapped.min() >= -1 and mapped.max() <= 1
    # B really is the image of photos under the mapping: inverting it gives valid photos again.
    matrix = torch.tensor(ep.COLOR_MATRICES["mix"])
    assert torch.allclose(torch.einsum("oc,nchw->nohw", matrix, batch["A"]), mapped)
    back = torch.einsum("oc,nchw->nohw", torch.linalg.inv(matrix), batch["B"])
    assert back.min() >= -1 - 1e-4 and back.max() <= 1 + 1e-4 and not torch.allclose(back, batch["B"], atol=0.05)
    assert EmbeddedUnpairedDataModule("brick2gravel").true_mapping is None
    assert torch.equal(ep.color_transform(torch.eye(3).view(1, 3, 3, 1), "permute")[0, :, :, 0],
                       torch.tensor([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]]))


# ---------------------------------------------------------------- write-out round trips


@pytest.mark.parametrize("task, layout, channels", [("gray2color", "aligned", 3), ("inpaint", "folders", 1),
                                                     ("sr4x", "folders", 3)])
def test_embedded_paired_write_out_round_trip(tmp_path: Path, task: str, layout: str, channels: int) -> None:
    dm = EmbeddedPairedDataModule(task, patch_size=16, channels=channels, patches_per_epoch=4, val_patches=2,
                                  batch_size=2)
    dm.setup("fit")
    dm.setup("predict")
    dm.write_folders(str(tmp_path), layout=layout)
    scale = 4 if task == "sr4x" else 1
    back = PairedImageDataModule(root=str(tmp_path), layout=layout, load_size=16, crop_size=16, input_scale=scale,
                                 channels_a=dm.input_shape[0], channels_b=dm.sample_shape[0], flip=False, batch_size=2)
    assert back.input_shape == dm.input_shape and back.sample_shape == dm.sample_shape
    back.setup("fit")
    back.setup("predict")
    pairs = [(_train_items(dm), _train_items(back)), ([dm.val_set[i] for i in range(2)], [back.val_set[i] for i in range(2)])]
    for ours, theirs in pairs:
        for a, b in zip(ours, theirs, strict=True):
            for key in ("input", "target"):
                torch.testing.assert_close(a[key], b[key], atol=0.5 / 127.5 + 1e-6, rtol=0)
    predicted = torch.cat([b["input"] for b in back.predict_dataloader()])
    expected = torch.cat([b["input"] for b in dm.predict_dataloader()])
    torch.testing.assert_close(predicted, expected, atol=0.5 / 127.5 + 1e-6, rtol=0)
    if task == "inpaint":
        assert len(list((tmp_path / "train" / "mask").iterdir())) == 4


def test_embedded_unpaired_write_out_round_trip(tmp_path: Path) -> None:
    dm = EmbeddedUnpairedDataModule("brick2gravel", patch_size=8, patches_per_epoch=4, val_patches=3, batch_size=2)
    dm.setup()
    dm.write_folders(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["testA", "testB", "trainA", "trainB", "valA", "valB"]
    back = UnpairedImageDataModule(root=str(tmp_path), load_size=8, crop_size=8, channels_a=1, channels_b=1,
                                   val_split="val", batch_size=2)
    back.setup()
    for i in range(3):
        for key in ("A", "B"):
            torch.testing.assert_close(back.val_set[i][key], dm.val_set[i][key], atol=0.5 / 127.5 + 1e-6, rtol=0)
