"""DivergenceGuard: stop on a non-finite loss or weight before a bad checkpoint is written."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or weight."""


class DivergenceGuard(L.Callback):
    """Raises :class:`DivergenceError` when a logged loss or a weight stops being finite.

    It runs at the end of each training batch, before ``ModelCheckpoint`` (Lightning orders checkpoint
    callbacks last), and stops the run with an exception rather than ``should_stop``: a normal stop
    would let ``ModelCheckpoint`` save the diverged weights over ``last.ckpt``. The message names the
    generator step, the offending values and the last good checkpoint on disk.

    Args:
        check_weights_every_n_steps: also scan every parameter every this many batches (0: never).
            Losses are checked every batch.
    """

    def __init__(self, check_weights_every_n_steps: int = 100) -> None:
        self.check_weights_every_n_steps = check_weights_every_n_steps

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        bad = []
        if isinstance(outputs, dict):
            values = {k: v for k, v in outputs.items() if isinstance(v, torch.Tensor) and v.is_floating_point()}
            if values:
                finite = torch.stack([torch.isfinite(v).all() for v in values.values()])
                if not bool(finite.all()):  # one device sync per batch, not one per loss
                    bad += [f"{k}={v.float().mean().item()}" for (k, v), ok in zip(values.items(), finite, strict=True) if not ok]
        n = self.check_weights_every_n_steps
        if n and (batch_idx + 1) % n == 0:
            bad += [f"weight {name}" for name, p in pl_module.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise DivergenceError(self._message(trainer, pl_module, bad))

    @staticmethod
    def _message(trainer: L.Trainer, pl_module: Any, bad: list[str]) -> str:
        last_good = None
        for callback in trainer.checkpoint_callbacks:
            last_good = getattr(callback, "last_model_path", None) or getattr(callback, "best_model_path", None) or last_good
        where = f"the last good checkpoint is '{last_good}' (not overwritten)" if last_good else "no checkpoint was written yet"
        shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
        return (f"training diverged at generator step {pl_module.generator_steps} (global step {trainer.global_step}): "
                f"non-finite {shown}; {where}. Lower the learning rates, add a penalty or gradient clipping, "
                f"and resume with --ckpt_path.")
