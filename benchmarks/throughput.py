"""Training throughput (images per second) of presets in fp32, bf16-mixed, channels_last and compiled.

What is measured:
    Each preset is built exactly as ``train.py fit --config configs/<preset>.yaml`` builds it (the
    same CLI, in-process) and trained for ``--warmup + --batches`` batches in each mode:

    * ``fp32``: as written;
    * ``bf16-mixed``: ``--trainer.precision bf16-mixed`` (autocast to bfloat16, float32 weights);
    * ``channels_last``: fp32 with the :class:`callbacks.ChannelsLast` callback (NHWC weights and inputs);
    * ``bf16+channels_last``;
    * ``compiled``: ``--model.init_args.compile true`` (``torch.compile`` of G and D with inductor;
      steps with gradient penalties run D eagerly); the compile time falls in the warm-up.

    The time of each batch (one D step and, every ``n_critic`` batches, a G step; logging, EMA and
    the loop included; metrics and sample-grid callbacks removed) is taken between the start and
    the end of the batch; reported is ``batch_size / median batch time`` in training images per
    second, and each mode's ratio to fp32 measured in the same run. Modes are interleaved over
    ``--rounds`` rounds so that background load is shared.

Run:  python benchmarks/throughput.py [--presets dcgan_digits stylegan_digits r3gan_digits]
                                      [--accelerator gpu] [--batch-size 64] [--batches 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datamodules.base import GANDataModule  # noqa: E402
from gan_modules.base import GANModule  # noqa: E402
from train import GANCLI  # noqa: E402

MODES = {
    "fp32": [],
    "bf16-mixed": ["--trainer.precision=bf16-mixed"],
    "channels_last": ["--trainer.callbacks+=callbacks.ChannelsLast"],
    "bf16+channels_last": ["--trainer.precision=bf16-mixed", "--trainer.callbacks+=callbacks.ChannelsLast"],
    "compiled": ["--model.init_args.compile=true"],
}


class BatchTimer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self._start = warmup, [], 0.0

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self._sync()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self._sync()
        if batch_idx >= self.warmup:
            self.times.append(time.perf_counter() - self._start)


def measure(preset: str, mode: str, args: argparse.Namespace, root: Path) -> float:
    """Training images per second of one preset in one mode."""
    cli_args = ["--config", str(ROOT / "configs" / f"{preset}.yaml"), f"--trainer.default_root_dir={root}",
                f"--trainer.accelerator={args.accelerator}", "--trainer.devices=1", "--trainer.logger=false",
                "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false", "--trainer.limit_val_batches=0",
                "--trainer.num_sanity_val_steps=0", "--trainer.callbacks=[]", "--trainer.max_epochs=-1",
                "--trainer.max_steps=-1", f"--trainer.limit_train_batches={args.warmup + args.batches}",
                "--trainer.max_epochs=1", "--model.init_args.max_generator_steps=null",
                f"--data.init_args.batch_size={args.batch_size}", *MODES[mode]]
    cli = GANCLI(GANModule, GANDataModule, subclass_mode_model=True, subclass_mode_data=True,
                 auto_configure_optimizers=False, run=False, args=cli_args, save_config_callback=None)
    timer = BatchTimer(args.warmup)
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return args.batch_size / statistics.median(timer.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["dcgan_digits", "stylegan_digits", "r3gan_digits"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--accelerator", default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    device = torch.cuda.get_device_name(0) if args.accelerator == "gpu" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {device}; torch {torch.__version__}; batch {args.batch_size}, {args.batches} timed batches after "
          f"{args.warmup} warm-up, {args.rounds} round(s)")
    print("| preset | " + " | ".join(args.modes) + " |")
    print("|---|" + "---|" * len(args.modes))
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            if not (ROOT / "configs" / f"{preset}.yaml").is_file():
                print(f"| {preset} | (no such preset) |")
                continue
            results: dict[str, list[float]] = {m: [] for m in args.modes}
            for r in range(args.rounds):
                order = args.modes if r % 2 == 0 else list(reversed(args.modes))
                for mode in order:
                    results[mode].append(measure(preset, mode, args, Path(tmp) / f"{preset}_{mode}_{r}"))
            base = statistics.median(results[args.modes[0]])
            cells = [f"{statistics.median(results[m]):.0f} img/s ({statistics.median(results[m]) / base:.2f}x)"
                     for m in args.modes]
            print(f"| {preset} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
