"""The presets in configs/ and the overrides that let any of them run in a test.

Presets for public datasets (an image folder the user brings, CIFAR-10 through torchvision) cannot
find their data here. For those, the tests write a tiny stand-in dataset of the same layout at 32 px,
point the preset at it, shrink the batch and narrow the networks (``SMALL_NETWORKS``: fewer channels,
same classes and depth); the losses, optimizers, schedules and trainer settings run as written.
``tests/test_presets_full_size.py`` builds those networks at their full size.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from PIL import Image

from datamodules.base import GANDataModule
from gan_modules.base import GANModule
from train import GANCLI

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


def light_metrics_config(config: Path, tmp_path: Path) -> Path:
    """A copy of ``config`` whose ``GenerativeMetrics`` callbacks score 100 samples instead of thousands.

    Everything else is as written. Callbacks scoring with the FID Inception network are dropped: its
    weights file is not on this machine (the callback's error for that is tested in test_extractors).
    """
    data = yaml.safe_load(config.read_text())
    kept = []
    for callback in (data.get("trainer") or {}).get("callbacks") or []:
        if str(callback.get("class_path", "")).endswith("GenerativeMetrics"):
            init = callback.setdefault("init_args", {})
            if "FIDInceptionV3" in str(init.get("extractor")):
                continue
            init.update(num_samples=100, num_real=200, kid_subsets=5, kid_subset_size=50)
        if str(callback.get("class_path", "")).endswith("TextImageMetrics"):
            callback.setdefault("init_args", {}).update(num_samples=200, kid_subsets=5, kid_subset_size=50)
        kept.append(callback)
    if data.get("trainer") and "callbacks" in data["trainer"]:
        data["trainer"]["callbacks"] = kept
    out = tmp_path / "configs" / config.name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def uses_inception(config: Path) -> bool:
    """Whether ``config``'s callbacks score with the FID Inception network (its weights file is not here)."""
    return "FIDInceptionV3" in config.read_text()


def needs_standin(config: Path) -> bool:
    """Whether ``config`` reads a public dataset that the tests replace with a stand-in folder."""
    return str(_data_config(config).get("class_path", "")).rsplit(".", 1)[-1] in STANDIN_CLASSES


# GPU-scale presets run here at 32 px with narrower networks: their losses, schedules, optimizers and
# trainer settings as written, their network classes and depth, fewer channels. Their full-size
# networks are built and run once in tests/test_presets_full_size.py.
SMALL_NETWORKS: dict[str, list[str]] = {
    "progan_celeba128": ["--model.init_args.generator.init_args.max_channels=32",
                         "--model.init_args.discriminator.init_args.max_channels=32",
                         "--model.init_args.batch_sizes={4: 4, 8: 2}"],  # the per-resolution switch, small
    "r3gan_cifar10": [f"--model.init_args.{net}.init_args.{key}={value}" for net in ("generator", "discriminator")
                      for key, value in (("widths", "[32]"), ("cardinalities", "[4]"))],
    "r3gan_ffhq256": [f"--model.init_args.{net}.init_args.{key}={value}" for net in ("generator", "discriminator")
                      for key, value in (("widths", "[32]"), ("cardinalities", "[4]"))],
    "stylegan2_cifar10": ["--model.init_args.generator.init_args.channel_max=32",
                          "--model.init_args.discriminator.init_args.channel_max=32"],
    "stylegan2_ffhq256": ["--model.init_args.generator.init_args.channel_max=32",
                          "--model.init_args.discriminator.init_args.channel_max=32"],
    "pix2pix_facades": ["--model.init_args.generator.init_args.base_channels=16",
                        "--model.init_args.discriminator.init_args.base_channels=16"],
    "cyclegan_horse2zebra": ["--model.init_args.generator.init_args.base_channels=16",
                             "--model.init_args.discriminator.init_args.base_channels=16"],
}
SMALL_SIZE = 32


def data_overrides(config: Path, tmp_path: Path, batch_size: int | None = None, full_size: bool = False) -> list[str]:
    """CLI overrides that make ``config`` runnable here.

    A preset for a public dataset gets a stand-in dataset of the same layout and, unless
    ``full_size``, its :data:`SMALL_NETWORKS` overrides and 32-px images. ``batch_size`` sets the batch.
    """
    data = _data_config(config)
    cls = str(data.get("class_path", "")).rsplit(".", 1)[-1]
    init = data.get("init_args") or {}
    small = not full_size and cls in STANDIN_CLASSES
    size = SMALL_SIZE if small else int(init.get("image_size") or init.get("crop_size") or 32)
    load = size + size // 8 if small else int(init.get("load_size") or size)
    out: list[str] = list(SMALL_NETWORKS.get(config.stem, [])) if small else []
    root = tmp_path / "standin"
    if cls == "ImageFolderDataModule":
        _write_images(root / "class0", 24, size, 0)
        out += [f"--data.init_args.root={root}", f"--data.init_args.image_size={size}", "--data.init_args.num_workers=0"]
    elif cls == "PairedImageDataModule":
        for split in ("train", "val", "test"):
            for side in ("A", "B"):
                _write_images(root / split / side, 6, load, 1)
        out += [f"--data.init_args.root={root}", "--data.init_args.layout=folders",
                f"--data.init_args.load_size={load}", f"--data.init_args.crop_size={size}"]
    elif cls == "UnpairedImageDataModule":
        for split in ("trainA", "trainB", "testA", "testB"):
            _write_images(root / split, 6, load, 2)
        out += [f"--data.init_args.root={root}", f"--data.init_args.load_size={load}", f"--data.init_args.crop_size={size}"]
    elif cls == "TorchvisionDataModule":
        # CIFAR-10 and CelebA cannot be downloaded here: the same shapes from an image folder
        _write_images(root / "class0", 24, size, 3)
        out += ["--data=datamodules.ImageFolderDataModule", f"--data.init_args.root={root}",
                f"--data.init_args.image_size={size}", "--data.init_args.num_workers=0"]
    generator = ((yaml.safe_load(config.read_text()) or {}).get("model") or {}).get("init_args", {}).get("generator", {})
    if str(generator.get("class_path", "")).endswith("StackGANStage2Generator"):
        out.append(f"--model.init_args.generator.init_args.stage1_checkpoint={stage1_checkpoint(tmp_path)}")
    if batch_size is not None:
        out.append(f"--data.init_args.batch_size={batch_size}")
        if init.get("total_batch_size") is not None:  # a preset's total batch would override the test's
            out.append("--data.init_args.total_batch_size=null")
    return out


def stage1_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint of an untrained Stage-I generator as configs/stackgan_stage1_shapes.yaml builds it (what a
    Stage-II preset reads; the tests do not train Stage-I first)."""
    from gan_modules.nets.stackgan import StackGANStage1Generator

    path = tmp_path / "stage1.ckpt"
    if not path.is_file():
        preset = yaml.safe_load((ROOT / "configs" / "stackgan_stage1_shapes.yaml").read_text())
        torch.manual_seed(0)
        generator = StackGANStage1Generator(**preset["model"]["init_args"]["generator"]["init_args"])
        torch.save({"state_dict": {f"generator.{k}": v for k, v in generator.state_dict().items()},
                    "gan": {"generator_spec": generator.init_spec, "generator_key": "generator"}}, path)
    return path


class Losses(L.Callback):
    def __init__(self) -> None:
        self.values: list[tuple[int, dict[str, float]]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        losses = {k: float(v) for k, v in (outputs or {}).items() if k.startswith("loss")}
        self.values.append((pl_module.discriminator_steps, losses))


def fit_in_process(config: Path, root: Path, steps: int, extra: list[L.Callback], ckpt: Path | None, overrides: list[str]):
    """Fits ``config`` in-process for ``steps`` generator steps (epochs of 3 batches, no callbacks but
    ``extra``), from ``ckpt`` when given; returns the module and the per-batch losses."""
    args = ["--config", str(config), f"--trainer.default_root_dir={root}", "--trainer.accelerator=cpu",
            "--trainer.devices=1", "--trainer.logger=false", "--trainer.enable_checkpointing=false",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0",
            "--trainer.callbacks=[]", "--trainer.max_steps=-1", "--trainer.max_epochs=-1",
            f"--model.init_args.max_generator_steps={steps}", *overrides]
    cli = GANCLI(GANModule, GANDataModule, subclass_mode_model=True, subclass_mode_data=True,
                 auto_configure_optimizers=False, run=False, args=args, save_config_callback=None)
    losses = Losses()
    cli.trainer.callbacks.extend([losses, *extra])
    if ckpt is not None:
        torch.manual_seed(12345)  # a different global RNG: the checkpoint must restore it
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=str(ckpt) if ckpt else None)
    return cli.model, losses.values
