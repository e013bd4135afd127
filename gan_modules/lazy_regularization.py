"""The two ways of applying a lazy regularizer (StyleGAN2, section 4.1) and the optimizer correction.

A lazy penalty runs every ``interval``-th step of a player, multiplied by ``interval`` so that its
average strength is unchanged. :class:`~gan_modules.base.GANModule` offers two mechanics
(``lazy_regularization``):

* ``"added"``: the scaled penalty is added to that step's loss, so the player makes one optimizer
  step on ``g + interval * g_reg``. With Adam at β1 = 0 this normalises the sum, which equals the
  official update only on average.
* ``"separate"``: stylegan2-ada-pytorch's ``training/training_loop.py`` (the ``Dmain``/``Dreg`` and
  ``Gmain``/``Greg`` phases): the regular step, then on regularization steps a second step of the same
  optimizer on the scaled penalty alone. Because such a player makes ``interval + 1`` optimizer steps
  per ``interval`` batches, its Adam runs at ``lr * r`` and ``betas ** r`` with
  ``r = interval / (interval + 1)`` (``mb_ratio`` there), which :func:`scale_for_lazy_steps` applies.
"""

from __future__ import annotations

from typing import Any

LAZY_MODES = ("added", "separate")


def check_lazy_mode(mode: str) -> None:
    """Raises ValueError naming the option when ``mode`` is not one of :data:`LAZY_MODES`."""
    if mode not in LAZY_MODES:
        raise ValueError(f"lazy_regularization must be one of {', '.join(LAZY_MODES)}, got '{mode}'")


def minibatch_ratio(interval: int) -> float:
    """``interval / (interval + 1)``: the fraction of a lazily regularized player's steps that are regular."""
    if interval < 1:
        raise ValueError(f"a regularization interval must be >= 1, got {interval}")
    return interval / (interval + 1)


def scale_for_lazy_steps(optimizer: Any, interval: int) -> None:
    """Multiplies every param group's ``lr`` by ``r`` and raises its ``betas`` to the power ``r``.

    Args:
        optimizer: a torch optimizer, changed in place (groups without ``betas`` keep their other keys).
        interval: the player's regularization interval; ``r = interval / (interval + 1)``.
    """
    ratio = minibatch_ratio(interval)
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * ratio
        if "betas" in group:
            group["betas"] = tuple(beta**ratio for beta in group["betas"])
