"""Progressive GAN (Karras et al. 2018, "Progressive Growing of GANs for Improved Quality, Stability, and Variation").

Training starts at 4x4 and doubles the resolution up to the data's: each new resolution is faded in
(``alpha`` rising linearly from 0 to 1) over ``kimg_per_phase`` thousand real images, then trained
alone (stabilised) for as many; the 4x4 stage has only its stabilisation phase. ``(stage, alpha)`` is
a pure function of ``images_seen`` (:func:`progressive_schedule`), which the base class keeps in the
checkpoint, so a run resumed in the middle of a fade continues exactly. The schedule is applied in
one place, at the start of each discriminator step (:meth:`ProgressiveGAN.apply_schedule`), to the
generator, its EMA copy and the discriminator, and logged as ``progress/resolution`` and
``progress/alpha``.

Settings reproduced: WGAN-GP loss (λ = 10) with the drift term ``ε_drift · E[D(x)²]`` (ε = 0.001),
one critic step per generator step, Adam(lr 0.001, betas (0, 0.99), eps 1e-8), generator EMA 0.999,
the networks of :mod:`gan_modules.nets.progressive` (pixel norm, minibatch stddev, equalized LR),
real images faded between resolutions like the generator's output.

Optimizer reset (``reset_optimizers``, on by default as in the official ``train.py``'s
``reset_opt_for_new_lod``): both players' Adam state (moments and step counts) is cleared whenever a
phase starts, that is when the floor or the ceiling of the official level of detail changes: at the
start of each fade-in and at the start of each stabilisation. The phase is checkpointed, so a resumed
run resets where the uninterrupted one would.

Batch size per resolution (the official ``minibatch_dict``): ``batch_sizes`` maps a resolution to the
per-process batch size. The train loader is rebuilt at every epoch (``trainer.
reload_dataloaders_every_n_epochs: 1``, checked when fit starts) and each epoch takes the smallest
size of the stages it can reach, from ``images_seen`` at its start to the end of the epoch: a
resolution never runs at a larger batch than its own, at the cost of switching up to one epoch early.
(The official loop re-picks the minibatch size every ``minibatch_repeats`` = 4 minibatches, so it
switches at the phase boundary.) Every epoch has as many batches as one at the datamodule's ``batch_size`` (``GANDataModule``: a
smaller batch draws fewer images an epoch), which keeps Lightning's epoch bookkeeping, and resuming
from a checkpoint taken on an epoch's last batch, consistent. The epoch's size is kept in the
checkpoint, so a run resumed mid-epoch rebuilds the same loader.

The networks hold every resolution's layers from the start (the optimizers are built once and never
change shape); layers not yet in use get no gradient, which torch's Adam skips. Under ``strategy:
ddp`` (``GANDDPStrategy``) those layers are left out of the gradient all-reduce on every rank alike;
plain DDP would need ``ddp_find_unused_parameters_true`` for them.

The gradient penalty is taken with respect to the full-size (nearest-upsampled) images, as in the
official code, so its scale changes with the stage (see docs/families.md).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from gan_modules.base import GANModule
from gan_modules.losses import wasserstein_d, wasserstein_g
from gan_modules.nets.progressive import progressive_images
from gan_modules.regularizers import drift_penalty, gradient_penalty


def progressive_schedule(images_seen: int, kimg_per_phase: float, num_stages: int) -> tuple[int, float]:
    """The stage and fade-in ``alpha`` after ``images_seen`` real images: a pure function.

    Phases of ``kimg_per_phase`` thousand images: stage 0 (4x4) stabilises for one phase; each later
    stage ``s`` fades in over one phase (``alpha`` linear from 0 to 1) and stabilises for one
    (``alpha = 1``); the last stage then trains on with ``alpha = 1``.

    Args:
        images_seen: real images shown to the discriminator so far.
        kimg_per_phase: thousands of images per fade-in and per stabilisation phase.
        num_stages: stages of the networks (``log2(H) - 1``: 4 for 32 px).

    Returns:
        ``(stage, alpha)``: the resolution is ``4 * 2**stage``; ``alpha`` in ``[0, 1]``.
    """
    if kimg_per_phase <= 0 or num_stages < 1:
        raise ValueError(f"kimg_per_phase must be > 0 and num_stages >= 1, got {kimg_per_phase}, {num_stages}")
    phase = images_seen / (kimg_per_phase * 1000.0)
    if phase < 1.0:
        return 0, 1.0
    stage = 1 + int((phase - 1.0) // 2)
    if stage >= num_stages:
        return num_stages - 1, 1.0
    return stage, min(phase - 1.0 - 2 * (stage - 1), 1.0)


class ProgressiveGAN(GANModule):
    """Progressive growing with the WGAN-GP + drift loss.

    Args:
        generator: a :class:`gan_modules.nets.ProgressiveGenerator` (anything with ``set_progress`` and
            ``num_stages``); maps ``z`` to full-size images at every stage.
        discriminator: a :class:`gan_modules.nets.ProgressiveDiscriminator` with the same ``num_stages``.
        kimg_per_phase: thousands of real images per fade-in phase and per stabilisation phase
            (600 in the official CelebA-HQ config, 800 in the paper's text).
        gp_weight: λ of the gradient penalty (10).
        gp_target: the gradient norm the penalty pulls towards (1; the paper's CIFAR-10 runs used 750).
        drift_weight: ε of the drift term ``ε · E[D(real)²]`` (0.001).
        batch_sizes: per-process batch size by resolution, e.g. ``{4: 128, 8: 128, 16: 128, 32: 64,
            64: 32, 128: 16}`` (the official 1-GPU ``minibatch_dict``); a resolution left out uses the
            datamodule's ``batch_size``, one above the networks' is ignored. None: the datamodule's size
            throughout.
        reset_optimizers: clear both optimizers' state when a fade-in or a stabilisation phase starts
            (the official ``reset_opt_for_new_lod = True``).
        g_optimizer: optimizer factory for G; default Adam(0.001, betas (0, 0.99), eps 1e-8).
        d_optimizer: optimizer factory for D; same default.
        Other arguments: see :class:`gan_modules.base.GANModule`.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, kimg_per_phase: float = 600.0,
                 gp_weight: float = 10.0, gp_target: float = 1.0, drift_weight: float = 0.001,
                 batch_sizes: dict[int, int] | None = None, reset_optimizers: bool = True,
                 g_optimizer: OptimizerCallable | None = None,
                 d_optimizer: OptimizerCallable | None = None, ema_decay: float | None = 0.999,
                 **kwargs: Any) -> None:
        for net, role in ((generator, "generator"), (discriminator, "discriminator")):
            if not hasattr(net, "set_progress") or not hasattr(net, "num_stages"):
                raise TypeError(f"ProgressiveGAN needs a progressive {role} (with set_progress and num_stages), "
                                f"got {type(net).__name__}")
        if generator.num_stages != discriminator.num_stages:
            raise ValueError(f"generator has {generator.num_stages} stages, discriminator {discriminator.num_stages}")
        if kimg_per_phase <= 0 or gp_weight < 0 or drift_weight < 0 or gp_target <= 0:
            raise ValueError("kimg_per_phase and gp_target must be > 0, gp_weight and drift_weight >= 0")
        super().__init__(generator, discriminator, g_optimizer=g_optimizer or _adam, d_optimizer=d_optimizer or _adam,
                         ema_decay=ema_decay, **kwargs)
        self.kimg_per_phase, self.num_stages = float(kimg_per_phase), int(generator.num_stages)
        self.gp_weight, self.gp_target, self.drift_weight = gp_weight, gp_target, drift_weight
        # a dict written for a larger run (up to 1024 px, say) is fine: entries above this run's size go unused
        self.batch_sizes = {int(r): int(b) for r, b in (batch_sizes or {}).items()}
        for resolution, size in self.batch_sizes.items():
            if resolution < 4 or resolution & (resolution - 1) or size < 1:
                raise ValueError(f"batch_sizes: {resolution}: {size} must map a resolution 4, 8, 16, ... to a "
                                 "batch size >= 1")
        self._epoch_batch_size: tuple[int, int] | None = None  # (epoch, per-process batch size) of the loader
        self.stage, self.alpha = 0, 1.0
        self.reset_optimizers = reset_optimizers
        self._phase: tuple[int, bool] | None = None  # (stage, fading) of the last step: a change starts a phase
        # A new model starts at 4x4. A checkpoint restores the networks' own progress (their extra state),
        # which the next discriminator step recomputes from images_seen anyway.
        self.apply_schedule()

    def apply_schedule(self) -> dict[str, Tensor]:
        """Sets ``(stage, alpha)`` from ``images_seen`` on G, its EMA and D; returns the values to log.

        The one place the schedule touches the networks, called at the start of every discriminator
        step (the generator step of the same batch uses the same progress).
        """
        self.stage, self.alpha = progressive_schedule(self.images_seen, self.kimg_per_phase, self.num_stages)
        phase = (self.stage, self.alpha < 1.0)
        if self.reset_optimizers and self._phase is not None and phase != self._phase and self._trainer is not None:
            for optimizer in self.trainer.optimizers:
                optimizer.state.clear()  # Adam's moments and step counts; the param groups (lr, betas) stay
        self._phase = phase
        for net in (self.generator, self.generator_ema, self.discriminator):
            if net is not None:
                net.set_progress(self.stage, self.alpha)
        return {"progress/resolution": torch.tensor(float(4 << self.stage)),
                "progress/alpha": torch.tensor(self.alpha)}

    def train_batch_size(self, default: int, epoch: int, batches: int) -> int:
        """The per-process batch size of epoch ``epoch``'s train loader of ``batches`` batches per
        process (called by the datamodule when it builds the loader).

        The smallest ``batch_sizes`` entry of the stages from ``images_seen`` to the epoch's end (at
        most ``batches * world_size`` batches of the current stage's size later); the answer for an
        epoch is remembered (and checkpointed), so the loader rebuilt by a resumed run has the size the
        epoch started with.
        """
        if not self.batch_sizes:
            return default
        if self._epoch_batch_size is not None and self._epoch_batch_size[0] == epoch:
            return self._epoch_batch_size[1]
        world = self.trainer.world_size if self._trainer is not None else 1
        first = progressive_schedule(self.images_seen, self.kimg_per_phase, self.num_stages)[0]
        reach = self.images_seen + batches * world * self.batch_sizes.get(4 << first, default)
        last = progressive_schedule(reach, self.kimg_per_phase, self.num_stages)[0]
        size = min(self.batch_sizes.get(4 << stage, default) for stage in range(first, last + 1))
        self._epoch_batch_size = (epoch, size)
        return size

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if not self.batch_sizes:
            return
        if self.trainer.reload_dataloaders_every_n_epochs != 1:
            raise ValueError("ProgressiveGAN batch_sizes needs the train loader rebuilt every epoch: set "
                             "trainer.reload_dataloaders_every_n_epochs: 1 (it is "
                             f"{self.trainer.reload_dataloaders_every_n_epochs})")
        if not hasattr(self.trainer.datamodule, "train_batch_size"):
            raise ValueError("ProgressiveGAN batch_sizes needs a GANDataModule (which asks the model for the "
                             "batch size of each epoch), not plain dataloaders")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan"]["epoch_batch_size"] = list(self._epoch_batch_size) if self._epoch_batch_size else None
        checkpoint["gan"]["phase"] = list(self._phase) if self._phase else None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint["gan"].get("epoch_batch_size")
        self._epoch_batch_size = (int(saved[0]), int(saved[1])) if saved else None
        phase = checkpoint["gan"].get("phase")
        self._phase = (int(phase[0]), bool(phase[1])) if phase else None

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        progress = self.apply_schedule()
        real = progressive_images(self.real_samples(batch), self.stage, self.alpha)
        with torch.no_grad():
            fake = self.generate(self.latents(len(real)))
        real_logits, fake_logits = self.discriminate(real), self.discriminate(fake)
        self.observe_real_logits(real_logits)
        loss = wasserstein_d(real_logits, fake_logits)
        out = {"D/real": real_logits.detach().mean(), "D/fake": fake_logits.detach().mean(), **progress}
        if self.drift_weight > 0:
            drift = drift_penalty(real_logits)
            loss = loss + self.drift_weight * drift
            out["loss/D/drift"] = drift.detach()
        if self.gp_weight > 0 and reg_weight > 0:
            # ((|grad| - t) / t)^2 is the official code's form of a penalty towards norm t (equal to the
            # paper's penalty for t = 1)
            scale = 1.0 / self.gp_target
            penalty = gradient_penalty(lambda x: self.discriminate(x) * scale, real, fake, scale=self.penalty_scale())
            loss = loss + self.gp_weight * reg_weight * penalty
            out["loss/D/gp"] = penalty.detach()
        out["loss"] = loss
        return out

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        fake = self.generate(self.latents(self.batch_size_of(batch)))
        return {"loss": wasserstein_g(self.discriminate(fake))}


def _adam(params: object) -> torch.optim.Optimizer:
    """The paper's optimizer: Adam(lr 0.001, betas (0, 0.99), eps 1e-8)."""
    return torch.optim.Adam(params, lr=0.001, betas=(0.0, 0.99), eps=1e-8)

