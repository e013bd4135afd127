"""Translation quality of every embedded translation preset at one CPU-time budget, against a trivial baseline.

What is measured:
    Each preset trained on a scikit-image photo task (``pix2pix_edges2photo``, ``srgan_sr4x``,
    ``inpaint_photos``, ``cyclegan_photo2transformed``; ``--only`` picks some) runs ``train.py fit`` in
    a subprocess for ``--minutes`` of wall-clock time (``--trainer.max_time``; the preset's
    ``max_generator_steps`` is lifted, so the budget alone stops it), with ``--threads`` torch threads.
    The last checkpoint's generator (``gan_modules.load_generator``) then translates the task's
    held-out test patches (``val_patches`` of them, drawn from photos no training patch comes from,
    with a fixed seed), and the outputs are scored against the truth with L1 (on ``[-1, 1]``), PSNR (dB)
    and SSIM (torchmetrics, images mapped to ``[0, 1]``), averaged per image:

    * paired tasks: against the target; the baseline is the input itself (grey input repeated to
      RGB, the hole left at 0), or bicubic upsampling for super-resolution;
    * ``cyclegan_photo2transformed``: the A->B output against the TRUE colour mapping applied to A
      (the datamodule's ``true_mapping``), which CycleGAN never sees; the baseline is A unchanged.

    ``--val`` adds a row per checkpoint scored the same way on the val photo's patches (the photo ``val/l1``
    is logged on), to check a choice made while looking at the test photo on another held-out photo.

    ``--select`` adds, for the paired presets, a second row from the same run: the checkpoint with the
    lowest validation L1 (``val/l1``, logged at every validation on the val photo, which is neither a
    training nor the test photo), the usual model selection for a run whose test scores swing.

    Dropout stays on in pix2pix's U-Net at inference (its noise), so the outputs are seeded.
    ``train s`` is the wall-clock of ``train.py fit`` (start-up, sample grids and validation included).

Usage::

    python benchmarks/translation_quality.py                    # every preset, 10 minutes each
    python benchmarks/translation_quality.py --minutes 5 --only srgan_sr4x
    python benchmarks/translation_quality.py --quick            # a few steps: checks that the script works
    python benchmarks/translation_quality.py --minutes 8 --jobs 2 --threads 1   # two at a time on 2 cores
    # an ablation with a learning curve, kept out of docs/results.md:
    python benchmarks/translation_quality.py --only srgan_sr4x --curve 100 --out runs/ablation.md \
        --set=--model.init_args.adversarial_weight=0.001
    # the same checkpoints scored on the val photo too (rows marked [val photo]):
    python benchmarks/translation_quality.py --only pix2pix_edges2photo --val --out runs/val.md

The table goes to stdout and, except with ``--quick``, into the ``translation_quality`` section of
``docs/results.md`` (``--out`` names another file, and makes ``--quick`` write too).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch import Callback
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import RESULTS, machine, write_section  # noqa: E402
from datamodules import EmbeddedPairedDataModule  # noqa: E402
from gan_modules import load_generator  # noqa: E402

PRESETS = ("pix2pix_edges2photo", "srgan_sr4x", "inpaint_photos", "cyclegan_photo2transformed")
SELECT_BY = "val/l1"  # logged by the paired families (TranslationModule), on their EMA generator if any


def train(config: Path, run_dir: Path, minutes: float, threads: int, quick: bool, extra: Sequence[str] = (),
          curve: int | None = None, select: bool = False) -> float:
    """Runs ``train.py fit`` on a preset in a subprocess for the budget; returns its wall-clock seconds.

    ``extra`` are more ``train.py`` arguments (after the budget's, so they win); ``curve`` adds
    :class:`ScoreCurve` every ``curve`` generator steps, writing ``run_dir/curve.jsonl``; ``select``
    also keeps ``checkpoints/best.ckpt``, the checkpoint of the lowest validation L1 (``val/l1``, on
    the val photo, never the test one) among the validations of the run.
    """
    seconds = int(minutes * 60)
    max_time = f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"  # Lightning's DD:HH:MM:SS
    budget = ["--trainer.max_steps=6"] if quick else [f"--trainer.max_time={max_time}"]
    command = [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(config),
               f"--trainer.default_root_dir={run_dir}", "--model.init_args.max_generator_steps=null", *budget,
               "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    if quick:
        command += ["--trainer.limit_val_batches=1", "--data.init_args.val_patches=8", "--trainer.val_check_interval=3"]
    if curve:
        command += ["--trainer.callbacks+=benchmarks.translation_quality.ScoreCurve", f"--trainer.callbacks.every={curve}",
                    f"--trainer.callbacks.path={run_dir / 'curve.jsonl'}"]
    if select:
        # A config that lists a ModelCheckpoint gets no default one from train.py, so both are listed: the
        # default's twin (last.ckpt at every save) and the best-val one (its save_last would only copy the best)
        checkpoints = run_dir / "checkpoints"
        for extra_args in ([f"--trainer.callbacks.dirpath={checkpoints}", "--trainer.callbacks.save_last=true"],
                           [f"--trainer.callbacks.dirpath={checkpoints}", f"--trainer.callbacks.monitor={SELECT_BY}",
                            "--trainer.callbacks.mode=min", "--trainer.callbacks.save_top_k=1",
                            "--trainer.callbacks.filename=best"]):
            command += ["--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint", *extra_args,
                        "--trainer.callbacks.enable_version_counter=false"]
    command += list(extra)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    return seconds


def test_data(config: Path, quick: bool, val: bool = False):
    """The preset's datamodule, set up for its held-out test patches (and, with ``val``, its val patches)."""
    data = yaml.safe_load(config.read_text())["data"]
    module, _, name = data["class_path"].rpartition(".")
    init_args = dict(data.get("init_args", {}))
    if quick:
        init_args["val_patches"] = 16
    datamodule = getattr(importlib.import_module(module), name)(**init_args)
    datamodule.setup("test")
    if val:
        datamodule.setup("fit")  # the val photo's patches (it builds the training set too, lazily drawn)
    return datamodule


def scores(outputs: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Mean per-image L1 (on ``[-1, 1]``), PSNR (dB, data range 2) and SSIM (on ``[0, 1]``)."""
    outputs, truth = outputs.clamp(-1, 1).double(), truth.double()
    return {"l1": float((outputs - truth).abs().mean()),
            "psnr": float(peak_signal_noise_ratio(outputs, truth, data_range=2.0, dim=(1, 2, 3))),
            "ssim": float(structural_similarity_index_measure((outputs + 1) / 2, (truth + 1) / 2, data_range=1.0))}


def baseline(batch: dict[str, torch.Tensor], target_shape: torch.Size) -> torch.Tensor:
    """The trivial translation: the input itself, resized bicubically and repeated to the target's channels."""
    x = batch["input"] if "input" in batch else batch["A"]
    if x.shape[-2:] != target_shape[-2:]:
        x = F.interpolate(x, size=tuple(target_shape[-2:]), mode="bicubic", align_corners=False).clamp(-1, 1)
    if x.shape[1] != target_shape[1]:
        x = x.expand(-1, target_shape[1], -1, -1)
    return x


def translate_test_set(datamodule, translate, seed: int,
                       split: str = "test") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(outputs, trivial translations, truths) of the test (or ``split="val"``) patches; ``translate(batch)``
    gives the outputs."""
    mapping = getattr(datamodule, "true_mapping", None)
    outputs, trivial, truths = [], [], []
    loader = datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)  # pix2pix's dropout noise
        for batch in loader:
            truth = mapping(batch["A"]) if "A" in batch else batch["target"]
            outputs.append(translate(batch).cpu())
            trivial.append(baseline(batch, truth.shape))
            truths.append(truth)
    return torch.cat(outputs), torch.cat(trivial), torch.cat(truths)


def evaluate(ckpt: Path, datamodule, seed: int, split: str = "test") -> tuple[dict[str, float], dict[str, float], int]:
    """(model scores, baseline scores, generator steps) on the test (or val) patches."""
    generator = load_generator(ckpt)
    steps = int(torch.load(ckpt, map_location="cpu", weights_only=True)["gan"]["generator_steps"])

    def translate(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "A" in batch:
            return generator(batch["A"])
        return generator(batch["input"], batch["mask"]) if "mask" in batch else generator(batch["input"])

    outputs, trivial, truth = translate_test_set(datamodule, translate, seed, split)
    return scores(outputs, truth), scores(trivial, truth), steps


class ScoreCurve(Callback):
    """Scores the test patches every ``every`` generator steps during training (``--curve``).

    Appends one JSON line per evaluation to ``path``: ``{"step", "raw": scores, "ema": scores}`` (``ema``
    when the module keeps an EMA generator), from the module's ``translate`` in eval mode. The
    datamodule's test split is set up on the first call; training's RNG is left untouched. For the
    single-process runs of this script: under DDP every rank would score and append.
    """

    def __init__(self, every: int, path: str, seed: int = 0) -> None:
        self.every, self.path, self.seed, self.done, self.ready = every, Path(path), seed, -1, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.generator_steps
        if step % self.every or step == self.done:
            return
        self.done = step
        datamodule = trainer.datamodule
        if not self.ready:
            datamodule.setup("test")
            self.ready = True
        nets = {"raw": pl_module.generator}
        if pl_module.generator_ema is not None:
            nets["ema"] = pl_module.generator_ema
        record = {"step": step}
        for name, net in nets.items():
            out, _, truth = translate_test_set(datamodule, lambda b, net=net: pl_module.translate(b, net), self.seed)
            record[name] = scores(out, truth)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def curve_table(stem: str, path: Path) -> list[str]:
    """Markdown rows ``| preset | step | L1 | PSNR | SSIM (raw G) | same (EMA G) |`` of a curve file."""
    rows = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        cells = [f"{record[k]['l1']:.4f} / {record[k]['psnr']:.2f} / {record[k]['ssim']:.4f}" if k in record else "–"
                 for k in ("raw", "ema")]
        rows.append(f"| {stem} | {record['step']} | {cells[0]} | {cells[1]} |")
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget per preset")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    parser.add_argument("--only", nargs="*", choices=PRESETS, help="presets to run (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation's dropout noise")
    parser.add_argument("--jobs", type=int, default=1, help="presets trained at the same time (one process each)")
    parser.add_argument("--quick", action="store_true", help="6 steps and 16 test patches per preset")
    parser.add_argument("--out", type=Path, default=None, help=f"results file (default {RESULTS}, not with --quick)")
    parser.add_argument("--set", action="append", default=[], metavar="ARG",
                        help="one more train.py argument for every preset, as --set=--model.init_args.ema_decay=0.99 "
                             "(repeatable): ablations; write them to another --out")
    parser.add_argument("--select", action="store_true",
                        help=f"also score the checkpoint of the best validation {SELECT_BY} (paired presets): a second row")
    parser.add_argument("--val", action="store_true",
                        help="also score each checkpoint on the val photo's patches (a row each, marked 'val photo')")
    parser.add_argument("--curve", type=int, default=None, metavar="N",
                        help="also score the test patches every N generator steps (raw and EMA G): a table per preset")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def run(stem: str) -> str:
        config = ROOT / "configs" / f"{stem}.yaml"
        datamodule = test_data(config, args.quick, args.val)
        select = args.select and isinstance(datamodule, EmbeddedPairedDataModule)  # logs val/l1; CycleGAN does not
        with tempfile.TemporaryDirectory() as tmp:
            seconds = train(config, Path(tmp), args.minutes, args.threads, args.quick, args.set, args.curve, select)
            chosen = {stem: "last.ckpt", **({f"{stem} (best {SELECT_BY})": "best.ckpt"} if select else {})}
            splits = ("test", "val") if args.val else ("test",)
            results = {name + ("" if split == "test" else " [val photo]"):
                       evaluate(Path(tmp) / "checkpoints" / ckpt, datamodule, args.seed, split)
                       for name, ckpt in chosen.items() for split in splits}
            if args.curve:
                curves[stem] = curve_table(stem, Path(tmp) / "curve.jsonl")
        truth = "true mapping" if getattr(datamodule, "true_mapping", None) else "target"
        base = "bicubic" if datamodule.input_shape[1:] != datamodule.sample_shape[1:] else "identity"
        rows = [f"| {name} | {datamodule.task} | {steps} | {model['l1']:.4f} | {model['psnr']:.2f} | "
                f"{model['ssim']:.4f} | {base}: {trivial['l1']:.4f} / {trivial['psnr']:.2f} / {trivial['ssim']:.4f} | "
                f"{truth}, {len(datamodule.test_set)} | {seconds:.0f} |" for name, (model, trivial, steps) in results.items()]
        print("\n".join(rows), flush=True)
        return "\n".join(rows)

    curves: dict[str, list[str]] = {}
    with ThreadPoolExecutor(args.jobs) as pool:  # rows keep the presets' order
        rows = list(pool.map(run, args.only or PRESETS))

    budget = "6 training steps (--quick)" if args.quick else f"{args.minutes:g} min of wall-clock"
    command = "python benchmarks/translation_quality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    markdown = "\n".join([
        "## Translation quality (embedded photo tasks)",
        "",
        f"Command: `{command.strip()}`. Training budget: {budget} per preset, "
        f"{args.threads} torch thread(s) per run, {args.jobs} run(s) at a time. Machine: {machine()}.",
        "",
        "Scores on the held-out test patches (mean per image): L1 on [-1, 1] (lower is better), PSNR in dB "
        "and SSIM (higher is better). The baseline column gives the trivial translation's L1 / PSNR / SSIM: "
        "the input itself (grey repeated to RGB, the hole left at 0) or bicubic upsampling for x4 SR. "
        "CycleGAN is scored against the true colour mapping of A, which it never sees.",
        "",
        "| preset | task | G steps | L1 | PSNR | SSIM | baseline L1 / PSNR / SSIM | truth, patches | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])
    if args.select:
        markdown += (f"\n\n`(best {SELECT_BY})` rows: the same run's checkpoint of the lowest validation L1 "
                     "(EMA generator where there is one; val photo, not the test one), scored on the test patches.")
    if args.val:
        markdown += ("\n\n`[val photo]` rows: the same checkpoint scored on the val photo's patches (the photo that "
                     "`val/l1` is logged on; baseline as for the test patches), a check that a choice made while "
                     "looking at the test photo holds on another held-out photo.")
    if args.set:
        markdown += "\n\nEvery preset ran with " + " ".join(f"`{a}`" for a in args.set) + "."
    if curves:
        markdown += "\n".join(["", "", f"Test scores during training (every {args.curve} G steps), L1 / PSNR / SSIM:", "",
                                "| preset | G step | G | EMA G |", "| --- | --- | --- | --- |",
                                *(row for stem in args.only or PRESETS for row in curves.get(stem, []))])
    print(markdown)
    if args.out is not None or not args.quick:
        path = write_section("translation_quality", markdown, args.out or RESULTS)
        print(f"written to {path}")
    return markdown


if __name__ == "__main__":
    main()
