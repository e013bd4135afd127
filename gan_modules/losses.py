"""Adversarial losses on discriminator LOGITS, one pure function per (loss, player).

Every function takes raw logits (never sigmoid outputs: ``softplus``/BCE-with-logits on logits is
numerically stable, ``log(sigmoid(x))`` is not) of any shape (``[N]`` or PatchGAN maps
``[N, 1, h, w]``) and returns a scalar: the mean over all elements.

Sign convention: a larger logit means "more real" for every loss here.

Every generator function has the signature ``g(fake_logits, real_logits=None)`` so that a caller can
always pass both; only the relativistic loss (``rpgan``) uses ``real_logits`` and it requires them
(``AdversarialLoss.needs_real_for_g`` says which).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------- minimax / non-saturating


def minimax_d(real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Discriminator loss of the original GAN (Goodfellow et al. 2014), minimised by D.

    ``BCE(sigmoid(r), 1) + BCE(sigmoid(f), 0) = softplus(-r) + softplus(f)``, each averaged. With
    one-sided label smoothing ``s`` (Salimans et al. 2016) the real target is ``t = 1 - s``:
    ``BCE(sigmoid(r), t) = t softplus(-r) + (1 - t) softplus(r)``; the fake target stays 0.

    Args:
        real_logits: D's logits on real samples, any shape; larger = more real.
        fake_logits: D's logits on generated samples, any shape; larger = more real.
        label_smoothing: ``s`` in ``[0, 1)``; 0.1 makes the real target 0.9.

    Returns:
        Scalar in ``[0, inf)``; ``2 log 2`` at ``r = f = 0``.
    """
    if label_smoothing == 0.0:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    target = 1.0 - label_smoothing
    real = target * F.softplus(-real_logits) + (1.0 - target) * F.softplus(real_logits)
    return real.mean() + F.softplus(fake_logits).mean()


def minimax_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Saturating generator loss of Goodfellow et al. 2014: ``mean(log(1 - sigmoid(f)))``, minimised by G.

    Computed stably as ``-softplus(f)``. Its gradient vanishes when D confidently rejects the fakes
    (``f -> -inf``), which is why :func:`nonsaturating_g` is used in practice.

    Args:
        fake_logits: D's logits on generated samples, any shape; larger = more real.
        real_logits: ignored (uniform signature).

    Returns:
        Scalar in ``(-inf, 0]``.
    """
    del real_logits
    return -F.softplus(fake_logits).mean()


def nonsaturating_d(real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Discriminator loss of the non-saturating GAN: identical to :func:`minimax_d`."""
    return minimax_d(real_logits, fake_logits, label_smoothing)


