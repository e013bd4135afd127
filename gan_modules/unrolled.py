"""Unrolled GAN: the generator plays against the discriminator ``k`` optimizer steps ahead.

Metz, Poole, Pfau & Sohl-Dickstein, "Unrolled Generative Adversarial Networks", ICLR 2017
(arXiv:1611.02163); the authors' demo is https://github.com/poolio/unrolled_gan.

The generator's loss is ``L_G(θ_G, θ_D^k)`` where ``θ_D^0`` are the discriminator's current weights and
``θ_D^{i+1} = step(θ_D^i, ∇ L_D(θ_D^i, θ_G))``. Differentiating through the ``k`` steps (the paper's
"with second-order terms") tells the generator how the discriminator will react to its move, which
penalises collapsing onto the mode the current discriminator likes best. The real discriminator is
not touched here: it is trained by :class:`~gan_modules.base.GANModule`'s loop, so the unrolled weights
are a functional copy (``torch.func.functional_call``) thrown away after the generator's loss.

Choices, and why:

* **Same minibatch.** Every unrolled step uses the generator step's real batch and the same generated
  samples (the official notebook substitutes only the weights in one graph, so its unrolled steps see
  one batch too). It also keeps the loop's one-batch-per-step contract: no extra data is drawn.
* **Adam, continued from the optimizer's state** (``unroll_optimizer="adam"``, the default): the paper
  unrolls the discriminator's own optimizer, Adam, and the notebook builds the unrolled steps from
  Keras' Adam updates, starting from the optimizer's moment estimates. We do the same: lr, betas and
  eps come from the discriminator optimizer's param group, the moments and step count from its state
  (zero moments before its first step, or when it is not an Adam), so the first unrolled step is the
  update the real optimizer would make on this batch. Weight decay and AMSGrad are not unrolled.
  ``"sgd"`` takes plain differentiable SGD steps ``θ - lr ∇`` (cheaper, no state; what the paper's
  equations write), with the optimizer's lr unless ``unroll_lr`` is set.
* **Penalties and clipping are unrolled** (gradient penalty, R1, R2 at weight 1, i.e. not lazily,
  and weight clipping), so the unrolled steps follow the objective the real discriminator minimises.
* ``second_order=False`` treats ``θ_D^k`` as a constant (the paper's cheaper variant): the generator
  only sees a discriminator trained ``k`` steps further.

Presets: ``configs/unrolled_toy_ring.yaml`` and ``configs/unrolled_toy_grid.yaml`` (k = 5, as in the
paper's 2D mixture experiments).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from gan_modules.gan import GAN
from gan_modules.regularizers import gradient_penalty, r1_penalty, r2_penalty

UNROLL_OPTIMIZERS = ("adam", "sgd")

# The sqrt of Adam's second moment is differentiated in the unrolled graph; sqrt'(0) is infinite and
# an exactly-zero gradient (a dead ReLU's weights) would turn inf * 0 into NaN. 1e-30 is below float32's
# resolution next to any non-tiny moment, so the forward value equals torch.optim.Adam's.
_SQRT_FLOOR = 1e-30


def sgd_step(params: dict[str, Tensor], grads: dict[str, Tensor], lr: float) -> dict[str, Tensor]:
    """One differentiable SGD step ``θ - lr · g`` on a dict of tensors (no in-place update)."""
    return {name: p - lr * grads[name] for name, p in params.items()}


def adam_step(params: dict[str, Tensor], grads: dict[str, Tensor], state: dict[str, dict[str, Any]], lr: float,
              betas: tuple[float, float], eps: float) -> tuple[dict[str, Tensor], dict[str, dict[str, Any]]]:
    """One differentiable Adam step (Kingma & Ba 2015, torch.optim.Adam's formula, without weight decay).

    Args:
        params: name -> parameter tensor.
        grads: name -> gradient, same shapes.
        state: name -> ``{"step": int, "exp_avg": Tensor | None, "exp_avg_sq": Tensor | None}``; missing
            names or ``None`` moments start from zero.
        lr, betas, eps: Adam's hyperparameters.

    Returns:
        ``(new_params, new_state)``; the inputs are not modified.
    """
    beta1, beta2 = betas
    new_params, new_state = {}, {}
    for name, p in params.items():
        g = grads[name]
        s = state.get(name, {})
        m, v = s.get("exp_avg"), s.get("exp_avg_sq")
        t = int(s.get("step", 0)) + 1
        m = (1 - beta1) * g if m is None else beta1 * m + (1 - beta1) * g
        v = (1 - beta2) * g * g if v is None else beta2 * v + (1 - beta2) * g * g
        denom = (v / (1 - beta2**t) + _SQRT_FLOOR).sqrt() + eps
        new_params[name] = p - (lr / (1 - beta1**t)) * m / denom
        new_state[name] = {"step": t, "exp_avg": m, "exp_avg_sq": v}
    return new_params, new_state


class UnrolledGAN(GAN):
    """GAN whose generator loss is computed against the discriminator unrolled ``unrolled_steps`` ahead.

    Args:
        generator: ``z [N, latent_dim] -> [N, *sample_shape]``.
        discriminator: ``[N, *sample_shape] -> logits [N]``; must not use batch statistics across the
            real/fake calls for the unrolling to mean the same as the real step (MLP, no BN).
        unrolled_steps: ``k``, discriminator steps unrolled for each generator step; 0 is a plain GAN.
        unroll_optimizer: ``"adam"`` (the discriminator optimizer's Adam update, continued from its
            state) or ``"sgd"`` (plain gradient steps).
        unroll_lr: learning rate of the unrolled steps; None uses the discriminator optimizer's
            current lr (so an LR schedule is followed). Required when the module is used without a
            Trainer.
        second_order: differentiate through the unrolled steps (the paper's method); False treats
            the unrolled weights as constants.
        Other arguments (``loss``, ``gp_weight``, ``r1_gamma``, ...): see :class:`gan_modules.gan.GAN`.
    """

    augment_supported = False  # D-input augmentation (augment) is for the noise-to-image families

    def __init__(self, generator: nn.Module, discriminator: nn.Module, unrolled_steps: int = 5,
                 unroll_optimizer: str = "adam", unroll_lr: float | None = None, second_order: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(generator, discriminator, **kwargs)
        if unrolled_steps < 0:
            raise ValueError(f"unrolled_steps must be >= 0, got {unrolled_steps}")
        if unroll_optimizer not in UNROLL_OPTIMIZERS:
            raise ValueError(f"unroll_optimizer must be one of {', '.join(UNROLL_OPTIMIZERS)}, got '{unroll_optimizer}'")
        if unroll_lr is not None and not unroll_lr > 0:
            raise ValueError(f"unroll_lr must be > 0, got {unroll_lr}")
        self.unrolled_steps, self.unroll_optimizer = unrolled_steps, unroll_optimizer
        self.unroll_lr, self.second_order = unroll_lr, second_order

    # ----------------------------------------------------------------------------------------------
    # The generator's loss

    def generator_loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real = self.real_samples(batch)
        labels = batch.get("label") if self.num_classes else None
        fake = self.generate(self.latents(len(real)), labels)
        params, buffers = self.unrolled_discriminator(real, fake, labels)
        fake_logits = self._functional_d(params, buffers, fake, labels)
        real_logits = None
        if self.adversarial.needs_real_for_g:
            # Not under no_grad (unlike GAN): with unrolling, D_k's score of the reals depends on G too.
            real_logits = self._functional_d(params, buffers, real, labels)
        return {"loss": self.adversarial.g(fake_logits, real_logits), "D/fake/unrolled": fake_logits.detach().mean()}

    def unrolled_discriminator(self, real: Tensor, fake: Tensor, labels: Tensor | None = None
                               ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The discriminator's weights after ``unrolled_steps`` differentiable steps on ``(real, fake)``.

        Args:
            real: real samples ``[N, *sample_shape]``.
            fake: generated samples, same shape; keep their graph to the generator for second-order
                terms.
            labels: class labels for conditional discriminators.

        Returns:
            ``(params, buffers)`` for ``functional_call(self.discriminator, ...)``: name -> tensor dicts.
            The module's own parameters and buffers are left as they are (buffers are cloned so that
            e.g. spectral norm's power iteration in the unrolled calls does not advance the real one).
        """
        buffers = {name: b.clone() for name, b in self.discriminator.named_buffers()}
        if self.unrolled_steps == 0:
            return {name: p.detach() for name, p in self.discriminator.named_parameters()}, buffers
        # Fresh leaves sharing storage with the real weights: the steps below never write into them.
        params = {name: p.detach().requires_grad_(True) for name, p in self.discriminator.named_parameters()}
        if not self.second_order:
            fake = fake.detach()  # no path from the unrolled weights back to G is wanted
        lr, betas, eps, state = self._unroll_hyperparameters()
        for _ in range(self.unrolled_steps):
            loss = self._unrolled_d_loss(params, buffers, real, fake, labels)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=self.second_order)
            grads = dict(zip(params, grads, strict=True))
            if self.unroll_optimizer == "adam":
                params, state = adam_step(params, grads, state, lr, betas, eps)
            else:
                params = sgd_step(params, grads, lr)
            if self.clip_value is not None:
                params = {name: p.clamp(-self.clip_value, self.clip_value) for name, p in params.items()}
            if not self.second_order:  # constants for the generator; leaves again for the next step
                params = {name: p.detach().requires_grad_(True) for name, p in params.items()}
                state = {name: {k: v.detach() if isinstance(v, Tensor) else v for k, v in s.items()}
                         for name, s in state.items()}
        if not self.second_order:
            params = {name: p.detach() for name, p in params.items()}
        return params, buffers

    # ----------------------------------------------------------------------------------------------
    # Helpers

    def _functional_d(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor,
                      labels: Tensor | None) -> Tensor:
        args = (x, labels) if self.num_classes else (x,)
        return functional_call(self.discriminator, {**params, **buffers}, args)

    def _unrolled_d_loss(self, params: dict[str, Tensor], buffers: dict[str, Tensor], real: Tensor, fake: Tensor,
                         labels: Tensor | None) -> Tensor:
        """The discriminator's objective at ``params``, as :meth:`GAN.discriminator_loss` with penalties at weight 1."""
        if self.r1_gamma > 0:
            real = real.detach().requires_grad_(True)
        if self.r2_gamma > 0:
            # A non-leaf view that still carries the graph to G, so R2's input gradient is defined.
            fake = fake if fake.requires_grad else fake.detach().requires_grad_(True)
        # One call on both halves: the unrolled steps are the cost of this family, and a D without batch
        # statistics scores each sample on its own, so the logits equal those of two calls.
        both_labels = None if labels is None else torch.cat([labels, labels])
        real_logits, fake_logits = self._functional_d(params, buffers, torch.cat([real, fake]), both_labels).split(len(real))
        loss = self.adversarial.d(real_logits, fake_logits)
        if self.gp_weight > 0:
            loss = loss + self.gp_weight * gradient_penalty(
                lambda x: self._functional_d(params, buffers, x, labels), real.detach(), fake.detach())
        if self.r1_gamma > 0:
            loss = loss + 0.5 * self.r1_gamma * r1_penalty(real, real_logits)
        if self.r2_gamma > 0:
            loss = loss + 0.5 * self.r2_gamma * r2_penalty(fake, fake_logits)
        return loss

    def _unroll_hyperparameters(self) -> tuple[float, tuple[float, float], float, dict[str, dict[str, Any]]]:
        """``(lr, betas, eps, state)`` of the unrolled steps, from the discriminator's optimizer when attached."""
        optimizer = None
        if getattr(self, "_trainer", None) is not None:
            optimizer = getattr(self.optimizers()[0], "optimizer", self.optimizers()[0])  # D's comes first
        if optimizer is None:
            if self.unroll_lr is None:
                raise RuntimeError("UnrolledGAN outside a Trainer has no discriminator optimizer: set unroll_lr")
            return self.unroll_lr, (0.9, 0.999), 1e-8, {}
        first = optimizer.param_groups[0]
        lr = self.unroll_lr if self.unroll_lr is not None else float(first["lr"])
        betas = tuple(first.get("betas", (0.9, 0.999)))
        eps = float(first.get("eps", 1e-8))
        state: dict[str, dict[str, Any]] = {}
        if self.unroll_optimizer == "adam" and "betas" in first:
            for name, p in self.discriminator.named_parameters():
                s = optimizer.state.get(p, {})
                if "exp_avg" in s:
                    state[name] = {"step": int(s["step"]), "exp_avg": s["exp_avg"].detach(),
                                   "exp_avg_sq": s["exp_avg_sq"].detach()}
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"unrolled steps need a positive lr, got {lr}")
        return lr, (float(betas[0]), float(betas[1])), eps, state
