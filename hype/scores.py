"""HYPE scores and their bootstrap confidence intervals (numpy only).

HYPE_inf is the error rate over every evaluation judgment of the qualified evaluators; HYPE_time is
the mean over evaluators of each evaluator's threshold (their blocks' modal exposures averaged).
The paper reports 95% bootstrap intervals from 10,000 resamples of the evaluators (Zhou et al. 2019,
Sec. 3, "Metrics"). For HYPE_inf the images are a sample too, so the interval here resamples both:
evaluators and images are drawn with replacement independently and each judgment is weighted by the
product of its evaluator's and its image's multiplicities (the two-way, or pigeonhole, bootstrap of
Owen, "The pigeonhole bootstrap", Ann. Appl. Stat. 2007). It is wider than the evaluator-only interval
whenever images differ in how deceptive they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ITERATIONS = 10_000


def _percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_mean(values: Sequence[float], iterations: int = ITERATIONS, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float, float]:
    """The mean of ``values``, and the percentile interval of the means of resamples with replacement.

    Returns:
        ``(mean, low, high)``; the interval is ``(mean, mean)`` for a single value.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to average")
    rng = np.random.default_rng(seed)
    means = np.empty(iterations)
    for start in range(0, iterations, 1000):
        stop = min(start + 1000, iterations)
        picks = rng.integers(0, x.size, size=(stop - start, x.size))
        means[start:stop] = x[picks].mean(axis=1)
    return (float(x.mean()), *_percentile_interval(means, level))


def two_way_bootstrap(errors: Sequence[float], evaluators: Sequence[int], images: Sequence[int],
                      iterations: int = ITERATIONS, seed: int = 0) -> np.ndarray:
    """Resampled error rates of a crossed design (evaluators x images).

    Args:
        errors: one entry per judgment, 1.0 when wrong, 0.0 when right.
        evaluators: the judgment's evaluator, as an index in ``[0, E)``.
        images: the judgment's image, as an index in ``[0, I)``.

    Returns:
        ``[iterations]`` error rates; NaN where a resample kept no judgment (its evaluators never saw
        its images), which the interval ignores.
    """
    e = np.asarray(evaluators, dtype=np.int64)
    i = np.asarray(images, dtype=np.int64)
    err = np.asarray(errors, dtype=np.float64)
    n_e, n_i = int(e.max()) + 1, int(i.max()) + 1
    # Per (evaluator, image) cell: the number of judgments and of errors, so a resample is two
    # weighted sums over a small matrix instead of a pass over every judgment.
    counts = np.zeros((n_e, n_i))
    wrong = np.zeros((n_e, n_i))
    np.add.at(counts, (e, i), 1.0)
    np.add.at(wrong, (e, i), err)
    rng = np.random.default_rng(seed)
    out = np.empty(iterations)
    for start in range(0, iterations, 500):
        b = min(start + 500, iterations) - start
        w_e = rng.multinomial(n_e, np.full(n_e, 1.0 / n_e), size=b).astype(np.float64)  # [b, E]
        w_i = rng.multinomial(n_i, np.full(n_i, 1.0 / n_i), size=b).astype(np.float64)  # [b, I]
        num = np.einsum("be,ei,bi->b", w_e, wrong, w_i)
        den = np.einsum("be,ei,bi->b", w_e, counts, w_i)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + b] = num / den
    return out


def _codes(keys: Sequence) -> np.ndarray:
    """Integer codes in order of first appearance (not of sorted keys: image ids are random strings,
    and the bootstrap's draws should not depend on them)."""
    index: dict = {}
    return np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)


def hype_infinity(truths: Sequence[str], answers: Sequence[str], evaluators: Sequence[int],
                  images: Sequence[int], iterations: int = ITERATIONS, seed: int = 0,
                  level: float = 0.95) -> dict[str, float]:
    """HYPE_inf: the share of wrong judgments, with the error on fakes and on reals apart.

    Args:
        truths, answers: ``"real"`` / ``"fake"`` per judgment.
        evaluators, images: integer ids of the judgment's evaluator and image.

    Returns:
        ``score``, ``fake_error``, ``real_error`` (fractions in [0, 1]; NaN when a kind is absent),
        ``ci_low``, ``ci_high`` (two-way bootstrap), ``judgments``.
    """
    if not truths:
        raise ValueError("no judgments to score")
    truth = np.asarray(truths)
    wrong = (truth != np.asarray(answers)).astype(np.float64)
    e, i = _codes(evaluators), _codes(images)
    samples = two_way_bootstrap(wrong, e, i, iterations=iterations, seed=seed)
    low, high = _percentile_interval(samples, level)

    def rate(mask: np.ndarray) -> float:
        return float(wrong[mask].mean()) if mask.any() else float("nan")

    return {"score": float(wrong.mean()), "fake_error": rate(truth == "fake"), "real_error": rate(truth == "real"),
            "ci_low": low, "ci_high": high, "judgments": int(wrong.size)}


def hype_time(thresholds: Sequence[float], iterations: int = ITERATIONS, seed: int = 0,
              level: float = 0.95) -> dict[str, float]:
    """HYPE_time: the mean of the evaluators' thresholds (ms) and its evaluator-bootstrap interval."""
    mean, low, high = bootstrap_mean(thresholds, iterations=iterations, seed=seed, level=level)
    return {"score": mean, "ci_low": low, "ci_high": high, "evaluators": len(thresholds)}
