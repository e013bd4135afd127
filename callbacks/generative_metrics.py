"""GenerativeMetrics: FID, KID, IS, precision/recall, density/coverage, class statistics, mode coverage.

Exact under DDP by construction: the latents (and labels) of all ``num_samples`` samples are drawn on
every rank from one seeded generator, each rank generates and embeds its contiguous share, the
features are gathered to every rank in index order, and every rank computes the metrics on the
same full set. The numbers therefore equal the single-process numbers on the same samples, and
every rank holds them (so ``ModelCheckpoint(monitor="metrics/fid")`` works on any rank).

Real features are computed once and cached on disk, keyed by datamodule class, a fingerprint of
the dataset, split, sample shape, extractor (``cache_id``, which includes its weights) and the
number of real samples; a changed key recomputes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from callbacks.metrics.frechet import frechet_distance
from callbacks.metrics.inception_score import inception_score
from callbacks.metrics.kid import kernel_inception_distance
from callbacks.metrics.mode_coverage import mode_coverage
from callbacks.metrics.prdc import density_coverage, precision_recall
from callbacks.sample_grid import run_dir

FEATURE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")
LOGIT_METRICS = ("is", "class_histogram", "accuracy")
VALID_METRICS = (*FEATURE_METRICS, *LOGIT_METRICS, "modes")


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gan_modules" / "real_features"


def _split_range(n: int, world: int, rank: int) -> tuple[int, int]:
    """This rank's contiguous share of ``n`` indices, padded to an equal length on every rank."""
    per_rank = math.ceil(n / world)
    return rank * per_rank, (rank + 1) * per_rank


