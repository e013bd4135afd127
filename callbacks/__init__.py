"""Lightning callbacks: sample grids, divergence guard, prediction writer."""

from callbacks.guards import DivergenceError, DivergenceGuard
from callbacks.sample_grid import SampleGrid
from callbacks.writer import ImageWriter

__all__ = ["DivergenceError", "DivergenceGuard", "ImageWriter", "SampleGrid"]
