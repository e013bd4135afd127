"""Offline demo images for a study: real digits, fakes, and obvious fakes for the tutorial.

Real images are scikit-learn's digits at 32 px (the embedded dataset). Fakes come from a
generator checkpoint when one is given (``load_generator``), otherwise they are blends of two
different digits plus a little noise, the kind of half-formed sample a weak generator draws. The
tutorial's obvious fakes are pure noise, so the quality control has cases every attentive evaluator
gets right.
"""

from __future__ import annotations

from pathlib import Path

import torch

from callbacks.images import save_png, to_uint8
from datamodules.digits import load_digits_tensors


def write_demo(out: str | Path, n_real: int = 60, n_fake: int = 60, n_obvious: int = 10, seed: int = 0,
               generator: str | Path | None = None) -> dict[str, Path]:
    """Write ``real/``, ``fake/`` and ``tutorial_fake/`` PNG folders under ``out``.

    Args:
        out: the destination folder.
        n_real, n_fake, n_obvious: how many images of each.
        seed: the draw of digits, blends and noise.
        generator: a checkpoint of an unconditional image generator (``train.py fit`` output);
            its samples replace the blended digits.

    Returns:
        The three folders by name.
    """
    rng = torch.Generator().manual_seed(seed)
    digits, labels = load_digits_tensors(32)
    order = torch.randperm(len(digits), generator=rng)
    if n_real + 2 * n_fake > len(digits):
        raise ValueError(f"at most {len(digits)} digits: n_real + 2 * n_fake = {n_real + 2 * n_fake}")
    real = digits[order[:n_real]]
    if generator is not None:
        from gan_modules import load_generator

        g = load_generator(generator).eval()
        if g.num_classes or g.latent_dim <= 0:
            raise ValueError(f"--generator {generator}: needs an unconditional noise-to-image generator")
        with torch.no_grad():
            fake = g(torch.randn(n_fake, g.latent_dim, generator=rng)).clamp(-1, 1)
    else:
        first, second = order[n_real:n_real + n_fake], order[n_real + n_fake:n_real + 2 * n_fake]
        # Blend two digits of different classes (shift the second index until the labels differ).
        second = torch.where(labels[first] == labels[second], order[(n_real + 2 * n_fake) % len(order)], second)
        noise = 0.15 * torch.randn(n_fake, 1, 32, 32, generator=rng)
        fake = (0.55 * digits[first] + 0.45 * digits[second] + noise).clamp(-1, 1)
    obvious = torch.rand(n_obvious, 1, 32, 32, generator=rng) * 2 - 1
    folders = {}
    for name, images in (("real", real), ("fake", fake), ("tutorial_fake", obvious)):
        folder = Path(out) / name
        for k, image in enumerate(to_uint8(images)):
            save_png(image, folder / f"{k:04d}.png")
        folders[name] = folder
    return folders
