"""Frechet distance between Gaussians fitted to feature sets (the math behind FID).

Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
NeurIPS 2017 (FID); Dowson & Landau, "The Frechet distance between multivariate normal
distributions", J. Multivariate Anal. 1982 (closed form).

For ``N(mu1, S1)`` and ``N(mu2, S2)``::

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

``S1 S2`` is not symmetric, so the usual route (``scipy.linalg.sqrtm`` of the product, or a general
eigen-solver as in torchmetrics) is slow and can return complex rounding noise. Here the trace term
comes from symmetric problems only: for any ``F`` with ``F F^T = S1`` (Cholesky factor, or
``V diag(sqrt(w))`` from ``eigh`` when ``S1`` is singular), ``S1 S2 F = F (F^T S2 F)``, so the
non-zero eigenvalues of ``S1 S2`` are those of the symmetric PSD ``M = F^T S2 F`` and
``tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(M))``, taken with ``torch.linalg.eigvalsh`` (or, when both
covariances are singular, as the singular values of ``F1^T F2``); see :func:`trace_sqrt_product`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray


def _as_float64(x: ArrayLike, device: torch.device | None = None) -> Tensor:
    """Converts a tensor or numpy array to a float64 tensor (on ``device`` when given)."""
    t = torch.as_tensor(x)
    return t.to(device=device if device is not None else t.device, dtype=torch.float64)


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance of a feature set, computed in float64.

    Args:
        features: ``[n, d]`` features, one row per sample, ``n >= 2``; any float dtype (or a numpy array).

    Returns:
        ``(mu, sigma)``: float64 mean ``[d]`` and covariance ``[d, d]`` normalised by ``n - 1``
        (the convention of the reference FID code and of ``numpy.cov``), on the input's device.
    """
    x = _as_float64(features)
    if x.ndim != 2:
        raise ValueError(f"features must be [n, d], got shape {tuple(x.shape)}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 samples for a covariance, got {n}")
    mu = x.mean(dim=0)
    centred = x - mu
    sigma = centred.T @ centred / (n - 1)
    return mu, sigma


def _rank_tolerance(sigma: Tensor, largest: Tensor) -> Tensor:
    """Numerical-rank threshold ``d * eps * largest`` (the ``numpy.linalg.matrix_rank`` convention)."""
    return largest.clamp_min(0) * sigma.shape[0] * torch.finfo(sigma.dtype).eps


def _cholesky_factor(sigma: Tensor) -> Tensor | None:
    """Lower Cholesky factor ``L`` (``L L^T = sigma``), or ``None`` when ``sigma`` is numerically singular.

    Singular means the factorisation fails or a pivot ``L_ii^2`` (an upper bound of the smallest
    eigenvalue) is under the rank tolerance relative to the largest variance; a covariance of ``n <= d``
    samples (rank ``n - 1``) is caught either way.
    """
    factor, info = torch.linalg.cholesky_ex(sigma)
    if int(info) != 0:
        return None
    pivots = factor.diagonal().square()
    return factor if bool(pivots.min() > _rank_tolerance(sigma, sigma.diagonal().max())) else None


def _range_factor(sigma: Tensor) -> Tensor:
    """``B = V diag(sqrt(w))`` from ``sigma = V diag(w) V^T``, restricted to the numerical range.

    Eigenvalues under the rank tolerance (and negative ones) are dropped, so ``B`` is ``[d, r]`` with
    ``B B^T = sigma`` up to rounding and ``r`` the numerical rank (``B V^T`` is ``sigma^{1/2}``).
    """
    w, v = torch.linalg.eigh(sigma)
    keep = w > _rank_tolerance(sigma, w[-1])
    return v[:, keep] * w[keep].sqrt()


