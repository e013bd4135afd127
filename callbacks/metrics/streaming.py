"""Accumulators that embed a sample set batch by batch in bounded memory (no Lightning).

Each accumulator holds tensors that are *sums* over the rows it has seen, so the shares of several
processes combine by an all-reduce (sum) into exactly what one process would hold (up to the order of
float64 additions), and the set itself is never kept:

* :class:`FeatureMoments`: float64 count, ``sum x`` and ``sum x x^T`` of ``[n, d]`` features, from which
  the mean and covariance (FID's sufficient statistics) follow;
* :class:`IndexedSubset`: the rows whose global index is below ``capacity``, written at their index in
  a zero-initialised ``[capacity, d]`` buffer (rows no process owns stay zero, so a sum over processes
  fills each row from its owner exactly): the bounded, index-ordered subset for KID and the k-NN metrics;
* :class:`InceptionScoreAccumulator`: per split, the sum of ``p(y|x)`` and of ``sum_y p log p``, from
  which ``exp(E_x KL(p(y|x) || p(y)))`` of every split follows (Salimans et al. 2016);
* :class:`~callbacks.metrics.spectrum.SpectrumAccumulator`: the summed power spectrum of the images
  (the high-frequency energy, ``hf_energy``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from callbacks.metrics.spectrum import DEFAULT_CUTOFF, SpectrumAccumulator


class FeatureMoments:
    """Running float64 count, sum and sum of outer products of ``[n, d]`` features.

    Args:
        dim: feature size ``d``.
        device: where the sums live (the extractor's device, so a DDP all-reduce can run there).
    """

    def __init__(self, dim: int, device: torch.device | str = "cpu") -> None:
        self.count = torch.zeros((), dtype=torch.float64, device=device)
        self.sum = torch.zeros(dim, dtype=torch.float64, device=device)
        self.sum_outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    def update(self, features: Tensor) -> None:
        """Adds ``[n, d]`` features (any float dtype), in float64."""
        x = features.to(device=self.sum.device, dtype=torch.float64)
        if x.ndim != 2 or x.shape[1] != self.sum.shape[0]:
            raise ValueError(f"features must be [n, {self.sum.shape[0]}], got shape {tuple(x.shape)}")
        self.count += x.shape[0]
        self.sum += x.sum(dim=0)
        self.sum_outer.addmm_(x.T, x)

    def tensors(self) -> list[Tensor]:
        """The state, for an all-reduce by sum (modified in place by the caller)."""
        return [self.count, self.sum, self.sum_outer]

    def mean_covariance(self) -> tuple[Tensor, Tensor]:
        """``(mu [d], sigma [d, d])`` in float64 on the CPU; ``sigma`` normalised by ``n - 1`` like ``numpy.cov``.

        ``sigma = (sum x x^T - n mu mu^T) / (n - 1)``: in float64 the cancellation costs about
        ``eps * |mu|^2 / var`` relative, far below the 1e-9 at which FID values are compared.
        """
        n = float(self.count)
        if n < 2:
            raise ValueError(f"need at least 2 samples for a covariance, got {int(n)}")
        mu = (self.sum / n).cpu()
        sigma = (self.sum_outer.cpu() - n * torch.outer(mu, mu)) / (n - 1)
        return mu, 0.5 * (sigma + sigma.T)


class IndexedSubset:
    """The rows of global index ``< capacity`` of a set streamed in any order, in index order.

    Args:
        capacity: rows kept (the subset is rows ``0 .. capacity - 1``).
        dim: row size.
        device: where the buffer lives.
        dtype: buffer dtype (float32 keeps features exactly as the extractor returned them).
    """

    def __init__(self, capacity: int, dim: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.rows = torch.zeros(capacity, dim, dtype=dtype, device=device)

    def update(self, indices: Tensor, values: Tensor) -> None:
        """Writes ``values [n, dim]`` of global ``indices [n]`` that fall inside the subset."""
        keep = indices < self.rows.shape[0]
        if bool(keep.any()):
            self.rows[indices[keep].to(self.rows.device)] = values[keep.to(values.device)].to(self.rows)

    def tensors(self) -> list[Tensor]:
        return [self.rows]


def split_bounds(n: int, splits: int) -> Tensor:
    """Split boundaries ``[i * n // splits for i in 0..splits]`` (the original IS code's and torch-fidelity's cut)."""
    return torch.tensor([i * n // splits for i in range(splits + 1)], dtype=torch.int64)


class InceptionScoreAccumulator:
    """Inception Score of ``num_items`` rows streamed in any order, split as the reference code splits.

    The rows are first put in a seeded random order (``torch.randperm(num_items, generator=
    torch.Generator().manual_seed(seed))``; ``seed=None`` keeps index order), then cut into ``splits``
    parts at ``i * num_items // splits`` (Salimans et al.'s ``inception_score/model.py``; torch-fidelity's
    ``isc``), not with ``tensor_split``. Within a split ``s`` with marginal ``q = mean_x p(y|x)``,
    ``E_x KL(p || q) = mean_x sum_y p log p - sum_y q log q``, so two sums per split suffice.

    Args:
        num_items: rows of the whole set.
        num_classes: ``K``.
        splits: number of parts, ``1 <= splits <= num_items``.
        seed: seed of the row shuffle, or ``None``.
        device: where the sums live.
    """

    def __init__(self, num_items: int, num_classes: int, splits: int = 10, seed: int | None = 0,
                 device: torch.device | str = "cpu") -> None:
        if not 1 <= splits <= num_items:
            raise ValueError(f"splits must be in [1, n={num_items}], got {splits}")
        position = torch.arange(num_items)
        if seed is not None:  # position of row i in the shuffled order
            order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed))
            position = torch.empty_like(order)
            position[order] = torch.arange(num_items)
        self.split_of = (torch.searchsorted(split_bounds(num_items, splits), position, right=True) - 1).to(device)
        self.count = torch.zeros(splits, dtype=torch.float64, device=device)
        self.prob_sum = torch.zeros(splits, num_classes, dtype=torch.float64, device=device)
        self.neg_entropy_sum = torch.zeros(splits, dtype=torch.float64, device=device)

    def update(self, indices: Tensor, logits: Tensor) -> None:
        """Adds the ``[n, K]`` logits of rows ``indices [n]`` (softmax taken here, in float64)."""
        log_p = torch.log_softmax(logits.to(device=self.prob_sum.device, dtype=torch.float64), dim=1)
        p = log_p.exp()
        split = self.split_of[indices.to(self.split_of.device)]
        self.count.index_add_(0, split, torch.ones_like(split, dtype=torch.float64))
        self.prob_sum.index_add_(0, split, p)
        self.neg_entropy_sum.index_add_(0, split, torch.special.xlogy(p, p).sum(dim=1))

    def tensors(self) -> list[Tensor]:
        return [self.count, self.prob_sum, self.neg_entropy_sum]

    def compute(self) -> tuple[float, float]:
        """``(mean, std)`` of the split scores; the std is the population one (``numpy.std``)."""
        if bool((self.count == 0).any()):
            raise ValueError(f"rows missing from the Inception Score: split sizes {self.count.tolist()}")
        q = self.prob_sum / self.count[:, None]
        kl = self.neg_entropy_sum / self.count - torch.special.xlogy(q, q).sum(dim=1)
        scores = torch.tensor([math.exp(float(v)) for v in kl.cpu()], dtype=torch.float64)
        return float(scores.mean()), float(scores.std(correction=0))


SUBSET_METRICS = ("kid", "precision", "recall", "density", "coverage")


class SetSummary:
    """Everything the metrics need of one sample set, accumulated batch by batch in bounded memory.

    Which parts are kept follows ``metrics``: FID keeps :class:`FeatureMoments`; KID and the k-NN metrics
    keep the :class:`IndexedSubset` of the first ``max_features`` rows; ``is`` keeps an
    :class:`InceptionScoreAccumulator`; ``class_histogram`` the count of each arg-max class; ``accuracy``
    the count of arg-max classes equal to the given labels; ``hf_energy`` the summed power spectrum of
    the images themselves; ``raw`` (vector data, mode coverage) keeps every sample, which is only meant
    for ``[N, D]`` toy data. The parts are allocated at the first
    batch, when the sizes are known (or by :meth:`allocate`, for a process that saw no batch).

    Args:
        num_items: rows of the whole set (global indices ``0 .. num_items - 1``).
        metrics: metric names (see ``callbacks.GenerativeMetrics``).
        max_features: size bound of the feature subset.
        is_splits: Inception Score splits (capped at ``num_items``); is_seed: its shuffle seed.
        keep_raw: keep the raw samples (vector data).
        hf_cutoff: ``hf_energy``'s cutoff (radial frequency in units of Nyquist).
        device: where the sums live.
    """

    def __init__(self, num_items: int, metrics: list[str] | tuple[str, ...], max_features: int = 10_000,
                 is_splits: int = 10, is_seed: int | None = 0, keep_raw: bool = False,
                 hf_cutoff: float = DEFAULT_CUTOFF, device: torch.device | str = "cpu") -> None:
        self.num_items, self.metrics, self.device = num_items, tuple(metrics), device
        self.subset_size = min(num_items, max_features)
        self.is_splits, self.is_seed, self.keep_raw = min(is_splits, num_items), is_seed, keep_raw
        self.moments: FeatureMoments | None = None
        self.subset: IndexedSubset | None = None
        self.inception: InceptionScoreAccumulator | None = None
        self.class_counts: Tensor | None = None
        self.correct: Tensor | None = None
        self.raw: IndexedSubset | None = None
        self.spectrum = SpectrumAccumulator(hf_cutoff, device) if "hf_energy" in self.metrics else None

    @property
    def needs_features(self) -> bool:
        return any(m not in ("modes", "hf_energy") for m in self.metrics)

    def allocate(self, feature_dim: int, num_classes: int, raw_dim: int, height: int = 0, width: int = 0) -> None:
        """Creates the parts (idempotent) for features ``[*, feature_dim]``, logits ``[*, num_classes]``,
        raw samples ``[*, raw_dim]`` and images ``[*, C, height, width]``."""
        if self.moments is None and "fid" in self.metrics:
            self.moments = FeatureMoments(feature_dim, self.device)
        if self.subset is None and any(m in SUBSET_METRICS for m in self.metrics):
            self.subset = IndexedSubset(self.subset_size, feature_dim, self.device)
        if self.inception is None and "is" in self.metrics:
            self.inception = InceptionScoreAccumulator(self.num_items, num_classes, self.is_splits, self.is_seed,
                                                       self.device)
        if self.class_counts is None and "class_histogram" in self.metrics:
            self.class_counts = torch.zeros(num_classes, dtype=torch.float64, device=self.device)
        if self.correct is None and "accuracy" in self.metrics:
            self.correct = torch.zeros((), dtype=torch.float64, device=self.device)
        if self.raw is None and self.keep_raw:
            self.raw = IndexedSubset(self.num_items, raw_dim, self.device)
        if self.spectrum is not None and height and width:
            self.spectrum.allocate(height, width)

    def update(self, indices: Tensor, features: Tensor | None = None, logits: Tensor | None = None,
               labels: Tensor | None = None, raw: Tensor | None = None, images: Tensor | None = None) -> None:
        """Adds rows ``indices [n]`` (global, each seen once over all processes).

        Args:
            indices: ``[n]`` int64 global row indices.
            features: ``[n, d]`` features; logits: ``[n, K]`` class logits; labels: ``[n]`` target classes
                (``accuracy``); raw: ``[n, D]`` flattened samples (``keep_raw``); images: ``[n, C, H, W]``
                (``hf_energy``).
        """
        self.allocate(features.shape[1] if features is not None else 0,
                      logits.shape[1] if logits is not None else 0, raw.shape[1] if raw is not None else 0)
        if self.moments is not None:
            self.moments.update(features)
        if self.subset is not None:
            self.subset.update(indices, features)
        if self.inception is not None:
            self.inception.update(indices, logits)
        predicted = logits.argmax(1).to(self.device) if logits is not None else None
        if self.class_counts is not None:
            self.class_counts += torch.bincount(predicted, minlength=len(self.class_counts)).double()
        if self.correct is not None and labels is not None:
            self.correct += (predicted == labels.to(self.device)).double().sum()
        if self.raw is not None:
            self.raw.update(indices, raw)
        if self.spectrum is not None:
            if images is None:
                raise ValueError("metric 'hf_energy' needs the images of every batch")
            self.spectrum.update(images)

    def tensors(self) -> list[Tensor]:
        """Every accumulated tensor, in a fixed order, for an all-reduce by sum."""
        out: list[Tensor] = []
        for part in (self.moments, self.subset, self.inception, self.raw):
            if part is not None:
                out += part.tensors()
        out += [t for t in (self.class_counts, self.correct) if t is not None]
        return out + (self.spectrum.tensors() if self.spectrum is not None else [])
