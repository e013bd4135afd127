"""Class-conditional families: the conditional GAN and the auxiliary-classifier GAN.

* Conditional GAN (Mirza & Osindero 2014): both players see the label, ``G(z, y)`` and ``D(x, y)``.
  :class:`ConditionalGAN` is :class:`~gan_modules.gan.GAN` (same losses and penalties by name) with
  conditional networks; the presets pin two ways to give D the label:
  ``configs/cgan_concat_digits.yaml`` (one-hot label maps concatenated to the image, DCGAN networks,
  non-saturating loss, Adam(2e-4, β1 = 0.5)) and ``configs/cgan_projection_digits.yaml`` (the
  projection discriminator of Miyato & Koyama 2018: ``logit = linear(phi(x)) + <embed(y), phi(x)>``,
  hinge loss, spectral norm, no batch norm in D).
* AC-GAN (Odena et al. 2017): only G sees the label; D predicts it with an auxiliary head.
  :class:`ACGAN`'s discriminator loss is the adversarial loss on the real/fake head plus
  ``aux_weight`` times the class cross-entropy on real AND generated images; the generator's is the
  adversarial loss plus ``aux_weight`` times the class cross-entropy of its own images
  (``configs/acgan_digits.yaml``: non-saturating loss, ``aux_weight`` 1, DCGAN networks).

Generated images are conditioned on the labels of the real batch, so the class prior is the data's.
Sample class ``k`` with ``module.sample(n, labels=torch.full((n,), k))`` or, from a checkpoint alone,
``load_generator(path)(z, labels)``; ``train.py predict`` writes ``<class>/<index>.png``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_modules.base import GANModule
from gan_modules.gan import GAN
from gan_modules.losses import get_loss


def _check_conditional(family: str, generator: nn.Module, discriminator: nn.Module) -> int:
    """The generator's ``num_classes`` (> 0); a discriminator that states another count is an error."""
    num_classes = int(getattr(generator, "num_classes", 0))
    if num_classes < 1:
        raise ValueError(f"{family} needs a conditional generator (num_classes > 0, e.g. "
                         f"gan_modules.nets.ConditionalDCGANGenerator), got {type(generator).__name__} "
                         f"with num_classes={num_classes}")
    d_classes = getattr(discriminator, "num_classes", None)
    if d_classes is not None and int(d_classes) != num_classes:
        raise ValueError(f"{family}: the generator has {num_classes} classes but the discriminator "
                         f"{type(discriminator).__name__} has {d_classes}")
    return num_classes


def _labels(family: str, batch: dict[str, Tensor]) -> Tensor:
    if "label" not in batch:
        raise KeyError(f"{family} trains on labelled data: the batch has no 'label' "
                       f"(keys: {', '.join(batch)}); use a labelled datamodule")
    return batch["label"]


