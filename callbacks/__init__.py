"""Lightning callbacks: sample grids, generative metrics, text-to-image metrics, divergence guard, prediction writer, preemption."""

from callbacks.generative_metrics import GenerativeMetrics
from callbacks.guards import DivergenceError, DivergenceGuard
from callbacks.memory_format import ChannelsLast
from callbacks.preemption import Preemption
from callbacks.sample_grid import SampleGrid
from callbacks.text_image_metrics import TextImageMetrics
from callbacks.writer import ImageWriter

__all__ = ["ChannelsLast", "DivergenceError", "DivergenceGuard", "GenerativeMetrics", "ImageWriter", "Preemption", "SampleGrid",
           "TextImageMetrics"]
