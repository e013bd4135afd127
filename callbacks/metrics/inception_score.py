"""Inception Score from classifier logits.

Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen, "Improved Techniques for Training GANs",
NeurIPS 2016: ``IS = exp(E_x KL(p(y|x) || p(y)))``, with ``p(y)`` the marginal over the evaluated set,
computed on ``splits`` disjoint parts and reported as mean and std over the parts.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def split_inception_score(log_probs: Tensor) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` of one split, ``p(y)`` being the split's mean prediction.

    Args:
        log_probs: ``[n, K]`` log class probabilities (rows are log-softmax outputs), float64.

    Returns:
        The split's score, in ``[1, K]``; terms with ``p(y|x) = 0`` contribute 0 (``0 log 0 = 0``).
    """
    probs = log_probs.exp()
    log_marginal = torch.log(probs.mean(dim=0, keepdim=True))
    terms = torch.where(probs > 0, probs * (log_probs - log_marginal), torch.zeros_like(probs))
    return math.exp(float(terms.sum(dim=1).mean()))


def inception_score(logits: Tensor, splits: int = 10, seed: int | None = 0) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): mean and std of ``exp(E_x KL(p(y|x) || p(y)))`` over splits.

    The softmax is taken inside, in float64. Before splitting, the rows are shuffled with
    ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` so that an ordered input
    (e.g. samples generated class by class) does not give class-pure splits; ``seed=None`` keeps the
    given order. The rows are then cut into ``splits`` contiguous parts of near-equal size
    (``torch.tensor_split``: the first ``n % splits`` parts get one extra row, no row is dropped), and
    each part uses its own marginal ``p(y)``, as in the reference implementation.

    Args:
        logits: ``[n, K]`` unnormalised class scores (e.g. Inception-v3's 1008/1000-way logits).
        splits: number of parts, ``1 <= splits <= n``.
        seed: seed of the row shuffle, or ``None`` for no shuffle.

    Returns:
        ``(mean, std)`` over splits as Python floats; the std is the population one (``ddof = 0``,
        ``numpy.std`` as in the reference code), 0 for a single split. Uniform predictions give 1;
        confident predictions spread evenly over ``K`` classes within every split give ``K``.
    """
    x = torch.as_tensor(logits).to(torch.float64)
    if x.ndim != 2:
        raise ValueError(f"logits must be [n, K], got shape {tuple(x.shape)}")
    n = x.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be in [1, n={n}], got {splits}")
    if seed is not None:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        x = x[order.to(x.device)]
    log_probs = torch.log_softmax(x, dim=1)
    scores = torch.tensor([split_inception_score(part) for part in torch.tensor_split(log_probs, splits)],
                          dtype=torch.float64)
    return float(scores.mean()), float(scores.std(correction=0))
