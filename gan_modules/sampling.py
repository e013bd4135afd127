"""Sampling a loaded generator for inspection: seeds, truncation, classes, latent walks, style mixing.

Works on what :func:`gan_modules.load_generator` returns (a plain ``nn.Module`` with ``latent_dim``,
``num_classes``, ``sample_shape``), no Lightning involved. The conventions follow stylegan2-ada's
``generate.py`` / ``style_mixing.py`` (https://github.com/NVlabs/stylegan2-ada-pytorch), rewritten here:

* a seed names one latent: ``z = randn(latent_dim)`` (``rand * 2 - 1`` for a generator trained with the
  uniform prior) from ``torch.Generator().manual_seed(seed)``,
  so a seed gives the same image whatever other seeds are asked for;
* truncation: StyleGAN generators pull w towards the tracked mean, ``w̄ + ψ (w - w̄)`` with ψ in
  [0, 1]; the other families use BigGAN's truncation trick (Brock et al. 2019): entries of z with
  ``|z| > threshold`` are redrawn (from the seed's own generator) until all lie within it;
* conditional generators take a class per image: ``class_index`` for all, else ``seed % num_classes``;
* latent walks: spherical interpolation (slerp) in z, linear in w for StyleGAN (the paths of the
  StyleGAN paper's perceptual path length);
* style mixing (StyleGAN): the style inputs before ``crossover`` from the row seed (coarse), the rest
  from the column seed (fine).
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from gan_modules.latent_prior import draw_latents
from gan_modules.nets.stylegan import _slerp
from gan_modules.translation import seeded

_SEED_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``"0-7,42"`` -> ``[0, 1, ..., 7, 42]`` (ranges inclusive, order kept).

    Raises:
        ValueError: an item that is not ``N`` or ``A-B`` with ``A <= B`` (the message names ``option``).
    """
    seeds: list[int] = []
    for item in text.split(","):
        match = _SEED_ITEM.match(item.strip())
        if match is None:
            raise ValueError(f"{option}: cannot parse '{item}' in '{text}'; give seeds as 0-7,42 (non-negative "
                             "integers and inclusive ranges, comma-separated)")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low:
            raise ValueError(f"{option}: the range '{item}' runs backwards")
        seeds += range(low, high + 1)
    return seeds


def is_stylegan(generator: nn.Module) -> bool:
    """Whether ``generator`` has a mapping network and a tracked w̄ (truncation and mixing in w)."""
    return hasattr(generator, "mapping") and hasattr(generator, "synthesis") and hasattr(generator, "w_avg")


def is_translation(generator: nn.Module) -> bool:
    """Whether ``generator`` maps images to images (``latent_dim == 0``)."""
    return int(getattr(generator, "latent_dim", 0)) == 0


def seed_latents(seeds: list[int], latent_dim: int, threshold: float | None = None,
                 distribution: str = "normal") -> Tensor:
    """One latent per seed from the prior, ``[len(seeds), latent_dim]`` float32.

    Args:
        seeds: one latent each.
        latent_dim: size of z.
        threshold: BigGAN's truncation trick: entries beyond ``±threshold`` are redrawn; None keeps z.
        distribution: the prior, ``"normal"`` or ``"uniform"`` (:mod:`gan_modules.latent_prior`); a
            loaded generator names its own in ``latent_distribution``.
    """
    if threshold is not None and threshold <= 0:
        raise ValueError(f"truncation threshold must be > 0, got {threshold}")
    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        z = draw_latents((latent_dim,), distribution, gen)
        if threshold is not None:
            outside = z.abs() > threshold
            while outside.any():  # redraw only the offending entries, as BigGAN's resampling
                z[outside] = draw_latents((int(outside.sum()),), distribution, gen)
                outside = z.abs() > threshold
        rows.append(z)
    return torch.stack(rows)


def seed_labels(seeds: list[int], num_classes: int, class_index: int | None = None) -> Tensor | None:
    """Labels ``[len(seeds)]`` for a conditional generator (None when unconditional)."""
    if num_classes == 0:
        if class_index is not None:
            raise ValueError("class_index: the generator is unconditional (num_classes = 0)")
        return None
    if class_index is not None and not 0 <= class_index < num_classes:
        raise ValueError(f"class_index must be in [0, {num_classes - 1}], got {class_index}")
    return torch.tensor([class_index if class_index is not None else s % num_classes for s in seeds])


def check_truncation(generator: nn.Module, truncation: float | None) -> None:
    """ψ in [0, 1] for StyleGAN, a threshold > 0 for the others, nothing for translation generators."""
    if truncation is None:
        return
    if is_translation(generator):
        raise ValueError("truncation: an image-to-image generator has no latent to truncate")
    if is_stylegan(generator) and not 0.0 <= truncation <= 1.0:
        raise ValueError(f"truncation: ψ must be in [0, 1] for a StyleGAN generator (w̄ + ψ (w - w̄)), got {truncation}")
    if not is_stylegan(generator) and truncation <= 0:
        raise ValueError(f"truncation: the threshold of the z truncation trick must be > 0, got {truncation}")


def _latents(generator: nn.Module, seeds: list[int], truncation: float | None) -> Tensor:
    threshold = None if is_stylegan(generator) else truncation
    distribution = getattr(generator, "latent_distribution", "normal")
    return seed_latents(seeds, generator.latent_dim, threshold, distribution).to(_device(generator))


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _call(generator: nn.Module, z: Tensor, labels: Tensor | None, truncation: float | None) -> Tensor:
    if is_stylegan(generator):  # a conditional StyleGAN truncates towards the label's class's w̄
        label_args = () if labels is None else (labels.to(z.device),)
        return generator(z, *label_args, truncation_psi=1.0 if truncation is None else truncation)
    return generator(z) if labels is None else generator(z, labels.to(z.device))


