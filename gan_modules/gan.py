"""GAN: the unconditional family, from the 2014 MLP GAN to WGAN-GP and the R3GAN objective.

One LightningModule covers the unconditional objectives that differ only in their loss and
regularizers; the presets in ``configs/`` pin the published settings:

* GAN (Goodfellow et al. 2014): ``loss: minimax`` or ``nonsaturating``, MLP networks on toy data.
* DCGAN (Radford et al. 2016): ``loss: nonsaturating``, DCGAN networks, Adam(2e-4, β1 = 0.5).
* LSGAN (Mao et al. 2017): ``loss: lsgan`` (a = 0, b = c = 1).
* WGAN (Arjovsky et al. 2017): ``loss: wasserstein``, ``clip_value: 0.01``, RMSprop(5e-5), n_critic 5.
* WGAN-GP (Gulrajani et al. 2017): ``loss: wasserstein``, ``gp_weight: 10``, Adam(1e-4, (0, 0.9)),
  n_critic 5, no batch norm in the critic.
* Hinge (Lim & Ye 2017; Miyato et al. 2018): ``loss: hinge``, spectral norm in D.
* RpGAN + R1 + R2 (Huang et al. 2024, R3GAN's objective): ``loss: rpgan``, ``r1_gamma``, ``r2_gamma``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gan_modules.base import GANModule
from gan_modules.losses import get_loss
from gan_modules.regularizers import clip_weights, gradient_penalty, r1_penalty, r2_penalty


class GAN(GANModule):
    """Unconditional GAN with a loss chosen by name and optional penalties.

    Args:
        generator: ``z [N, latent_dim] -> [N, *sample_shape]``.
        discriminator: ``[N, *sample_shape] -> logits``.
        loss: adversarial loss name: minimax, nonsaturating, lsgan, wasserstein, hinge, rpgan.
        gp_weight: λ of the WGAN-GP gradient penalty on interpolates (0 disables it).
        r1_gamma: γ of the R1 penalty on real samples, applied as γ/2·E‖∇D‖² (0 disables it).
        r2_gamma: γ of the R2 penalty on generated samples (0 disables it).
        clip_value: clamp the discriminator's weights to [-c, c] after each step (WGAN).
        label_smoothing: one-sided smoothing of D's real target (``1 - s``; 0.1 gives 0.9) for the BCE
            losses (minimax, nonsaturating); an error for the others.
        Other arguments: see :class:`gan_modules.base.GANModule`.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: str = "nonsaturating",
                 gp_weight: float = 0.0, r1_gamma: float = 0.0, r2_gamma: float = 0.0,
                 clip_value: float | None = None, label_smoothing: float = 0.0, **kwargs: Any) -> None:
        super().__init__(generator, discriminator, **kwargs)
        self.adversarial = get_loss(loss, label_smoothing)
        for name, value in (("gp_weight", gp_weight), ("r1_gamma", r1_gamma), ("r2_gamma", r2_gamma)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if clip_value is not None and clip_value <= 0:
            raise ValueError(f"clip_value must be > 0, got {clip_value}")
        self.gp_weight, self.r1_gamma, self.r2_gamma, self.clip_value = gp_weight, r1_gamma, r2_gamma, clip_value

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        labels = batch.get("label") if self.num_classes else None
        with torch.no_grad():
            fake = self.generate(self.latents(len(real)), labels)
        use_r1 = self.r1_gamma > 0 and reg_weight > 0
        use_r2 = self.r2_gamma > 0 and reg_weight > 0
        if use_r1:
            real = real.detach().requires_grad_(True)
        if use_r2:
            fake = fake.requires_grad_(True)
        real_logits = self.discriminate(real, labels)
        fake_logits = self.discriminate(fake, labels)
        self.observe_real_logits(real_logits)
        loss = self.adversarial.d(real_logits, fake_logits)
        out = {"D/real": real_logits.detach().mean(), "D/fake": fake_logits.detach().mean()}
        scale = self.penalty_scale() if reg_weight > 0 else 1.0
        if self.gp_weight > 0 and reg_weight > 0:
            penalty = gradient_penalty(lambda x: self.discriminate(x, labels), real.detach(), fake.detach(), scale=scale)
            loss = loss + self.gp_weight * reg_weight * penalty
            out["loss/D/gp"] = penalty.detach()
        if use_r1:
            penalty = r1_penalty(real, real_logits, scale)
            loss = loss + 0.5 * self.r1_gamma * reg_weight * penalty
            out["loss/D/r1"] = penalty.detach()
        if use_r2:
            penalty = r2_penalty(fake, fake_logits, scale)
            loss = loss + 0.5 * self.r2_gamma * reg_weight * penalty
            out["loss/D/r2"] = penalty.detach()
        out["loss"] = loss
        return out

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        labels = batch.get("label") if self.num_classes else None
        fake = self.generate(self.latents(len(real)), labels)
        return {"loss": self.adversarial.g_against(self.discriminate(fake, labels), lambda: self.discriminate(real, labels))}

    def after_discriminator_step(self) -> None:
        if self.clip_value is not None:
            clip_weights(self.discriminator, self.clip_value)
