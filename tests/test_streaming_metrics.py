"""Streamed metric math: sufficient statistics, index-ordered subsets, split IS, reference-tool conventions.

Where the reference packages of the ``dev`` extra are installed (pytorch-fid 0.3.0, torch-fidelity 0.4.0,
prdc 0.2) the values are compared with theirs; the hand-computed checks next to them hold either way.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from callbacks.metrics import frechet_distance, frechet_distance_from_statistics, inception_score
from callbacks.metrics.kid import kernel_inception_distance, kid_capped
from callbacks.metrics.prdc import density_coverage, precision_recall
from callbacks.metrics.reference_stats import load_reference_statistics, save_reference_statistics
from callbacks.metrics.streaming import FeatureMoments, InceptionScoreAccumulator, IndexedSubset, SetSummary

has = {name: importlib.util.find_spec(name) is not None for name in ("pytorch_fid", "torch_fidelity", "prdc")}


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / math.sqrt(d)
    return (torch.randn(n, d, generator=g) @ mix + shift).relu()  # non-negative, correlated, like pool3


def _statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return _stream(x, [len(x)]).mean_covariance()


def _stream(x: torch.Tensor, sizes: list[int]) -> FeatureMoments:
    moments = FeatureMoments(x.shape[1])
    for part in torch.split(x, sizes):
        moments.update(part)
    return moments


@pytest.mark.parametrize("n, d", [(300, 16), (12, 32)])  # positive definite and singular (n < d)
def test_fid_from_streamed_statistics_equals_fid_from_features(n, d):
    real, fake = _features(n, d, 0), _features(n + 7, d, 1, shift=0.3)
    sizes = [5, 1, n - 6]
    m_real = _stream(real, sizes)
    m_fake = _stream(fake, [n + 7])
    mu, sigma = m_real.mean_covariance()
    np.testing.assert_allclose(mu.numpy(), real.double().mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(real.double().numpy(), rowvar=False), rtol=1e-9, atol=1e-12)
    streamed = frechet_distance_from_statistics(*m_fake.mean_covariance(), mu, sigma)
    assert streamed == pytest.approx(frechet_distance(fake, real), rel=1e-9)


def test_moments_add_up_like_an_all_reduce():
    x = _features(100, 8, 2)
    one = _stream(x, [100])
    a, b = _stream(x[:37], [37]), _stream(x[37:], [63])
    for ta, tb in zip(a.tensors(), b.tensors(), strict=True):
        ta += tb
    for t1, t2 in zip(one.tensors(), a.tensors(), strict=True):
        torch.testing.assert_close(t1, t2, rtol=1e-13, atol=1e-13)


def test_indexed_subset_keeps_the_first_rows_whatever_the_order():
    x = torch.randn(50, 4)
    subset = IndexedSubset(20, 4)
    for index in torch.randperm(50).split(7):
        subset.update(index, x[index])
    assert torch.equal(subset.rows, x[:20])


def test_streamed_inception_score_cuts_splits_like_the_reference():
    logits = torch.randn(103, 12, generator=torch.Generator().manual_seed(0)) * 3  # 103 % 10 != 0
    # The reference cut, written out: split i is rows i*n//10 .. (i+1)*n//10 of the (unshuffled) rows.
    scores = []
    p = torch.softmax(logits.double(), 1)
    for i in range(10):
        part = p[i * 103 // 10:(i + 1) * 103 // 10]
        q = part.mean(0, keepdim=True)
        scores.append(math.exp(float((part * (part.log() - q.log())).sum(1).mean())))
    mean, std = inception_score(logits, splits=10, seed=None)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12) and std == pytest.approx(np.std(scores), rel=1e-9)
    # Streamed in shuffled batches, with the seeded shuffle: the same as all at once.
    acc = InceptionScoreAccumulator(103, 12, splits=10, seed=5)
    for index in torch.randperm(103).split(9):
        acc.update(index, logits[index])
    assert acc.compute() == pytest.approx(inception_score(logits, splits=10, seed=5), rel=1e-12)
    if has["torch_fidelity"]:
        from torch_fidelity.metric_isc import isc_features_to_metric

        reference = isc_features_to_metric(logits, splits=10, shuffle=False)
        assert mean == pytest.approx(reference["inception_score_mean"], rel=1e-12)
        assert std == pytest.approx(reference["inception_score_std"], rel=1e-9)


def test_density_uses_open_balls_and_precision_closed_ones():
    real = _features(300, 64, 3)
    # Fakes equal to the reals: each open ball holds its own centre and the k-1 nearer neighbours, so the
    # density is exactly 1 (closed balls would add the k-th neighbour on the boundary: (k+1)/k).
    out = density_coverage(real, real.clone(), k=5)
    assert out["density"] == pytest.approx(1.0, abs=1e-12) and out["coverage"] == 1.0
    pr = precision_recall(real, real.clone(), k=3)
    assert pr == {"precision": 1.0, "recall": 1.0}
    if has["prdc"]:
        from prdc import compute_prdc

        fake = _features(310, 64, 4, shift=0.1)
        for f in (real.clone(), fake):
            ours = density_coverage(real.double(), f.double(), k=5)
            theirs = compute_prdc(real.double().numpy(), f.double().numpy(), nearest_k=5)
            assert ours["density"] == pytest.approx(theirs["density"], rel=1e-12)
            assert ours["coverage"] == pytest.approx(theirs["coverage"], rel=1e-12)


def test_kid_refuses_a_subset_larger_than_the_sets_and_the_capped_form_says_so():
    a, b = _features(30, 8, 5), _features(40, 8, 6)
    with pytest.raises(ValueError, match="subset_size=50 is larger than the sets"):
        kernel_inception_distance(a, b, num_subsets=3, subset_size=50)
    with pytest.warns(UserWarning, match="ONE MMD"):
        capped = kid_capped(a, b, num_subsets=3, subset_size=50)
    assert set(capped) == {"kid", "kid_subset_size"} and capped["kid_subset_size"] == 30
    assert set(kid_capped(a, b, num_subsets=3, subset_size=20)) == {"kid", "kid_std"}


def test_set_summary_streams_what_the_metrics_need():
    x, logits = _features(90, 8, 7), torch.randn(90, 5)
    summary = SetSummary(90, ["fid", "kid", "is", "class_histogram"], max_features=40)
    for index in torch.randperm(90).split(16):
        summary.update(index, x[index], logits[index])
    assert summary.subset.rows.shape == (40, 8) and torch.equal(summary.subset.rows, x[:40])
    assert torch.equal(summary.class_counts, torch.bincount(logits.argmax(1), minlength=5).double())
    assert summary.inception.compute() == pytest.approx(inception_score(logits, splits=10, seed=0), rel=1e-12)


def test_reference_statistics_round_trip_and_pytorch_fid_files(tmp_path):
    real, fake = _features(200, 16, 8), _features(150, 16, 9, shift=0.2)
    mu, sigma = _statistics(real)
    ours = save_reference_statistics(tmp_path / "ours.npz", mu, sigma, 200, "tf1")
    loaded = load_reference_statistics(ours, feature_dim=16, preprocessing="tf1")
    assert loaded.num_samples == 200 and loaded.preprocessing == "tf1"
    fid = frechet_distance_from_statistics(*_statistics(fake), loaded.mu, loaded.sigma)
    assert fid == pytest.approx(frechet_distance(fake, real), rel=1e-9)
    # pytorch-fid's own format: exactly numpy.savez(mu=..., sigma=...), float64, no provenance.
    x = real.double().numpy()
    np.savez(tmp_path / "pytorch_fid.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    with pytest.warns(UserWarning, match="does not record its preprocessing"):
        theirs = load_reference_statistics(tmp_path / "pytorch_fid.npz", feature_dim=16, preprocessing="tf1")
    assert frechet_distance_from_statistics(*_statistics(fake), theirs.mu, theirs.sigma) == pytest.approx(fid, rel=1e-9)
    if has["pytorch_fid"]:
        from pytorch_fid.fid_score import calculate_frechet_distance

        f = fake.double().numpy()
        reference = calculate_frechet_distance(f.mean(0), np.cov(f, rowvar=False), theirs.mu.numpy(), theirs.sigma.numpy())
        assert fid == pytest.approx(reference, rel=1e-9)


def test_bad_reference_statistics_files_are_named(tmp_path):
    np.savez(tmp_path / "no_sigma.npz", mu=np.zeros(4))
    with pytest.raises(ValueError, match=r"no_sigma\.npz' has no sigma"):
        load_reference_statistics(tmp_path / "no_sigma.npz")
    np.savez(tmp_path / "dim.npz", mu=np.zeros(4), sigma=np.eye(4))
    with pytest.raises(ValueError, match=r"dim\.npz' holds 4-dimensional features but the extractor makes 2048"):
        load_reference_statistics(tmp_path / "dim.npz", feature_dim=2048)
    np.savez(tmp_path / "shape.npz", mu=np.zeros(4), sigma=np.eye(3))
    with pytest.raises(ValueError, match=r"shape\.npz': mu must be \[d\] and sigma \[d, d\]"):
        load_reference_statistics(tmp_path / "shape.npz")
    save_reference_statistics(tmp_path / "mode.npz", torch.zeros(4), torch.eye(4), 10, "pytorch_fid")
    with pytest.raises(ValueError, match=r"mode\.npz' was made with preprocessing 'pytorch_fid'.*'tf1'"):
        load_reference_statistics(tmp_path / "mode.npz", feature_dim=4, preprocessing="tf1")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"junk\.npz' is not a readable \.npz"):
        load_reference_statistics(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match=r"missing\.npz' does not exist"):
        load_reference_statistics(tmp_path / "missing.npz")
