"""The metric values of a generated set against a reference, from their streamed summaries (no Lightning).

Shared by ``callbacks.GenerativeMetrics`` and ``evaluate.py``: FID from the two sets' float64 mean and
covariance, KID / precision / recall / density / coverage on the bounded feature subsets, the Inception
Score, the class histogram and the conditional accuracy from the generated set's running sums.
"""

from __future__ import annotations

from torch import Tensor

from callbacks.metrics.frechet import frechet_distance_from_statistics
from callbacks.metrics.kid import kid_capped
from callbacks.metrics.prdc import density_coverage, precision_recall
from callbacks.metrics.spectrum import hf_energy, high_frequency_share_of
from callbacks.metrics.streaming import SetSummary


def score_sets(fake: SetSummary, metrics: list[str] | tuple[str, ...], real_statistics: tuple[Tensor, Tensor] | None,
               real_subset: Tensor | None, kid_subsets: int = 100, kid_subset_size: int = 1000,
               seed: int = 0, real_spectrum: Tensor | None = None) -> dict[str, float]:
    """Metric values (un-prefixed names) of ``fake`` against the reference.

    Args:
        fake: the generated set's summary, complete (all processes' shares summed in).
        metrics: requested names; ``modes`` is not handled here.
        real_statistics: ``(mu [d], sigma [d, d])`` of the reference, needed for ``fid``.
        real_subset: ``[m, d]`` reference features (the first ``max_features``), needed for KID and
            precision / recall / density / coverage.
        kid_subsets, kid_subset_size: KID's subset count and size (capped loudly, see ``kid_capped``).
        seed: KID's subset sampler seed.
        real_spectrum: ``[H, W]`` summed power spectrum of the reference images, needed for ``hf_energy``.

    Returns:
        ``fid``, ``kid`` and ``kid_std`` (or ``kid_subset_size`` when capped), ``is`` and ``is_std``,
        ``precision``, ``recall``, ``density``, ``coverage``, ``class_kl`` and ``classes_covered``,
        ``accuracy``, ``hf_energy`` with ``hf_energy_fake`` and ``hf_energy_real``: those requested.
    """
    out: dict[str, float] = {}
    if "fid" in metrics:
        out["fid"] = frechet_distance_from_statistics(*fake.moments.mean_covariance(), *real_statistics)
    subset = fake.subset.rows.cpu() if fake.subset is not None else None
    if "kid" in metrics:
        out.update(kid_capped(real_subset, subset, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed))
    if "precision" in metrics or "recall" in metrics:
        out.update({k: v for k, v in precision_recall(real_subset, subset, k=3).items() if k in metrics})
    if "density" in metrics or "coverage" in metrics:
        out.update({k: v for k, v in density_coverage(real_subset, subset, k=5).items() if k in metrics})
    if "is" in metrics:
        out["is"], out["is_std"] = fake.inception.compute()
    if "class_histogram" in metrics:
        q = (fake.class_counts / fake.class_counts.sum()).cpu()
        nonzero = q > 0
        out["class_kl"] = float((q[nonzero] * (q[nonzero] * len(q)).log()).sum())  # KL(q || uniform)
        out["classes_covered"] = float(nonzero.sum())
    if "accuracy" in metrics and fake.correct is not None:
        out["accuracy"] = float(fake.correct) / fake.num_items
    if "hf_energy" in metrics:
        if real_spectrum is None:
            raise ValueError("metric 'hf_energy' needs the real images' power spectrum")
        out.update(hf_energy(fake.spectrum.share(), high_frequency_share_of(real_spectrum, fake.spectrum.cutoff)))
    return out

