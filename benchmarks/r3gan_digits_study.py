"""Why ``r3gan_digits`` trails at its budget: short trainings of preset variants, scored like ``digits_quality``.

What is measured:
    Each variant is ``configs/r3gan_digits.yaml`` (or ``--config``) with ``train.py`` overrides (the
    ``VARIANTS`` table below): the settings the preset had before this study (``BEFORE``) plus one change
    (learning rate, γ, widths, blocks, batch size, lazy R1/R2) or the changes the preset adopted
    (``combined``); ``preset`` is the file as it is. Each is trained with ``train.py fit`` in a subprocess for the same ``--generator-steps``
    (``benchmarks/digits_quality.py``'s ``train``: metric callbacks and validation off). Unless a variant
    sets ``decay_kimg`` itself, its schedules (γ, lr, β2, EMA half-life) are stretched over exactly the
    images the short run sees, so a 400-step run goes through the whole cosine as the 1200-step preset
    does. Both generators of the last checkpoint are scored: the EMA one (what ``load_generator`` and
    the digits table use) and the raw one, each with ``--num-samples`` seeded samples against the 1,438
    training digits in the ``DigitsClassifier``'s features (FID, KID; comparable only with each other
    and at equal sample counts) and its class statistics.

    Each variant's row is also printed to stderr as one JSON line (``--from-log`` rebuilds the table
    from such lines), with ``train_s``, the wall-clock time of its ``train.py fit`` subprocess (start-up
    included), which is left out of the table: it compares variants only on an otherwise idle machine;
    ``benchmarks/step_time.py`` measures the per-step cost of variants side by side.

Usage::

    python benchmarks/r3gan_digits_study.py --quick                       # 10 steps: checks the script works
    python benchmarks/r3gan_digits_study.py --threads 1 --jobs 2          # every variant, 400 steps each
    python benchmarks/r3gan_digits_study.py --only before preset --generator-steps 1200

The table goes to stdout and, with ``--out FILE``, into that file's ``r3gan_digits_study`` section
(``--out docs/results.md`` for the docs; ``--quick`` numbers are never written by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import machine, read_rows, write_section  # noqa: E402
from benchmarks.digits_quality import class_statistics, generate, train  # noqa: E402
from callbacks.metrics.digits_classifier import DigitsClassifier, load_digits_split  # noqa: E402
from evaluate import embed, score  # noqa: E402
from gan_modules import load_generator  # noqa: E402

MODEL = "--model.init_args."


@dataclass(frozen=True)
class Variant:
    """One row of the study: what it tests and the ``train.py`` arguments that make it."""

    what: str
    overrides: list[str] = field(default_factory=list)


BEFORE = ["--data.init_args.batch_size=64", f"{MODEL}lr=0.0002", f"{MODEL}lr_final=0.00005", f"{MODEL}reg_interval=1",
          f"{MODEL}ema_kimg_final=5.0"]
"""The settings ``r3gan_digits.yaml`` had before this study (where it now differs): every study row but
``preset`` starts from them, so the rows keep their meaning whatever the preset file says now."""


def _changed(what: str, *overrides: str) -> Variant:
    return Variant(what, [*BEFORE, *overrides])


VARIANTS: dict[str, Variant] = {
    "before": _changed("the preset before the study: batch 64, lr 2e-4 -> 5e-5, R1 + R2 every step, EMA 0 -> 5 kimg"),
    "lr_x4": _changed("lr 8e-4 -> 2e-4 (4x)", f"{MODEL}lr=0.0008", f"{MODEL}lr_final=0.0002"),
    "lr_x8": _changed("lr 1.6e-3 -> 4e-4 (8x)", f"{MODEL}lr=0.0016", f"{MODEL}lr_final=0.0004"),
    "gamma_low": _changed("gamma 0.01 -> 0.001 (10x lower)", f"{MODEL}gamma=0.01", f"{MODEL}gamma_final=0.001"),
    "wide": _changed("widths 128, 128, 64, 32 (2x), groups of 32", f"{MODEL}generator.init_args.widths=[128,128,64,32]",
                     f"{MODEL}generator.init_args.cardinalities=[8,8,4,2]",
                     f"{MODEL}discriminator.init_args.widths=[128,128,64,32]",
                     f"{MODEL}discriminator.init_args.cardinalities=[8,8,4,2]"),
    "blocks_16px": _changed("a residual block at 16 px too (blocks 1, 1, 1, 0)",
                            f"{MODEL}generator.init_args.blocks=[1,1,1,0]",
                            f"{MODEL}discriminator.init_args.blocks=[1,1,1,0]"),
    "batch32": _changed("batch 32 (not 64)", "--data.init_args.batch_size=32"),
    "lazy4": _changed("R1 and R2 every 4th D step at 4x the weight", f"{MODEL}reg_interval=4"),
    "combined": _changed("lr 8e-4 -> 2e-4, batch 32, R1 and R2 every 4th D step, EMA half-life 0 -> 1 kimg",
                         f"{MODEL}lr=0.0008", f"{MODEL}lr_final=0.0002", "--data.init_args.batch_size=32",
                         f"{MODEL}reg_interval=4", f"{MODEL}ema_kimg_final=1.0"),
    "combined_lr_x8": _changed("as combined, with lr 1.6e-3 -> 4e-4 (8x)", f"{MODEL}lr=0.0016",
                               f"{MODEL}lr_final=0.0004", "--data.init_args.batch_size=32", f"{MODEL}reg_interval=4",
                               f"{MODEL}ema_kimg_final=1.0"),
    "combined_lr_x16": _changed("as combined, with lr 3.2e-3 -> 8e-4 (16x)", f"{MODEL}lr=0.0032",
                                f"{MODEL}lr_final=0.0008", "--data.init_args.batch_size=32", f"{MODEL}reg_interval=4",
                                f"{MODEL}ema_kimg_final=1.0"),
    "preset": Variant("the preset file as it is now"),
}


def batch_size(config: Path, overrides: list[str]) -> int:
    """The per-step batch of a preset after ``overrides``."""
    for item in reversed(overrides):  # the last one wins, as on train.py's command line
        if item.startswith("--data.init_args.batch_size="):
            return int(item.split("=", 1)[1])
    return int(yaml.safe_load(config.read_text())["data"]["init_args"]["batch_size"])


def run_overrides(config: Path, variant: Variant, steps: int) -> list[str]:
    """The variant's overrides, plus ``decay_kimg`` spanning the run unless the variant sets it."""
    if any(item.startswith(f"{MODEL}decay_kimg=") for item in variant.overrides):
        return list(variant.overrides)
    return [*variant.overrides, f"{MODEL}decay_kimg={steps * batch_size(config, variant.overrides) / 1000}"]


