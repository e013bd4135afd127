"""Logging a callback's values where ``LightningModule.log`` is not available (after fit)."""

from __future__ import annotations

import lightning as L
import torch


def log_after_fit(trainer: L.Trainer, values: dict[str, float]) -> None:
    """Sends ``values`` to every logger at the trainer's last step and into ``trainer.callback_metrics``
    (``on_train_end`` cannot call ``self.log``), so checkpoint monitors and scripts still see them."""
    for logger in trainer.loggers:
        logger.log_metrics(values, step=trainer.global_step)
    trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})
