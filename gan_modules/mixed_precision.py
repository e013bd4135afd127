"""Mixed-precision bookkeeping of GANModule's manual optimisation (``precision: 16-mixed``).

Under ``16-mixed`` Lightning's precision plugin owns a ``torch.amp.GradScaler``: it scales each loss
before ``manual_backward`` and, inside ``optimizer.step()``, unscales the gradients, skips the step
when they hold inf/NaN and then shrinks the scale. These helpers find that scaler, count the steps it
skipped (the scale shrinks exactly when it skipped) and turn the counts into logs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def grad_scaler(trainer: Any) -> Any:
    """The trainer's enabled gradient scaler, or None (every precision but ``16-mixed``)."""
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    return scaler if scaler is not None and scaler.is_enabled() else None


def step_counting_skips(optimizer: Any, scaler: Any, skipped: dict[int, Tensor], index: int) -> None:
    """``optimizer.step()`` under ``scaler``, adding 1 to ``skipped[index]`` when the scaler skipped it.

    The counts are device tensors, so counting costs no synchronisation.
    """
    before = scaler._scale.clone() if scaler._scale is not None else None
    optimizer.step()  # unscale_, skip on inf/NaN, update
    if before is not None:
        was_skipped = (scaler._scale < before).to(torch.long)
        skipped[index] = skipped.get(index, torch.zeros_like(was_skipped)) + was_skipped


def amp_logs(skipped: dict[int, Tensor], names: dict[int, str], scaler: Any) -> dict[str, Any]:
    """``amp/skipped_steps/<optimizer name>`` per optimizer and ``amp/scale``; empty before any count."""
    if not skipped:
        return {}
    logs: dict[str, Any] = {f"amp/skipped_steps/{names.get(i, i)}": n.float() for i, n in skipped.items()}
    logs["amp/scale"] = float(scaler.get_scale())
    return logs
