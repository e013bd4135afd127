"""Inpainting GAN: the context encoder of Pathak et al. 2016, with a PatchGAN discriminator.

Settings reproduced: a generator that sees the image with its hole and fills it, the joint loss
``L = λ_rec · L_rec + λ_adv · L_adv`` with ``λ_rec = 0.999`` and ``λ_adv = 0.001``, ``L_rec`` the L2
distance on the hole (here averaged over the hole's pixels, so the weight does not depend on the hole
size), the cross-entropy GAN loss, Adam(2e-4, β1 = 0.5) with a 10x smaller discriminator learning rate
(``configs/inpaint_*.yaml``). Departures, documented: the generator is a U-Net reading image + mask
(``gan_modules.nets.InpaintingGenerator``) rather than Pathak's AlexNet encoder with a channel-wise
fully connected layer, and the discriminator is a PatchGAN on the whole composited image (every patch
judged, as the local discriminator of Iizuka et al. 2017 does for the hole) rather than a global D on
the hole's region. The output is always composited: the known pixels are the input's, exactly.

Batches: ``{"input": [N, C, H, W] (the hole zeroed), "target": [N, C, H, W], "mask": [N, 1, H, W]}``
with ``mask`` 1 in the hole; predict batches ``{"index", "input"}`` (+ ``"mask"``; without it the hole
is where the input is exactly 0 in every channel).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gan_modules.nets.unet import composite
from gan_modules.translation import TranslationModule

RECONSTRUCTIONS = ("l1", "l2")


def masked_reconstruction(output: Tensor, target: Tensor, mask: Tensor, kind: str = "l2") -> Tensor:
    """Mean squared (``l2``) or absolute (``l1``) error over the hole's pixels and channels.

    Args:
        output: generated images ``[N, C, H, W]``.
        target: true images ``[N, C, H, W]``.
        mask: ``[N, 1, H, W]``, 1 in the hole.
        kind: ``l2`` (Pathak et al.) or ``l1``.
    """
    diff = (output - target) * mask
    error = diff.square() if kind == "l2" else diff.abs()
    hole = (mask.sum() * output.shape[1]).clamp_min(1.0)  # the number of hole values over the batch
    return error.sum() / hole


class InpaintingGAN(TranslationModule):
    """Inpainting on ``{"input", "target", "mask"}`` batches; logs ``loss/G/rec``, ``loss/G/adv``.

    Args:
        generator: ``G(masked image, mask) -> image`` (``gan_modules.nets.InpaintingGenerator``).
        discriminator: logits for composited images (``PatchDiscriminator``; with
            ``conditional: true`` it also sees the masked input).
        reconstruction_weight: λ_rec (0.999 in the paper).
        adversarial_weight: λ_adv (0.001 in the paper).
        reconstruction: ``l2`` (the paper's) or ``l1`` on the hole.
        Other arguments: see :class:`gan_modules.translation.TranslationModule`.
    """

    extra_keys = ("mask",)

    def __init__(self, generator: nn.Module, discriminator: nn.Module, reconstruction_weight: float = 0.999,
                 adversarial_weight: float = 0.001, reconstruction: str = "l2", **kwargs: Any) -> None:
        super().__init__(generator, discriminator, **kwargs)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"unknown reconstruction '{reconstruction}'; valid: {', '.join(RECONSTRUCTIONS)}")
        if reconstruction_weight < 0 or adversarial_weight < 0:
            raise ValueError("reconstruction_weight and adversarial_weight must be >= 0")
        if self.input_shape != self.sample_shape:
            raise ValueError(f"InpaintingGAN: the masked input {self.input_shape} must have the output's shape "
                             f"{self.sample_shape} (the known pixels are copied into the output)")
        self.reconstruction_weight, self.adversarial_weight = reconstruction_weight, adversarial_weight
        self.reconstruction = reconstruction

    def masks_of(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's hole masks ``[N, 1, H, W]`` (1 = missing pixel).

        A batch without ``"mask"`` (a predict batch of inputs only) gets the mask the data contract
        implies: the pixels that are exactly 0 in every channel of the input, where the hole was zeroed.
        """
        if "mask" not in batch and self.input_key in batch:
            return (self.inputs_of(batch) == 0).all(dim=1, keepdim=True).to(batch[self.input_key].dtype)
        mask = self._get(batch, "mask")
        if tuple(mask.shape[1:]) != (1, *self.sample_shape[1:]):
            raise ValueError(f"data gives masks of shape {tuple(mask.shape[1:])}, expected {(1, *self.sample_shape[1:])}")
        return mask

    def generate_from(self, batch: dict[str, Tensor], net: nn.Module) -> Tensor:
        """The generator's completion, composited: the input's pixels outside the hole, exactly."""
        inputs, mask = self.inputs_of(batch), self.masks_of(batch).to(self.inputs_of(batch).dtype)
        return composite(net(inputs, mask), inputs, mask)

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real, mask = self.real_samples(batch), self.masks_of(batch)
        fake = self.generate_from(batch, self.generator)
        rec = masked_reconstruction(fake, real, mask.to(fake.dtype), self.reconstruction)
        adversarial = self.adversarial.g_against(self.judge(fake, batch), lambda: self.judge(real, batch))
        return {"loss": self.reconstruction_weight * rec + self.adversarial_weight * adversarial,
                "loss/G/rec": rec.detach(), "loss/G/adv": adversarial.detach()}
