"""ChannelsLast: trains in the NHWC memory layout, which tensor-core convolutions prefer on GPUs."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class ChannelsLast(L.Callback):
    """Converts the module's 4D weights and each batch's images to ``torch.channels_last`` for fit.

    Values are unchanged (only the layout in memory); on NVIDIA GPUs with mixed precision,
    cuDNN's NHWC kernels avoid layout transposes around every convolution. See
    ``benchmarks/throughput.py`` for what it buys on a given machine.
    """

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        pl_module.to(memory_format=torch.channels_last)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if isinstance(batch, dict):
            for key, value in batch.items():
                if isinstance(value, torch.Tensor) and value.dim() == 4:
                    batch[key] = value.contiguous(memory_format=torch.channels_last)
