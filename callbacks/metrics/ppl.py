"""Perceptual path length (PPL; Karras et al. 2019, "A Style-Based Generator Architecture for GANs", §3.1).

PPL measures how much the image changes along a small step of a latent path: for endpoints ``z0, z1 ~
N(0, I)`` and ``t ~ U(0, 1)``,

    l = D(G(p(t)), G(p(t + ε))) / ε²

with ``p`` the slerp between ``z0`` and ``z1`` (``space="z"``), or the lerp between ``w0 = f(z0)`` and
``w1 = f(z1)`` through StyleGAN's mapping network ``f`` (``space="w"``). ``sampling="end"`` takes
``t = 0`` (the path's end, the paper's "end" variant), ``"full"`` draws ``t``. The score is the mean of
the ``l`` between their 1st and 99th percentiles (the filtering of the official code: the lower
1st and the higher 99th percentile, values within both bounds kept), ε = 1e-4.

Departure from the paper: ``D`` is the squared Euclidean distance between an extractor's features
(``DigitsClassifier``, ``FIDInceptionV3``, or any module returning ``[N, d]`` or ``{"features": [N, d]}``),
not LPIPS on VGG16, whose learned weights cannot be downloaded here. LPIPS is itself a weighted squared
distance between normalised deep features, so the scale differs from published PPLs and numbers are
only comparable with the same extractor. The paper also crops face images to the face; no crop here.

Read against stylegan2-ada's ``metrics/perceptual_path_length.py`` (https://github.com/NVlabs/stylegan2-ada-pytorch)
for the sampling and the filtering; the code is ours. Importable without Lightning.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

SPACES = ("z", "w")
SAMPLINGS = ("full", "end")
_DRAW_BLOCK = 1024  # paths whose random draws are made at once


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of rows ``a``, ``b`` (``[N, d]``) at ``t [N]``.

    The paper's code slerps the directions on the unit sphere (angle ``t ω`` from ``a`` towards ``b``);
    it then returns the unit vector, which StyleGAN's mapping network (pixel norm first) does not mind.
    Generators that read ``z`` as it is need its scale, so the length here is ``(1 - t)|a| + t|b|``.
    """
    norm_a, norm_b = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    a_n, b_n = a / norm_a, b / norm_b
    cos = (a_n * b_n).sum(1, keepdim=True).clamp(-1.0, 1.0)
    angle = torch.acos(cos) * t[:, None]
    c = b_n - cos * a_n  # the direction of b orthogonal to a
    c = c / c.norm(dim=1, keepdim=True)
    return (a_n * torch.cos(angle) + c * torch.sin(angle)) * torch.lerp(norm_a, norm_b, t[:, None])


