"""Shared by the digits ablations (``gated_shortcut.py``, ``checkerboard.py``): train variants of digits
presets at one budget and score them with ``digits_quality``'s helpers.

A variant is a name, a preset and command-line overrides. Each is trained by ``digits_quality.train``
(the preset's metric callbacks and validation left out) for ``--generator-steps`` generator steps, then
its (EMA) generator is scored by ``digits_quality.evaluate_preset``: FID/KID/IS in the DigitsClassifier's
features against the training digits, the generator's parameter count and the high-frequency share of
the samples' power spectrum (``callbacks.metrics.spectrum``), whose real counterpart is returned too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from benchmarks._results import RESULTS, machine, write_section
from benchmarks.digits_quality import evaluate_preset, train
from callbacks.metrics.digits_classifier import DigitsClassifier, load_digits_split
from callbacks.metrics.spectrum import high_frequency_share
from evaluate import embed


class Variant(NamedTuple):
    """One row of an ablation: ``name``, the ``preset`` YAML and the ``overrides`` that make the variant."""

    name: str
    preset: Path
    overrides: tuple[str, ...] = ()


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every ablation script takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--generator-steps", type=int, default=1200, help="training budget of every variant")
    parser.add_argument("--num-samples", type=int, default=2000, help="samples per variant for FID/KID/IS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="variants trained in parallel (one process each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per training process")
    parser.add_argument("--quick", action="store_true", help="10 steps, 200 samples; prints only")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file for the table (default docs/results.md)")
    return parser


def run(variants: list[Variant], args: argparse.Namespace) -> tuple[list[dict], float]:
    """Trains and scores every variant; returns the rows and the real training digits' high-frequency share.

    A failed variant gives a row with ``error`` (the others' numbers are kept); each row is also printed
    to stderr as one JSON line.
    """
    if args.quick:
        args.generator_steps, args.num_samples = 10, 200
    args.cas_samples, args.cas_epochs = 0, 0  # unconditional variants: no CAS
    extractor = DigitsClassifier()
    train_x, _ = load_digits_split("train")
    real_feats, _ = embed(extractor, train_x, 250)

    def one(variant: Variant, tmp: str) -> dict:
        row: dict = {"variant": variant.name, "preset": variant.preset.stem}
        run_dir = Path(tmp) / variant.name
        try:
            row["train_s"] = train(variant.preset, run_dir, args.generator_steps, args.threads,
                                   overrides=variant.overrides)
            row.update(evaluate_preset(run_dir / "checkpoints" / "last.ckpt", extractor, real_feats, (), args))
        except Exception as error:  # one broken variant must not lose the others' numbers
            row["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    with tempfile.TemporaryDirectory(prefix="digits_ablation_") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda variant: one(variant, tmp), variants))
    return rows, high_frequency_share(train_x)


def run_ablation(description: str, script: str, section: str, variants: list[Variant],
                 table: Callable[[list[dict], float, argparse.Namespace, str], str],
                 argv: list[str] | None) -> list[dict]:
    """An ablation script's whole run: parse ``argv`` (``None``: the command line), train and score
    ``variants``, print ``table(rows, real_hf_share, args, command)`` and, except with ``--quick`` (unless
    ``--out``), write it into ``section`` of docs/results.md."""
    args = arguments(description).parse_args(argv)
    command = " ".join([f"python benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])
    rows, real_share = run(variants, args)
    markdown = table(rows, real_share, args, command)
    print(markdown)
    if args.out is not None or not args.quick:  # quick numbers never replace the real table by default
        print(f"written to {write_section(section, markdown, args.out or RESULTS)}", file=sys.stderr)
    return rows


def markdown(title: str, command: str, caption: str, columns: list[str], rows: list[dict],
             cells: Callable[[dict], list[str]]) -> str:
    """A results section: ``title``, the command and machine, ``caption``, then one table row per variant.

    ``columns`` start with the variant's name column; ``cells(row)`` gives the others. A failed variant's row
    shows its error instead."""
    lines = [f"## {title}", "", f"`{command}` on {machine()}.", "", caption, "",
             "| " + " | ".join(columns) + " |", "| --- | " + " | ".join("---:" for _ in columns[1:]) + " |"]
    for row in rows:
        values = [f"failed: {row['error'][:80]}", *[""] * (len(columns) - 2)] if "error" in row else cells(row)
        lines.append("| " + " | ".join([row["variant"], *values]) + " |")
    return "\n".join(lines)
