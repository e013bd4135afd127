"""Text-to-image scores: R-precision of image-caption retrieval, attribute accuracy against captions.

* :func:`r_precision` (Xu et al. 2018, AttnGAN's R-precision with R = 1): an image retrieves its own
  caption among ``candidates`` (its own and ``candidates - 1`` others) when their embeddings are the
  most similar (cosine). With ``groups`` (e.g. the attribute combination), the other captions are
  drawn among those of other groups only, so a caption that says the same thing never counts as a
  wrong answer.
* :func:`attribute_accuracy`: the share of images whose predicted attribute equals the caption's,
  per attribute.
* :func:`text_image_scores`: those two and FID / KID in one call (what ``callbacks.TextImageMetrics``
  and ``benchmarks/text_to_image.py`` report).

Torch only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from callbacks.metrics.frechet import frechet_distance
from callbacks.metrics.kid import kid_capped


def r_precision(image_embeddings: Tensor, text_embeddings: Tensor, candidates: int = 100,
                groups: Tensor | None = None, seed: int = 0) -> float:
    """The share of images whose own caption is the most similar of ``candidates`` captions.

    Args:
        image_embeddings: ``[N, d]``, row ``i`` made from caption ``i``.
        text_embeddings: ``[N, d]`` embeddings of the ``N`` captions.
        candidates: captions ranked per image (the own one and ``candidates - 1`` others drawn
            without replacement from the other rows).
        groups: ``[N]`` int64; other captions are drawn from rows of a different group only.
        seed: seeds the draw of the other captions.

    Returns:
        R-precision in ``[0, 1]``; ties count as misses.
    """
    n = len(image_embeddings)
    if len(text_embeddings) != n:
        raise ValueError(f"{n} image embeddings but {len(text_embeddings)} text embeddings")
    image = F.normalize(image_embeddings.double(), dim=1)
    text = F.normalize(text_embeddings.double(), dim=1)
    gen = torch.Generator().manual_seed(seed)
    hits = 0
    for i in range(n):
        allowed = torch.ones(n, dtype=torch.bool)
        allowed[i] = False
        if groups is not None:
            allowed &= groups != groups[i]
        pool = allowed.nonzero().flatten()
        if len(pool) < candidates - 1:
            raise ValueError(f"row {i} has {len(pool)} captions to draw from, fewer than candidates - 1 = "
                             f"{candidates - 1}; score more samples or fewer candidates")
        others = pool[torch.randperm(len(pool), generator=gen)[:candidates - 1]]
        own = image[i] @ text[i]
        hits += int(bool(own > (text[others] @ image[i]).max()))
    return hits / n


def attribute_accuracy(logits: dict[str, Tensor], attributes: Tensor) -> dict[str, float]:
    """Per attribute, the share of rows whose argmax equals the target.

    Args:
        logits: attribute name to ``[N, K_a]`` logits, in the column order of ``attributes``.
        attributes: ``[N, A]`` int64 targets.
    """
    if attributes.dim() != 2 or attributes.shape[1] != len(logits):
        raise ValueError(f"attributes must be [N, {len(logits)}], got {tuple(attributes.shape)}")
    return {name: float((value.argmax(1).cpu() == attributes[:, k].cpu()).double().mean())
            for k, (name, value) in enumerate(logits.items())}


def attribute_groups(attributes: Tensor) -> Tensor:
    """An id ``[N]`` per distinct row of ``attributes [N, A]`` (rows naming the same combination share it)."""
    return torch.unique(attributes, dim=0, return_inverse=True)[1]


def text_image_scores(attribute_logits: dict[str, Tensor] | None, attributes: Tensor | None,
                      real_features: Tensor | None, fake_features: Tensor | None,
                      image_embeddings: Tensor | None, text_embeddings: Tensor | None,
                      candidates: int = 100, kid_subsets: int = 100, kid_subset_size: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """Every text-to-image score whose inputs are given, under flat names.

    Args:
        attribute_logits, attributes: the classifier's logits of the generated images and the
            attributes their captions name: ``attr/<name>`` accuracies and ``attr/mean``.
        real_features, fake_features: classifier features ``[N, d]``: ``fid`` and ``kid``.
        image_embeddings, text_embeddings: the matching encoders' embeddings of the generated images
            and of their captions: ``r_precision`` (other captions from other attribute combinations
            when ``attributes`` is given).
    """
    out: dict[str, float] = {}
    if attribute_logits is not None and attributes is not None:
        accuracy = attribute_accuracy(attribute_logits, attributes)
        out.update({f"attr/{k}": v for k, v in accuracy.items()})
        out["attr/mean"] = sum(accuracy.values()) / len(accuracy)
    if real_features is not None and fake_features is not None:
        out["fid"] = frechet_distance(real_features, fake_features)
        # capped loudly when a set is smaller than the subset (the benchmark's real rows: 300 images of a split)
        out.update(kid_capped(real_features, fake_features, num_subsets=kid_subsets, subset_size=kid_subset_size,
                              seed=seed))
    if image_embeddings is not None and text_embeddings is not None:
        groups = attribute_groups(attributes) if attributes is not None else None
        out["r_precision"] = r_precision(image_embeddings, text_embeddings, candidates=candidates, groups=groups,
                                         seed=seed)
    return out