def feature_distance(extractor: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    """``D(x, y) = |φ(x) - φ(y)|²`` per row, with ``φ`` the extractor's features (``[N]``, float64)."""

    def distance(x: Tensor, y: Tensor) -> Tensor:
        fx, fy = extractor(x), extractor(y)
        if isinstance(fx, dict):
            fx, fy = fx["features"], fy["features"]
        return (fx.double() - fy.double()).flatten(1).square().sum(1)

    return distance


def percentile_filtered_mean(values: Tensor, low: float = 1.0, high: float = 99.0) -> Tensor:
    """Mean of the values between the ``low`` percentile (rounded down to a sample) and the ``high`` one
    (rounded up), bounds included: numpy's ``percentile(method="lower")`` / ``"higher"``."""
    ordered = values.flatten().sort().values
    n = len(ordered)
    lo = ordered[int(torch.tensor(low / 100 * (n - 1), dtype=torch.float64).floor())]
    hi = ordered[int(torch.tensor(high / 100 * (n - 1), dtype=torch.float64).ceil())]
    return values[(values >= lo) & (values <= hi)].mean()


@torch.no_grad()
def path_length_samples(generator: nn.Module, distance: Callable[[Tensor, Tensor], Tensor], num_samples: int = 10000,
                        epsilon: float = 1e-4, space: str = "z", sampling: str = "full", batch_size: int = 100,
                        seed: int = 0) -> Tensor:
    """The per-path values ``l = D(G(p(t)), G(p(t + ε))) / ε²``, ``[num_samples]`` float64.

    Args:
        generator: ``G(z)`` (or ``G(z, labels)`` when it has ``num_classes > 0``: both ends of a path
            get the same random class). ``space="w"`` needs StyleGAN's ``mapping`` (``z -> ws [N, num_ws, w_dim]``)
            and ``synthesis`` (``ws -> images``). It should be in eval mode (StyleGAN's noise then is
            the stored maps, so only the latent moves).
        distance: ``D(x, y) -> [N]`` between image batches, e.g. :func:`feature_distance`.
        num_samples: paths (the paper: 100,000; stylegan2-ada: 50,000).
        epsilon: the step (1e-4 in the paper).
        space: ``"z"`` (slerp) or ``"w"`` (lerp after the mapping network).
        sampling: ``"full"`` (``t ~ U(0, 1)``) or ``"end"`` (``t = 0``).
        batch_size: paths per forward pass (each runs 2 images).
        seed: seeds the endpoints, ``t`` and the classes (drawn on the CPU).
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got '{space}'")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got '{sampling}'")
    if space == "w" and not (hasattr(generator, "mapping") and hasattr(generator, "synthesis")):
        raise ValueError("space='w' needs a StyleGAN generator (mapping and synthesis networks); use space='z'")
    if num_samples < 1 or epsilon <= 0 or batch_size < 1:
        raise ValueError("num_samples and batch_size must be >= 1 and epsilon > 0")
    parameter = next(generator.parameters())
    device, dtype = parameter.device, parameter.dtype
    num_classes = int(getattr(generator, "num_classes", 0))
    gen = torch.Generator().manual_seed(seed)
    values = []
    for block in range(0, num_samples, _DRAW_BLOCK):
        # endpoints, t and classes drawn per block of paths, in float64 on the CPU, so the paths depend on
        # the seed alone (not on batch_size or the device); slerp in float64 then cast: ε = 1e-4 survives
        m = min(_DRAW_BLOCK, num_samples - block)
        z = torch.randn(2, m, generator.latent_dim, generator=gen, dtype=torch.float64)
        t = torch.rand(m, generator=gen, dtype=torch.float64) * (1.0 if sampling == "full" else 0.0)
        classes = torch.randint(num_classes, (m,), generator=gen) if num_classes else None
        for start in range(0, m, batch_size):
            part = slice(start, min(start + batch_size, m))
            z0, z1, tp = z[0, part], z[1, part], t[part]
            labels = classes[part].to(device).repeat(2) if classes is not None else None
            if space == "z":
                ends = torch.cat([slerp(z0, z1, tp), slerp(z0, z1, tp + epsilon)]).to(device, dtype)
                images = generator(ends) if labels is None else generator(ends, labels)
            else:
                # a conditional mapping network maps both ends with the path's class
                label_args = () if classes is None else (classes[part].to(device),)
                w0 = generator.mapping(z0.to(device, dtype), *label_args)
                w1 = generator.mapping(z1.to(device, dtype), *label_args)
                tt = tp.to(device, dtype).view(-1, *([1] * (w0.dim() - 1)))
                images = generator.synthesis(torch.cat([torch.lerp(w0, w1, tt), torch.lerp(w0, w1, tt + epsilon)]))
            n = len(z0)
            values.append(distance(images[:n], images[n:]).double().cpu() / epsilon**2)
    return torch.cat(values)


def perceptual_path_length(generator: nn.Module, distance: Callable[[Tensor, Tensor], Tensor], num_samples: int = 10000,
                           epsilon: float = 1e-4, space: str = "z", sampling: str = "full", batch_size: int = 100,
                           seed: int = 0) -> dict[str, float]:
    """PPL: ``{"ppl": filtered mean, "ppl_unfiltered": plain mean, "num_paths": num_samples}``.

    Arguments as :func:`path_length_samples`.
    """
    values = path_length_samples(generator, distance, num_samples, epsilon, space, sampling, batch_size, seed)
    return {"ppl": float(percentile_filtered_mean(values)), "ppl_unfiltered": float(values.mean()),
            "num_paths": num_samples}


class PerceptualPathLength:
    """PPL with fixed settings, callable on generators: ``PerceptualPathLength(extractor)(G)``.

    Args:
        extractor: the feature network of the distance (see :func:`feature_distance`).
        num_samples, epsilon, space, sampling, batch_size, seed: see :func:`path_length_samples`.
    """

    def __init__(self, extractor: nn.Module, num_samples: int = 10000, epsilon: float = 1e-4, space: str = "z",
                 sampling: str = "full", batch_size: int = 100, seed: int = 0) -> None:
        if space not in SPACES or sampling not in SAMPLINGS:
            raise ValueError(f"space must be one of {SPACES} and sampling one of {SAMPLINGS}, got '{space}', '{sampling}'")
        self.extractor = extractor
        self.num_samples, self.epsilon, self.space, self.sampling = num_samples, epsilon, space, sampling
        self.batch_size, self.seed = batch_size, seed

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        """PPL of ``generator`` (see :func:`perceptual_path_length`); the extractor follows its device."""
        self.extractor.to(next(generator.parameters()).device)
        return perceptual_path_length(generator, feature_distance(self.extractor), self.num_samples, self.epsilon,
                                      self.space, self.sampling, self.batch_size, self.seed)
