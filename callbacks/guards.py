"""DivergenceGuard: stop on a non-finite loss, or a non-finite or exploded weight, before a bad checkpoint is written."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, or a weight that is non-finite or beyond ``max_abs_weight``."""


class DivergenceGuard(L.Callback):
    """Raises :class:`DivergenceError` when a logged loss or a weight stops being finite, or a weight explodes.

    It runs at the end of each training batch, before any checkpoint callback (Lightning orders them
    last), and stops the run with an exception rather than ``should_stop``: a normal stop would let the
    checkpoint callback save the diverged weights over ``last.ckpt``. ``RunCheckpoint`` also calls
    :meth:`verify_weights` before every write, and so do the epoch-end, validation-end and fit-end
    hooks here (where Lightning's own checkpoint callbacks write). The message names the generator
    step, the offending values and the last good checkpoint on disk.

    Divergence does not always reach infinity: Adam at an absurd learning rate drives weights to 1e30
    with finite losses. ``max_abs_weight`` catches that: no healthy GAN weight comes near 1e5
    (equalized-learning-rate weights are N(0, 1), others smaller).

    Args:
        check_weights_every_n_steps: also scan every parameter every this many batches (0: only at
            checkpoint writes). Losses are checked every batch.
        max_abs_weight: a parameter entry larger than this in magnitude is divergence; None: only
            non-finite weights are.
    """

    def __init__(self, check_weights_every_n_steps: int = 100, max_abs_weight: float | None = 1e5) -> None:
        if max_abs_weight is not None and not max_abs_weight > 0:
            raise ValueError(f"DivergenceGuard: max_abs_weight must be > 0 or None, got {max_abs_weight}")
        self.check_weights_every_n_steps = check_weights_every_n_steps
        self.max_abs_weight = max_abs_weight

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
            bad += self.bad_weights(pl_module)
        if bad:
            raise DivergenceError(self._message(trainer, pl_module, bad))

    def bad_weights(self, pl_module: Any) -> list[str]:
        """Descriptions of the parameters that are non-finite or beyond ``max_abs_weight``."""
        params = [(name, p) for name, p in pl_module.named_parameters() if p.numel()]
        if not params:
            return []
        peaks = torch.stack([p.detach().abs().amax().float() for _, p in params])  # NaN propagates through amax
        limit = float("inf") if self.max_abs_weight is None else self.max_abs_weight
        ok = torch.isfinite(peaks) & (peaks <= limit)
        if bool(ok.all()):  # one device sync
            return []
        return [f"weight {name} (max |w| = {peak:.3g})" for (name, _), peak, good in zip(params, peaks.tolist(), ok.tolist(), strict=True)
                if not good]

    def verify_weights(self, trainer: L.Trainer, pl_module: Any) -> None:
        """Raises :class:`DivergenceError` if a weight is bad; checkpoint writers call it first."""
        bad = self.bad_weights(pl_module)
        if bad:
            raise DivergenceError(self._message(trainer, pl_module, bad))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.verify_weights(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.verify_weights(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.verify_weights(trainer, pl_module)

    @staticmethod
    def _message(trainer: L.Trainer, pl_module: Any, bad: list[str]) -> str:
        last_good = None
        for callback in trainer.checkpoint_callbacks:
            last_good = getattr(callback, "last_model_path", None) or getattr(callback, "best_model_path", None) or last_good
        where = f"the last good checkpoint is '{last_good}' (not overwritten)" if last_good else "no checkpoint was written yet"
        shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
        return (f"training diverged at generator step {pl_module.generator_steps} (global step {trainer.global_step}): "
                f"non-finite or exploded {shown}; {where}. Lower the learning rates, add a penalty or gradient clipping, "
                f"and resume with --ckpt_path.")
