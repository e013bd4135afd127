"""GANModule: the manual-optimization loop every GAN family reuses.

A family subclasses :class:`GANModule` and supplies two methods returning dicts of named tensors:
``discriminator_loss(batch, reg_weight)`` and ``generator_loss(batch)`` (the total under ``"loss"``,
other keys are full log names such as ``"loss/D/gp"`` or ``"D/real"``). This class owns the rest:
toggled optimizers, ``n_critic``, lazy regularization, gradient clipping, the generator EMA, the
``generator_steps`` / ``discriminator_steps`` / ``images_seen`` counters, LR schedulers, RNG state in
checkpoints, logging, validation, sampling and prediction. A family's constructor lists only what it
adds or whose default it changes and forwards the rest with ``**kwargs`` (docs/adding_a_family.md).

Counters: Lightning's ``trainer.global_step`` counts every ``optimizer.step()``, the discriminator's
and the generator's. With ``n_critic = 1`` each batch is two steps, so ``--trainer.max_steps 1000``
trains 500 batches; ``max_generator_steps`` counts generator steps alone and is what schedules and
callbacks here use.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn

from gan_modules.augment import AUGMENTS
from gan_modules.discriminator_augment import DiscriminatorAugment
from gan_modules.latent_prior import check_latent_distribution, draw_latents
from gan_modules.lazy_regularization import check_lazy_mode, scale_for_lazy_steps
from gan_modules.mixed_precision import amp_logs, grad_scaler, step_counting_skips
from gan_modules.strategy import GANDDPStrategy
from gan_modules.training_state import ema_beta, restore_rng, rng_state, update_ema

__all__ = ["GANModule", "ema_beta"]


class GANModule(L.LightningModule):
    """The alternating discriminator/generator loop with manual optimization.

    ``augment_supported`` (a class attribute) is False in families whose discriminator calls do not go
    through :meth:`discriminate` and the base training step (translation, text-to-image, unrolled).

    Args:
        generator: maps ``z [N, latent_dim]`` (and labels when ``num_classes > 0``) to samples
            ``[N, *sample_shape]``; must expose ``latent_dim``, ``sample_shape`` and ``num_classes``.
        discriminator: maps samples to logits (``[N]`` or a patch map).
        g_optimizer: optimizer factory for the generator; default Adam(2e-4, betas (0.5, 0.999)).
        d_optimizer: optimizer factory for the discriminator; same default.
        g_scheduler: optional LR scheduler factory for the generator's optimizer.
        d_scheduler: optional LR scheduler factory for the discriminator's optimizer.
        scheduler_interval: ``"step"`` steps the G scheduler every generator step and the D scheduler
            every discriminator step; ``"epoch"`` steps both at the end of each epoch.
        n_critic: discriminator steps (batches) per generator step.
        reg_interval: lazy regularization: penalties run every ``reg_interval``-th discriminator step,
            scaled by ``reg_interval`` (StyleGAN2); 1 means every step.
        lazy_regularization: how a lazy penalty is applied (:mod:`gan_modules.lazy_regularization`):
            ``"added"`` adds the scaled penalty to that step's loss (one optimizer step); ``"separate"``
            is stylegan2-ada's scheme: the penalty is its own optimizer step on the same optimizer after
            the regular one, and each lazily regularized player's Adam runs at ``lr * r`` and
            ``betas ** r`` with ``r = interval / (interval + 1)``. ``"separate"`` needs a family with
            ``discriminator_regularization`` (and ``generator_regularization`` for a generator penalty).
        ema_decay: constant generator-EMA decay per generator step (e.g. 0.999); None for no EMA.
        ema_half_life_kimg: EMA half-life in thousands of images (overrides ``ema_decay``).
        ema_rampup: caps the half-life at ``ema_rampup * images_seen`` (stylegan2-ada uses 0.05).
        max_generator_steps: stop training after this many generator steps.
        max_kimg: stop training once ``images_seen`` (real images shown to D, all processes together)
            reaches this many thousands, whatever the number of devices (the official loops' ``total_kimg``).
        gradient_clip_val: clip each player's gradients to this norm (or value) before its step.
        gradient_clip_algorithm: ``"norm"`` or ``"value"``.
        num_fixed_samples: size of the fixed latent batch used for sample grids (kept in checkpoints).
        sample_seed: seed of the fixed latent batch and of ``predict``'s per-index latents.
        compile: compile the generator and the discriminator with ``torch.compile`` when fit starts
            (``nn.Module.compile``: checkpoints keep their keys). Discriminator steps that regularize
            (GP, R1, R2: double backward, which compiled graphs do not support) run it eagerly.
        compile_backend: the ``torch.compile`` backend (``"inductor"``; ``"aot_eager"`` skips code generation).
        latent_distribution: the prior of ``z``: ``"normal"`` (``N(0, I)``) or ``"uniform"`` (``U[-1, 1]``,
            DCGAN's); used for training, ``sample``, ``predict``, the fixed grid batch, the metrics, and
            recorded in checkpoints for ``load_generator`` (:mod:`gan_modules.latent_prior`).
        augment: augmentation of every image the discriminator sees in training (reals and fakes, in
            the D and the G step, differentiably; penalties such as R1 are taken through it, as in
            stylegan2-ada): ``"none"``, ``"diffaugment"`` or ``"ada"``
            (:mod:`gan_modules.discriminator_augment`). Validation sees unaugmented images.
        augment_policy: DiffAugment's operations, comma-separated, from ``color,translation,cutout``.
        ada_target: ADA's target for ``r_t = E[sign(D(real))]``; ``p`` rises while ``r_t`` is above it.
        ada_interval: discriminator steps between two adjustments of ADA's ``p``.
        ada_kimg: thousands of images over which ``p`` can move by 1 (stylegan2-ada uses 500 for long
            runs; 100 lets it react within a short one).
    """

    augment_supported = True

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        g_optimizer: OptimizerCallable | None = None,
        d_optimizer: OptimizerCallable | None = None,
        g_scheduler: LRSchedulerCallable | None = None,
        d_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: str = "step",
        n_critic: int = 1,
        reg_interval: int = 1,
        lazy_regularization: str = "added",
        ema_decay: float | None = None,
        ema_half_life_kimg: float | None = None,
        ema_rampup: float | None = None,
        max_generator_steps: int | None = None,
        max_kimg: float | None = None,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        num_fixed_samples: int = 64,
        sample_seed: int = 0,
        compile: bool = False,
        compile_backend: str = "inductor",
        latent_distribution: str = "normal",
        augment: str = "none",
        augment_policy: str = "color,translation,cutout",
        ada_target: float = 0.6,
        ada_interval: int = 4,
        ada_kimg: float = 100.0,
    ) -> None:
        super().__init__()
        for name in ("latent_dim", "sample_shape"):
            if not hasattr(generator, name):
                raise TypeError(f"generator {type(generator).__name__} has no '{name}' attribute; "
                                "subclass gan_modules.nets.Network or set it")
        if n_critic < 1 or reg_interval < 1:
            raise ValueError(f"n_critic and reg_interval must be >= 1, got {n_critic} and {reg_interval}")
        check_lazy_mode(lazy_regularization)
        if (lazy_regularization == "separate" and reg_interval > 1
                and type(self).discriminator_regularization is GANModule.discriminator_regularization):
            raise ValueError(f"lazy_regularization: separate needs {type(self).__name__} to supply "
                             "discriminator_regularization (StyleGAN does); use lazy_regularization: added")
        if max_kimg is not None and max_kimg <= 0:
            raise ValueError(f"max_kimg must be > 0, got {max_kimg}")
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got '{scheduler_interval}'")
        if gradient_clip_algorithm not in ("norm", "value"):
            raise ValueError(f"gradient_clip_algorithm must be 'norm' or 'value', got '{gradient_clip_algorithm}'")
        if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.latent_distribution = check_latent_distribution(latent_distribution)
        if augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got '{augment}'")
        if augment != "none" and not self.augment_supported:
            raise ValueError(f"augment: {type(self).__name__} does not augment its discriminator's inputs (the "
                             "noise-to-image families with the base training step do); use augment: none")
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["generator", "discriminator", "g_optimizer", "d_optimizer",
                                          "g_scheduler", "d_scheduler"])
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema: nn.Module | None = None
        self._ema_beta = 0.0
        if ema_decay is not None or ema_half_life_kimg is not None:
            # Left in train mode (sample() switches to eval) so Lightning does not warn about eval modules.
            self.generator_ema = copy.deepcopy(generator).requires_grad_(False)
        self._optimizer_factories = {"G": g_optimizer, "D": d_optimizer}
        self._scheduler_factories = {"G": g_scheduler, "D": d_scheduler}
        self.scheduler_interval = scheduler_interval
        self.n_critic = n_critic
        self.reg_interval = reg_interval
        self.lazy_regularization = lazy_regularization
        self.ema_decay, self.ema_half_life_kimg, self.ema_rampup = ema_decay, ema_half_life_kimg, ema_rampup
        self.max_generator_steps, self.max_kimg = max_generator_steps, max_kimg
        self.gradient_clip_val, self.gradient_clip_algorithm = gradient_clip_val, gradient_clip_algorithm
        self.sample_seed = sample_seed
        self.compile_networks, self.compile_backend = compile, compile_backend
        self.latent_dim = int(generator.latent_dim)
        self.num_classes = int(getattr(generator, "num_classes", 0))
        self.sample_shape = tuple(generator.sample_shape)
        seeded = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("fixed_latents", draw_latents((num_fixed_samples, self.latent_dim), latent_distribution,
                                                           generator=seeded))
        labels = torch.arange(num_fixed_samples) % self.num_classes if self.num_classes else torch.zeros(0)
        self.register_buffer("fixed_labels", labels.long())
        self.generator_steps = 0
        self.discriminator_steps = 0
        self.images_seen = 0
        self._pending_rng_state: dict[str, Any] | None = None
        self._pending_rng_per_rank: list[dict[str, Any]] | None = None
        # Steps the 16-mixed gradient scaler skipped (inf/NaN gradients), per optimizer; device tensors,
        # so counting costs no synchronisation.
        self._amp_skipped: dict[int, Tensor] = {}
        self.augment = augment
        self.augmenter: DiscriminatorAugment | None = None
        if augment != "none":
            # the draws' base seed comes from the global RNG (seeded by seed_everything) and is kept in
            # the augmenter's buffers, so a resumed run continues with the seed it started with
            self.augmenter = DiscriminatorAugment(augment, augment_policy, ada_target, ada_interval, ada_kimg,
                                                  seed=int(torch.randint(0, 2**62, ())))

    # ----------------------------------------------------------------------------------------------
    # Hooks a family supplies (the noise-to-image defaults serve GAN, cGAN, ACGAN, ...)

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        """The discriminator's loss on one batch; ``reg_weight`` is 0 on steps without penalties."""
        raise NotImplementedError

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The generator's loss on one batch."""
        raise NotImplementedError

    def after_discriminator_step(self) -> None:
        """Called after each discriminator optimizer step (weight clipping goes here)."""

    def batch_size_of(self, batch: dict[str, Tensor]) -> int:
        return int(batch["image"].shape[0])

    def real_samples(self, batch: dict[str, Tensor]) -> Tensor:
        """The real samples of a batch, shape-checked against the generator's ``sample_shape``."""
        real = batch["image"]
        if tuple(real.shape[1:]) != self.sample_shape:
            raise ValueError(f"data gives samples of shape {tuple(real.shape[1:])} but the generator makes "
                             f"{self.sample_shape}; link or set the network's sample_shape to the data's")
        return real

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``z`` from the prior (``latent_distribution``) of shape ``[n, latent_dim]`` on the module's device."""
        if generator is not None and generator.device != self.device:
            return draw_latents((n, self.latent_dim), self.latent_distribution, generator).to(self.device)
        return draw_latents((n, self.latent_dim), self.latent_distribution, generator, device=self.device)

    def generate(self, z: Tensor, labels: Tensor | None = None, net: nn.Module | None = None) -> Tensor:
        """Runs a generator (the training one by default) on latents (and labels when conditional)."""
        net = self.generator if net is None else net
        return net(z, labels) if self.num_classes else net(z)

    def discriminate(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """D's logits on ``x`` (augmented first in training when ``augment`` is set)."""
        x = self.augment_images(x)
        return self.discriminator(x, labels) if self.num_classes else self.discriminator(x)

    def augment_images(self, x: Tensor) -> Tensor:
        """``x [N, C, H, W]`` augmented for the discriminator (``augment``); unchanged outside training.

        A family that runs its discriminator without :meth:`discriminate` calls this on its inputs. The
        draws depend on the step counters and on this rank's block of the global batch, so resume is
        exact and 2 processes augment as one does.
        """
        if self.augmenter is None or not self.training:
            return x
        block = (self.trainer.global_rank, self.trainer.world_size) if self._trainer is not None else (0, 1)
        return self.augmenter(x, (self.discriminator_steps, self.generator_steps), block)

    def observe_real_logits(self, real_logits: Tensor) -> None:
        """Reports D's logits on the reals of a discriminator step (ADA's overfitting heuristic reads their
        signs); every family's ``discriminator_loss`` calls it."""
        if self.augmenter is not None and self.training:
            self.augmenter.observe(real_logits)

    def _adjust_augment(self) -> dict[str, Tensor]:
        if self.augmenter is None:
            return {}
        reduce = None
        if self._trainer is not None and self.trainer.world_size > 1 and torch.distributed.is_initialized():
            def reduce(t: Tensor) -> Tensor:
                t = t.clone()
                torch.distributed.all_reduce(t)
                return t
        return self.augmenter.adjust(self.discriminator_steps, reduce, type(self).__name__)

    # ----------------------------------------------------------------------------------------------
    # The loop

    def discriminator_regularization(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor] | None:
        """With ``lazy_regularization: separate``: the discriminator's penalty alone, times ``reg_weight``
        (the interval), for its own optimizer step; None when the family has no penalty to apply."""
        raise NotImplementedError(f"{type(self).__name__} does not supply discriminator_regularization, which "
                                  "lazy_regularization: separate needs; use lazy_regularization: added")

    def generator_regularization(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor] | None:
        """With ``lazy_regularization: separate``: the generator's penalty alone, times ``reg_weight``;
        None when there is none (then no extra step is taken)."""
        return None

    def generator_reg_interval(self) -> int | None:
        """The generator's lazy-regularization interval in generator steps (None: no generator penalty).

        Under ``lazy_regularization: separate`` it sets the generator's Adam correction and when
        :meth:`generator_regularization` runs.
        """
        return None

    def _separate(self) -> bool:
        return self.lazy_regularization == "separate"

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        d_opt, g_opt = self.optimizers()
        reg_now = self.discriminator_steps % self.reg_interval == 0
        separate_d = self._separate() and self.reg_interval > 1
        reg_weight = float(self.reg_interval) if reg_now and not separate_d else 0.0
        with self.toggled_optimizer(d_opt), self._eager_if(self.compile_networks and reg_weight > 0):
            d_out = self.discriminator_loss(batch, reg_weight)
            self._optimize(d_opt, d_out["loss"])
        logs = {"loss/D": d_out["loss"].detach(), **{k: v.detach() for k, v in d_out.items() if k != "loss"}}
        if separate_d and reg_now:
            logs.update(self._regularization_step(d_opt, self.discriminator_regularization, batch, self.reg_interval))
        self.after_discriminator_step()
        self.discriminator_steps += 1
        logs.update(self._adjust_augment())
        self._step_scheduler("D")
        batch_size = self.batch_size_of(batch) * self.trainer.world_size
        self.images_seen += batch_size
        if self.discriminator_steps % self.n_critic == 0:
            with self.toggled_optimizer(g_opt):
                g_out = self.generator_loss(batch)
                self._optimize(g_opt, g_out["loss"])
            logs.update({"loss/G": g_out["loss"].detach(), **{k: v.detach() for k, v in g_out.items() if k != "loss"}})
            g_interval = self.generator_reg_interval() if self._separate() else None
            if g_interval is not None and self.generator_steps % g_interval == 0:
                logs.update(self._regularization_step(g_opt, self.generator_regularization, batch, g_interval))
            self.generator_steps += 1
            self._update_ema(batch_size)
            self._step_scheduler("G")
            if self.generator_ema is not None:
                logs["ema/beta"] = self._ema_beta
        return self._finish_step(logs, batch)

    def _regularization_step(self, optimizer: Any, penalty: Any, batch: dict[str, Tensor], interval: int) -> dict[str, Tensor]:
        """The extra optimizer step of ``lazy_regularization: separate`` (the official ``Dreg``/``Greg``
        phase) on ``penalty(batch, interval)``; returns its log values. Runs eagerly under ``compile``
        (a penalty differentiates twice)."""
        with self.toggled_optimizer(optimizer), self._eager_if(self.compile_networks):
            out = penalty(batch, float(interval))
            if out is None:
                return {}
            self._optimize(optimizer, out["loss"])
        return {k: v.detach() for k, v in out.items() if k != "loss"}

    def _finish_step(self, logs: dict[str, Any], batch: dict[str, Tensor]) -> dict[str, Any]:
        """The tail of every training step: stop at ``max_generator_steps``, log on logging steps."""
        if self.training_done():
            self.trainer.should_stop = True
        # Logging costs ~0.3 ms a key (benchmarks/overhead.py): log only on the batches Lightning sends to
        # the loggers, and on the last one. The returned dict still reaches callbacks every batch.
        if self.discriminator_steps % self.trainer.log_every_n_steps == 0 or self.trainer.should_stop:
            logs_now = {**logs, "progress/generator_steps": float(self.generator_steps),
                        "progress/kimg": self.images_seen / 1000.0,
                        **amp_logs(self._amp_skipped, self.optimizer_names(), self._grad_scaler())}
            self.log_dict(logs_now, prog_bar=False, batch_size=self.batch_size_of(batch))
        return logs

    def _optimize(self, optimizer: Any, loss: Tensor) -> None:
        """One player's update: backward, cross-process gradient reduction, clipping, step.

        Every family steps its optimizers through here, which is where the GAN-aware DDP strategy
        averages gradients and where mixed precision's gradient scaler is accounted for.
        """
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)  # under 16-mixed the precision plugin scales the loss
        strategy = self.trainer.strategy
        if isinstance(strategy, GANDDPStrategy):
            strategy.reduce_gradients([p for group in optimizer.param_groups for p in group["params"]])
        scaler = self._grad_scaler()
        if self.gradient_clip_val is not None:
            # The gradients are still scaled here (the plugin unscales inside optimizer.step()), so the
            # threshold is scaled too: clipping g*s to c*s is clipping g to c, for norm and value alike.
            scale = float(scaler.get_scale()) if scaler is not None else 1.0
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val * scale,
                                gradient_clip_algorithm=self.gradient_clip_algorithm)
        if scaler is None:
            optimizer.step()
        else:
            step_counting_skips(optimizer, scaler, self._amp_skipped, self._optimizer_index(optimizer))

    def _grad_scaler(self) -> Any:
        return grad_scaler(self.trainer)

    def _optimizer_index(self, optimizer: Any) -> int:
        inner = getattr(optimizer, "optimizer", optimizer)
        for i, candidate in enumerate(self.trainer.optimizers):
            if candidate is inner:
                return i
        return -1

    def penalty_scale(self) -> float:
        """The gradient scale to apply inside gradient penalties (1 unless training in ``16-mixed``).

        A penalty differentiates D's output with ``autograd.grad``; under float16 autocast those
        input gradients can underflow, so the output is multiplied by the loss scale before the
        differentiation and the gradients divided after it (PyTorch's AMP recipe for penalties).
        """
        scaler = self._grad_scaler() if self._trainer is not None else None
        return float(scaler.get_scale()) if scaler is not None else 1.0

    @staticmethod
    def _eager_if(condition: bool) -> Any:
        return torch.compiler.set_stance("force_eager") if condition else contextlib.nullcontext()

    def _update_ema(self, batch_size: int) -> None:
        if self.generator_ema is None:
            return
        self._ema_beta = ema_beta(batch_size, self.images_seen, self.ema_decay, self.ema_half_life_kimg, self.ema_rampup)
        update_ema(self.generator_ema, self.generator, self._ema_beta)

    def optimizer_names(self) -> dict[int, str]:
        """Log names of the optimizers by index (``configure_optimizers`` returns D's first)."""
        return {0: "D", 1: "G"}

    def _step_scheduler(self, player: str) -> None:
        scheduler = self._schedulers.get(player)
        if scheduler is not None and self.scheduler_interval == "step":
            scheduler.step()

    def on_train_epoch_end(self) -> None:
        if self.scheduler_interval == "epoch":
            for scheduler in self._schedulers.values():
                scheduler.step()

    def configure_optimizers(self) -> Any:
        return self.build_optimizers({"D": self.discriminator.parameters(), "G": self.generator.parameters()})

    def build_optimizers(self, players: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """Optimizers (and schedulers) from the factories, one per player, D's first.

        Args:
            players: ``{"D": parameters, "G": parameters}``; frozen parameters are left out.
        """
        configs, self._schedulers = [], {}
        for player, parameters in players.items():
            factory = self._optimizer_factories[player]
            params = [p for p in parameters if p.requires_grad]
            try:
                optimizer = factory(params) if factory else torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))
            except (ValueError, TypeError) as exc:  # torch says "Invalid learning rate: -0.1", not whose
                option, whose = ("g_optimizer", "generator") if player == "G" else ("d_optimizer", "discriminator")
                raise ValueError(f"model.init_args.{option} (the {whose}'s optimizer): {exc}") from exc
            interval = self._lazy_interval(player)
            if interval is not None:
                scale_for_lazy_steps(optimizer, interval)
            config: dict[str, Any] = {"optimizer": optimizer}
            if self._scheduler_factories[player] is not None:
                self._schedulers[player] = self._scheduler_factories[player](optimizer)
                config["lr_scheduler"] = {"scheduler": self._schedulers[player], "interval": self.scheduler_interval}
            configs.append(config)
        return tuple(configs)

    def _lazy_interval(self, player: str) -> int | None:
        """The interval whose Adam correction applies to ``player`` (None: no correction)."""
        if not self._separate():
            return None
        if player == "D":
            return self.reg_interval if self.reg_interval > 1 else None
        return self.generator_reg_interval()

    # ----------------------------------------------------------------------------------------------
    # Sampling, validation and prediction

    def sampling_network(self) -> nn.Module:
        """The EMA generator when there is one, else the training generator."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
               z: Tensor | None = None) -> Tensor:
        """``n`` samples ``[n, *sample_shape]`` from the EMA generator (eval mode) when there is one.

        Args:
            n: number of samples.
            labels: ``[n]`` class indices for conditional models; cycled ``0..K-1`` when None.
            generator: torch RNG for the latents (reproducible samples).
            z: explicit latents ``[n, latent_dim]`` (overrides ``generator``).
        """
        net = self.sampling_network()
        z = self.latents(n, generator) if z is None else z.to(self.device)
        if self.num_classes and labels is None:
            labels = torch.arange(n, device=self.device) % self.num_classes
        was_training = net.training
        net.eval()
        try:
            return self.generate(z, None if labels is None else labels.to(self.device), net=net)
        finally:
            net.train(was_training)

    def metric_samples(self, n: int, labels: Tensor | None, z: Tensor, seed: int) -> Tensor:
        """The samples that metrics score (``callbacks.GenerativeMetrics``): :meth:`sample` on ``z``.

        A family whose generator draws more randomness than ``z`` at evaluation (StyleGAN's per-layer
        noise) overrides this and draws it from ``seed``, so a score is reproducible.
        """
        return self.sample(n, labels=labels, z=z)

    def sample_fixed(self) -> Tensor:
        """Samples from the fixed latent batch (the same latents for every grid of a run)."""
        return self.sample(len(self.fixed_latents), labels=self.fixed_labels if self.num_classes else None,
                           z=self.fixed_latents)

    def grid_images(self) -> tuple[Tensor, int | None]:
        """The images of a sample grid ``[N, C, H, W]`` and its images per row (None: square).

        Samples of the fixed latent batch; a conditional model gets one row per class. Translation
        families override this with rows of input | output | target.
        """
        images = self.sample_fixed()
        if not self.num_classes:
            return images, None
        # one row per class: the same number of samples of each class (the fixed labels cycle 0..K-1,
        # so the first per_row * K of them hold per_row of each), sorted by class
        per_row = max(1, len(images) // self.num_classes)
        keep = min(len(images), per_row * self.num_classes)
        order = torch.argsort(self.fixed_labels[:keep].cpu(), stable=True).to(images.device)
        return images[:keep][order], per_row

    def _evaluation_step(self, batch: dict[str, Tensor], batch_idx: int, prefix: str) -> None:
        real = self.real_samples(batch)
        labels = batch.get("label") if self.num_classes else None
        seeded = torch.Generator().manual_seed(self.sample_seed * 100_003 + batch_idx)  # same fakes every time
        fake = self.sample(len(real), labels=labels, generator=seeded)
        self.log_dict({f"{prefix}/D/real": self.discriminate(real, labels).mean(),
                       f"{prefix}/D/fake": self.discriminate(fake, labels).mean()}, batch_size=len(real),
                      sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, batch_idx, "test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """One sample per ``batch["index"]``, its latent seeded by ``sample_seed`` and the index."""
        indices = batch["index"]
        z = torch.stack([draw_latents((self.latent_dim,), self.latent_distribution, torch.Generator().manual_seed(
            self.sample_seed * 1_000_003 + int(i))) for i in indices])
        labels = batch.get("label") if self.num_classes else None
        out = {"index": indices, "image": self.sample(len(indices), labels=labels, z=z)}
        if labels is not None:
            out["label"] = labels
        return out

    def on_fit_start(self) -> None:
        strategy = self.trainer.strategy
        if (isinstance(strategy, DDPStrategy) and not isinstance(strategy, GANDDPStrategy)
                and not strategy._ddp_kwargs.get("find_unused_parameters", False)):
            raise RuntimeError(
                "plain DDP wraps the whole module and fails on a GAN (each step leaves the other player's "
                "parameters without gradients). Use Trainer(strategy=gan_modules.GANDDPStrategy()) (train.py "
                "does this for 'strategy: ddp'), or 'ddp_find_unused_parameters_true' (slower).")
        if self.compile_networks:
            for net in (self.generator, self.discriminator):
                net.compile(backend=self.compile_backend)

    def on_train_start(self) -> None:
        self._restore_pending_rng()
        if self.training_done():
            self.trainer.should_stop = True

    def training_done(self) -> bool:
        """Whether ``max_generator_steps`` or ``max_kimg`` (images seen, all processes) is reached."""
        if self.max_generator_steps is not None and self.generator_steps >= self.max_generator_steps:
            return True
        return self.max_kimg is not None and self.images_seen >= self.max_kimg * 1000.0

    # ----------------------------------------------------------------------------------------------
    # Checkpoints: the "gan" entry (counters, RNG states of every rank, 16-mixed skip counts, and what
    # load_generator needs to rebuild the sampling generator). Families that keep more state extend
    # the two hooks and call super().

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # LightningCLI re-reads these with --ckpt_path; a model built in Python must still name its class
        hparams = checkpoint.setdefault("hyper_parameters", {})
        hparams.setdefault("_class_path", f"{type(self).__module__}.{type(self).__qualname__}")
        spec = getattr(self.sampling_network(), "init_spec", None)
        checkpoint["gan"] = {
            "generator_steps": self.generator_steps,
            "discriminator_steps": self.discriminator_steps,
            "images_seen": self.images_seen,
            "rng": rng_state(),
            "rng_per_rank": self._gather_rng_states(),
            "amp_skipped_steps": {i: int(n) for i, n in self._amp_skipped.items()},
            "generator_spec": spec,
            "generator_key": "generator_ema" if self.generator_ema is not None else "generator",
            "latent_dim": self.latent_dim,
            "latent_distribution": self.latent_distribution,
            "num_classes": self.num_classes,
            "sample_shape": list(self.sample_shape),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("gan")
        if state is None:
            raise KeyError("checkpoint has no 'gan' entry: it was not written by a GANModule")
        self.generator_steps = int(state["generator_steps"])
        self.discriminator_steps = int(state["discriminator_steps"])
        self.images_seen = int(state["images_seen"])
        self._amp_skipped = {int(i): torch.tensor(n) for i, n in state.get("amp_skipped_steps", {}).items()}
        # Applied when training starts, after the sanity check, so a resumed run draws the same
        # random numbers as the uninterrupted one. Under DDP each rank gets back its own state.
        self._pending_rng_state = state.get("rng")
        self._pending_rng_per_rank = state.get("rng_per_rank")

    def _gather_rng_states(self) -> list[dict[str, Any]] | None:
        # on_save_checkpoint runs on every rank (rank 0 writes), so this collective is safe here
        if self._trainer is None or self.trainer.world_size == 1 or not torch.distributed.is_initialized():
            return None
        states: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(states, rng_state())
        return states

    def _restore_pending_rng(self) -> None:
        """Applies the RNG state read by ``on_load_checkpoint`` (each rank its own under DDP); called
        from ``on_train_start``."""
        message = restore_rng(self.trainer.global_rank, self.trainer.world_size, self._pending_rng_state,
                              self._pending_rng_per_rank)
        if message is not None:
            warnings.warn(message, stacklevel=3)
        self._pending_rng_state = self._pending_rng_per_rank = None

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000.0

    def extra_repr(self) -> str:
        params = sum(p.numel() for p in self.generator.parameters()), sum(p.numel() for p in self.discriminator.parameters())
        return f"G params={params[0]:,}, D params={params[1]:,}, latent_dim={self.latent_dim}, n_critic={self.n_critic}"

