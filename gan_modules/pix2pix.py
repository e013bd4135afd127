"""Pix2Pix: paired image-to-image translation with a conditional GAN (Isola et al. 2017).

Settings reproduced (``configs/pix2pix_facades.yaml``): U-Net generator with dropout as the only noise
(at training and test time), 70x70 PatchGAN discriminator that sees ``concat(input, image)``,
``L = L_cGAN + λ·L1`` with λ = 100, the cross-entropy GAN loss (non-saturating for G), D's objective
halved "to slow down the rate at which D learns", Adam(2e-4, β1 = 0.5), batch size 1, 200 epochs:
constant LR for 100, then linear decay to zero.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from gan_modules.translation import TranslationModule


class Pix2Pix(TranslationModule):
    """Pix2Pix on ``{"input", "target"}`` batches: D minimises ``d_weight * loss.d(D(x, y), D(x, G(x)))``, G
    ``loss.g(D(x, G(x))) + l1_weight * |y - G(x)|_1``; logs ``loss/G/adv``, ``loss/G/l1``. An unconditional
    D (``conditional: false``) gives the paper's "L1 + GAN" ablation.

    Args:
        l1_weight: λ of the L1 term (100 in the paper).
        d_weight: factor on D's loss (0.5 in the paper: its objective is divided by 2).
        Other arguments: see :class:`gan_modules.translation.TranslationModule`.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, l1_weight: float = 100.0, d_weight: float = 0.5,
                 **kwargs: Any) -> None:
        super().__init__(generator, discriminator, **kwargs)
        if l1_weight < 0 or d_weight <= 0:
            raise ValueError(f"l1_weight must be >= 0 and d_weight > 0, got {l1_weight} and {d_weight}")
        self.l1_weight, self.d_weight = l1_weight, d_weight

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        out = super().discriminator_loss(batch, reg_weight)
        return {**out, "loss": self.d_weight * out["loss"]}

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # G(x) is recomputed, not kept from the D step (that ran without G's graph); with dropout as the
        # noise, a fresh draw is what the paper's G step sees anyway.
        real, fake = self.real_samples(batch), self.generate_from(batch, self.generator)
        adversarial = self.adversarial.g_against(self.judge(fake, batch), lambda: self.judge(real, batch))
        l1 = F.l1_loss(fake, real)
        return {"loss": adversarial + self.l1_weight * l1, "loss/G/adv": adversarial.detach(), "loss/G/l1": l1.detach()}
