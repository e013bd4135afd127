"""The presets in configs/ and the overrides that let any of them run in a test.

Presets for public datasets (an image folder the user brings, CIFAR-10 through torchvision) cannot
find their data here. For those, the tests write a tiny stand-in dataset of the same layout and
point the preset at it, and shrink the batch; everything else in the preset (model, optimizers,
schedules, trainer settings) runs as written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def _data_config(config: Path) -> dict:
    return (yaml.safe_load(config.read_text()) or {}).get("data") or {}


def _write_images(folder: Path, count: int, size: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")


STANDIN_CLASSES = ("ImageFolderDataModule", "PairedImageDataModule", "UnpairedImageDataModule",
                   "TorchvisionDataModule")


def needs_standin(config: Path) -> bool:
    """Whether ``config`` reads a public dataset that the tests replace with a stand-in folder."""
    return str(_data_config(config).get("class_path", "")).rsplit(".", 1)[-1] in STANDIN_CLASSES


def data_overrides(config: Path, tmp_path: Path, batch_size: int | None = None) -> list[str]:
    """CLI overrides that make ``config`` runnable here: a stand-in dataset when it needs one, and the batch."""
    data = _data_config(config)
    cls = str(data.get("class_path", "")).rsplit(".", 1)[-1]
    init = data.get("init_args") or {}
    size = int(init.get("image_size") or init.get("crop_size") or 32)
    out: list[str] = []
    root = tmp_path / "standin"
    if cls == "ImageFolderDataModule":
        _write_images(root / "class0", 24, size, 0)
        out.append(f"--data.init_args.root={root}")
    elif cls == "PairedImageDataModule":
        for split in ("train", "val", "test"):
            for side in ("A", "B"):
                _write_images(root / split / side, 6, int(init.get("load_size") or size), 1)
        out += [f"--data.init_args.root={root}", "--data.init_args.layout=folders"]
    elif cls == "UnpairedImageDataModule":
        for split in ("trainA", "trainB", "testA", "testB"):
            _write_images(root / split, 6, int(init.get("load_size") or size), 2)
        out.append(f"--data.init_args.root={root}")
    elif cls == "TorchvisionDataModule":
        # CIFAR-10 cannot be downloaded here: the same shapes from an image folder
        _write_images(root / "class0", 24, size, 3)
        out += ["--data=datamodules.ImageFolderDataModule", f"--data.init_args.root={root}",
                f"--data.init_args.image_size={size}"]
    if batch_size is not None:
        out.append(f"--data.init_args.batch_size={batch_size}")
    return out
