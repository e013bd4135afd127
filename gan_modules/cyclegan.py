"""CycleGAN: unpaired image-to-image translation with cycle consistency (Zhu et al. 2017).

Settings reproduced (``configs/cyclegan_horse2zebra.yaml``): two ResNet generators (9 blocks at 256
px), two 70x70 PatchGANs, instance norm, the least-squares GAN loss, cycle loss λ = 10, identity loss
0.5·λ, a history of 50 generated images per discriminator (Shrivastava et al. 2017), Adam(2e-4,
β1 = 0.5), batch size 1, 200 epochs: constant LR for 100 then linear decay to zero
(``gan_modules.schedules.LinearDecayLR``). As in the reference code, one optimizer updates both
generators and one both discriminators, and each batch runs the generator step first, then the
discriminator step on the fakes that step made (through the pools).

Networks: ``generator`` is G: A→B and ``discriminator`` is D_B (judges B), so ``train.py``'s data links
fill their shapes (``data.input_shape`` = A's, ``data.sample_shape`` = B's) and ``load_generator``
returns G: A→B (``load_generator(path, which="BtoA")`` returns F: B→A). F: B→A and D_A are built
from their ``init_spec`` with the input and output shapes swapped and fresh weights, unless given
explicitly as ``generator_ba`` / ``discriminator_a``.

Batches: ``{"A": [N, C_A, H, W], "B": [N, C_B, H, W]}``, unpaired; predict batches ``{"index", "A"}``.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_modules.nets.base import build_network
from gan_modules.translation import TranslationModule, psnr, seeded


class ImagePool:
    """A history of generated images; the discriminator sees a mix of current and older fakes.

    The reference code's rule: while fewer than ``size`` images are stored, each new image is stored
    and returned; after that, each new image is, with probability 1/2, swapped with a random stored
    one (the stored one is returned, the new one kept), else returned as it is. ``size = 0`` passes
    images through. The draws come from the pool's own generator, so :meth:`state_dict` (images,
    count, RNG state) makes a resumed run continue exactly.

    Args:
        size: images kept (50 in CycleGAN).
        seed: seed of the pool's random generator.
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.count = 0
        self.images: Tensor | None = None
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: Tensor) -> Tensor:
        """Stores ``images [N, ...]`` (detached) and returns ``N`` images to show the discriminator."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = images.new_zeros(self.size, *images.shape[1:])
        elif self.images.device != images.device or self.images.dtype != images.dtype:
            self.images = self.images.to(images.device, images.dtype)
        out = []
        for image in images:
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        stored = self.images[: self.count].detach().cpu() if self.images is not None else torch.zeros(0)
        return {"size": self.size, "count": self.count, "images": stored, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"the checkpoint's image pool holds {state['size']} images, this one {self.size}")
        self.count = int(state["count"])
        self.generator.set_state(state["rng"])
        stored = state["images"]
        self.images = None
        if self.count:
            self.images = stored.new_zeros(self.size, *stored.shape[1:])
            self.images[: self.count] = stored


def mirrored(net: nn.Module, input_shape: tuple[int, ...], sample_shape: tuple[int, ...], role: str) -> nn.Module:
    """A fresh network of ``net``'s class and arguments with the given input and output shapes."""
    spec = getattr(net, "init_spec", None)
    if spec is None:
        raise ValueError(f"CycleGAN builds {role} from the init_spec of {type(net).__name__}, which has none "
                         f"(not a gan_modules.nets.Network, or arguments that are not plain data); pass {role} explicitly")
    spec = copy.deepcopy(spec)
    spec["init_args"]["sample_shape"] = list(sample_shape)
    if "input_shape" in spec["init_args"]:
        spec["init_args"]["input_shape"] = list(input_shape)
    return build_network(spec)


