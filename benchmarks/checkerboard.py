"""Checkerboard artifacts measured: high-frequency energy of the digits DCGAN with transposed-convolution
against nearest-neighbour + convolution upsampling.

What is measured:
    ``configs/dcgan_digits.yaml`` (stride-2 transposed convolutions, as the DCGAN paper) and
    ``configs/dcgan_nearest_digits.yaml`` (nearest-neighbour x2 then a 3x3 convolution, Odena et al.
    2016, "Deconvolution and Checkerboard Artifacts") are trained for the same ``--generator-steps``.
    ``--num-samples`` samples of each (EMA) generator are scored with ``benchmarks/digits_quality.py``'s
    helpers (FID and KID in the DigitsClassifier's features against the 1,438 training digits) and by
    their high-frequency energy (``callbacks.metrics.spectrum``, GenerativeMetrics' ``hf_energy``): the
    share of the mean power spectrum above 3/4 of the Nyquist frequency (radially), for the samples and
    for the training digits, and their ratio (above 1: more energy at the highest frequencies than the
    data, the checkerboard's signature).

Run ``python benchmarks/checkerboard.py`` for the table (1200 generator steps and 2000 samples per preset by
default), printed and written into the ``checkerboard`` section of ``docs/results.md`` (``--out FILE`` for
another file); ``--quick`` trains 10 steps and only prints, to check the script. Options as every ablation
(``benchmarks/_ablation.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._ablation import Variant, markdown, run_ablation  # noqa: E402

VARIANTS = [Variant("transposed", ROOT / "configs" / "dcgan_digits.yaml"),
            Variant("nearest_conv", ROOT / "configs" / "dcgan_nearest_digits.yaml")]


def table(rows: list[dict], real_share: float, args, command: str) -> str:
    caption = (f"Each preset trained for {args.generator_steps} generator steps; {args.num_samples} samples of the EMA "
               "generator. HF share: the share of the mean power spectrum above 3/4 of Nyquist (radial frequency); "
               f"the training digits' share is {real_share:.5f}. FID/KID in the DigitsClassifier's features "
               "(`dcgan_digits`: transposed convolutions; `dcgan_nearest_digits`: nearest-neighbour + 3x3 convolution).")
    return markdown("Checkerboard artifacts", command, caption,
                    ["upsampling", "HF share", "HF ratio (generated / real)", "FID", "KID ×10³"], rows,
                    lambda row: [f"{row['hf_share']:.5f}", f"{row['hf_share'] / real_share:.2f}", f"{row['fid']:.2f}",
                                 f"{row['kid'] * 1e3:.1f}"])


def main(argv: list[str] | None = None) -> list[dict]:
    return run_ablation(__doc__.splitlines()[0], "checkerboard.py", "checkerboard", VARIANTS, table, argv)


if __name__ == "__main__":
    main()
