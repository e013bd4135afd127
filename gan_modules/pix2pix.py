"""Pix2Pix: paired image-to-image translation with a conditional GAN (Isola et al. 2017).

Settings reproduced (``configs/pix2pix_facades.yaml``): U-Net generator with dropout as the only noise
(at training and test time), 70x70 PatchGAN discriminator conditioned on the input (it sees
``concat(input, image)``), ``L = L_cGAN + λ·L1`` with λ = 100, the cross-entropy GAN loss (the
non-saturating form for G), D's objective halved "to slow down the rate at which D learns", Adam
(2e-4, β1 = 0.5), batch size 1, 200 epochs: constant LR for 100, then linear decay to zero.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_modules.losses import get_loss
from gan_modules.translation import TranslationModule


class Pix2Pix(TranslationModule):
    """Pix2Pix on paired batches ``{"input": [N, C_in, H, W], "target": [N, C_out, H, W]}``.

    Discriminator loss: ``d_weight * loss.d(D(x, y), D(x, G(x)))``; generator loss:
    ``loss.g(D(x, G(x))) + l1_weight * |y - G(x)|_1`` (L1 averaged over pixels). Logs ``loss/D``,
    ``D/real``, ``D/fake``, ``loss/G``, ``loss/G/adv``, ``loss/G/l1``. An unconditional discriminator
    (``conditional: false``) gives the paper's "L1 + GAN" ablation.

    Args:
        generator: ``input -> output`` (``gan_modules.nets.UNetGenerator`` in the paper).
        discriminator: ``D(images, condition)`` logits (``PatchDiscriminator(conditional=True)``).
        loss: adversarial loss name (``nonsaturating``: the paper's cross-entropy; or lsgan, hinge, ...).
        l1_weight: λ of the L1 term (100 in the paper).
        d_weight: factor on D's loss (0.5 in the paper: its objective is divided by 2).
        Other arguments: see :class:`gan_modules.translation.TranslationModule`.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: str = "nonsaturating",
        l1_weight: float = 100.0,
        d_weight: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(generator, discriminator, **kwargs)
        if l1_weight < 0 or d_weight <= 0:
            raise ValueError(f"l1_weight must be >= 0 and d_weight > 0, got {l1_weight} and {d_weight}")
        self.adversarial = get_loss(loss)
        self.l1_weight, self.d_weight = l1_weight, d_weight

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        with torch.no_grad():
            fake = self.generate_from(batch, self.generator)
        real_logits, fake_logits = self.judge(real, batch), self.judge(fake, batch)
        return {"loss": self.d_weight * self.adversarial.d(real_logits, fake_logits),
                "D/real": real_logits.detach().mean(), "D/fake": fake_logits.detach().mean()}

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # G(x) is recomputed rather than kept from the D step: that step ran with G frozen (no graph),
        # and with dropout as the noise, a fresh draw is what the paper's G step sees anyway.
        real = self.real_samples(batch)
        fake = self.generate_from(batch, self.generator)
        adversarial = self.adversarial.g_against(self.judge(fake, batch), lambda: self.judge(real, batch))
        l1 = F.l1_loss(fake, real)
        return {"loss": adversarial + self.l1_weight * l1, "loss/G/adv": adversarial.detach(), "loss/G/l1": l1.detach()}