def trace_sqrt_product(sigma1: ArrayLike, sigma2: ArrayLike) -> float:
    """``tr((S1 S2)^{1/2})`` for symmetric positive semi-definite ``S1``, ``S2`` from symmetric problems only.

    For any ``F`` with ``F F^T = S1``, ``S1 S2 F = F M`` with the symmetric PSD ``M = F^T S2 F``, so the
    non-zero eigenvalues of ``S1 S2`` are those of ``M`` and the trace is ``sum(sqrt(eigvalsh(M)))``
    (eigenvalues clamped at 0). Three cases, by numerical rank (see :func:`_cholesky_factor`):

    * both positive definite (``n > d`` samples each): ``F`` = Cholesky factor of ``S1``; one Cholesky,
      two products and one eigenvalues-only ``eigvalsh``, several times faster than ``scipy.linalg.sqrtm``;
    * one singular: ``F = V diag(sqrt(w))`` from ``eigh`` of the singular one on its range (``[d, r]``),
      ``M`` is ``r x r`` and positive definite (using ``tr((S1 S2)^{1/2}) = tr((S2 S1)^{1/2})``);
    * both singular: ``F1``, ``F2`` as above, and the trace is the sum of the singular values of
      ``F1^T F2`` (whose squares are the eigenvalues of ``F1^T S2 F1``); this avoids square roots of
      eigenvalues that are zero up to rounding, so the distance of a set to itself stays ~0, not
      ``-sqrt(eps)``-sized.

    Args:
        sigma1: ``[d, d]`` covariance (used as ``(S + S^T) / 2``, so rounding asymmetry is harmless).
        sigma2: ``[d, d]`` covariance (likewise).

    Returns:
        The trace as a Python float, computed in float64.
    """
    s1 = _as_float64(sigma1)
    s2 = _as_float64(sigma2, device=s1.device)
    s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)
    chol1, chol2 = _cholesky_factor(s1), _cholesky_factor(s2)
    if chol1 is None and chol2 is None:
        f1, f2 = _range_factor(s1), _range_factor(s2)
        if f1.shape[1] == 0 or f2.shape[1] == 0:
            return 0.0
        return float(torch.linalg.svdvals(f1.T @ f2).sum())
    if chol1 is not None and chol2 is not None:
        factor, other = chol1, s2
    elif chol1 is None:
        factor, other = _range_factor(s1), s2
    else:
        factor, other = _range_factor(s2), s1
    m = factor.T @ other @ factor
    lam = torch.linalg.eigvalsh(0.5 * (m + m.T))
    return float(lam.clamp_min(0).sqrt().sum())


def frechet_distance_from_statistics(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike,
                                     sigma2: ArrayLike) -> float:
    """Frechet (2-Wasserstein) distance squared between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^{1/2})`` in float64 (Heusel et al.
    2017), with the trace of the matrix square root taken from symmetric eigendecompositions (see the
    module docstring). On positive definite covariances it agrees with the ``scipy.linalg.sqrtm``
    formula to ~1e-12 relative. Singular covariances are accepted: the result stays finite and
    non-negative up to rounding (a set against itself gives ~1e-12, not ``-sqrt(eps)``-sized values),
    and it is then more accurate than the ``sqrtm`` route, which takes square roots of rounding noise
    (~1e-8 relative error there).

    Note:
        With ``n < d`` samples the covariance is singular and, more importantly, the FID estimate is
        strongly biased (upwards, with a bias that depends on ``n``; Chong & Forsyth, "Effectively
        Unbiased FID and Inception Score and where to find them", CVPR 2020). Such values are only
        comparable between runs that use the same ``n`` (and the same feature extractor).

    Args:
        mu1: ``[d]`` mean of the first set (tensor or numpy array, any float dtype).
        sigma1: ``[d, d]`` covariance of the first set.
        mu2: ``[d]`` mean of the second set.
        sigma2: ``[d, d]`` covariance of the second set.

    Returns:
        The squared distance as a Python float (the quantity reported as "FID").
    """
    m1 = _as_float64(mu1)
    s1 = _as_float64(sigma1, device=m1.device)
    m2 = _as_float64(mu2, device=m1.device)
    s2 = _as_float64(sigma2, device=m1.device)
    d = m1.shape[-1]
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu1 {tuple(m1.shape)}, sigma1 {tuple(s1.shape)}, "
                         f"mu2 {tuple(m2.shape)}, sigma2 {tuple(s2.shape)}")
    mean_term = float((m1 - m2).square().sum())
    trace_term = float(s1.trace() + s2.trace())
    return mean_term + trace_term - 2.0 * trace_sqrt_product(s1, s2)


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (FID when the features are Inception's).

    Args:
        features_a: ``[n_a, d]`` features of the first set.
        features_b: ``[n_b, d]`` features of the second set (``n_b`` may differ from ``n_a``).

    Returns:
        ``frechet_distance_from_statistics(*feature_statistics(features_a), *feature_statistics(features_b))``;
        see that function for the bias when ``n < d``.
    """
    mu_a, sigma_a = feature_statistics(features_a)
    mu_b, sigma_b = feature_statistics(features_b)
    return frechet_distance_from_statistics(mu_a, sigma_a, mu_b, sigma_b)
