"""Discriminator regularizers: gradient penalties, weight clipping, drift.

The penalties differentiate D's output with respect to its input through
``torch.autograd.grad(create_graph=True)``, so the returned scalar backpropagates into D's
parameters. They return the bare penalty: the caller multiplies by its weight (λ, γ/2, ...), so one
function serves every paper's convention.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def _per_sample_grad_sq_norm(outputs: Tensor, inputs: Tensor, scale: float = 1.0) -> Tensor:
    """``||∇_x D(x)||²`` per sample, shape ``[N]``; keeps the graph so the result can be backpropagated.

    ``scale`` (the loss scale under float16 mixed precision) multiplies the outputs before the
    differentiation and divides the gradients after it, so small input gradients do not underflow
    in float16; the norm is taken in float32.
    """
    # Summing over the batch gives each sample's own gradient since samples do not interact in D
    # (true for D without batch statistics, e.g. eval-mode BN, LayerNorm, no norm).
    total = outputs.sum()
    (grad,) = torch.autograd.grad(outputs=_at_least_float32(total) * scale, inputs=inputs, create_graph=True)
    return (_at_least_float32(grad) / scale).pow(2).flatten(1).sum(1)


def _at_least_float32(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
    scale: float = 1.0,
) -> Tensor:
    """WGAN-GP two-sided penalty (Gulrajani et al. 2017): ``E[(||∇ D(x̂)||₂ - 1)²]``.

    ``x̂ = ε·real + (1-ε)·fake`` with ``ε ~ U[0, 1]`` drawn once per sample.

    Args:
        discriminator: maps ``[N, *sample_shape]`` to logits (any shape with leading ``N``); may be a
            lambda closing over labels for conditional D.
        real: real samples ``[N, *sample_shape]``.
        fake: generated samples, same shape; detached here (the penalty trains D only).
        generator: optional RNG for ``ε`` (reproducible tests).
        scale: loss scale of float16 mixed precision (``GANModule.penalty_scale()``); 1 otherwise.

    Returns:
        Scalar ``>= 0``, NOT multiplied by λ (the paper uses λ = 10).
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    grad_norm = _per_sample_grad_sq_norm(discriminator(mixed), mixed, scale).add(1e-12).sqrt()
    return (grad_norm - 1).pow(2).mean()


def zero_centered_penalty(inputs: Tensor, logits: Tensor, scale: float = 1.0) -> Tensor:
    """Zero-centred gradient penalty ``E ||∇_x D(x)||²``: R1 on real samples (Mescheder et al. 2018),
    R2 on generated ones (used together by R3GAN, Huang et al. 2024).

    The caller must set ``inputs.requires_grad_(True)`` (for fakes: ``fake.detach().requires_grad_(True)``)
    BEFORE computing ``logits = D(inputs)``, otherwise there is no graph from the inputs to the logits.

    Args:
        inputs: the samples D judged, ``[N, *sample_shape]``, with ``requires_grad`` set.
        logits: ``D(inputs)``, any shape with leading ``N``.
        scale: loss scale of float16 mixed precision (``GANModule.penalty_scale()``); 1 otherwise.

    Returns:
        Scalar ``>= 0``, the mean squared gradient norm; the caller multiplies by ``γ/2``.
    """
    if not inputs.requires_grad:
        raise ValueError("zero_centered_penalty (R1 / R2): call inputs.requires_grad_(True) before computing "
                         "the logits")
    return _per_sample_grad_sq_norm(logits, inputs, scale).mean()


# The papers' names: R1 penalizes D's gradient on the reals, R2 on the fakes; the formula is the same.
r1_penalty = zero_centered_penalty
r2_penalty = zero_centered_penalty


def clip_weights(module: nn.Module, clip_value: float) -> None:
    """Clamps every parameter of ``module`` to ``[-clip_value, clip_value]`` in place (WGAN, Arjovsky 2017; c = 0.01).

    Call after each optimizer step of the critic.
    """
    if clip_value <= 0:
        raise ValueError(f"clip_weights: clip_value must be positive, got {clip_value}")
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.clamp_(-clip_value, clip_value)


def drift_penalty(real_logits: Tensor) -> Tensor:
    """ProGAN's drift term ``E r²`` (Karras et al. 2018): keeps critic outputs near 0.

    Returns:
        Scalar ``>= 0``; the caller multiplies by ``ε_drift`` (0.001 in the paper).
    """
    return real_logits.pow(2).mean()
