"""TemplateGAN: the worked example of docs/adding_a_family.md, one-sided label smoothing.

Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.4: the discriminator's target
for real samples is ``1 - smoothing`` instead of 1 (fakes keep 0), which keeps D from growing
over-confident logits on the reals. The generator's loss is the non-saturating one. Preset:
``configs/template_digits.yaml`` (DCGAN networks, smoothing 0.1, the paper's 0.9 target).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_modules.base import GANModule
from gan_modules.losses import nonsaturating_g


class TemplateGAN(GANModule):
    """A non-saturating GAN whose discriminator sees real targets ``1 - smoothing``.

    Discriminator loss: ``BCE(D(x), 1 - smoothing) + BCE(D(G(z)), 0)`` on logits, each averaged;
    generator loss: ``softplus(-D(G(z)))``. Logs ``loss/D``, ``D/real``, ``D/fake``, ``loss/G``.

    Args:
        generator: ``z [N, latent_dim] -> [N, *sample_shape]`` in ``[-1, 1]``.
        discriminator: ``[N, *sample_shape] -> logits [N]``.
        smoothing: how far the real target moves from 1, in ``[0, 1)`` (0.1 in the paper; 0 is the plain GAN).
        Other arguments: see :class:`gan_modules.base.GANModule`.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, smoothing: float = 0.1, **kwargs: Any) -> None:
        super().__init__(generator, discriminator, **kwargs)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        with torch.no_grad():  # D's step trains D only
            fake = self.generate(self.latents(len(real)))
        real_logits, fake_logits = self.discriminate(real), self.discriminate(fake)
        loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1.0 - self.smoothing))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        return {"loss": loss, "D/real": real_logits.detach().mean(), "D/fake": fake_logits.detach().mean()}

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        fake = self.generate(self.latents(self.batch_size_of(batch)))
        return {"loss": nonsaturating_g(self.discriminate(fake))}