def score_generators(ckpt: Path, extractor: DigitsClassifier, real_feats, num_samples: int, seed: int) -> dict:
    """FID, KID and class statistics of the EMA and the raw generator of one checkpoint."""
    out = {}
    for name, use_ema in (("ema", True), ("raw", False)):
        images, _ = generate(load_generator(ckpt, use_ema=use_ema), num_samples, seed)
        feats, logits = embed(extractor, images, 250)
        values = score(real_feats, feats, logits, ["fid", "kid"], seed=seed, kid_subset_size=min(1000, num_samples))
        values.update(class_statistics(logits, None))
        out.update({f"{name}_{key}": value for key, value in values.items()})
    return out


def table(rows: list[dict], args, command: str) -> str:
    lines = [
        "## R3GAN digits study",
        "",
        f"`{command}` on {machine()}.",
        "",
        f"`{args.config.name}` with the changes of each row, the schedules stretched over the run "
        f"(`G steps` x `batch` images); {args.num_samples} samples of the EMA and of the raw generator scored against "
        "the training digits in the DigitsClassifier's features.",
        "",
        "| variant | change | batch | G steps | FID (EMA) | KID ×10³ (EMA) | FID (raw G) | class KL (EMA) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['variant']} | {row['what']} | | failed: {row['error'][:80]} | | | | |")
            continue
        lines.append(f"| {row['variant']} | {row['what']} | {row['batch']} | {row['steps']} | "
                     f"{row['ema_fid']:.2f} | {row['ema_kid'] * 1e3:.1f} | {row['raw_fid']:.2f} | "
                     f"{row['ema_class_kl']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "r3gan_digits.yaml")
    parser.add_argument("--only", nargs="+", default=None, metavar="VARIANT", choices=sorted(VARIANTS),
                        help="variants to train (default: all)")
    parser.add_argument("--generator-steps", type=int, default=400, help="training budget of every variant")
    parser.add_argument("--num-samples", type=int, default=2000, help="samples per generator for FID/KID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="variants trained in parallel (one process each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per training process")
    parser.add_argument("--quick", action="store_true", help="10 steps, 200 samples: checks the script works")
    parser.add_argument("--from-log", type=Path, nargs="+", default=None, help="train nothing: the rows earlier "
                        "runs printed (their stderr, one JSON line per variant), in the order given")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file whose r3gan_digits_study section "
                        "receives the table (default: print only)")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        raise SystemExit(f"--config: no such file '{args.config}'")
    command = " ".join(["python benchmarks/r3gan_digits_study.py", *(sys.argv[1:] if argv is None else argv)])
    if args.quick:
        args.generator_steps, args.num_samples = 10, 200

    if args.from_log is not None:
        rows = read_rows(args.from_log, "variant")
        rows = [row for row in rows if args.only is None or row["variant"] in args.only]
        for row in rows:  # lines without a step count are from a run of --generator-steps
            row.setdefault("steps", args.generator_steps)
        return finish(rows, args, command)
    extractor = DigitsClassifier()
    real_feats, _ = embed(extractor, load_digits_split("train")[0], 250)

    def run(name: str, tmp: str) -> dict:
        variant = VARIANTS[name]
        overrides = run_overrides(args.config, variant, args.generator_steps)
        row = {"variant": name, "what": variant.what, "batch": batch_size(args.config, variant.overrides),
               "steps": args.generator_steps}
        try:
            run_dir = Path(tmp) / name
            row["train_s"] = train(args.config, run_dir, args.generator_steps, args.threads, overrides=overrides)
            row.update(score_generators(run_dir / "checkpoints" / "last.ckpt", extractor, real_feats,
                                        args.num_samples, args.seed))
        except Exception as error:  # one broken variant must not lose the others' numbers
            row["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    with tempfile.TemporaryDirectory(prefix="r3gan_study_") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda name: run(name, tmp), args.only or list(VARIANTS)))
    return finish(rows, args, command)


def finish(rows: list[dict], args: argparse.Namespace, command: str) -> list[dict]:
    """Prints the table of ``rows`` and writes it into ``--out``'s section when given."""
    markdown = table(rows, args, command)
    print(markdown)
    if args.out is not None:
        print(f"written to {write_section('r3gan_digits_study', markdown, args.out)}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
