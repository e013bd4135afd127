"""TextImageMetrics: attribute accuracy, FID / KID and R-precision of a text-to-image model during training.

The captions come from one split of a :class:`~datamodules.TextImageDataModule` (``val`` for seen
colour-shape pairs, ``heldout`` for pairs training never saw): ``num_samples`` (image, caption) pairs
drawn with ``seed``. Each caption gets one generated image from seeded latents; then

* ``attr/<colour|shape|size|position>``, ``attr/mean``: the attribute classifier's accuracy on the
  generated images against the attributes the caption names;
* ``fid``, ``kid``: in the classifier's features, against the real images of the same pairs;
* ``r_precision``: with the matching encoders (``gan_modules.nets.text``), whether a generated image
  retrieves its own caption among 100 (the others from other attribute combinations).

Exact under DDP the way ``GenerativeMetrics`` is: every rank draws all latents from one seed,
generates and embeds its contiguous share, the results are gathered in index order and every rank
scores the same full set. It is a callback of its own, beside ``GenerativeMetrics``, because its
samples need captions and its scores need the captions' attributes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from callbacks.log_values import log_after_fit
from callbacks.metrics.attribute_classifier import AttributeClassifier
from callbacks.metrics.text_image import text_image_scores
from callbacks.sample_grid import run_dir
from gan_modules.nets.text import load_text_image_encoders

VALID = ("attributes", "fid", "kid", "r_precision")


class TextImageMetrics(L.Callback):
    """Scores a text-to-image model on captions of one split; logs ``<prefix>/<split>/<score>``.

    When: every ``every_n_generator_steps`` generator steps (0: never during fit) and at the end of fit.
    Rank 0 appends each evaluation to ``<run dir>/metrics.jsonl``.

    Args:
        classifier: images -> ``{"features", "attributes": {name: logits}}``; default the packaged
            :class:`~callbacks.metrics.AttributeClassifier`.
        encoders: the matching encoders file for R-precision (None: the packaged one).
        metrics: among ``attributes``, ``fid``, ``kid`` (either gives both), ``r_precision``.
        split: the datamodule split whose captions (and real images) are used.
        num_samples: (image, caption) pairs scored, at least 100 for R-precision.
        every_n_generator_steps: interval during fit.
        batch_size: generation batch size.
        kid_subsets, kid_subset_size: KID's subsets.
        seed: seeds the pairs, the latents and R-precision's draws.
        prefix: log-key prefix.
    """

    def __init__(self, classifier: nn.Module | None = None, encoders: str | None = None,
                 metrics: list[str] | None = None, split: str = "val", num_samples: int = 1000,
                 every_n_generator_steps: int = 0, batch_size: int = 250, kid_subsets: int = 100,
                 kid_subset_size: int = 1000, seed: int = 0, prefix: str = "metrics") -> None:
        self.metrics = list(metrics) if metrics is not None else list(VALID)
        unknown = [m for m in self.metrics if m not in VALID]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; valid: {', '.join(VALID)}")
        if "r_precision" in self.metrics and num_samples < 100:
            raise ValueError(f"r_precision ranks 100 captions: num_samples must be >= 100, got {num_samples}")
        if ("kid" in self.metrics or "fid" in self.metrics) and kid_subset_size > num_samples:
            raise ValueError(f"kid_subset_size={kid_subset_size} is larger than num_samples={num_samples}: KID draws "
                             "subsets of the scored pairs; lower kid_subset_size or raise num_samples")
        self.classifier = classifier if classifier is not None else AttributeClassifier()
        self.classifier.eval().requires_grad_(False)
        self.image_encoder = self.text_encoder = None
        if "r_precision" in self.metrics:
            _, self.text_encoder, self.image_encoder, _ = load_text_image_encoders(encoders)
        self.split, self.num_samples, self.every_n_generator_steps = split, num_samples, every_n_generator_steps
        self.batch_size, self.kid_subsets, self.kid_subset_size = batch_size, kid_subsets, kid_subset_size
        self.seed, self.prefix = seed, prefix
        self.last: dict[str, float] = {}
        self._last_step = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n, step = self.every_n_generator_steps, pl_module.generator_steps
        if n > 0 and step > 0 and step % n == 0 and step != self._last_step and "loss/G" in outputs:
            pl_module.log_dict(self.compute(trainer, pl_module), batch_size=1)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if pl_module.generator_steps != self._last_step:
            log_after_fit(trainer, self.compute(trainer, pl_module))

    def _pairs(self, trainer: L.Trainer) -> dict[str, Tensor]:
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "split"):
            raise ValueError("TextImageMetrics needs a TextImageDataModule as the trainer's datamodule")
        data = datamodule.split(self.split)
        if "attributes" in self.metrics and data.attributes is None:
            raise ValueError(f"metric 'attributes' needs attribute labels; split {self.split!r} of this data has none")
        index = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed))[:self.num_samples]
        if len(index) < self.num_samples:  # a small split: cycle it
            index = index.repeat(math.ceil(self.num_samples / len(index)))[:self.num_samples]
        return data.__getitems__(index.tolist())

    @torch.no_grad()
    def compute(self, trainer: L.Trainer, pl_module: Any) -> dict[str, float]:
        """All requested scores, identical on every rank; cached per generator step."""
        if pl_module.generator_steps == self._last_step and self.last:
            return self.last
        pairs = self._pairs(trainer)
        n, device = self.num_samples, pl_module.device
        z_all = torch.randn(n, pl_module.latent_dim, generator=torch.Generator().manual_seed(self.seed))
        per_rank = math.ceil(n / trainer.world_size)
        mine = torch.arange(trainer.global_rank * per_rank, (trainer.global_rank + 1) * per_rank).clamp(max=n - 1)
        local: dict[str, list[Tensor]] = {"features": [], "embeddings": [], "real": []}
        heads: dict[str, list[Tensor]] = {}
        for chunk in mine.split(self.batch_size):
            fake = pl_module.sample(len(chunk), labels=pairs["caption_tokens"][chunk].to(device), z=z_all[chunk])
            out = self.classifier.to(device)(fake)
            local["features"].append(out["features"])
            for name, logits in out["attributes"].items():
                heads.setdefault(name, []).append(logits)
            if self.image_encoder is not None:
                local["embeddings"].append(self.image_encoder.to(device)(fake).float())
            if "fid" in self.metrics or "kid" in self.metrics:
                local["real"].append(self.classifier(pairs["image"][chunk].to(device))["features"])
        gathered = {k: self._gather(trainer, pl_module, torch.cat(v))[:n] if v else None for k, v in local.items()}
        logits = {k: self._gather(trainer, pl_module, torch.cat(v))[:n] for k, v in heads.items()}
        text = self.text_encoder(pairs["caption_tokens"]) if self.text_encoder is not None else None
        feature_scores = "fid" in self.metrics or "kid" in self.metrics
        attributes = pairs.get("attributes")
        scores = text_image_scores(
            logits if "attributes" in self.metrics else None, attributes,
            gathered["real"] if feature_scores else None, gathered["features"] if feature_scores else None,
            gathered["embeddings"], text, kid_subsets=self.kid_subsets, kid_subset_size=self.kid_subset_size,
            seed=self.seed)
        self.last = {f"{self.prefix}/{self.split}/{k}": float(v) for k, v in scores.items()}
        self._last_step = pl_module.generator_steps
        folder = run_dir(trainer)  # a collective under DDP: every rank calls it
        if trainer.is_global_zero:
            path = folder / "metrics.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps({"generator_steps": pl_module.generator_steps, "images_seen": pl_module.images_seen,
                                    "num_samples": n, **self.last}) + "\n")
        return self.last

    @staticmethod
    def _gather(trainer: L.Trainer, pl_module: Any, local: Tensor) -> Tensor:
        if trainer.world_size == 1:
            return local.cpu()
        return pl_module.all_gather(local.contiguous()).reshape(-1, *local.shape[1:]).cpu()  # rank order
