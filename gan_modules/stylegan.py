"""StyleGAN family: StyleGAN (Karras et al. 2019) and StyleGAN2 (Karras et al. 2020) training.

Reproduces the training objective of the papers (stylegan2-ada-pytorch's ``StyleGAN2Loss``):

* non-saturating logistic loss (any loss of :func:`gan_modules.losses.get_loss` can be chosen);
* R1 on reals, ``γ/2 · E‖∇D(x)‖²``, lazy: every ``reg_interval`` (16) discriminator steps, scaled by
  the interval; with ``lazy_regularization: separate`` (the StyleGAN2 presets) as its own optimizer
  step with Adam's lr and betas corrected, as stylegan2-ada does (:mod:`gan_modules.lazy_regularization`);
* style-mixing regularization: with probability ``style_mixing_prob`` (0.9) the fakes of a batch take
  the style inputs from a crossover layer on (drawn uniformly in ``[1, num_ws)``) from a second latent;
* path-length regularization (StyleGAN2), ``pl_weight · E(‖J_wᵀ y‖ - a)²`` with ``a`` a running mean
  of the lengths (decay ``pl_decay``), lazy: on every ``pl_interval``-th generator step, on
  ``1/pl_batch_shrink`` of the batch, scaled by the interval: added to that step's generator loss
  (``added``) or its own optimizer step (``separate``);
* the mapping network's learning rate is 1/100 of the rest through its equalized-LR multiplier
  (``StyleGANGenerator.mapping_lr_multiplier``), with one optimizer;
* generator EMA by half-life (``ema_half_life_kimg`` 10, ``ema_rampup`` 0.05, stylegan2-ada's
  defaults); the w̄ of the truncation trick is a buffer of the mapping network, updated in training
  forwards and copied to the EMA generator with the other buffers.

The generator must be a :class:`~gan_modules.nets.StyleGANGenerator` (or expose ``mapping``,
``synthesis`` and ``num_ws`` the same way). Sample grids can be drawn with truncation
(``grid_truncation_psi``).

Class-conditional training (stylegan2-ada's ``--cond=1``): with a
:class:`~gan_modules.nets.ConditionalStyleGANGenerator` and a
:class:`~gan_modules.nets.ConditionalStyleGANDiscriminator` (``configs/stylegan_cond_digits.yaml``), the
batch's labels go to the mapping network (both latents of a style-mixing pair, the path-length
samples too) and to the projection discriminator, in the D step, R1 and the G step, so generated
images follow the data's class prior. Truncation pulls each w towards its class's w̄; grids have one
row per class; ``sample``, ``predict``, metrics and ``load_generator`` take labels as in
:mod:`gan_modules.conditional`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from gan_modules.base import GANModule
from gan_modules.conditional import _check_conditional, _labels
from gan_modules.losses import get_loss
from gan_modules.regularizers import r1_penalty


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """Per-sample path lengths ``‖J_wᵀ y‖`` of StyleGAN2 (section 3.2), keeping the graph.

    ``y ~ N(0, I) / sqrt(H·W)`` (so the length does not depend on the resolution); the gradient of
    ``sum(images · y)`` with respect to ``ws [N, num_ws, w_dim]`` is squared, summed over ``w_dim``,
    averaged over the style inputs and square-rooted, as in stylegan2-ada.

    Args:
        images: ``G.synthesis(ws)``, ``[N, C, H, W]``.
        ws: the style inputs the images were rendered from (part of the graph).
        noise: ``y``, same shape as ``images``; drawn when None.
        scale: loss scale of float16 mixed precision (``GANModule.penalty_scale()``), applied before the
            differentiation and removed after it so small gradients do not underflow; 1 otherwise.

    Returns:
        ``[N]`` lengths, differentiable (``create_graph=True``).
    """
    if noise is None:
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    outputs = (images * noise).float().sum() * scale
    (grads,) = torch.autograd.grad(outputs=outputs, inputs=ws, create_graph=True)
    return (grads.float() / scale).square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: Tensor, pl_mean: Tensor, decay: float) -> tuple[Tensor, Tensor]:
    """``E (length - a)²`` with ``a = lerp(pl_mean, mean(lengths), decay)``; returns ``(penalty, a)``.

    As in stylegan2-ada, ``a`` is not detached inside the penalty (its gradient is ``decay`` times
    smaller); the caller stores ``a.detach()`` as the new running mean.
    """
    new_mean = pl_mean.lerp(lengths.float().mean(), decay)  # float32 like the buffer, also under autocast
    return (lengths - new_mean).square().mean(), new_mean


class StyleGAN(GANModule):
    """StyleGAN / StyleGAN2 training: non-saturating loss, lazy R1, style mixing, path-length penalty.

    Args:
        generator: a :class:`~gan_modules.nets.StyleGANGenerator`.
        discriminator: ``[N, *sample_shape] -> logits [N]``, e.g.
            :class:`~gan_modules.nets.StyleGANDiscriminator`.
        loss: adversarial loss name (``nonsaturating`` in the papers).
        label_smoothing: one-sided smoothing of D's real target for the BCE losses (see ``GAN``).
        r1_gamma: γ of R1, applied as ``γ/2 · E‖∇D‖²`` (10 at FFHQ 1024, 1 in stylegan2-ada's 256-px
            setting, 0.01 on CIFAR-10); lazy with ``reg_interval``.
        style_mixing_prob: probability that a batch of fakes mixes two latents (0.9; 0 disables).
        pl_weight: weight of the path-length penalty (2 in StyleGAN2; 0 disables).
        pl_decay: decay of the running mean of path lengths (0.01).
        pl_interval: the penalty runs on every this-many generator steps, scaled by it (4).
        pl_batch_shrink: the penalty uses ``batch / pl_batch_shrink`` samples (2).
        grid_truncation_psi: truncation ψ of the sample grids (1 = none).
        reg_interval: lazy R1 interval in discriminator steps (16 in StyleGAN2; 1 = StyleGAN's every step).
        ema_half_life_kimg: half-life of the generator EMA in thousands of images (10).
        ema_rampup: caps the half-life at this fraction of the images seen (0.05; None disables).
        metrics_noise_mode: the per-layer noise of the samples that metrics score: ``"random"`` (new noise
            maps per sample, drawn from the callback's seed: stylegan2-ada's metrics, which call ``G`` with
            its default ``noise_mode='random'``) or ``"const"`` (the stored maps, as grids and ``sample``).
        Other arguments: see :class:`gan_modules.base.GANModule`.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: str = "nonsaturating",
                 r1_gamma: float = 10.0, style_mixing_prob: float = 0.9, pl_weight: float = 0.0,
                 pl_decay: float = 0.01, pl_interval: int = 4, pl_batch_shrink: int = 2,
                 grid_truncation_psi: float = 1.0, reg_interval: int = 16,
                 ema_half_life_kimg: float | None = 10.0, ema_rampup: float | None = 0.05,
                 metrics_noise_mode: str = "random", label_smoothing: float = 0.0, **kwargs: Any) -> None:
        super().__init__(generator, discriminator, reg_interval=reg_interval, ema_half_life_kimg=ema_half_life_kimg,
                         ema_rampup=ema_rampup, **kwargs)
        for attribute in ("mapping", "synthesis", "num_ws"):
            if not hasattr(generator, attribute):
                raise TypeError(f"StyleGAN needs a style-based generator with '{attribute}' (e.g. "
                                f"gan_modules.nets.StyleGANGenerator), got {type(generator).__name__}")
        if self.num_classes or getattr(discriminator, "num_classes", 0):
            _check_conditional(type(self).__name__, generator, discriminator)  # both take labels, or neither
        if r1_gamma < 0 or pl_weight < 0:
            raise ValueError(f"r1_gamma and pl_weight must be >= 0, got {r1_gamma} and {pl_weight}")
        if not 0.0 <= style_mixing_prob <= 1.0 or not 0.0 <= pl_decay <= 1.0:
            raise ValueError(f"style_mixing_prob and pl_decay must be in [0, 1], got {style_mixing_prob} "
                             f"and {pl_decay}")
        if pl_interval < 1 or pl_batch_shrink < 1:
            raise ValueError(f"pl_interval and pl_batch_shrink must be >= 1, got {pl_interval} and "
                             f"{pl_batch_shrink}")
        if metrics_noise_mode not in ("random", "const"):
            raise ValueError(f"metrics_noise_mode must be 'random' or 'const', got '{metrics_noise_mode}'")
        self.metrics_noise_mode = metrics_noise_mode
        self.adversarial = get_loss(loss, label_smoothing)
        self.r1_gamma, self.style_mixing_prob = r1_gamma, style_mixing_prob
        self.pl_weight, self.pl_decay = pl_weight, pl_decay
        self.pl_interval, self.pl_batch_shrink = pl_interval, pl_batch_shrink
        self.grid_truncation_psi = grid_truncation_psi
        # A buffer, so that the running mean is in the checkpoint and a resumed run continues it
        self.register_buffer("pl_mean", torch.zeros([]))

    def batch_labels(self, batch: dict[str, Tensor]) -> Tensor | None:
        """The batch's labels ``[N]`` for a conditional generator (a clear error when the data has none); None
        when unconditional."""
        return _labels(type(self).__name__, batch) if self.num_classes else None

    def mixed_styles(self, n: int, labels: Tensor | None = None) -> Tensor:
        """``ws [n, num_ws, w_dim]`` for training: with probability ``style_mixing_prob`` the inputs from a
        random crossover layer on come from a second latent (whose w does not update w̄). A conditional
        generator maps both latents with the same ``labels [n]``, as stylegan2-ada."""
        net = self.generator
        label_args = () if labels is None else (labels,)  # an unconditional mapping is called as before
        z = self.latents(n)
        ws = net.mapping(z, *label_args)
        if self.style_mixing_prob > 0 and float(torch.rand([])) < self.style_mixing_prob:
            cutoff = int(torch.randint(1, net.num_ws, [])) if net.num_ws > 1 else net.num_ws
            ws2 = net.mapping(self.latents(n), *label_args, update_w_avg=False)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def discriminator_loss(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        labels = self.batch_labels(batch)
        with torch.no_grad():
            fake = self.generator.synthesis(self.mixed_styles(len(real), labels))
        use_r1 = self.r1_gamma > 0 and reg_weight > 0
        if use_r1:
            real = real.detach().requires_grad_(True)
        # Reals and fakes go through D separately so the minibatch-stddev groups never mix them
        real_logits = self.discriminate(real, labels)
        fake_logits = self.discriminate(fake, labels)
        self.observe_real_logits(real_logits)
        loss = self.adversarial.d(real_logits, fake_logits)
        out = {"D/real": real_logits.detach().mean(), "D/fake": fake_logits.detach().mean()}
        if use_r1:
            out.update(self._r1_term(real, real_logits, reg_weight))
            loss = loss + out.pop("loss")
        out["loss"] = loss
        return out

    def _r1_term(self, real: Tensor, real_logits: Tensor, reg_weight: float) -> dict[str, Tensor]:
        penalty = r1_penalty(real, real_logits, self.penalty_scale())
        return {"loss": 0.5 * self.r1_gamma * reg_weight * penalty, "loss/D/r1": penalty.detach()}

    def discriminator_regularization(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor] | None:
        """R1 alone, ``γ/2 · reg_weight · E‖∇D(x)‖²`` on a fresh forward of the reals (the official ``Dreg``)."""
        if self.r1_gamma == 0:
            return None
        real = self.real_samples(batch).detach().requires_grad_(True)
        return self._r1_term(real, self.discriminate(real, self.batch_labels(batch)), reg_weight)

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        labels = self.batch_labels(batch)
        fake_logits = self.discriminate(self.generator.synthesis(self.mixed_styles(len(real), labels)), labels)
        loss = self.adversarial.g_against(fake_logits, lambda: self.discriminate(real, labels))
        out: dict[str, Tensor] = {}
        # The base loop increments generator_steps after this step: steps 0, k, 2k, ... regularize
        if not self._separate() and self.pl_weight > 0 and self.generator_steps % self.pl_interval == 0:
            out.update(self.generator_regularization(batch, float(self.pl_interval)))
            loss = loss + out.pop("loss")
        out["loss"] = loss
        return out

    def generator_reg_interval(self) -> int | None:
        # As in stylegan2-ada, G keeps its lazy interval (and so its Adam correction) with the penalty off
        return self.pl_interval

    def generator_regularization(self, batch: dict[str, Tensor], reg_weight: float) -> dict[str, Tensor] | None:
        """The path-length penalty times ``pl_weight · reg_weight`` on ``batch / pl_batch_shrink`` new
        samples, updating the running mean; None when ``pl_weight`` is 0."""
        if self.pl_weight == 0:
            return None
        n = max(1, self.batch_size_of(batch) // self.pl_batch_shrink)
        labels = self.batch_labels(batch)
        ws = self.mixed_styles(n, None if labels is None else labels[:n])  # the batch's first labels (stylegan2-ada)
        if not ws.requires_grad:  # a frozen mapping network: differentiate with respect to ws anyway
            ws.requires_grad_(True)
        # synthesis is called as a submodule, so it runs eagerly even with compile=True (which compiles
        # the generator's forward only): the double backward here needs that
        lengths = path_lengths(self.generator.synthesis(ws), ws, scale=self.penalty_scale())
        penalty, new_mean = path_length_penalty(lengths, self.pl_mean, self.pl_decay)
        self.pl_mean.copy_(new_mean.detach())
        return {"loss": self.pl_weight * reg_weight * penalty, "loss/G/pl": penalty.detach(),
                "G/pl_mean": new_mean.detach()}

    @torch.no_grad()
    def metric_samples(self, n: int, labels: Tensor | None, z: Tensor, seed: int) -> Tensor:
        """Samples for metrics, with random per-layer noise drawn from ``seed`` (``metrics_noise_mode``);
        the global RNG is left as it was."""
        if self.metrics_noise_mode == "const":
            return super().metric_samples(n, labels, z, seed)
        net = self.sampling_network()
        devices = [self.device] if self.device.type == "cuda" else []
        was_training = net.training
        net.eval()
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                label_args = () if labels is None else (labels.to(self.device),)
                return net(z.to(self.device), *label_args, noise_mode="random")
        finally:
            net.train(was_training)

    @torch.no_grad()
    def sample_fixed(self) -> Tensor:
        """Samples of the fixed latent batch (and fixed labels), truncated with ``grid_truncation_psi``
        (towards each label's class's w̄ when conditional); the grids draw these."""
        if self.grid_truncation_psi == 1.0:
            return super().sample_fixed()
        net = self.sampling_network()
        label_args = (self.fixed_labels,) if self.num_classes else ()
        was_training = net.training
        net.eval()
        try:
            return net(self.fixed_latents, *label_args, truncation_psi=self.grid_truncation_psi)
        finally:
            net.train(was_training)