@torch.no_grad()
def generate_images(generator: nn.Module, seeds: list[int], truncation: float | None = None,
                    class_index: int | None = None) -> Tensor:
    """One image per seed: ``[len(seeds), *sample_shape]`` in ``[-1, 1]``.

    Args:
        generator: from ``load_generator`` (eval mode; StyleGAN's noise is then the stored maps).
        seeds: one image each; the same seed gives the same image.
        truncation: ψ for StyleGAN, the z threshold otherwise (see the module docstring); None: none.
        class_index: the class of every image (conditional generators); None: ``seed % num_classes``.
    """
    check_truncation(generator, truncation)
    labels = seed_labels(seeds, generator.num_classes, class_index)
    return _call(generator, _latents(generator, seeds, truncation), labels, truncation)


@torch.no_grad()
def interpolate_seeds(generator: nn.Module, seeds: list[int], steps: int = 8, truncation: float | None = None,
                      class_index: int | None = None) -> Tensor:
    """Walks between consecutive seeds: ``[len(seeds) - 1, steps, *sample_shape]``.

    Row ``i`` goes from seed ``i``'s image (``t = 0``) to seed ``i + 1``'s (``t = 1``): slerp in z, or
    lerp in w for StyleGAN (truncation applied to both ends). A conditional walk keeps one class:
    ``class_index``, else the first seed's.
    """
    if len(seeds) < 2:
        raise ValueError(f"seeds: a walk needs at least two seeds, got {seeds}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    check_truncation(generator, truncation)
    z = _latents(generator, seeds, truncation)
    z1, z2 = z[:-1], z[1:]
    n = len(z1)
    if is_stylegan(generator):
        psi = 1.0 if truncation is None else truncation
        labels = seed_labels(seeds[:1], generator.num_classes, class_index)
        labels = None if labels is None else labels.expand(n).to(z.device)
        images = generator.interpolate(z1, z2, steps=steps, space="w", truncation_psi=psi, labels=labels)
    else:
        t = torch.linspace(0.0, 1.0, steps, device=z.device)
        path = _slerp(z1, z2, t)  # [n, steps, latent_dim]
        path[:, 0], path[:, -1] = z1, z2  # the ends exactly, not through sin(ω)/sin(ω) rounding
        labels = seed_labels(seeds[:1], generator.num_classes, class_index)
        if labels is not None:
            labels = labels.expand(n * steps)
        images = _call(generator, path.reshape(n * steps, -1), labels, None)
    return images.view(n, steps, *images.shape[1:])


@torch.no_grad()
def style_mixing_grid(generator: nn.Module, row_seeds: list[int], col_seeds: list[int], crossover: int,
                      truncation: float | None = None, class_index: int | None = None) -> Tensor:
    """stylegan2-ada's style-mixing figure: ``[(R + 1) * (C + 1), C_img, H, W]``, row-major.

    The first row holds the column seeds' images, the first column the row seeds' (the corner is
    black); cell ``(r, c)`` takes the style inputs ``< crossover`` (coarse) from row seed ``r`` and the
    rest (fine) from column seed ``c``. A conditional generator draws every image of class
    ``class_index`` (default 0).
    """
    if not is_stylegan(generator):
        raise ValueError("style mixing needs a StyleGAN generator (a mapping network and style inputs)")
    if not 0 <= crossover <= generator.num_ws:
        raise ValueError(f"crossover must be in [0, {generator.num_ws}] (the generator's style inputs), got {crossover}")
    check_truncation(generator, truncation)
    psi = 1.0 if truncation is None else truncation
    rows, cols = _latents(generator, row_seeds, None), _latents(generator, col_seeds, None)
    n_r, n_c = len(rows), len(cols)

    label = seed_labels([0], generator.num_classes, class_index)  # seed 0: class 0 unless class_index

    def labels(n: int) -> Tensor | None:
        return None if label is None else label.expand(n).to(rows.device)

    mixed = generator.mix_styles(rows.repeat_interleave(n_c, 0), cols.repeat(n_r, 1), crossover_layer=crossover,
                                 truncation_psi=psi, **({} if label is None else {"labels": labels(n_r * n_c)}))
    row_images, col_images = _call(generator, rows, labels(n_r), truncation), _call(generator, cols, labels(n_c), truncation)
    corner = torch.full_like(col_images[:1], -1.0)
    grid = [torch.cat([corner, col_images])]
    for r in range(n_r):
        grid.append(torch.cat([row_images[r: r + 1], mixed[r * n_c: (r + 1) * n_c]]))
    return torch.cat(grid)


@torch.no_grad()
def translate_images(generator: nn.Module, images: Tensor, seed: int = 0, masks: Tensor | None = None) -> Tensor:
    """Translates ``[N, *input_shape]`` images one by one: ``[N, *sample_shape]``.

    Torch's RNG is seeded ``seed + i`` for image ``i`` (a pix2pix U-Net keeps its dropout at test time),
    so a file's output does not depend on the other files. ``masks [N, 1, H, W]`` (1 = hole) go to an
    inpainting generator as its second input.
    """
    device = _device(generator)
    out = []
    for i, image in enumerate(images):
        args = (image[None].to(device),) if masks is None else (image[None].to(device), masks[i: i + 1].to(device))
        with seeded(seed + i):
            out.append(generator(*args))
    return torch.cat(out)
