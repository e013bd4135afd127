"""The state :class:`gan_modules.base.GANModule` keeps besides the weights: the generator EMA's
coefficient and update, and the random-number streams that checkpoints carry so that a resumed run
draws what the uninterrupted one drew. Pure torch / numpy / random, no Lightning.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn


def ema_beta(batch_size: int, images_seen: int, decay: float | None, half_life_kimg: float | None,
             rampup: float | None) -> float:
    """The EMA coefficient for one generator step; a pure function of the step's inputs.

    Either a constant ``decay`` or a half-life in thousands of images (stylegan2-ada's ``ema_kimg``):
    ``beta = 0.5 ** (batch_size / half_life_images)``, so the half-life does not depend on the batch
    size. ``rampup`` caps the half-life at ``rampup * images_seen`` early in training.
    """
    if half_life_kimg is None:
        return float(decay if decay is not None else 0.0)
    half_life = half_life_kimg * 1000.0
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """``ema <- beta * ema + (1 - beta) * net`` for the parameters; buffers are copied.

    BatchNorm statistics are copied, not averaged (stylegan2-ada does the same).
    """
    for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
        b_ema.copy_(b)


def rng_state() -> dict[str, Any]:
    """The torch, numpy, python (and CUDA) random states of this process.

    numpy's state is stored as tensors and ints so that checkpoints load with ``weights_only=True``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores what :func:`rng_state` returned (CUDA only where the device count matches)."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_rank(rank: int) -> None:
    """Gives rank ``r > 0`` its own random stream (``seed_everything`` seeds every rank alike, which would
    make all ranks draw the same latents); rank 0 keeps the single-process stream."""
    if rank == 0:
        return
    seed = (torch.initial_seed() + 1_000_003 * rank) % (2**32)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def restore_rng(rank: int, world: int, saved: dict[str, Any] | None,
                saved_per_rank: list[dict[str, Any]] | None) -> str | None:
    """Sets this process's random streams when training starts, from a checkpoint's states if any.

    Each rank gets back its own saved state when the checkpoint has one per rank for this world size;
    otherwise every rank gets the single saved state and ranks > 0 are then re-seeded apart (the
    returned message says so, for a warning); a fresh run re-seeds ranks > 0 apart.
    """
    if saved_per_rank is not None and len(saved_per_rank) == world:
        set_rng_state(saved_per_rank[rank])
        return None
    if saved is not None:
        set_rng_state(saved)
        if world > 1:
            seed_rank(rank)
            return (f"the checkpoint holds RNG states for {len(saved_per_rank or [1])} process(es), this run has "
                    f"{world}: ranks > 0 draw new random streams")
        return None
    if world > 1:
        seed_rank(rank)
    return None