def nonsaturating_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Non-saturating generator loss ``-mean(log(sigmoid(f))) = mean(softplus(-f))``, minimised by G.

    Args:
        fake_logits: D's logits on generated samples, any shape; larger = more real.
        real_logits: ignored (uniform signature).

    Returns:
        Scalar in ``[0, inf)``.
    """
    del real_logits
    return F.softplus(-fake_logits).mean()


# --------------------------------------------------------------------------- least squares


def lsgan_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """LSGAN discriminator loss (Mao et al. 2017, ``a=0, b=1``): ``0.5 E(r-1)^2 + 0.5 E f^2``.

    Args:
        real_logits: D's raw outputs on real samples (target 1); larger = more real.
        fake_logits: D's raw outputs on generated samples (target 0).

    Returns:
        Scalar in ``[0, inf)``.
    """
    return 0.5 * (real_logits - 1).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()


def lsgan_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """LSGAN generator loss (``c=1``): ``0.5 E(f-1)^2``; ``real_logits`` is ignored.

    Returns:
        Scalar in ``[0, inf)``.
    """
    del real_logits
    return 0.5 * (fake_logits - 1).pow(2).mean()


# --------------------------------------------------------------------------- Wasserstein / hinge


def wasserstein_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """WGAN critic loss (Arjovsky et al. 2017): ``E f - E r``; larger critic value = more real.

    Needs a Lipschitz constraint on D (weight clipping or a gradient penalty, see ``regularizers``).

    Returns:
        Unbounded scalar; its negation estimates the Wasserstein-1 distance.
    """
    return fake_logits.mean() - real_logits.mean()


def wasserstein_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """WGAN generator loss: ``-E f``; ``real_logits`` is ignored. Unbounded scalar."""
    del real_logits
    return -fake_logits.mean()


def hinge_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018): ``E relu(1-r) + E relu(1+f)``.

    Larger logit = more real; the loss is 0 once reals score >= 1 and fakes <= -1.

    Returns:
        Scalar in ``[0, inf)``.
    """
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Hinge generator loss: ``-E f`` (same as WGAN's); ``real_logits`` is ignored. Unbounded scalar."""
    del real_logits
    return -fake_logits.mean()


# --------------------------------------------------------------------------- relativistic pairing


def rpgan_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Relativistic pairing discriminator loss (Jolicoeur-Martineau 2018; R3GAN, Huang et al. 2024).

    ``E softplus(-(r - f))``: D wants each real to score higher than the fake it is paired with
    (elementwise, so both tensors must have the same shape). Larger logit = more real.

    Returns:
        Scalar in ``[0, inf)``; ``log 2`` when ``r == f``.
    """
    return F.softplus(fake_logits - real_logits).mean()


def rpgan_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Relativistic pairing generator loss: ``E softplus(-(f - r))``. ``real_logits`` is REQUIRED.

    Args:
        fake_logits: D's logits on generated samples.
        real_logits: D's logits on real samples, same shape, paired elementwise; G's gradient flows
            only through ``fake_logits`` (the caller may detach ``real_logits``).

    Raises:
        ValueError: if ``real_logits`` is None.
    """
    if real_logits is None:
        raise ValueError("rpgan_g needs real_logits: the relativistic loss compares fakes with reals")
    return F.softplus(real_logits - fake_logits).mean()


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class AdversarialLoss:
    """A named pair of loss functions, selected by name with :func:`get_loss`.

    Attributes:
        name: canonical name.
        d: ``d(real_logits, fake_logits) -> scalar``, minimised by the discriminator.
        g: ``g(fake_logits, real_logits=None) -> scalar``, minimised by the generator.
        needs_real_for_g: True when ``g`` requires ``real_logits`` (the caller then runs D on reals
            in the generator step too).
    """

    name: str
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[..., Tensor]
    needs_real_for_g: bool = False

    def g_against(self, fake_logits: Tensor, real_logits_of: Callable[[], Tensor]) -> Tensor:
        """The generator's loss ``g(fake_logits, real_logits)``, running D on the reals only when needed.

        Every family's generator step goes through here, so a relativistic loss works in all of them.

        Args:
            fake_logits: D's logits on the generated samples (with the graph to G).
            real_logits_of: computes D's logits on the reals; called, without gradients (G's gradient
                flows through the fake logits only), only when ``needs_real_for_g``.
        """
        real_logits = None
        if self.needs_real_for_g:
            with torch.no_grad():
                real_logits = real_logits_of()
        return self.g(fake_logits, real_logits)


_LOSSES: dict[str, AdversarialLoss] = {
    loss.name: loss
    for loss in (
        AdversarialLoss("minimax", minimax_d, minimax_g, False),
        AdversarialLoss("nonsaturating", nonsaturating_d, nonsaturating_g, False),
        AdversarialLoss("lsgan", lsgan_d, lsgan_g, False),
        AdversarialLoss("wasserstein", wasserstein_d, wasserstein_g, False),
        AdversarialLoss("hinge", hinge_d, hinge_g, False),
        AdversarialLoss("rpgan", rpgan_d, rpgan_g, True),
    )
}
_ALIASES = {"ns": "nonsaturating"}

LOSS_NAMES: tuple[str, ...] = tuple(sorted(_LOSSES))
"""Canonical loss names accepted by :func:`get_loss` (the alias ``"ns"`` is accepted too)."""


SMOOTHABLE_LOSSES = ("minimax", "nonsaturating")
"""The BCE losses whose real target ``label_smoothing`` can lower."""


def get_loss(name: str, label_smoothing: float = 0.0) -> AdversarialLoss:
    """Returns the :class:`AdversarialLoss` called ``name`` (one of ``LOSS_NAMES`` or ``"ns"``).

    Args:
        name: the loss.
        label_smoothing: one-sided smoothing of the discriminator's real target (``1 - s``) for the BCE
            losses (:data:`SMOOTHABLE_LOSSES`); the generator's loss is unchanged.

    Raises:
        ValueError: for an unknown name (the message lists the valid names), or a ``label_smoothing``
            outside ``[0, 1)`` or given for a loss without BCE targets.
    """
    key = _ALIASES.get(name, name)
    try:
        loss = _LOSSES[key]
    except KeyError:
        raise ValueError(f"unknown loss '{name}'; valid: {', '.join(LOSS_NAMES)}") from None
    if label_smoothing == 0.0:
        return loss
    if not 0.0 < label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if key not in SMOOTHABLE_LOSSES:
        raise ValueError(f"label_smoothing applies to the BCE losses ({', '.join(SMOOTHABLE_LOSSES)}) only; "
                         f"loss '{name}' has no real target to smooth: set label_smoothing to 0")
    return replace(loss, d=partial(loss.d, label_smoothing=label_smoothing))
