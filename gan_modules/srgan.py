"""SRGAN: photo-realistic single-image super-resolution with a GAN (Ledig et al. 2017).

Settings reproduced: SRResNet generator (16 residual blocks, two pixel-shuffle x2 stages for x4), the
strided-convolution discriminator with a dense head, the perceptual loss
``l_SR = l_content + 10^-3 · l_adv`` with ``l_adv = -log D(G(x))`` (the non-saturating loss), Adam
(1e-4 in the paper, β1 = 0.9). The content loss is the pixel MSE (``SRGAN-MSE``) and optionally
the VGG19 feature MSE (``SRGAN-VGG54`` with ``vgg_layer: relu5_4``, ``SRGAN-VGG22`` with ``relu2_2``),
which needs ImageNet VGG19 weights from a local file (``vgg_weights_path``; see
``gan_modules.perceptual``). The paper initialises G with the MSE-trained SRResNet;
``adversarial_warmup_steps`` trains G on the content loss alone for that many generator steps.

Batches: ``{"input": [N, C, H/s, W/s], "target": [N, C, H, W]}`` (the ``sr4x`` task), in ``[-1, 1]``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from gan_modules.perceptual import VGGFeatures, perceptual_loss
from gan_modules.translation import TranslationModule


class SRGAN(TranslationModule):
    """SRGAN: ``pixel_weight·MSE + vgg_weight·VGG-MSE + adversarial_weight·loss.g`` for G.

    Logs ``loss/G/mse``, ``loss/G/vgg`` (when on), ``loss/G/adv`` beside ``loss/D``, ``D/real``, ``D/fake``.

    Args:
        generator: ``low-res -> high-res`` (``gan_modules.nets.SRResNetGenerator``).
        discriminator: ``high-res -> logits`` (``gan_modules.nets.SRDiscriminator``).
        pixel_weight: weight of the pixel MSE (1; 0 for the VGG-only content loss of SRGAN-VGG54).
        adversarial_weight: weight of G's adversarial term (1e-3 in the paper).
        vgg_weight: weight of the VGG feature MSE (0 = off; the paper rescales VGG54 features by
            1/12.75, about 0.006 on the squared error).
        vgg_weights_path: torchvision ``vgg19`` state_dict file; required when ``vgg_weight > 0``.
        vgg_layer: the VGG19 feature layer (``relu5_4`` = VGG54, ``relu2_2`` = VGG22).
        adversarial_warmup_steps: generator steps trained on the content loss alone before the
            adversarial term switches on (the discriminator trains throughout).
        Other arguments: see :class:`gan_modules.translation.TranslationModule`.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, pixel_weight: float = 1.0,
                 adversarial_weight: float = 1e-3, vgg_weight: float = 0.0,
                 vgg_weights_path: str | None = None, vgg_layer: str = "relu5_4",
                 adversarial_warmup_steps: int = 0, **kwargs: Any) -> None:
        super().__init__(generator, discriminator, **kwargs)
        for name, value in (("pixel_weight", pixel_weight), ("adversarial_weight", adversarial_weight),
                            ("vgg_weight", vgg_weight), ("adversarial_warmup_steps", adversarial_warmup_steps)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.pixel_weight, self.adversarial_weight, self.vgg_weight = pixel_weight, adversarial_weight, vgg_weight
        self.adversarial_warmup_steps = adversarial_warmup_steps
        self.vgg: VGGFeatures | None = None
        if vgg_weight > 0:
            if vgg_weights_path is None:
                raise ValueError("SRGAN: vgg_weight > 0 needs vgg_weights_path (option --model.init_args.vgg_weights_path), "
                                 "a torchvision vgg19 state_dict file; or set vgg_weight: 0")
            self.vgg = VGGFeatures(vgg_weights_path, vgg_layer, option="--model.init_args.vgg_weights_path")

    def adversarial_weight_at(self, generator_steps: int) -> float:
        """The adversarial weight of a generator step: 0 during the warm-up, then ``adversarial_weight``."""
        return 0.0 if generator_steps < self.adversarial_warmup_steps else self.adversarial_weight

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        fake = self.generate_from(batch, self.generator)
        mse = F.mse_loss(fake, real)
        out = {"loss/G/mse": mse.detach()}
        loss = self.pixel_weight * mse
        if self.vgg is not None:
            vgg = perceptual_loss(self.vgg, fake, real)
            loss = loss + self.vgg_weight * vgg
            out["loss/G/vgg"] = vgg.detach()
        adversarial = self.adversarial.g_against(self.discriminator(fake), lambda: self.discriminator(real))
        out["loss/G/adv"] = adversarial.detach()
        out["loss"] = loss + self.adversarial_weight_at(self.generator_steps) * adversarial
        return out
