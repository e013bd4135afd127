"""Perceptual path length against hand-computed values on linear generators, and numpy's percentiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from callbacks.metrics.ppl import (
    PerceptualPathLength,
    feature_distance,
    path_length_samples,
    percentile_filtered_mean,
    perceptual_path_length,
    slerp,
)


class LinearG(nn.Module):
    """``G(z) = c z`` shown as a 1-row image: the path length in pixels is ``c² |dp/dt|²``."""

    def __init__(self, latent_dim: int, c: float) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, 0
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, z: Tensor) -> Tensor:
        return (self.c * z).view(len(z), 1, 1, -1)


class LinearStyleG(nn.Module):
    """``mapping(z) = A z`` broadcast to 3 style inputs, ``synthesis(ws) = B ws[:, 0]``: linear in w."""

    def __init__(self, latent_dim: int, w_dim: int, out_dim: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.latent_dim, self.num_classes = latent_dim, 0
        self.A = nn.Parameter(torch.randn(w_dim, latent_dim, generator=gen, dtype=torch.float64))
        self.B = nn.Parameter(torch.randn(out_dim, w_dim, generator=gen, dtype=torch.float64))

    def mapping(self, z: Tensor) -> Tensor:
        return (z @ self.A.T)[:, None].expand(-1, 3, -1)

    def synthesis(self, ws: Tensor) -> Tensor:
        return (ws[:, 0] @ self.B.T).view(len(ws), 1, 1, -1)


def _draws(n: int, dim: int, seed: int) -> tuple[Tensor, Tensor]:
    """The endpoints and t the metric draws for ``n <= 1024`` paths."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, n, dim, generator=gen, dtype=torch.float64), torch.rand(n, generator=gen, dtype=torch.float64)


def _filtered(values: np.ndarray) -> float:
    lo, hi = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    return float(values[(values >= lo) & (values <= hi)].mean())


def test_percentile_filter_matches_numpy() -> None:
    values = torch.randn(1001, generator=torch.Generator().manual_seed(0), dtype=torch.float64).exp()
    assert float(percentile_filtered_mean(values)) == pytest.approx(_filtered(values.numpy()), rel=1e-12)
    small = torch.tensor([5.0, 1.0, 3.0, 100.0])
    assert float(percentile_filtered_mean(small)) == pytest.approx(np.mean([5.0, 1.0, 3.0, 100.0]))


def test_slerp_stays_on_the_great_circle() -> None:
    a, b = torch.tensor([[2.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 4.0]], dtype=torch.float64)
    half = slerp(a, b, torch.tensor([0.5], dtype=torch.float64))
    torch.testing.assert_close(half, torch.tensor([[3 / 2**0.5, 3 / 2**0.5]], dtype=torch.float64))
    torch.testing.assert_close(slerp(a, b, torch.tensor([0.0], dtype=torch.float64)), a)
    torch.testing.assert_close(slerp(a, b, torch.tensor([1.0], dtype=torch.float64)), b)


@pytest.mark.parametrize("sampling", ["full", "end"])
def test_ppl_in_z_of_a_linear_generator(sampling: str) -> None:
    # p(t) = r(t) u(t), |u| = 1 turning at rate ω, r = lerp(|a|, |b|, t): |p'|² = ω² r² + (|b| - |a|)²
    dim, n, c = 6, 200, 3.0
    (a, b), t = _draws(n, dim, seed=4)
    t = t if sampling == "full" else torch.zeros(n, dtype=torch.float64)
    omega = torch.acos((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)))
    r = torch.lerp(a.norm(dim=1), b.norm(dim=1), t)
    expected = c**2 * (omega**2 * r**2 + (b.norm(dim=1) - a.norm(dim=1)) ** 2)
    distance = feature_distance(nn.Flatten())
    values = path_length_samples(LinearG(dim, c), distance, num_samples=n, sampling=sampling, batch_size=64, seed=4)
    torch.testing.assert_close(values, expected, rtol=1e-3, atol=0)
    result = perceptual_path_length(LinearG(dim, c), distance, num_samples=n, sampling=sampling, batch_size=64, seed=4)
    assert result["ppl"] == pytest.approx(_filtered(expected.numpy()), rel=1e-3)
    assert result["ppl_unfiltered"] == pytest.approx(float(expected.mean()), rel=1e-3)


def test_ppl_in_w_of_a_linear_generator() -> None:
    # lerp in w of a linear synthesis: every step has length |B A (z1 - z0)|, whatever t
    g = LinearStyleG(latent_dim=5, w_dim=4, out_dim=7)
    n = 300
    (z0, z1), _ = _draws(n, 5, seed=9)
    with torch.no_grad():
        expected = ((z1 - z0) @ (g.B @ g.A).T).square().sum(1)
    metric = PerceptualPathLength(nn.Flatten(), num_samples=n, space="w", batch_size=100, seed=9)
    result = metric(g)
    assert result["ppl"] == pytest.approx(_filtered(expected.numpy()), rel=1e-6)
    assert result["num_paths"] == n


def test_ppl_paths_depend_on_the_seed_only_and_bad_settings_are_named() -> None:
    g, distance = LinearG(4, 1.0), feature_distance(nn.Flatten())
    torch.testing.assert_close(path_length_samples(g, distance, num_samples=50, batch_size=7),
                               path_length_samples(g, distance, num_samples=50, batch_size=50))
    with pytest.raises(ValueError, match="space='w'"):
        path_length_samples(g, distance, num_samples=4, space="w")
    with pytest.raises(ValueError, match="sampling"):
        path_length_samples(g, distance, num_samples=4, sampling="middle")


def test_generative_metrics_logs_ppl_of_the_sampling_generator(tmp_path):
    from conftest import digits_data, digits_gan, make_trainer

    from callbacks import GenerativeMetrics
    from callbacks.metrics import DigitsClassifier
    from callbacks.metrics.ppl import feature_distance, perceptual_path_length

    extractor = DigitsClassifier()
    callback = GenerativeMetrics(extractor, metrics=["ppl"], ppl_samples=24, batch_size=8, seed=3,
                                 cache_dir=str(tmp_path / "cache"))
    model = digits_gan(max_generator_steps=2, ema_decay=0.5)
    make_trainer(tmp_path, callbacks=[callback]).fit(model, digits_data(batch_size=16))
    net = model.sampling_network().eval()
    expected = perceptual_path_length(net, feature_distance(extractor), 24, batch_size=8, seed=3)
    assert callback.last["metrics/ppl"] == pytest.approx(expected["ppl"], rel=1e-9)
    assert callback.last["metrics/ppl_unfiltered"] == pytest.approx(expected["ppl_unfiltered"], rel=1e-9)
    assert set(callback.last) == {"metrics/ppl", "metrics/ppl_unfiltered"}
