"""Inception Score from classifier logits.

Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen, "Improved Techniques for Training GANs",
NeurIPS 2016: ``IS = exp(E_x KL(p(y|x) || p(y)))``, with ``p(y)`` the marginal over the evaluated set,
computed on ``splits`` disjoint parts and reported as mean and std over the parts.
"""

from __future__ import annotations

import torch
from torch import Tensor

from callbacks.metrics.streaming import InceptionScoreAccumulator


def inception_score(logits: Tensor, splits: int = 10, seed: int | None = 0) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): mean and std of ``exp(E_x KL(p(y|x) || p(y)))`` over splits.

    The softmax is taken inside, in float64. Before splitting, the rows are shuffled with
    ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` so that an ordered input
    (e.g. samples generated class by class) does not give class-pure splits; ``seed=None`` keeps the
    given order. Split ``i`` is rows ``i * n // splits`` to ``(i + 1) * n // splits`` of that order, the
    cut of the reference code and of torch-fidelity (``tensor_split`` would put the ``n % splits``
    extra rows first instead), and each part uses its own marginal ``p(y)``. This is
    :class:`~callbacks.metrics.streaming.InceptionScoreAccumulator` fed the whole matrix at once.

    Args:
        logits: ``[n, K]`` unnormalised class scores (e.g. Inception-v3's 1008/1000-way logits).
        splits: number of parts, ``1 <= splits <= n``.
        seed: seed of the row shuffle, or ``None`` for no shuffle.

    Returns:
        ``(mean, std)`` over splits as Python floats; the std is the population one (``ddof = 0``,
        ``numpy.std`` as in the reference code), 0 for a single split. Uniform predictions give 1;
        confident predictions spread evenly over ``K`` classes within every split give ``K``.
    """
    x = torch.as_tensor(logits)
    if x.ndim != 2:
        raise ValueError(f"logits must be [n, K], got shape {tuple(x.shape)}")
    accumulator = InceptionScoreAccumulator(x.shape[0], x.shape[1], splits=splits, seed=seed, device=x.device)
    accumulator.update(torch.arange(x.shape[0], device=x.device), x)
    return accumulator.compute()
