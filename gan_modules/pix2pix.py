"""Pix2Pix: paired image-to-image translation with a conditional GAN (Isola et al. 2017).

Settings reproduced (``configs/pix2pix_facades.yaml``): U-Net generator with dropout as the only noise
(at training and test time), 70x70 PatchGAN discriminator conditioned on the input (it sees
``concat(input, image)``), ``L = L_cGAN + λ·L1`` with λ = 100, the cross-entropy GAN loss (the
non-saturating form for G), D's objective halved "to slow down the rate at which D learns", Adam
(2e-4, β1 = 0.5), batch size 1, 200 epochs: constant LR for 100, then linear decay to zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
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
        g_optimizer: OptimizerCallable | None = None,
        d_optimizer: OptimizerCallable | None = None,
        g_scheduler: LRSchedulerCallable | None = None,
        d_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: str = "step",
        n_critic: int = 1,
        reg_interval: int = 1,
        ema_decay: float | None = None,
        ema_half_life_kimg: float | None = None,
        ema_rampup: float | None = None,
        max_generator_steps: int | None = None,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        num_fixed_samples: int = 8,
        sample_seed: int = 0,
        compile: bool = False,
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__(
            generator, discriminator, g_optimizer=g_optimizer, d_optimizer=d_optimizer,
            g_scheduler=g_scheduler, d_scheduler=d_scheduler, scheduler_interval=scheduler_interval,
            n_critic=n_critic, reg_interval=reg_interval, ema_decay=ema_decay,
            ema_half_life_kimg=ema_half_life_kimg, ema_rampup=ema_rampup,
            max_generator_steps=max_generator_steps, gradient_clip_val=gradient_clip_val,
            gradient_clip_algorithm=gradient_clip_algorithm, num_fixed_samples=num_fixed_samples,
            sample_seed=sample_seed, compile=compile, compile_backend=compile_backend,
        )
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
        real_logits = None
        if self.adversarial.needs_real_for_g:
            with torch.no_grad():
                real_logits = self.judge(real, batch)
        adversarial = self.adversarial.g(self.judge(fake, batch), real_logits)
        l1 = F.l1_loss(fake, real)
        return {"loss": adversarial + self.l1_weight * l1, "loss/G/adv": adversarial.detach(), "loss/G/l1": l1.detach()}
