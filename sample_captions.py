"""Images from caption strings with a trained text-to-image generator (a StackGAN checkpoint).

Usage::

    python sample_captions.py runs/stackgan_stage2_shapes/checkpoints/last.ckpt \\
        "a small red circle at the top left" "there is a big white box in the middle" --per-caption 4 --out grid.png

Writes one row per caption (its text, then ``--per-caption`` samples from seeded latents). The
checkpoint alone is enough (``gan_modules.load_generator``: the EMA generator, its text encoder and
vocabulary); an empty caption, or one whose words the vocabulary does not know, is an error.
"""

from __future__ import annotations

import argparse

from callbacks.caption_grid import caption_grid
from gan_modules import load_generator


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a StackGAN run's checkpoint")
    parser.add_argument("captions", nargs="+", help="caption strings")
    parser.add_argument("--per-caption", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="captions.png")
    args = parser.parse_args(argv)
    generator = load_generator(args.checkpoint)
    if not hasattr(generator, "encode"):
        parser.error(f"{args.checkpoint}: its generator ({type(generator).__name__}) does not take captions")
    path = caption_grid(generator, args.captions, args.per_caption, args.out, seed=args.seed)
    print(path)
    return str(path)


if __name__ == "__main__":
    main()
