"""R3GAN (Huang et al. 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline", NeurIPS 2024).

The objective is the relativistic pairing loss (RpGAN) with both zero-centred gradient penalties,
``L_D = E softplus(D(fake) - D(real)) + γ/2 (E‖∇D(real)‖² + E‖∇D(fake)‖²)`` and
``L_G = E softplus(D(real) - D(fake))``, on the networks of :mod:`gan_modules.nets.r3gan`.

Four hyperparameters follow schedules that are pure functions of the real images seen
(:func:`r3gan_schedule`, as the official ``cosine_decay_with_warmup``): over ``decay_kimg`` thousand
images they move from their start to their final value along a half cosine (or a line), then stay
at the final value:

* ``γ`` of R1 and R2 (CIFAR-10: 0.05 -> 0.005);
* the learning rate of both players (2e-4 -> 5e-5);
* Adam's β2 of both players (0.9 -> 0.99; β1 is 0);
* the EMA half-life of the generator in thousands of images (0 -> 5000; no ramp-up).

They are applied in one place, at the start of every discriminator step (:meth:`R3GAN.apply_schedule`
writes ``lr`` and ``betas`` into both optimizers' param groups, ``γ`` and the EMA half-life into the
module, which the base class's EMA update reads), and logged as ``schedule/gamma``, ``schedule/lr``,
``schedule/beta2`` and ``schedule/ema_kimg``. The generator step of the same batch uses the same values.

Real batches: the official ``training/training_loop.py`` fetches one real batch for the discriminator
phase and a fresh one for the generator phase of every iteration (counting only the first in
``cur_nimg``). ``fresh_generator_reals: true`` does the same: the train loader then yields batches of
twice the datamodule's size, the discriminator step takes the first half and the generator step the
second, and ``images_seen`` counts the first half. Off, the generator step reuses the discriminator's
batch. The full-size presets stop at ``max_kimg`` and state the total batch (``data.total_batch_size``),
so a run covers the same images on any number of devices.

Class-conditional training (the official ``--cond=1``): with a
:class:`~gan_modules.nets.ConditionalR3GANGenerator` and a
:class:`~gan_modules.nets.ConditionalR3GANDiscriminator` (``configs/r3gan_cond_digits.yaml``) the
batch's labels go to both networks in both steps and in R1 and R2 (:class:`~gan_modules.gan.GAN`'s
loop passes them), generated images follow the data's class prior, and grids, ``sample``,
``predict``, metrics and ``load_generator`` take labels as in :mod:`gan_modules.conditional`.

Not reproduced: the paper's non-leaking augmentation (with its probability schedule) and mixed precision.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from gan_modules.conditional import _check_conditional
from gan_modules.gan import GAN

DECAY_SHAPES = ("cosine", "linear")


def _decay(images_seen: float, start: float, final: float, total_images: float, shape: str) -> float:
    """``start`` moving to ``final`` over ``total_images`` along a half cosine or a line, then ``final``."""
    if total_images <= 0 or images_seen >= total_images:
        return float(final)
    t = images_seen / total_images
    progress = 0.5 * (1.0 - math.cos(math.pi * t)) if shape == "cosine" else t
    return float(start + progress * (final - start))


def r3gan_schedule(
    images_seen: int,
    decay_kimg: float = 20000.0,
    gamma: tuple[float, float] = (0.05, 0.005),
    lr: tuple[float, float] = (2e-4, 5e-5),
    beta2: tuple[float, float] = (0.9, 0.99),
    ema_kimg: tuple[float, float] = (0.0, 5000.0),
    shape: str = "cosine",
) -> dict[str, float]:
    """R3GAN's hyperparameters after ``images_seen`` real images: a pure function.

    Args:
        images_seen: real images shown to the discriminator so far.
        decay_kimg: thousands of images over which every value moves from start to final (20000 in the
            paper's configs); afterwards the final values hold.
        gamma: ``(start, final)`` γ of the R1 and R2 penalties.
        lr: ``(start, final)`` learning rate of both optimizers.
        beta2: ``(start, final)`` Adam β2 of both optimizers.
        ema_kimg: ``(start, final)`` generator-EMA half-life in thousands of images.
        shape: ``"cosine"`` (the paper: ``start + (1 - cos(π t)) / 2 · (final - start)``) or ``"linear"``.

    Returns:
        ``{"gamma", "lr", "beta2", "ema_kimg"}`` as floats.
    """
    if shape not in DECAY_SHAPES:
        raise ValueError(f"unknown schedule shape '{shape}'; valid: {', '.join(DECAY_SHAPES)}")
    total = decay_kimg * 1000.0
    values = {"gamma": gamma, "lr": lr, "beta2": beta2, "ema_kimg": ema_kimg}
    return {key: _decay(images_seen, start, final, total, shape) for key, (start, final) in values.items()}


class R3GAN(GAN):
    """:class:`~gan_modules.gan.GAN` with ``loss: rpgan`` and R1 + R2 at one γ, plus R3GAN's schedules of γ,
    learning rate, Adam β2 and EMA half-life.

    Args:
        generator: ``z [N, latent_dim] -> [N, *sample_shape]`` (:class:`gan_modules.nets.R3GANGenerator`).
        discriminator: ``[N, *sample_shape] -> logits [N]`` (:class:`gan_modules.nets.R3GANDiscriminator`).
        gamma, gamma_final: γ of R1 and R2 (applied as ``γ/2 · penalty``) at the start and the end of
            the decay (CIFAR-10: 0.05, 0.005; FFHQ-256: 150, 15).
        lr, lr_final: learning rate of both optimizers (2e-4, 5e-5).
        beta2, beta2_final: Adam β2 of both optimizers (0.9, 0.99).
        ema_kimg, ema_kimg_final: generator-EMA half-life in thousands of images (0, then 5000 for
            CIFAR-10, 500 for FFHQ).
        decay_kimg: thousands of images over which the four schedules run (20000).
        decay_shape: ``"cosine"`` (the paper) or ``"linear"``.
        fresh_generator_reals: the generator step sees its own real batch, not the discriminator's (the
            official loop); needs a :class:`~datamodules.base.GANDataModule`, which is asked for batches
            of twice its size.
        g_optimizer: optimizer factory for G; default Adam(betas (0, beta2), eps 1e-8). Its ``lr`` and
            β2 are overwritten every step by the schedule (β1 is kept).
        d_optimizer: optimizer factory for D; same default.
        Other arguments: see :class:`gan_modules.base.GANModule`. The loss, the penalties, the LR
        schedulers and the EMA are fixed here: the schedules above own the learning rate, γ and the
        EMA half-life.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, gamma: float = 0.05,
                 gamma_final: float = 0.005, lr: float = 2e-4, lr_final: float = 5e-5, beta2: float = 0.9,
                 beta2_final: float = 0.99, ema_kimg: float = 0.0, ema_kimg_final: float = 5000.0,
                 decay_kimg: float = 20000.0, decay_shape: str = "cosine", fresh_generator_reals: bool = False,
                 g_optimizer: OptimizerCallable | None = None, d_optimizer: OptimizerCallable | None = None,
                 **kwargs: Any) -> None:
        if decay_shape not in DECAY_SHAPES:
            raise ValueError(f"unknown decay_shape '{decay_shape}'; valid: {', '.join(DECAY_SHAPES)}")
        if min(gamma, gamma_final, ema_kimg, ema_kimg_final) < 0 or min(lr, lr_final) <= 0:
            raise ValueError("gamma and ema_kimg values must be >= 0, lr values > 0")
        if not (0 <= beta2 < 1 and 0 <= beta2_final < 1) or decay_kimg < 0:
            raise ValueError("beta2 values must be in [0, 1) and decay_kimg >= 0")
        if getattr(generator, "num_classes", 0) or getattr(discriminator, "num_classes", 0):
            _check_conditional(type(self).__name__, generator, discriminator)  # both take labels, or neither
        adam = partial(torch.optim.Adam, lr=lr, betas=(0.0, beta2), eps=1e-8)
        super().__init__(
            generator, discriminator, loss="rpgan", gp_weight=0.0, r1_gamma=gamma, r2_gamma=gamma, clip_value=None,
            g_optimizer=g_optimizer or adam, d_optimizer=d_optimizer or adam, g_scheduler=None, d_scheduler=None,
            scheduler_interval="step",
            # A half-life (not None) makes the base keep an EMA generator; the schedule sets it every step.
            ema_decay=None, ema_half_life_kimg=ema_kimg, ema_rampup=None, **kwargs,
        )
        self.schedule_args = {"decay_kimg": decay_kimg, "gamma": (gamma, gamma_final), "lr": (lr, lr_final),
                              "beta2": (beta2, beta2_final), "ema_kimg": (ema_kimg, ema_kimg_final),
                              "shape": decay_shape}
        self.gamma = gamma
        self.fresh_generator_reals = fresh_generator_reals

    def apply_schedule(self) -> dict[str, Tensor]:
        """Sets γ, both optimizers' lr and β2, and the EMA half-life from ``images_seen``; returns the log values.

        The one place the schedule is applied, at the start of every discriminator step.
        """
        values = r3gan_schedule(self.images_seen, **self.schedule_args)
        self.gamma = self.r1_gamma = self.r2_gamma = values["gamma"]  # GAN.discriminator_loss reads r1/r2_gamma
        self.ema_half_life_kimg = values["ema_kimg"]  # read by GANModule._update_ema after the G step
        optimizers = self.trainer.optimizers if self._trainer is not None else []
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = values["lr"]
                group["betas"] = (group["betas"][0], values["beta2"])
        return {f"schedule/{key}": torch.tensor(value) for key, value in values.items()}

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        logs = self.apply_schedule()
        return {**super().discriminator_loss(self._half(batch, 0), reg_weight), **logs}

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return super().generator_loss(self._half(batch, 1))

    def _half(self, batch: dict[str, Tensor], which: int) -> dict[str, Tensor]:
        """The discriminator's (0) or the generator's (1) half of a double batch; the batch itself when
        ``fresh_generator_reals`` is off."""
        if not self.fresh_generator_reals:
            return batch
        n = self.batch_size_of(batch)
        return {key: value[which * n:(which + 1) * n] for key, value in batch.items()}

    def batch_size_of(self, batch: dict[str, Tensor]) -> int:
        """The real images the discriminator step sees (half the loader's batch with fresh generator reals)."""
        size = super().batch_size_of(batch)
        return size // 2 if self.fresh_generator_reals else size

    def train_batch_size(self, default: int, epoch: int, batches: int) -> int:
        """Asked by the datamodule for the loader's per-process batch: twice ``default`` with fresh
        generator reals (one half for each player), else ``default``."""
        return 2 * default if self.fresh_generator_reals else default

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.fresh_generator_reals and not hasattr(self.trainer.datamodule, "train_batch_size"):
            raise ValueError("R3GAN fresh_generator_reals needs a GANDataModule (asked for double batches), "
                             "not plain dataloaders; set fresh_generator_reals: false")
