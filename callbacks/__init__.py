"""Lightning callbacks: sample grids, generative metrics, text-to-image metrics, checkpoints, divergence guard, prediction writer, preemption.

The names below load their module on first use (PEP 562 ``__getattr__``), so importing
``callbacks.metrics`` (metric math, no Lightning) does not import Lightning through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ChannelsLast": "memory_format",
    "CheckpointWriteError": "checkpoints",
    "RunCheckpoint": "checkpoints",
    "DivergenceError": "guards",
    "DivergenceGuard": "guards",
    "GenerativeMetrics": "generative_metrics",
    "ImageWriter": "writer",
    "Preemption": "preemption",
    "SampleGrid": "sample_grid",
    "TextImageMetrics": "text_image_metrics",
}
__all__ = [
    "ChannelsLast", "CheckpointWriteError", "DivergenceError", "DivergenceGuard", "GenerativeMetrics",
    "ImageWriter", "Preemption", "RunCheckpoint", "SampleGrid", "TextImageMetrics",
]

if TYPE_CHECKING:
    from callbacks.checkpoints import CheckpointWriteError, RunCheckpoint
    from callbacks.generative_metrics import GenerativeMetrics
    from callbacks.guards import DivergenceError, DivergenceGuard
    from callbacks.memory_format import ChannelsLast
    from callbacks.preemption import Preemption
    from callbacks.sample_grid import SampleGrid
    from callbacks.text_image_metrics import TextImageMetrics
    from callbacks.writer import ImageWriter


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'callbacks' has no attribute '{name}'")
    return getattr(importlib.import_module(f"callbacks.{_EXPORTS[name]}"), name)
