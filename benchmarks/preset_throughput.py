"""Images per second and peak accelerator memory of a preset at its real size, on stand-in data.

What is measured:
    Each preset is built as ``train.py fit --config configs/<preset>.yaml`` builds it (the same CLI,
    in-process, its networks, losses, lazy-regularization mechanics and total batch as written), with
    its dataset replaced by a folder of random images of the preset's size (the public datasets are
    not needed: speed and memory do not depend on the pixels). Metric and sample-grid callbacks are
    removed. It trains ``--warmup + --batches`` batches on one device; reported are the real images
    the discriminator saw per second over the timed batches (``images_seen``, so R3GAN's extra real
    batch for the generator step is not counted, as the official ``cur_nimg``), the median batch time,
    and ``torch.cuda.max_memory_allocated`` (n/a on CPU).

Run:  python benchmarks/preset_throughput.py --presets stylegan2_cifar10 r3gan_cifar10
          [--batches 20] [--warmup 5] [--total-batch N] [--override=--model.init_args....]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules.base import GANDataModule  # noqa: E402
from gan_modules.base import GANModule  # noqa: E402
from train import GANCLI  # noqa: E402


class BatchTimer(L.Callback):
    """Wall time and images seen of every training batch (synchronised on CUDA)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, int]] = []
        self._start, self._images = 0.0, 0

    def _sync(self, module: L.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self._sync(pl_module)
        self._start, self._images = time.perf_counter(), pl_module.images_seen

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self._sync(pl_module)
        self.rows.append((time.perf_counter() - self._start, pl_module.images_seen - self._images))


def write_standin(folder: Path, count: int, size: int) -> None:
    """``count`` random RGB PNGs of ``size`` px under ``folder/class0``."""
    (folder / "class0").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / "class0" / f"{i:05d}.png")


def measure(preset: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    config = ROOT / "configs" / f"{preset}.yaml"
    data = (yaml.safe_load(config.read_text()).get("data") or {}).get("init_args") or {}
    size = int(data.get("image_size") or 32)
    root = work / preset
    write_standin(root, args.images, size)
    cli_args = ["--config", str(config), f"--trainer.default_root_dir={work / 'runs' / preset}",
                "--trainer.logger=false", "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false", "--trainer.callbacks=[]", "--trainer.limit_val_batches=0",
                "--trainer.num_sanity_val_steps=0", f"--trainer.accelerator={args.accelerator}", "--trainer.devices=1",
                "--trainer.max_steps=-1", "--trainer.max_epochs=-1",
                f"--model.init_args.max_generator_steps={args.warmup + args.batches}", "--model.init_args.max_kimg=null",
                "--data=datamodules.ImageFolderDataModule", f"--data.init_args.root={root}",
                f"--data.init_args.image_size={size}", f"--data.init_args.num_workers={args.workers}"]
    if args.total_batch is not None:
        cli_args.append(f"--data.init_args.total_batch_size={args.total_batch}")
    cli = GANCLI(GANModule, GANDataModule, subclass_mode_model=True, subclass_mode_data=True,
                 auto_configure_optimizers=False, run=False, args=[*cli_args, *args.override], save_config_callback=None)
    timer = BatchTimer()
    cli.trainer.callbacks.append(timer)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    timed = timer.rows[args.warmup:]
    seconds, images = sum(t for t, _ in timed), sum(n for _, n in timed)
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f}" if torch.cuda.is_available() else "n/a"
    return {"preset": preset, "batch": timed[0][1] if timed else 0, "img/s": images / seconds if seconds else 0.0,
            "ms/batch": 1000 * statistics.median(t for t, _ in timed) if timed else 0.0, "peak GiB": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["stylegan2_cifar10", "r3gan_cifar10"])
    parser.add_argument("--accelerator", default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--images", type=int, default=1100, help="stand-in images written per preset")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--total-batch", type=int, default=None, help="override the preset's total batch")
    parser.add_argument("--override", action="append", default=[], help="extra CLI argument (repeatable)")
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device: {device}; torch {torch.__version__}; {args.warmup} warm-up + {args.batches} timed batches")
    print("| preset | images per batch | images/s | ms/batch (median) | peak GiB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            row = measure(preset, args, Path(tmp))
            print(f"| `{row['preset']}` | {row['batch']} | {row['img/s']:.1f} | {row['ms/batch']:.1f} | {row['peak GiB']} |",
                  flush=True)


if __name__ == "__main__":
    main()