class CycleGAN(TranslationModule):
    """CycleGAN on unpaired ``{"A", "B"}`` batches.

    Generator step: ``adversarial_weight · (loss.g(D_B(G(a))) + loss.g(D_A(F(b))))``
    ``+ cycle_weight · (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)``
    ``+ cycle_weight · identity_weight · (|G(b) - b|_1 + |F(a) - a|_1)``. Discriminator step:
    ``loss.d(D_B(b), D_B(pool_B(G(a)))) + loss.d(D_A(a), D_A(pool_A(F(b))))``. Logs ``loss/G``,
    ``loss/G/adv``, ``loss/G/cycle``, ``loss/G/identity``, ``loss/D``, ``loss/D/A``, ``loss/D/B``,
    ``D/real``, ``D/fake`` (both discriminators averaged); validation ``val/cycle/l1``, ``val/cycle/psnr``
    (A→B→A against A), ``val/D/real``, ``val/D/fake`` (D_B). ``GenerativeMetrics`` scores both
    directions: G(A) against B as ``metrics/<name>``, F(B) against A as ``metrics/B2A/<name>``.

    Args:
        generator: G: A→B (``gan_modules.nets.ResnetGenerator``).
        discriminator: D_B, judges images of B (``PatchDiscriminator(norm="instance")``).
        generator_ba: F: B→A; None builds it from ``generator``'s ``init_spec`` with shapes swapped.
        discriminator_a: D_A; None builds it from ``discriminator``'s ``init_spec`` for A's shape.
        loss: adversarial loss name (``lsgan``: the paper's).
        cycle_weight: λ of the cycle-consistency L1 (10 in the paper).
        identity_weight: identity loss weight relative to λ (0.5 in the paper; 0 turns it off; needs
            A and B of the same shape).
        adversarial_weight: factor on G's adversarial terms. 2 reproduces the paper's
            ``E[(D(G(a)) - 1)²]``, because ``losses.lsgan_g`` carries Mao et al.'s 1/2; use 1 with
            other losses. (D's LSGAN loss, ``½E(D(b) - 1)² + ½E D(fake)²``, is the reference's.)
        pool_size: generated images kept per discriminator (50 in the paper; 0 disables the pools).
        Other arguments: see :class:`gan_modules.translation.TranslationModule`.
    """

    input_key = "A"
    target_key = "B"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, generator_ba: nn.Module | None = None,
                 discriminator_a: nn.Module | None = None, loss: str = "lsgan", cycle_weight: float = 10.0,
                 identity_weight: float = 0.5, adversarial_weight: float = 2.0, pool_size: int = 50,
                 **kwargs: Any) -> None:
        super().__init__(generator, discriminator, loss=loss, **kwargs)
        # The base class keeps the other arguments; modules are weights, not hyperparameters.
        self.save_hyperparameters(ignore=["generator", "discriminator", "generator_ba", "discriminator_a",
                                          "g_optimizer", "d_optimizer", "g_scheduler", "d_scheduler"])
        for name, value in (("cycle_weight", cycle_weight), ("identity_weight", identity_weight),
                            ("adversarial_weight", adversarial_weight)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if identity_weight > 0 and self.input_shape != self.sample_shape:
            raise ValueError(f"the identity loss feeds B to G: A→B, so A {self.input_shape} and B {self.sample_shape} "
                             "must have the same shape; set identity_weight: 0")
        if generator_ba is None:
            generator_ba = mirrored(generator, self.sample_shape, self.input_shape, "generator_ba")
        if discriminator_a is None:
            discriminator_a = mirrored(discriminator, self.sample_shape, self.input_shape, "discriminator_a")
        self.generator_ba, self.discriminator_a = generator_ba, discriminator_a
        self.cycle_weight, self.identity_weight, self.adversarial_weight = cycle_weight, identity_weight, adversarial_weight
        self.pool_a = ImagePool(pool_size, seed=self.sample_seed * 2 + 1)
        self.pool_b = ImagePool(pool_size, seed=self.sample_seed * 2 + 2)
        self._fakes: tuple[Tensor, Tensor] | None = None  # (G(a), F(b)) of the last generator step, detached

    # ----------------------------------------------------------------------------------------- losses

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real_a, real_b = self.inputs_of(batch), self.real_samples(batch)
        fake_b, fake_a = self.generator(real_a), self.generator_ba(real_b)
        adversarial = (self.adversarial.g_against(self.discriminator(fake_b), lambda: self.discriminator(real_b))
                       + self.adversarial.g_against(self.discriminator_a(fake_a), lambda: self.discriminator_a(real_a)))
        cycle = F.l1_loss(self.generator_ba(fake_b), real_a) + F.l1_loss(self.generator(fake_a), real_b)
        loss = self.adversarial_weight * adversarial + self.cycle_weight * cycle
        out = {"loss/G/adv": adversarial.detach(), "loss/G/cycle": cycle.detach()}
        if self.identity_weight > 0:
            identity = F.l1_loss(self.generator(real_b), real_b) + F.l1_loss(self.generator_ba(real_a), real_a)
            loss = loss + self.cycle_weight * self.identity_weight * identity
            out["loss/G/identity"] = identity.detach()
        self._fakes = (fake_b.detach(), fake_a.detach())
        out["loss"] = loss
        return out

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        real_a, real_b = self.inputs_of(batch), self.real_samples(batch)
        fakes, self._fakes = self._fakes, None
        if fakes is None:  # no generator step on this batch (n_critic > 1): make the fakes now
            with torch.no_grad():
                fakes = (self.generator(real_a), self.generator_ba(real_b))
        fake_b, fake_a = self.pool_b.query(fakes[0]), self.pool_a.query(fakes[1])
        real_b_logits, fake_b_logits = self.discriminator(real_b), self.discriminator(fake_b)
        real_a_logits, fake_a_logits = self.discriminator_a(real_a), self.discriminator_a(fake_a)
        loss_b = self.adversarial.d(real_b_logits, fake_b_logits)
        loss_a = self.adversarial.d(real_a_logits, fake_a_logits)
        return {"loss": loss_a + loss_b, "loss/D/A": loss_a.detach(), "loss/D/B": loss_b.detach(),
                "D/real": 0.5 * (real_a_logits.detach().mean() + real_b_logits.detach().mean()),
                "D/fake": 0.5 * (fake_a_logits.detach().mean() + fake_b_logits.detach().mean())}

    # ------------------------------------------------------------------------------------------- loop

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """The reference order: G step (both generators), then D step (both discriminators) on its fakes."""
        d_opt, g_opt = self.optimizers()
        batch_size = self.batch_size_of(batch) * self.trainer.world_size
        self.images_seen += batch_size  # before the EMA update, as in the base loop
        logs: dict[str, Any] = {}
        if self.discriminator_steps % self.n_critic == 0:
            with self.toggled_optimizer(g_opt):
                g_out = self.generator_loss(batch)
                self._optimize(g_opt, g_out["loss"])
            self.generator_steps += 1
            self._update_ema(batch_size)
            self._step_scheduler("G")
            logs.update({"loss/G": g_out["loss"].detach(), **{k: v for k, v in g_out.items() if k != "loss"}})
            if self.generator_ema is not None:
                logs["ema/beta"] = self._ema_beta
        reg_weight = float(self.reg_interval) if self.discriminator_steps % self.reg_interval == 0 else 0.0
        with self.toggled_optimizer(d_opt):
            d_out = self.discriminator_loss(batch, reg_weight)
            self._optimize(d_opt, d_out["loss"])
        self.after_discriminator_step()
        self.discriminator_steps += 1
        self._step_scheduler("D")
        logs.update({"loss/D": d_out["loss"].detach(), **{k: v for k, v in d_out.items() if k != "loss"}})
        return self._finish_step(logs, batch)

    def configure_optimizers(self) -> Any:
        """One optimizer over both discriminators (first) and one over both generators, as the reference."""
        players = {"D": itertools.chain(self.discriminator.parameters(), self.discriminator_a.parameters()),
                   "G": itertools.chain(self.generator.parameters(), self.generator_ba.parameters())}
        return self.build_optimizers(players)

    # ------------------------------------------------------------------- grids, validation, checkpoints

    def grid_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """A | G(A) | F(G(A)): the translation and its reconstruction."""
        fake_b = self.translate(batch)
        return [self.inputs_of(batch), fake_b, self.run_eval(self.generator_ba, fake_b)]

    def _evaluation_step(self, batch: dict[str, Tensor], batch_idx: int, prefix: str) -> None:
        real_a, real_b = self.inputs_of(batch), self.real_samples(batch)
        fake_b = self.translate(batch)
        rec_a = self.run_eval(self.generator_ba, fake_b)
        self.log_dict({f"{prefix}/cycle/l1": F.l1_loss(rec_a.float(), real_a.float()),
                       f"{prefix}/cycle/psnr": psnr(rec_a, real_a),
                       f"{prefix}/D/real": self.discriminator(real_b).float().mean(),
                       f"{prefix}/D/fake": self.discriminator(fake_b).float().mean()}, batch_size=len(real_a))

    def metric_pairs(self, batch: dict[str, Tensor], seed: int) -> dict[str, tuple[Tensor, Tensor]]:
        """Both directions for ``GenerativeMetrics``: ``""``: (G(A), B) and ``"B2A"``: (F(B), A)."""
        pairs = super().metric_pairs(batch, seed)
        with seeded(seed):
            fake_a = self.run_eval(self.generator_ba, self.real_samples(batch))
        pairs["B2A"] = (fake_a, self.inputs_of(batch))
        return pairs

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # load_generator(path, which="BtoA") rebuilds F: B→A from this entry (no EMA copy of it exists)
        checkpoint["gan"]["generators"] = {
            "AtoB": {},
            "BtoA": {"key": "generator_ba", "raw_key": "generator_ba", "spec": getattr(self.generator_ba, "init_spec", None),
                     "latent_dim": 0, "num_classes": 0, "sample_shape": list(self.input_shape)},
        }
        checkpoint["cyclegan"] = {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("cyclegan")
        if state is not None:
            self.pool_a.load_state_dict(state["pool_a"])
            self.pool_b.load_state_dict(state["pool_b"])
