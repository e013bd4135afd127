"""Gated shortcut ablation: the digits DCGAN with its plain generator stages against gated-shortcut stages.

What is measured:
    ``configs/dcgan_digits.yaml`` (the quickstart) is trained with the generator's ``block: plain`` (the
    paper's stages), ``block: residual`` (each hidden stage plus a 1x1-conv shortcut) and ``block: gated``
    (the two merged by a learned sigmoid gate, ``g * shortcut + (1 - g) * stage``;
    ``gan_modules.nets.layers.GatedShortcut``, after "Effective Shortcut Technique for GAN",
    arXiv:2201.11351), everything else equal, for the same ``--generator-steps``. Each generator (the EMA
    one) is scored with ``benchmarks/digits_quality.py``'s helpers: FID, KID and IS of ``--num-samples``
    samples against the 1,438 training digits in the DigitsClassifier's features (comparable only with
    each other), and the generator's parameter count. ``train s`` is the wall-clock time of ``train.py
    fit``. One seed per variant: differences within a run-to-run spread are not a ranking.

Usage: ``python benchmarks/gated_shortcut.py`` (1200 generator steps, 2000 samples per variant; the table
to stdout and the ``gated_shortcut`` section of ``docs/results.md``, or ``--out FILE``); ``--quick`` (10 steps,
prints only) checks that the script works. Options: ``benchmarks/_ablation.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._ablation import Variant, markdown, run_ablation  # noqa: E402

PRESET = ROOT / "configs" / "dcgan_digits.yaml"
BLOCK = "--model.init_args.generator.init_args.block="
VARIANTS = [Variant(block, PRESET, (BLOCK + block,)) for block in ("plain", "residual", "gated")]


def table(rows: list[dict], real_share: float, args, command: str) -> str:
    caption = (f"`dcgan_digits` with each generator block, {args.generator_steps} generator steps; {args.num_samples} "
               "samples of the EMA generator scored against the training digits in the DigitsClassifier's features.")
    return markdown("Gated shortcut", command, caption, ["block", "G parameters", "train s", "FID", "KID ×10³", "IS"],
                    rows, lambda row: [f"{row['g_params']:,}", f"{row['train_s']:.0f}", f"{row['fid']:.2f}",
                                       f"{row['kid'] * 1e3:.1f}", f"{row['is']:.2f}"])


def main(argv: list[str] | None = None) -> list[dict]:
    return run_ablation(__doc__.splitlines()[0], "gated_shortcut.py", "gated_shortcut", VARIANTS, table, argv)


if __name__ == "__main__":
    main()
