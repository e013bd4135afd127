"""k-NN manifold metrics: improved precision/recall and density/coverage.

* Kynkaanniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019: the manifold of a set is the union of balls centred at its points
  with radius the distance to the k-th nearest other point of the same set; precision is the fraction
  of fakes inside the real manifold, recall the fraction of reals inside the fake manifold.
* Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for Generative Models",
  ICML 2020: density = ``(1 / (k M)) sum_j #{i : Y_j in B(X_i, r_i)}`` over fakes ``Y_j`` and real
  balls ``B(X_i, r_i)``; coverage = fraction of real balls that contain at least one fake.

Conventions: Euclidean distances from ``torch.cdist`` in float64 (in float32 the rounding of the
matrix-product form of ``cdist`` decides ties at the ball boundaries, e.g. for fakes equal to reals),
and a point's radius excludes the point itself (duplicates of it still count, at distance 0). Precision
and recall use closed balls (``distance <= radius``, as torch-fidelity and stylegan2-ada's
``metrics/precision_recall.py``); density and coverage use open balls (``distance < radius``, as the
authors' ``prdc`` package, https://github.com/clovaai/generative-evaluation-prdc): with fakes equal to
the reals, closed balls would count each fake in its own ball too and give density up to ``(k + 1) / k``. Distances are computed ``chunk_size`` query rows at a time, so memory is
``O(chunk_size * n)``: no ``n x m`` matrix is held, 10k x 10k sets need ~80 MB per chunk of 1024 rows.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _prepare(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """Checks shapes and casts both sets to float64."""
    real, fake = torch.as_tensor(real), torch.as_tensor(fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"sets must be [n, d] with equal d, got {tuple(real.shape)} and {tuple(fake.shape)}")
    return real.to(torch.float64), fake.to(device=real.device, dtype=torch.float64)


def knn_radii(x: Tensor, k: int, chunk_size: int = 1024) -> Tensor:
    """Distance from each point to its k-th nearest *other* point of the same set.

    Args:
        x: ``[n, d]`` points, ``n > k``.
        k: neighbour rank, ``k >= 1``.
        chunk_size: rows of the distance matrix held at once.

    Returns:
        ``[n]`` radii in the dtype of ``x`` (each point's own zero distance is excluded explicitly).
    """
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"need 1 <= k < n, got k={k}, n={n}")
    radii = torch.empty(n, dtype=x.dtype, device=x.device)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        dist = torch.cdist(x[start:stop], x)
        rows = torch.arange(stop - start, device=x.device)
        dist[rows, rows + start] = float("inf")  # not its own neighbour
        radii[start:stop] = dist.kthvalue(k, dim=1).values
    return radii


def ball_membership(queries: Tensor, centres: Tensor, radii: Tensor, chunk_size: int = 1024,
                    open_balls: bool = False) -> tuple[Tensor, Tensor]:
    """Which balls ``B(centres_i, radii_i)`` contain which queries, reduced both ways.

    Args:
        queries: ``[m, d]`` points.
        centres: ``[n, d]`` ball centres.
        radii: ``[n]`` ball radii.
        chunk_size: query rows per ``cdist`` call.
        open_balls: count ``distance < radius`` (open) instead of ``<=`` (closed).

    Returns:
        ``(counts, hit)``: ``counts[j]`` = number of balls containing query ``j`` (``[m]``, int64) and
        ``hit[i]`` = whether ball ``i`` contains at least one query (``[n]``, bool).
    """
    counts = torch.empty(queries.shape[0], dtype=torch.int64, device=queries.device)
    hit = torch.zeros(centres.shape[0], dtype=torch.bool, device=queries.device)
    for start in range(0, queries.shape[0], chunk_size):
        dist = torch.cdist(queries[start:start + chunk_size], centres)
        inside = dist < radii[None, :] if open_balls else dist <= radii[None, :]
        counts[start:start + chunk_size] = inside.sum(dim=1)
        hit |= inside.any(dim=0)
    return counts, hit


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, chunk_size: int = 1024) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN radius manifolds.

    Args:
        real: ``[n, d]`` real features, ``n > k``.
        fake: ``[m, d]`` generated features, ``m > k``.
        k: neighbour rank defining the radii (the paper uses 3).
        chunk_size: rows of each distance block (memory ``chunk_size * max(n, m)`` floats).

    Returns:
        ``{"precision": fraction of fakes within some real ball,
        "recall": fraction of reals within some fake ball}``, both in ``[0, 1]``.
    """
    real, fake = _prepare(real, fake)
    real_radii = knn_radii(real, k, chunk_size)
    fake_radii = knn_radii(fake, k, chunk_size)
    fake_in_real, _ = ball_membership(fake, real, real_radii, chunk_size)
    real_in_fake, _ = ball_membership(real, fake, fake_radii, chunk_size)
    return {"precision": float((fake_in_real > 0).double().mean()),
            "recall": float((real_in_fake > 0).double().mean())}


def density_coverage(real: Tensor, fake: Tensor, k: int = 5, chunk_size: int = 1024) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020) from open k-NN balls around the real points only.

    Args:
        real: ``[n, d]`` real features, ``n > k``.
        fake: ``[m, d]`` generated features.
        k: neighbour rank defining the real radii (the paper uses 5).
        chunk_size: rows of each distance block.

    Returns:
        ``{"density": sum over fakes of the number of real balls containing it, divided by k * m
        (unbounded above, ~1 when fake matches real), "coverage": fraction of real balls containing
        at least one fake, in [0, 1]}``.
    """
    real, fake = _prepare(real, fake)
    real_radii = knn_radii(real, k, chunk_size)
    counts, covered = ball_membership(fake, real, real_radii, chunk_size, open_balls=True)
    return {"density": float(counts.double().sum() / (k * fake.shape[0])),
            "coverage": float(covered.double().mean())}
