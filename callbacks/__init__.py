"""Lightning callbacks: sample grids, generative metrics, divergence guard, prediction writer, preemption."""

from callbacks.checkpoints import CheckpointWriteError, RunCheckpoint
from callbacks.generative_metrics import GenerativeMetrics
from callbacks.guards import DivergenceError, DivergenceGuard
from callbacks.memory_format import ChannelsLast
from callbacks.preemption import Preemption
from callbacks.sample_grid import SampleGrid
from callbacks.writer import ImageWriter

__all__ = ["ChannelsLast", "CheckpointWriteError", "RunCheckpoint", "DivergenceError", "DivergenceGuard", "GenerativeMetrics", "ImageWriter", "Preemption", "SampleGrid"]