def _dataset_fingerprint(dataset: Any) -> str:
    """A cheap fingerprint of a dataset: its length and the bytes of a few items."""
    n = len(dataset)
    digest = hashlib.sha256(str(n).encode())
    for index in sorted({0, n // 3, n // 2, (2 * n) // 3, n - 1}):
        item = dataset[index]
        digest.update(item["image"].numpy().tobytes())
    return digest.hexdigest()[:16]


class GenerativeMetrics(L.Callback):
    """Computes generative metrics from the (EMA) generator against real data.

    When: every ``every_n_generator_steps`` generator steps during fit (0: never), at the end of
    fit, and at the end of every validation epoch when ``on_validation`` (always under
    ``train.py validate``). Values are logged as ``<prefix>/fid``, ``<prefix>/kid``, ``<prefix>/is``,
    ``<prefix>/precision``, ..., kept in ``self.last``, and appended by rank 0 to
    ``<run dir>/metrics.jsonl`` with the generator step.

    Args:
        extractor: an ``nn.Module`` mapping images ``[N, C, H, W]`` in [-1, 1] to
            ``{"features": [N, d], "logits": [N, K]}`` with a ``cache_id`` attribute
            (``callbacks.metrics.DigitsClassifier``, ``callbacks.metrics.FIDInceptionV3``, ...).
            Not needed for ``modes`` alone.
        metrics: names among fid, kid, is, precision, recall, density, coverage, class_histogram,
            accuracy (conditional models), modes (2D toy data; uses the datamodule's ``modes`` and ``std``).
        num_samples: generated samples per evaluation, split across ranks.
        num_real: real samples (None: the whole split).
        real_split: ``"train"`` or ``"val"``: which split of the datamodule is the reference.
        every_n_generator_steps: interval during fit (0: only at the end and on validation).
        on_validation: also compute at the end of each validation epoch during fit.
        batch_size: generation and extraction batch size.
        kid_subsets: KID subsets; kid_subset_size: KID subset size.
        cache_dir: where real features are cached (default ``~/.cache/gan_modules/real_features``).
        seed: seeds the latents, so successive evaluations score the same latents.
        prefix: log-key prefix.
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
        cache_dir: str | None = None,
        seed: int = 0,
        prefix: str = "metrics",
    ) -> None:
        self.metrics = list(metrics) if metrics is not None else ["fid", "kid", "is"]
        unknown = [m for m in self.metrics if m not in VALID_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; valid: {', '.join(VALID_METRICS)}")
        if extractor is None and any(m != "modes" for m in self.metrics):
            raise ValueError(f"metrics {self.metrics} need a feature extractor (GenerativeMetrics' extractor argument)")
        if real_split not in ("train", "val"):
            raise ValueError(f"real_split must be 'train' or 'val', got '{real_split}'")
        self.extractor = extractor.eval().requires_grad_(False) if extractor is not None else None
        self.num_samples, self.num_real, self.real_split = num_samples, num_real, real_split
        self.every_n_generator_steps, self.on_validation = every_n_generator_steps, on_validation
        self.batch_size, self.kid_subsets, self.kid_subset_size = batch_size, kid_subsets, kid_subset_size
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.seed, self.prefix = seed, prefix
        self.last: dict[str, float] = {}
        self._last_step = -1
        self._real: dict[str, Tensor] | None = None
        self._real_key: str | None = None

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
        fake_feats, fake_logits, samples = self._fake(trainer, pl_module)
        out: dict[str, float] = {}
        if "modes" in self.metrics:
            datamodule = trainer.datamodule
            if not hasattr(datamodule, "modes"):
                raise ValueError(f"metric 'modes' needs a datamodule with 'modes' and 'std' (got {type(datamodule).__name__})")
            for key, value in mode_coverage(samples, datamodule.modes, datamodule.std).items():
                out[key] = value
        if any(m in FEATURE_METRICS for m in self.metrics):
            real = self._real_features(trainer, pl_module)
            out.update(self._feature_metrics(real, fake_feats))
        if "is" in self.metrics:
            out["is"], out["is_std"] = inception_score(fake_logits, splits=min(10, len(fake_logits)))
        if "class_histogram" in self.metrics:
            histogram = torch.bincount(fake_logits.argmax(1), minlength=fake_logits.shape[1]).double()
            q = histogram / histogram.sum()
            nonzero = q > 0
            out["class_kl"] = float((q[nonzero] * (q[nonzero] * len(q)).log()).sum())  # KL(q || uniform)
            out["classes_covered"] = float(nonzero.sum())
        if "accuracy" in self.metrics and pl_module.num_classes:
            labels = self._labels(pl_module)
            out["accuracy"] = float((fake_logits.argmax(1) == labels).double().mean())
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

    def _feature_metrics(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        out: dict[str, float] = {}
        if "fid" in self.metrics:
            out["fid"] = frechet_distance(real, fake)
        if "kid" in self.metrics:
            out["kid"], out["kid_std"] = kernel_inception_distance(
                real, fake, num_subsets=self.kid_subsets, subset_size=self.kid_subset_size, seed=self.seed)
        if "precision" in self.metrics or "recall" in self.metrics:
            out.update({k: v for k, v in precision_recall(real, fake, k=3).items() if k in self.metrics})
        if "density" in self.metrics or "coverage" in self.metrics:
            out.update({k: v for k, v in density_coverage(real, fake, k=5).items() if k in self.metrics})
        return out

    def _labels(self, pl_module: Any) -> Tensor | None:
        if not pl_module.num_classes:
            return None
        return torch.arange(self.num_samples) % pl_module.num_classes

    def _embed(self, images: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
        out = self.extractor.to(device)(images.to(device))
        return out["features"].float(), out["logits"].float()

    def _fake(self, trainer: L.Trainer, pl_module: Any) -> tuple[Tensor, Tensor, Tensor]:
        """Features, logits and (for vector data) raw samples of the fakes, gathered in index order."""
        seeded = torch.Generator().manual_seed(self.seed)
        z_all = torch.randn(self.num_samples, pl_module.latent_dim, generator=seeded)
        labels_all = self._labels(pl_module)
        start, stop = _split_range(self.num_samples, trainer.world_size, trainer.global_rank)
        index = torch.arange(start, stop).clamp(max=self.num_samples - 1)  # padded ranks repeat the last
        feats, logits, raw = [], [], []
        for chunk in index.split(self.batch_size):
            labels = labels_all[chunk] if labels_all is not None else None
            # metric_samples: the family's sampling for scoring (StyleGAN: random per-layer noise, seeded here)
            samples = pl_module.metric_samples(len(chunk), labels, z_all[chunk], self.seed * 1_000_003 + int(chunk[0]))
            if self.extractor is not None and samples.dim() == 4:
                f, lg = self._embed(samples, pl_module.device)
                feats.append(f)
                logits.append(lg)
            raw.append(samples.flatten(1).float())
        gathered = [self._gather(trainer, pl_module, torch.cat(t)) if t else torch.zeros(self.num_samples, 0)
                    for t in (feats, logits, raw)]
        return tuple(t[: self.num_samples] for t in gathered)  # type: ignore[return-value]

    @staticmethod
    def _gather(trainer: L.Trainer, pl_module: Any, local: Tensor) -> Tensor:
        if trainer.world_size == 1:
            return local.cpu()
        gathered = pl_module.all_gather(local.contiguous())  # [world, per_rank, d] in rank order
        return gathered.reshape(-1, *local.shape[1:]).cpu()

    def _real_features(self, trainer: L.Trainer, pl_module: Any) -> Tensor:
        datamodule = trainer.datamodule
        if datamodule is None:
            raise ValueError("GenerativeMetrics needs the trainer's datamodule for the real samples")
        if getattr(datamodule, "train_set", None) is None:
            datamodule.setup("fit")
        dataset = datamodule.train_set if self.real_split == "train" else (datamodule.val_set or datamodule.train_set)
        n = len(dataset) if self.num_real is None else min(self.num_real, len(dataset))
        key_fields = {"datamodule": type(datamodule).__qualname__, "data": _dataset_fingerprint(dataset),
                      "split": self.real_split, "shape": list(pl_module.sample_shape),
                      "extractor": getattr(self.extractor, "cache_id", type(self.extractor).__qualname__), "n": n}
        key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:20]
        if self._real_key == key and self._real is not None:
            return self._real["features"]
        path = self.cache_dir / f"{key}.pt"
        cached = trainer.strategy.broadcast(path.is_file(), src=0)  # one decision for all ranks
        if cached:
            self._real = torch.load(path, map_location="cpu", weights_only=True)
        else:
            order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed))[:n]
            start, stop = _split_range(n, trainer.world_size, trainer.global_rank)
            mine = order[torch.arange(start, stop).clamp(max=n - 1)]
            feats = []
            for chunk in mine.split(self.batch_size):
                images = torch.stack([dataset[int(i)]["image"] for i in chunk])
                feats.append(self._embed(images, pl_module.device)[0])
            features = self._gather(trainer, pl_module, torch.cat(feats))[:n]
            self._real = {"features": features, "key": json.dumps(key_fields, sort_keys=True)}
            if trainer.is_global_zero:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                torch.save(self._real, tmp)
                os.replace(tmp, path)  # atomic: a reader never sees half a file
        self._real_key = key
        return self._real["features"]
