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

Usage::

    python benchmarks/checkerboard.py            # 1200 generator steps, 2000 samples per preset
    python benchmarks/checkerboard.py --quick    # 10 steps: checks that the script works, prints only

The table goes to stdout and, except with ``--quick``, into the ``checkerboard`` section of
``docs/results.md`` (``--out`` names another file, and makes ``--quick`` write too).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._ablation import Variant, arguments, run  # noqa: E402
from benchmarks._results import RESULTS, machine, write_section  # noqa: E402

VARIANTS = [Variant("transposed", ROOT / "configs" / "dcgan_digits.yaml"),
            Variant("nearest_conv", ROOT / "configs" / "dcgan_nearest_digits.yaml")]


def table(rows: list[dict], real_share: float, args, command: str) -> str:
    lines = ["## Checkerboard artifacts", "", f"`{command}` on {machine()}.", "",
             f"Each preset trained for {args.generator_steps} generator steps; {args.num_samples} samples of the EMA "
             "generator. HF share: the share of the mean power spectrum above 3/4 of Nyquist (radial frequency); "
             f"the training digits' share is {real_share:.5f}. FID/KID in the DigitsClassifier's features.",
             "", "| preset | upsampling | HF share | HF ratio (generated / real) | FID | KID ×10³ |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['preset']} | {row['variant']} | failed: {row['error'][:80]} | | | |")
            continue
        lines.append(f"| {row['preset']} | {row['variant']} | {row['hf_share']:.5f} | "
                     f"{row['hf_share'] / real_share:.2f} | {row['fid']:.2f} | {row['kid'] * 1e3:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    args = arguments(__doc__.splitlines()[0]).parse_args(argv)
    command = " ".join(["python benchmarks/checkerboard.py", *(sys.argv[1:] if argv is None else argv)])
    rows, real_share = run(VARIANTS, args)
    markdown = table(rows, real_share, args, command)
    print(markdown)
    if args.out is not None or not args.quick:  # quick numbers never replace the real table by default
        print(f"written to {write_section('checkerboard', markdown, args.out or RESULTS)}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
