"""GenerativeMetrics: FID, KID, IS, precision/recall, density/coverage, class statistics, mode coverage,
high-frequency energy.

Streams: samples are generated, embedded and dropped batch by batch. FID needs only each set's float64
count, sum and sum of outer products of the features; KID, precision/recall and density/coverage use the
features of the first ``max_features`` samples (by index); the Inception Score, the class histogram and
the accuracy are running sums (``callbacks.metrics.streaming``). Memory therefore does not grow with
``num_samples`` beyond that bounded subset.

Exact under DDP by construction: the samples are cut into batches of ``batch_size`` by global index,
batch ``b`` goes to rank ``b % world_size`` and draws its latents from a generator seeded with
``(seed, b)``, so every sample is computed in the same batch whatever the world size. Every
accumulated tensor is a sum over samples (the subset is a zero buffer that each sample's owner fills at
its index), so one all-reduce by sum gives every rank what one process would hold, and every rank
computes the same numbers (``ModelCheckpoint(monitor="metrics/fid")`` works on any rank).

Translation families (``TranslationModule``: pix2pix, CycleGAN, SRGAN, inpainting) are scored on the
datamodule's test split (its validation split when it has none): the translations of the test inputs
against the test targets, through the family's ``metric_pairs`` hook; CycleGAN adds B→A against A under
``<prefix>/B2A/``.

Real statistics are computed once through a ``DataLoader`` (``num_workers`` workers) and cached on disk
(mean, covariance and the feature subset), keyed by datamodule class, a fingerprint of the dataset,
split, sample shape, extractor (``cache_id``, which includes its weights and preprocessing), the number
of real samples and ``max_features``; a changed key recomputes. ``reference_stats`` replaces the real
mean and covariance with a pytorch-fid ``.npz`` (``mu``, ``sigma``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from callbacks.metrics.mode_coverage import mode_coverage
from callbacks.metrics.ppl import SPACES, feature_distance, perceptual_path_length
from callbacks.metrics.reference_stats import ReferenceStatistics, load_reference_statistics
from callbacks.metrics.scoring import score_sets
from callbacks.metrics.streaming import SUBSET_METRICS, SetSummary
from callbacks.sample_grid import run_dir

FEATURE_METRICS = ("fid", *SUBSET_METRICS)
LOGIT_METRICS = ("is", "class_histogram", "accuracy")
PIXEL_METRICS = ("modes", "hf_energy")  # computed on the samples themselves, without the extractor
VALID_METRICS = (*FEATURE_METRICS, *LOGIT_METRICS, *PIXEL_METRICS, "ppl")
TRANSLATION_METRICS = (*FEATURE_METRICS, "is")
REAL_METRICS = ("fid", *SUBSET_METRICS)  # what a reference set needs: moments and the subset


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gan_modules" / "real_features"


def rank_batches(n: int, batch_size: int, world: int, rank: int) -> Iterator[tuple[int, Tensor]]:
    """This rank's batches of ``n`` global indices: ``(b, indices)`` for ``b = rank, rank + world, ...``.

    Batch ``b`` holds indices ``b * batch_size`` up to ``(b + 1) * batch_size`` (the last one shorter),
    whatever the world size, so each sample meets the same batch-mates on 1 or many processes.
    """
    for b in range(rank, math.ceil(n / batch_size), world):
        yield b, torch.arange(b * batch_size, min((b + 1) * batch_size, n))


def _dataset_fingerprint(dataset: Any, key: str) -> str:
    """A cheap fingerprint of a dataset: its length and the bytes of a few items' ``key`` image."""
    n = len(dataset)
    digest = hashlib.sha256(str(n).encode())
    for index in sorted({0, n // 3, n // 2, (2 * n) // 3, n - 1}):
        digest.update(dataset[index][key].numpy().tobytes())
    return digest.hexdigest()[:16]


class GenerativeMetrics(L.Callback):
    """Computes generative metrics from the (EMA) generator against real data, in bounded memory.

    When: every ``every_n_generator_steps`` generator steps during fit (0: never), at the end of
    fit, and at the end of every validation epoch when ``on_validation`` (always under
    ``train.py validate``). Values are logged as ``<prefix>/fid``, ``<prefix>/kid``, ``<prefix>/is``,
    ``<prefix>/precision``, ... (CycleGAN's B→A direction under ``<prefix>/B2A/``), kept in
    ``self.last``, and appended by rank 0 to ``<run dir>/metrics.jsonl`` with the generator step.

    Args:
        extractor: an ``nn.Module`` mapping images ``[N, C, H, W]`` in [-1, 1] to
            ``{"features": [N, d], "logits": [N, K]}`` with a ``cache_id`` attribute
            (``callbacks.metrics.DigitsClassifier``, ``callbacks.metrics.FIDInceptionV3``, ...).
            Not needed for ``modes`` alone.
        metrics: names among fid, kid, is, precision, recall, density, coverage, class_histogram,
            accuracy (conditional models), modes (2D toy data; uses the datamodule's ``modes`` and ``std``),
            ppl (perceptual path length of the sampling generator, distances in the extractor's features;
            ``metrics/ppl`` and ``metrics/ppl_unfiltered``), hf_energy (the share of the images' power
            spectrum above ``hf_cutoff``: ``metrics/hf_energy`` generated / real, ``metrics/hf_energy_fake``,
            ``metrics/hf_energy_real``; see ``callbacks.metrics.spectrum``; noise-to-image only).
            Translation families accept fid, kid, precision, recall, density, coverage and is.
        num_samples: generated samples per evaluation, split across ranks (translation: at most this
            many test items).
        num_real: real samples (None: the whole split).
        real_split: ``"train"`` or ``"val"``: which split of the datamodule is the reference
            (noise-to-image; translation always scores the test split).
        every_n_generator_steps: interval during fit (0: only at the end and on validation).
        on_validation: also compute at the end of each validation epoch during fit.
        batch_size: generation and extraction batch size (it also fixes which samples share a batch,
            and hence the latents: change it and the samples change).
        kid_subsets: KID subsets; kid_subset_size: KID subset size (a larger value than the scored
            subsets is capped with a warning and reported as ``kid_subset_size``, without ``kid_std``).
        max_features: features kept per set for KID, precision/recall and density/coverage: those of
            the first ``max_features`` samples (the same subset whatever the world size).
        reference_stats: a ``.npz`` with ``mu`` and ``sigma`` (pytorch-fid's format) used as the real
            statistics of FID instead of the datamodule's split (noise-to-image only).
        num_workers: ``DataLoader`` workers reading the real images.
        cache_dir: where real statistics are cached (default ``~/.cache/gan_modules/real_features``).
        seed: seeds the latents, so successive evaluations score the same latents.
        prefix: log-key prefix.
        ppl_samples: paths of the perceptual path length (every rank computes all of them, from ``seed``,
            so every rank logs the same value).
        ppl_space: ``"z"`` (slerp) or ``"w"`` (StyleGAN's mapped latents, lerp).
        hf_cutoff: ``hf_energy``'s cutoff, a radial frequency in units of the Nyquist frequency.
    """

    def __init__(
        self,
        extractor: nn.Module | None = None,
        metrics: list[str] | None = None,
        num_samples: int = 2000,
        num_real: int | None = None,
        real_split: str = "train",
        every_n_generator_steps: int = 0,
        on_validation: bool = False,
        batch_size: int = 250,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        max_features: int = 10_000,
        reference_stats: str | None = None,
        num_workers: int = 2,
        cache_dir: str | None = None,
        seed: int = 0,
        prefix: str = "metrics",
        ppl_samples: int = 10_000,
        ppl_space: str = "z",
        hf_cutoff: float = 0.75,
    ) -> None:
        self.metrics = list(metrics) if metrics is not None else ["fid", "kid", "is"]
        unknown = [m for m in self.metrics if m not in VALID_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; valid: {', '.join(VALID_METRICS)}")
        if extractor is None and any(m not in PIXEL_METRICS for m in self.metrics):
            raise ValueError(f"metrics {self.metrics} need a feature extractor (GenerativeMetrics' extractor argument)")
        if not 0.0 <= hf_cutoff < 2 ** 0.5:
            raise ValueError(f"GenerativeMetrics' hf_cutoff must be in [0, sqrt(2)) (units of Nyquist), got {hf_cutoff}")
        if real_split not in ("train", "val"):
            raise ValueError(f"real_split must be 'train' or 'val', got '{real_split}'")
        for name, value, low in (("num_samples", num_samples, 2), ("batch_size", batch_size, 1),
                                 ("max_features", max_features, 2), ("num_workers", num_workers, 0)):
            if value < low:
                raise ValueError(f"GenerativeMetrics' {name} must be >= {low}, got {value}")
        if reference_stats is not None and not Path(reference_stats).is_file():
            raise FileNotFoundError(f"GenerativeMetrics' reference_stats file '{reference_stats}' does not exist")
        self.extractor = extractor.eval().requires_grad_(False) if extractor is not None else None
        self.num_samples, self.num_real, self.real_split = num_samples, num_real, real_split
        self.every_n_generator_steps, self.on_validation = every_n_generator_steps, on_validation
        self.batch_size, self.kid_subsets, self.kid_subset_size = batch_size, kid_subsets, kid_subset_size
        self.max_features, self.reference_stats, self.num_workers = max_features, reference_stats, num_workers
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        if ppl_space not in SPACES or ppl_samples < 2:
            raise ValueError(f"GenerativeMetrics: ppl_space must be one of {', '.join(SPACES)} and ppl_samples >= 2, "
                             f"got '{ppl_space}' and {ppl_samples}")
        self.seed, self.prefix = seed, prefix
        self.ppl_samples, self.ppl_space = ppl_samples, ppl_space
        self.hf_cutoff = hf_cutoff
        self.last: dict[str, float] = {}
        self._last_step = -1
        self._real: dict[str, Any] | None = None
        self._real_key: str | None = None
        self._reference: ReferenceStatistics | None = None

    # ----------------------------------------------------------------------------------------------
    # Lightning hooks

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n, step = self.every_n_generator_steps, pl_module.generator_steps
        if n > 0 and step > 0 and step % n == 0 and step != self._last_step and "loss/G" in outputs:
            pl_module.log_dict(self.compute(trainer, pl_module), batch_size=1)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "validate" or self.on_validation:
            pl_module.log_dict(self.compute(trainer, pl_module, force=trainer.state.fn == "validate"), batch_size=1)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if pl_module.generator_steps == self._last_step:
            return
        values = self.compute(trainer, pl_module)
        for logger in trainer.loggers:  # self.log is not available in on_train_end
            logger.log_metrics(values, step=trainer.global_step)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})

    # ----------------------------------------------------------------------------------------------
    # The computation

    @torch.no_grad()
    def compute(self, trainer: L.Trainer, pl_module: Any, force: bool = False) -> dict[str, float]:
        """All requested metrics, identical on every rank; cached per generator step unless ``force``."""
        if pl_module.generator_steps == self._last_step and self.last and not force:
            return self.last
        if hasattr(pl_module, "metric_pairs"):
            out = self._translation_metrics(trainer, pl_module)
        else:
            out = self._noise_metrics(trainer, pl_module)
        self.last = {f"{self.prefix}/{k}": float(v) for k, v in out.items()}
        self._last_step = pl_module.generator_steps
        folder = run_dir(trainer)  # a collective under DDP (trainer.log_dir broadcasts): every rank calls it
        if trainer.is_global_zero:  # a history anyone can read without TensorBoard
            record = {"generator_steps": pl_module.generator_steps, "images_seen": pl_module.images_seen,
                      "num_samples": self.num_samples, **self.last}
            path = folder / "metrics.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return self.last

    def _summary(self, num_items: int, metrics: list[str], device: torch.device) -> SetSummary:
        return SetSummary(num_items, metrics, max_features=self.max_features, is_splits=10, is_seed=self.seed,
                          keep_raw="modes" in metrics, hf_cutoff=self.hf_cutoff, device=device)

    def _score(self, fake: SetSummary, real: dict[str, Any]) -> dict[str, float]:
        statistics = (real["mu"], real["sigma"]) if "mu" in real else None
        return score_sets(fake, [m for m in self.metrics if m not in ("modes", "ppl")], statistics, real.get("subset"),
                          kid_subsets=self.kid_subsets, kid_subset_size=self.kid_subset_size, seed=self.seed,
                          real_spectrum=real.get("spectrum"))

    def _noise_metrics(self, trainer: L.Trainer, pl_module: Any) -> dict[str, float]:
        num_classes = pl_module.num_classes
        # accuracy needs the conditioning labels: an unconditional model has none, and reports none
        metrics = [m for m in self.metrics if (m != "accuracy" or num_classes) and m != "ppl"]
        fake = self._summary(self.num_samples, metrics, pl_module.device)
        for b, index in rank_batches(self.num_samples, self.batch_size, trainer.world_size, trainer.global_rank):
            labels = index % num_classes if num_classes else None
            latents = torch.Generator().manual_seed(self.seed * 1_000_003 + b)
            # metric_samples: the family's sampling for scoring (StyleGAN: random per-layer noise, seeded here)
            samples = pl_module.metric_samples(len(index), labels, pl_module.latents(len(index), latents),
                                               self.seed * 1_000_003 + b)
            features, logits = self._embed(samples, pl_module.device) if fake.needs_features else (None, None)
            fake.update(index, features, logits, labels, raw=samples.flatten(1).float() if fake.keep_raw else None,
                        images=samples)
        self._all_reduce(trainer, fake)
        out: dict[str, float] = {}
        if "modes" in self.metrics:
            datamodule = trainer.datamodule
            if not hasattr(datamodule, "modes"):
                raise ValueError(f"metric 'modes' needs a datamodule with 'modes' and 'std' (got {type(datamodule).__name__})")
            out.update(mode_coverage(fake.raw.rows.cpu(), datamodule.modes, datamodule.std))
        if fake.needs_features or fake.spectrum is not None:
            out.update(self._score(fake, self._real_reference(trainer, pl_module)))
        if "ppl" in self.metrics:
            out.update(self._ppl(pl_module))
        return out

    def _ppl(self, pl_module: Any) -> dict[str, float]:
        net = pl_module.sampling_network()
        was_training = net.training
        net.eval()  # StyleGAN's noise is then the stored maps: only the latent moves along a path
        try:
            values = perceptual_path_length(net, feature_distance(self.extractor.to(pl_module.device)),
                                            self.ppl_samples, space=self.ppl_space, batch_size=self.batch_size,
                                            seed=self.seed)
        finally:
            net.train(was_training)
        return {"ppl": values["ppl"], "ppl_unfiltered": values["ppl_unfiltered"]}

    def _translation_metrics(self, trainer: L.Trainer, pl_module: Any) -> dict[str, float]:
        unsupported = [m for m in self.metrics if m not in TRANSLATION_METRICS]
        if unsupported:
            raise ValueError(f"GenerativeMetrics on {type(pl_module).__name__} (a translation family) cannot compute "
                             f"{unsupported}; valid there: {', '.join(TRANSLATION_METRICS)}")
        dataset = self._split(trainer, "test")
        n = min(self.num_samples, len(dataset))
        fakes: dict[str, SetSummary] = {}
        reals: dict[str, SetSummary] = {}
        real_metrics = [m for m in self.metrics if m in REAL_METRICS]
        for b, index, batch in self._batches(trainer, dataset, torch.arange(n)):
            batch = {k: v.to(pl_module.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            for direction, (fake_images, real_images) in pl_module.metric_pairs(batch, seed=self.seed * 1_000_003 + b).items():
                fake = fakes.setdefault(direction, self._summary(n, self.metrics, pl_module.device))
                real = reals.setdefault(direction, self._summary(n, real_metrics, pl_module.device))
                fake.update(index, *self._embed(fake_images, pl_module.device))
                real.update(index, self._embed(real_images, pl_module.device)[0])
        directions = sorted(self._directions(trainer, pl_module, fakes))
        out: dict[str, float] = {}
        for direction in directions:
            fake = fakes.setdefault(direction, self._summary(n, self.metrics, pl_module.device))
            real = reals.setdefault(direction, self._summary(n, real_metrics, pl_module.device))
            self._all_reduce(trainer, fake)
            self._all_reduce(trainer, real)
            values = self._score(fake, self._as_reference(real))
            out.update({f"{direction}/{k}" if direction else k: v for k, v in values.items()})
        return out

    @staticmethod
    def _directions(trainer: L.Trainer, pl_module: Any, seen: dict[str, SetSummary]) -> list[str]:
        """The directions the family scores (a rank without test items learns them from the others)."""
        if trainer.world_size == 1:
            return list(seen)
        everyone = trainer.strategy.broadcast(list(seen), src=0)
        return everyone if everyone else list(seen)

    def _embed(self, images: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
        out = self.extractor.to(device)(images.to(device))
        return out["features"].float(), out["logits"].float()

    def _all_reduce(self, trainer: L.Trainer, summary: SetSummary) -> None:
        """Sums every rank's accumulators in place (a collective: every rank calls it, batches or not)."""
        if trainer.world_size == 1:
            return
        device = summary.device
        sizes = torch.tensor([summary.moments.sum.shape[0] if summary.moments is not None else
                              summary.subset.rows.shape[1] if summary.subset is not None else 0,
                              summary.inception.prob_sum.shape[1] if summary.inception is not None else
                              len(summary.class_counts) if summary.class_counts is not None else 0,
                              summary.raw.rows.shape[1] if summary.raw is not None else 0,
                              *(summary.spectrum.spectrum.shape if summary.spectrum is not None and
                                summary.spectrum.spectrum is not None else (0, 0))], device=device)
        sizes = trainer.strategy.reduce(sizes, reduce_op="max")  # a rank without batches allocates the same parts
        summary.allocate(*(int(v) for v in sizes))
        for tensor in summary.tensors():
            tensor.copy_(trainer.strategy.reduce(tensor, reduce_op="sum"))

    def _batches(self, trainer: L.Trainer, dataset: Dataset, order: Tensor) -> Iterator[tuple[int, Tensor, dict]]:
        """This rank's batches of ``dataset[order[i]]`` through a ``DataLoader``: ``(b, i, batch)``."""
        mine = list(rank_batches(len(order), self.batch_size, trainer.world_size, trainer.global_rank))
        if not mine:
            return
        loader = DataLoader(dataset, batch_sampler=[order[index].tolist() for _, index in mine],
                            num_workers=self.num_workers)
        for (b, index), batch in zip(mine, loader, strict=True):
            yield b, index, batch

    @staticmethod
    def _split(trainer: L.Trainer, split: str) -> Dataset:
        datamodule = trainer.datamodule
        if datamodule is None:
            raise ValueError("GenerativeMetrics needs the trainer's datamodule for the real samples")
        if split == "test":
            if getattr(datamodule, "test_set", None) is None:
                datamodule.setup("test")
            dataset = getattr(datamodule, "test_set", None)
            if dataset is not None:
                return dataset
            split = "val"
        if getattr(datamodule, "train_set", None) is None:
            datamodule.setup("fit")
        return datamodule.train_set if split == "train" else (datamodule.val_set or datamodule.train_set)

    @staticmethod
    def _as_reference(real: SetSummary) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if real.moments is not None:
            out["mu"], out["sigma"] = real.moments.mean_covariance()
        if real.subset is not None:
            out["subset"] = real.subset.rows.cpu()
        if real.spectrum is not None:
            out["spectrum"] = real.spectrum.spectrum.cpu()
        return out

    def _real_reference(self, trainer: L.Trainer, pl_module: Any) -> dict[str, Any]:
        """The real side: ``{"mu", "sigma"}`` (FID), ``{"subset"}`` (the other feature metrics) and
        ``{"spectrum"}`` (``hf_energy``)."""
        needs_real = any(m in SUBSET_METRICS or m == "hf_energy" for m in self.metrics)
        real = self._real_features(trainer, pl_module) if needs_real or self.reference_stats is None else {}
        real = {k: v for k, v in real.items() if k in ("mu", "sigma", "subset", "spectrum")}
        if self.reference_stats is not None and "fid" in self.metrics:
            if self._reference is None:
                self._reference = load_reference_statistics(
                    self.reference_stats, feature_dim=getattr(self.extractor, "feature_dim", None),
                    preprocessing=getattr(self.extractor, "preprocessing", None))
            real["mu"], real["sigma"] = self._reference.mu, self._reference.sigma
        return real

    def _real_features(self, trainer: L.Trainer, pl_module: Any) -> dict[str, Any]:
        dataset = self._split(trainer, self.real_split)
        n = len(dataset) if self.num_real is None else min(self.num_real, len(dataset))
        key_fields = {"datamodule": type(trainer.datamodule).__qualname__, "data": _dataset_fingerprint(dataset, "image"),
                      "split": self.real_split, "shape": list(pl_module.sample_shape),
                      "extractor": getattr(self.extractor, "cache_id", type(self.extractor).__qualname__), "n": n,
                      "max_features": self.max_features}
        if "hf_energy" in self.metrics:  # a key field only then, so the caches of the other metrics stay valid
            key_fields["spectrum"] = True
        key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:20]
        if self._real_key == key and self._real is not None:
            return self._real
        path = self.cache_dir / f"{key}.pt"
        cached = trainer.strategy.broadcast(path.is_file(), src=0)  # one decision for all ranks
        if cached:
            self._real = torch.load(path, map_location="cpu", weights_only=True)
        else:
            real_metrics = list(REAL_METRICS) if self.extractor is not None else []
            real = self._summary(n, real_metrics + (["hf_energy"] if "hf_energy" in self.metrics else []),
                                 pl_module.device)
            order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed))[:n]
            for _, index, batch in self._batches(trainer, dataset, order):
                features = self._embed(batch["image"], pl_module.device)[0] if self.extractor is not None else None
                real.update(index, features, images=batch["image"].to(pl_module.device))
            self._all_reduce(trainer, real)
            self._real = {**self._as_reference(real), "count": n, "key": json.dumps(key_fields, sort_keys=True),
                          "preprocessing": str(getattr(self.extractor, "preprocessing", ""))}
            if trainer.is_global_zero:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                torch.save(self._real, tmp)
                os.replace(tmp, path)  # atomic: a reader never sees half a file
        self._real_key = key
        return self._real
