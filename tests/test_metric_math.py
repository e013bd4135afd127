"""Generative-metric math against independent references (scipy, numpy, naive loops, hand computation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
import torch

from callbacks.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_statistics
from callbacks.metrics.inception_score import inception_score
from callbacks.metrics.kid import kernel_inception_distance
from callbacks.metrics.mode_coverage import mode_coverage
from callbacks.metrics.prdc import density_coverage, precision_recall


def correlated_gaussian(rng: np.random.Generator, n: int, d: int, scale: float = 1.0, shift: float = 0.0,
                        well_conditioned: bool = True) -> np.ndarray:
    """``n`` samples ``Z @ A * scale + shift`` with a random mixing matrix ``A``."""
    a = rng.standard_normal((d, d)) / math.sqrt(d)
    if well_conditioned:
        a = np.eye(d) + 0.5 * a
    return (rng.standard_normal((n, d)) @ a) * scale + shift


def svd_fid(x: np.ndarray, y: np.ndarray) -> float:
    """FID from the features: tr((S1 S2)^{1/2}) = sum of singular values of Xc Yc^T / sqrt((n1-1)(n2-1)).

    Exact up to rounding even for singular covariances (no square roots of eigenvalues).
    """
    xc, yc, n1, n2 = x - x.mean(0), y - y.mean(0), len(x), len(y)
    trace_sqrt = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / math.sqrt((n1 - 1) * (n2 - 1))
    mean_term = ((x.mean(0) - y.mean(0)) ** 2).sum()
    return float(mean_term + (xc**2).sum() / (n1 - 1) + (yc**2).sum() / (n2 - 1) - 2 * trace_sqrt)


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    """The classic reference: ||m1 - m2||^2 + tr S1 + tr S2 - 2 tr sqrtm(S1 S2)."""
    (m1, s1), (m2, s2) = ((z.mean(0), np.cov(z, rowvar=False)) for z in (x, y))
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_feature_statistics_matches_numpy():
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * 3 + 1
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == torch.float64 and mu.shape == (7,) and sigma.shape == (7, 7)
    ref = x.double().numpy()
    np.testing.assert_allclose(mu.numpy(), ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(ref, rowvar=False), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d, well_conditioned", [(16, True), (64, True), (256, True), (16, False), (64, False)])
def test_frechet_matches_scipy_sqrtm(d, well_conditioned):
    rng = np.random.default_rng(d)
    x = correlated_gaussian(rng, 4 * d, d, well_conditioned=well_conditioned)
    y = correlated_gaussian(rng, 4 * d, d, scale=1.2, shift=0.1, well_conditioned=well_conditioned)
    ref = scipy_fid(x, y)
    ours = frechet_distance(torch.from_numpy(x), torch.from_numpy(y))
    assert ours == pytest.approx(ref, rel=1e-9)
    assert ours == pytest.approx(svd_fid(x, y), rel=1e-9)
    # numpy statistics are accepted as well
    stats = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert frechet_distance_from_statistics(*stats) == pytest.approx(ref, rel=1e-9)
    assert frechet_distance(y, x) == pytest.approx(ref, rel=1e-9)  # symmetric


def test_frechet_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations
    assert frechet_distance_from_statistics(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]),
                                            np.array([[9.0]])) == pytest.approx(9.0 + 1.0, rel=1e-14)
    # commuting (diagonal) covariances: sum_i (sqrt(a_i) - sqrt(b_i))^2
    a, b = np.array([1.0, 2.0, 0.5, 3.0]), np.array([0.3, 2.0, 4.0, 0.0])
    hand = float(((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    zero = np.zeros(4)
    assert frechet_distance_from_statistics(zero, np.diag(a), zero, np.diag(b)) == pytest.approx(hand, rel=1e-12)
    assert frechet_distance_from_statistics(zero, np.diag(b), zero, np.diag(a)) == pytest.approx(hand, rel=1e-12)


@pytest.mark.parametrize("d", [32, 128])
@pytest.mark.parametrize("n_a, n_b", [(0.5, 0.25), (0.5, 4.0), (4.0, 0.25), (1.0, 1.0), (1.0, 3.0)])
def test_frechet_singular_covariances(d, n_a, n_b):
    rng = np.random.default_rng(d + 1)
    x = correlated_gaussian(rng, int(n_a * d), d, well_conditioned=False)
    y = correlated_gaussian(rng, int(n_b * d), d, shift=0.05, well_conditioned=False)
    value = frechet_distance(x, y)
    assert math.isfinite(value) and value >= -1e-9
    assert value == pytest.approx(svd_fid(x, y), rel=1e-10)
    assert value == pytest.approx(scipy_fid(x, y), rel=1e-6)  # sqrtm takes square roots of rounding noise
    for z in (x, y):  # a set against itself: exactly 0 in exact arithmetic
        assert abs(frechet_distance(z, z)) < 1e-9


@pytest.mark.parametrize("d", [64, 128])
def test_frechet_self_distance_near_rank_deficiency(d):
    rng = np.random.default_rng(d + 2)
    for n in (d // 8, d - 1, d, d + 1, 2 * d):
        x = correlated_gaussian(rng, n, d, well_conditioned=False)
        assert abs(frechet_distance(x, x)) < 1e-9


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError):
        frechet_distance_from_statistics(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError):
        feature_statistics(torch.zeros(1, 3))


def test_frechet_agrees_with_torchmetrics():
    fid_module = pytest.importorskip("torchmetrics.image.fid")
    if not hasattr(fid_module, "_compute_fid"):
        pytest.skip("torchmetrics.image.fid._compute_fid is not available")
    rng = np.random.default_rng(3)
    x = torch.from_numpy(correlated_gaussian(rng, 512, 128))
    y = torch.from_numpy(correlated_gaussian(rng, 512, 128, scale=0.9, shift=-0.2))
    (mu1, s1), (mu2, s2) = feature_statistics(x), feature_statistics(y)
    reference = float(fid_module._compute_fid(mu1, s1, mu2, s2))
    assert frechet_distance_from_statistics(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-6)



def naive_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 written as explicit loops over pairs."""
    d, m, n = x.shape[1], len(x), len(y)

    def k(a, b):
        return (sum(float(ai) * float(bi) for ai, bi in zip(a, b, strict=True)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_naive_mmd():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((15, 4))).float()  # float32 in, float64 inside
    y = torch.from_numpy(rng.standard_normal((11, 4)) * 1.5 + 0.5).float()
    x64, y64 = x.double().numpy(), y.double().numpy()
    with pytest.raises(ValueError, match="subset_size=1000 is larger than the sets"):
        kernel_inception_distance(x[:11], y, num_subsets=3, subset_size=1000)
    full = kernel_inception_distance(x[:11], y, num_subsets=3, subset_size=11)  # every round: the full sets
    num_subsets, size, seed = 4, 6, 7
    mean, std = kernel_inception_distance(x, y, num_subsets=num_subsets, subset_size=size, seed=seed)
    generator, scores = torch.Generator().manual_seed(seed), []
    for _ in range(num_subsets):  # the documented sampling protocol, re-done here
        ia, ib = (torch.randperm(n, generator=generator)[:size] for n in (15, 11))
        scores.append(naive_mmd2(x64[ia], y64[ib]))
    assert mean == pytest.approx(np.mean(scores), rel=1e-10)
    assert std == pytest.approx(np.std(scores), rel=1e-8)
    assert full == pytest.approx((naive_mmd2(x64[:11], y64), 0.0), rel=1e-10, abs=1e-12)


def test_kid_same_vs_shifted_distribution():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    same_mean, same_std = kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
    shifted_mean, _ = kernel_inception_distance(a, b + 1.0, num_subsets=20, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert shifted_mean > 0.5 and shifted_mean > 20 * abs(same_mean)
    assert kernel_inception_distance(a, b, num_subsets=5, subset_size=50, seed=3) == \
        kernel_inception_distance(a, b, num_subsets=5, subset_size=50, seed=3)



def reference_is(logits: np.ndarray, splits: int) -> tuple[float, float]:
    scores = []
    n = len(logits)
    for part in (logits[i * n // splits:(i + 1) * n // splits] for i in range(splits)):  # the original IS cut
        p = scipy.special.softmax(part, axis=1)
        marginal = p.mean(0)
        scores.append(math.exp(np.mean([scipy.stats.entropy(row, marginal) for row in p])))
    return float(np.mean(scores)), float(np.std(scores))


@pytest.mark.parametrize("num_classes", [2, 5, 10])
def test_is_uniform_is_one_and_confident_balanced_is_num_classes(num_classes):
    assert inception_score(torch.zeros(40, num_classes), splits=4) == pytest.approx((1.0, 0.0), abs=1e-12)
    labels = torch.arange(num_classes).repeat(3 * 4)  # every contiguous quarter holds each class 3 times
    logits = 1000.0 * torch.nn.functional.one_hot(labels, num_classes).double()
    assert inception_score(logits, splits=4, seed=None) == pytest.approx((num_classes, 0.0), rel=1e-12, abs=1e-12)
    assert inception_score(logits, splits=1, seed=5)[0] == pytest.approx(num_classes, rel=1e-12)


def test_is_small_case_by_hand():
    p = np.array([[0.9, 0.1], [0.2, 0.8]])  # one split of two rows
    marginal = p.mean(0)  # [0.55, 0.45]
    hand = math.exp(0.5 * sum(p[i, j] * math.log(p[i, j] / marginal[j]) for i in range(2) for j in range(2)))
    mean, std = inception_score(torch.tensor(np.log(p)), splits=1, seed=None)
    assert mean == pytest.approx(hand, rel=1e-12) and std == 0.0


@pytest.mark.parametrize("n, splits", [(12, 3), (7, 3), (20, 1)])
def test_is_matches_scipy_reference_and_shuffle(n, splits):
    logits = torch.randn(n, 6, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 2
    ref = reference_is(logits.numpy(), splits)
    assert inception_score(logits, splits=splits, seed=None) == pytest.approx(ref, rel=1e-10)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(11))
    shuffled_ref = reference_is(logits[order].numpy(), splits)
    assert inception_score(logits, splits=splits, seed=11) == pytest.approx(shuffled_ref, rel=1e-10)



def naive_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    def radii(x):
        dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        return np.sort(dist, axis=1)[:, k - 1]

    r_real, r_fake = radii(real), radii(fake)
    d_fr = np.linalg.norm(fake[:, None] - real[None], axis=-1)  # [m, n]
    inside_real = d_fr <= r_real[None]  # closed balls for precision / recall (torch-fidelity, stylegan2-ada)
    inside_fake = d_fr.T <= r_fake[None]  # [n, m]: real i inside the ball of fake j
    open_real = d_fr < r_real[None]  # open balls for density / coverage (the prdc package)
    return {"precision": inside_real.any(1).mean(), "recall": inside_fake.any(1).mean(),
            "density": open_real.sum() / (k * len(fake)), "coverage": open_real.any(0).mean()}


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("chunk_size", [7, 1024])
def test_prdc_matches_naive(k, chunk_size):
    rng = np.random.default_rng(k)
    real, fake = rng.standard_normal((60, 4)), rng.standard_normal((45, 4)) * 1.3 + 0.4
    ref = naive_prdc(real, fake, k)
    pr = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=k, chunk_size=chunk_size)
    dc = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=k, chunk_size=chunk_size)
    assert pr == pytest.approx({key: ref[key] for key in ("precision", "recall")}, abs=1e-12)
    assert dc == pytest.approx({key: ref[key] for key in ("density", "coverage")}, abs=1e-12)


def test_prdc_identical_and_disjoint_sets():
    real = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    pr, dc = precision_recall(real, real.clone()), density_coverage(real, real.clone())
    assert pr == {"precision": 1.0, "recall": 1.0} and dc["coverage"] == 1.0
    far = real + 1000.0
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, far) == {"density": 0.0, "coverage": 0.0}


def test_prdc_float32_and_radius_excludes_self():
    real = torch.tensor([[0.0], [1.0], [3.0]])  # radii with k=1: 1, 1, 2 (not 0: self excluded)
    fake = torch.tensor([[4.5], [5.5]])  # only 4.5 is inside the ball of 3 (radius 2)
    assert precision_recall(real, fake, k=1)["precision"] == 0.5
    assert density_coverage(real, fake, k=1) == {"density": 0.5, "coverage": pytest.approx(1 / 3)}



def ring(num_modes: int, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(num_modes, dtype=torch.float64) * 2 * math.pi / num_modes
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def test_mode_coverage_perfect_collapsed_and_far_samples():
    modes = ring(8)
    noise = 0.01 * torch.randn(8 * 50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    perfect = mode_coverage(modes.repeat(50, 1) + noise, modes, std=0.02)
    assert perfect == {"modes": 8.0, "high_quality": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-12)}
    collapsed = mode_coverage(modes[3].repeat(100, 1), modes, std=0.02)
    assert collapsed == {"modes": 1.0, "high_quality": 1.0, "reverse_kl": pytest.approx(math.log(8), rel=1e-12)}
    far = mode_coverage(torch.full((30, 2), 100.0), modes, std=0.02)
    assert far["modes"] == 0.0 and far["high_quality"] == 0.0 and math.isnan(far["reverse_kl"])


def test_mode_coverage_hand_case():
    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.tensor([[0.2, 0.0], [0.0, -0.29], [10.0, 0.1], [5.0, 5.0], [0.0, 10.31]])
    # std 0.1 -> radius 0.3: first three are high quality (2 on mode 0, 1 on mode 1); (5, 5) and 0.31 off
    result = mode_coverage(samples, modes, std=0.1)
    q, p = np.array([2 / 3, 1 / 3, 0.0]), np.full(3, 1 / 3)
    assert result == {"modes": 2.0, "high_quality": pytest.approx(3 / 5),
                      "reverse_kl": pytest.approx(scipy.stats.entropy(q, p), rel=1e-12)}
    assert mode_coverage(samples, modes, std=0.1, threshold=4.0)["modes"] == 3.0


def pacgan_reference(samples: np.ndarray, means: np.ndarray, std: float) -> tuple[float, float, float]:
    """The PacGAN authors' evaluation as a naive loop (fjxmlzn/PacGAN, synthetic_data_experiments,
    ``MetricLogger``): nearest mode by the variance-scaled distance ``sqrt(sum(d**2 / var))``, high
    quality when it is ``< 3``, modes = bins with a high-quality sample, and the reverse KL as
    ``log K - entropy`` of the high-quality histogram (they log the entropy of coverage)."""
    counts = np.zeros(len(means))
    for x in samples:
        dist = [math.sqrt(float(np.sum((x - m) ** 2 / std**2))) for m in means]
        j = int(np.argmin(dist))
        if dist[j] < 3:
            counts[j] += 1
    reverse_kl = math.log(len(means)) - scipy.stats.entropy(counts / counts.sum())
    return float((counts > 0).sum()), counts.sum() / len(samples), reverse_kl


@pytest.mark.parametrize("spread", [0.5, 1.0, 3.0, 8.0])
def test_mode_coverage_matches_the_pacgan_authors_evaluation(spread):
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    means = np.array([[a, b] for a in axis for b in axis])
    rng = np.random.default_rng(int(spread * 10))
    # a lopsided generator: most samples on a few modes, spread measured in stds of the target (0.05)
    picks = rng.choice(len(means), size=600, p=np.arange(1, 26) ** 2 / np.sum(np.arange(1, 26) ** 2))
    samples = means[picks] + 0.05 * spread * rng.standard_normal((600, 2))
    modes, quality, kl = pacgan_reference(samples, means, 0.05)
    ours = mode_coverage(torch.from_numpy(samples), torch.from_numpy(means), std=0.05)
    assert ours == {"modes": modes, "high_quality": pytest.approx(quality, abs=1e-12),
                    "reverse_kl": pytest.approx(kl, rel=1e-9, abs=1e-12)}