class ConditionalGAN(GAN):
    """Conditional GAN: :class:`~gan_modules.gan.GAN` whose networks take labels, ``G(z, y)``, ``D(x, y)``.

    The loop and the losses are GAN's (the base class passes the batch's labels to both networks
    when ``num_classes > 0``); this class checks that the networks are conditional and the data labelled.

    Args:
        generator: ``G(z [N, latent_dim], labels [N]) -> [N, *sample_shape]`` with ``num_classes > 0``.
        discriminator: ``D(x [N, *sample_shape], labels [N]) -> logits [N]``.
        Other arguments (``loss``, ``gp_weight``, ``r1_gamma``, ...): see :class:`~gan_modules.gan.GAN`.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, **kwargs: Any) -> None:
        _check_conditional(type(self).__name__, generator, discriminator)
        super().__init__(generator, discriminator, **kwargs)

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        _labels(type(self).__name__, batch)  # a clear error instead of a network's "labels is None"
        return super().discriminator_loss(batch, reg_weight)

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        _labels(type(self).__name__, batch)
        return super().generator_loss(batch)


class ACGAN(GANModule):
    """AC-GAN: a conditional generator against a discriminator with an auxiliary classifier head.

    With ``(r, c_r) = D(x_real)``, ``(f, c_f) = D(G(z, y))`` and ``y`` the batch's labels:

    * D minimises ``adv.d(r, f) + aux_weight * (CE(c_r, y) + CE(c_f, y))``;
    * G minimises ``adv.g(f) + aux_weight * CE(c_f, y)``.

    Logged: ``D/real``, ``D/fake`` (mean real/fake logits), ``loss/D/class`` and ``loss/G/class``
    (the unweighted cross-entropies), ``D/accuracy/real`` and ``D/accuracy/fake`` (the class head's
    accuracy). Validation logs ``val/D/real``, ``val/D/fake`` and ``val/D/accuracy/real``.

    Args:
        generator: ``G(z [N, latent_dim], labels [N]) -> [N, *sample_shape]`` with ``num_classes > 0``.
        discriminator: ``D(x) -> (logits [N], class_logits [N, num_classes])``, e.g.
            :class:`gan_modules.nets.ACGANDiscriminator`.
        loss: adversarial loss of the real/fake head by name (the paper's is ``nonsaturating``).
        aux_weight: weight of the class cross-entropy in both players' losses.
        label_smoothing: one-sided smoothing of D's real target for the BCE losses (see ``GAN``).
        Other arguments: see :class:`gan_modules.base.GANModule` (there are no penalties here, so
        ``reg_interval`` has no effect).
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: str = "nonsaturating",
                 aux_weight: float = 1.0, label_smoothing: float = 0.0, **kwargs: Any) -> None:
        _check_conditional(type(self).__name__, generator, discriminator)
        super().__init__(generator, discriminator, **kwargs)
        if aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        self.adversarial = get_loss(loss, label_smoothing)
        self.aux_weight = aux_weight

    def discriminate(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(logits [N], class_logits [N, num_classes])``; an AC-GAN discriminator ignores ``labels``.
        ``x`` is augmented first in training when ``augment`` is set."""
        out = self.discriminator(self.augment_images(x), labels)
        if not (isinstance(out, tuple) and len(out) == 2 and out[1].dim() == 2
                and out[1].shape[1] == self.num_classes):
            raise TypeError(f"ACGAN's discriminator must return (logits [N], class_logits [N, {self.num_classes}]); "
                            f"{type(self.discriminator).__name__} does not (use nets.ACGANDiscriminator)")
        return out

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        del reg_weight  # no penalties in this family
        real = self.real_samples(batch)
        labels = _labels(type(self).__name__, batch)
        with torch.no_grad():
            fake = self.generate(self.latents(len(real)), labels)
        real_logits, real_classes = self.discriminate(real, labels)
        fake_logits, fake_classes = self.discriminate(fake, labels)
        self.observe_real_logits(real_logits)
        class_loss = F.cross_entropy(real_classes, labels) + F.cross_entropy(fake_classes, labels)
        return {
            "loss": self.adversarial.d(real_logits, fake_logits) + self.aux_weight * class_loss,
            "loss/D/class": class_loss.detach(),
            "D/real": real_logits.detach().mean(),
            "D/fake": fake_logits.detach().mean(),
            "D/accuracy/real": (real_classes.detach().argmax(1) == labels).float().mean(),
            "D/accuracy/fake": (fake_classes.detach().argmax(1) == labels).float().mean(),
        }

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        labels = _labels(type(self).__name__, batch)
        fake_logits, fake_classes = self.discriminate(self.generate(self.latents(len(real)), labels), labels)
        adversarial = self.adversarial.g_against(fake_logits, lambda: self.discriminate(real, labels)[0])
        class_loss = F.cross_entropy(fake_classes, labels)
        return {"loss": adversarial + self.aux_weight * class_loss,
                "loss/G/class": class_loss.detach()}

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, prefix: str) -> None:
        # GANModule's evaluation step averages D's output, which is a tuple here.
        real = self.real_samples(batch)
        labels = _labels(type(self).__name__, batch)
        seeded = torch.Generator().manual_seed(self.sample_seed * 100_003 + batch_idx)  # same fakes every time
        fake = self.sample(len(real), labels=labels, generator=seeded)
        real_logits, real_classes = self.discriminate(real, labels)
        fake_logits, _ = self.discriminate(fake, labels)
        self.log_dict({f"{prefix}/D/real": real_logits.mean(), f"{prefix}/D/fake": fake_logits.mean(),
                       f"{prefix}/D/accuracy/real": (real_classes.argmax(1) == labels).float().mean()},
                      batch_size=len(real), sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")
