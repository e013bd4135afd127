"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel, averaged over subsets.

Binkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018 (KID); the unbiased
estimator is Gretton et al., "A Kernel Two-Sample Test", JMLR 2012, eq. (3).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def polynomial_kernel(x: Tensor, y: Tensor) -> Tensor:
    """Cubic polynomial kernel ``k(x, y) = (x . y / d + 1)^3`` of Binkowski et al. (2018).

    Args:
        x: ``[m, d]`` features.
        y: ``[n, d]`` features (same ``d``, same dtype).

    Returns:
        ``[m, n]`` kernel matrix.
    """
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased estimate of MMD^2 between the distributions of ``x`` and ``y`` with the cubic kernel.

    ``sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
    - 2 sum_{i, j} k(x_i, y_j) / (m n)`` (Gretton et al. 2012, eq. 3): the within-set sums leave out
    the diagonal, the cross term keeps every pair. It can be slightly negative when the distributions match.

    Args:
        x: ``[m, d]`` features, ``m >= 2``.
        y: ``[n, d]`` features, ``n >= 2``.

    Returns:
        Scalar tensor in the dtype of the inputs.
    """
    m, n = x.shape[0], y.shape[0]
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return term_xx + term_yy - 2.0 * k_xy.mean()


def kernel_inception_distance(features_a: Tensor, features_b: Tensor, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of the unbiased MMD^2 over random subsets (Binkowski et al. 2018).

    For each of ``num_subsets`` rounds, ``subset_size`` rows of ``features_a`` and, independently,
    ``subset_size`` rows of ``features_b`` are drawn without replacement (``torch.randperm`` with a
    ``torch.Generator().manual_seed(seed)``, a-rows then b-rows each round) and :func:`mmd2_unbiased`
    is evaluated on them in float64. A ``subset_size`` larger than either set is an error, as in the
    reference implementations (a silent cap would make every round the same full-set MMD, std 0);
    :func:`kid_capped` is the explicit, warned alternative.

    Args:
        features_a: ``[n_a, d]`` features (e.g. of real images); any float dtype, any device.
        features_b: ``[n_b, d]`` features (e.g. of generated images).
        num_subsets: number of subsets to average over (>= 1).
        subset_size: rows per subset, ``2 <= subset_size <= min(n_a, n_b)``.
        seed: seed of the subset sampler; the result is deterministic given the inputs and the seed.

    Returns:
        ``(mean, std)`` over subsets as Python floats; the std is the population one (``ddof = 0``),
        as in the reference implementation of Binkowski et al.
    """
    a = torch.as_tensor(features_a).to(torch.float64)
    b = torch.as_tensor(features_b).to(device=a.device, dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be [n, d] with equal d, got {tuple(a.shape)} and {tuple(b.shape)}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m = subset_size
    if m < 2:
        raise ValueError(f"need subsets of at least 2 rows, got subset_size={m}")
    if m > min(a.shape[0], b.shape[0]):
        raise ValueError(f"KID subset_size={m} is larger than the sets ({a.shape[0]} and {b.shape[0]} rows): "
                         "lower subset_size or score more samples")
    generator = torch.Generator().manual_seed(seed)
    scores = torch.empty(num_subsets, dtype=torch.float64)
    for i in range(num_subsets):
        idx_a = torch.randperm(a.shape[0], generator=generator)[:m].to(a.device)
        idx_b = torch.randperm(b.shape[0], generator=generator)[:m].to(a.device)
        scores[i] = mmd2_unbiased(a[idx_a], b[idx_b]).cpu()
    return float(scores.mean()), float(scores.std(correction=0))


def kid_capped(features_a: Tensor, features_b: Tensor, num_subsets: int = 100, subset_size: int = 1000,
               seed: int = 0) -> dict[str, float]:
    """KID as :func:`kernel_inception_distance`, or, when a set is smaller than ``subset_size``, loudly capped.

    When ``subset_size > min(n_a, n_b)`` a ``UserWarning`` says so and the result is one MMD^2 on the
    full sets (``n = min(n_a, n_b)`` rows of each, drawn with the seed), reported without a std (there is
    no spread over subsets to report) and with ``kid_subset_size`` so that the output shows the cap.

    Returns:
        ``{"kid", "kid_std"}``, or ``{"kid", "kid_subset_size"}`` when capped.
    """
    n = min(len(features_a), len(features_b))
    if subset_size <= n:
        mean, std = kernel_inception_distance(features_a, features_b, num_subsets, subset_size, seed)
        return {"kid": mean, "kid_std": std}
    warnings.warn(f"KID subset_size={subset_size} is larger than the scored sets ({len(features_a)} and "
                  f"{len(features_b)} rows): reporting ONE MMD^2 over {n} rows of each, with no std. "
                  "Score more samples or lower kid_subset_size for the subset average.", UserWarning, stacklevel=2)
    mean, _ = kernel_inception_distance(features_a, features_b, 1, n, seed)
    return {"kid": mean, "kid_subset_size": float(n)}
