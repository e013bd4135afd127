"""How well the projector (``generate.py project``) reconstructs real held-out digits.

What is measured:
    The first ``--num`` digits of the validation split (never trained on) are each projected into a
    trained digits generator with ``gan_modules.projector.project`` (``--steps`` Adam steps, pixel MSE
    plus the digits classifier's feature MSE, the defaults of ``generate.py project``). For each:

    * ``L1`` (mean absolute difference in ``[-1, 1]``), ``PSNR`` (dB) and ``SSIM`` of the projection
      against its target;
    * ``d(target)``: the Euclidean distance between the projection and the target in the
      ``DigitsClassifier`` features, and ``d(nearest train)``: the smallest distance between the
      projection and any of the 1,438 training digits. ``nearest`` says whether the target is closer
      than every training digit, i.e. the projection reproduces this digit rather than recalling a
      training one.

    The figure (``--figure``) shows the targets (top row) over their projections.

Usage::

    python benchmarks/projection.py --ckpt runs/stylegan_digits/checkpoints/last.ckpt --figure docs/images/projection_digits.png
    python benchmarks/projection.py --ckpt CKPT --quick      # 2 digits, 20 steps: checks that the script works

The table goes to stdout and, except with ``--quick``, into the ``projection`` section of
``docs/results.md`` (``--out`` names another file).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import RESULTS, machine, write_section  # noqa: E402
from callbacks.images import image_grid, save_png  # noqa: E402
from callbacks.metrics.digits_classifier import DigitsClassifier, load_digits_split  # noqa: E402
from callbacks.result_page import image_scores  # noqa: E402
from gan_modules import load_generator  # noqa: E402
from gan_modules.projector import feature_extractor, project  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a digits checkpoint (1 x 32 x 32 images)")
    parser.add_argument("--num", type=int, default=8, help="held-out digits projected")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--figure", default=None, help="PNG of targets over projections")
    parser.add_argument("--out", default=None, help=f"Markdown file for the table (default {RESULTS})")
    parser.add_argument("--quick", action="store_true", help="2 digits, 20 steps, nothing written unless --out")
    args = parser.parse_args(argv)
    if args.quick:
        args.num, args.steps = 2, 20
    generator = load_generator(args.ckpt)
    if tuple(generator.sample_shape) != (1, 32, 32):
        parser.error(f"argument --ckpt: a digits generator makes 1 x 32 x 32 images, this one {generator.sample_shape}")
    targets = load_digits_split("val")[0][: args.num]
    train = load_digits_split("train")[0]
    classifier = DigitsClassifier()
    with torch.no_grad():
        train_features = torch.cat([classifier(chunk)["features"] for chunk in train.split(256)])
    feature = feature_extractor("digits")
    rows, projections = [], []
    start = time.perf_counter()
    for i, target in enumerate(targets):
        result = project(generator, target, num_steps=args.steps, feature=feature, seed=i)
        image = result.image[0]
        projections.append(image)
        with torch.no_grad():
            f_image, f_target = classifier(image[None])["features"], classifier(target[None])["features"]
        d_target = float((f_image - f_target).norm())
        d_train = float((train_features - f_image).norm(dim=1).min())
        rows.append({"digit": i, **image_scores(image, target), "d_target": d_target, "d_train": d_train,
                     "nearest": d_target < d_train})
    seconds = time.perf_counter() - start
    header = "| digit | L1 | PSNR (dB) | SSIM | d(target) | d(nearest train) | target nearest |\n| --- | --- | --- | --- | --- | --- | --- |"
    lines = [f"| {r['digit']} | {r['l1']:.3f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['d_target']:.3f} | "
             f"{r['d_train']:.3f} | {'yes' if r['nearest'] else 'no'} |" for r in rows]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("l1", "psnr", "ssim", "d_target", "d_train")}
    lines.append(f"| mean | {mean['l1']:.3f} | {mean['psnr']:.2f} | {mean['ssim']:.3f} | {mean['d_target']:.3f} | "
                 f"{mean['d_train']:.3f} | {sum(r['nearest'] for r in rows)}/{len(rows)} |")
    table = header + "\n" + "\n".join(lines)
    print(table)
    if args.figure:
        grid = image_grid(torch.cat([targets, torch.stack(projections)]), nrow=len(targets))
        save_png(grid.repeat_interleave(3, 1).repeat_interleave(3, 2), args.figure)
    if args.out or not args.quick:
        figure_path = Path(args.figure).resolve() if args.figure else None
        figure = f"\n\n![held-out digits (top) and their projections (bottom)]({figure_path.relative_to(ROOT / 'docs')})" \
            if figure_path is not None and figure_path.is_relative_to(ROOT / "docs") else ""
        markdown = (f"## Projection of held-out digits\n\n`python benchmarks/projection.py --ckpt {args.ckpt} --num {args.num} "
                    f"--steps {args.steps}`: the first {args.num} validation digits projected into the generator "
                    f"({args.steps} steps, pixel + digits-classifier feature loss), {seconds:.0f} s in all on "
                    f"{machine()}. Distances are in the DigitsClassifier's 128-d features.\n\n{table}{figure}")
        write_section("projection", markdown, Path(args.out) if args.out else RESULTS)
    return rows


if __name__ == "__main__":
    main()
