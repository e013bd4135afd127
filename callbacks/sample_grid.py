"""SampleGrid: PNG sample grids (or scatter plots for 2D data) from the fixed latent batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from callbacks.image_logging import log_image
from callbacks.images import image_grid, save_png, scatter_plot


def run_dir(trainer: L.Trainer) -> Path:
    """The folder of this run: the logger's log_dir, else the trainer's default_root_dir.

    Under DDP ``trainer.log_dir`` is a collective (it broadcasts rank 0's path): call it on every rank.
    """
    return Path(trainer.log_dir or trainer.default_root_dir)


class SampleGrid(L.Callback):
    """Every ``every_n_generator_steps`` generator steps, and at the end of fit, writes samples.

    Images come from the model's fixed latent batch (a buffer of the module, so a resumed run shows
    the same latents), through the EMA generator when there is one. A conditional model gets a row
    per class. 2D data gets a scatter plot of ``num_points`` samples over the data's modes. Files go
    to ``<run dir>/samples/step_<generator steps>.png`` and ``last.png``; every logger that takes
    images gets it too, at the generator step (TensorBoard, W&B, MLflow; a CSV logger gets the PNG's
    path as ``samples_path``: ``callbacks.image_logging``). Only rank 0 writes.

    Args:
        every_n_generator_steps: the interval in generator steps; 0 writes only at the end of fit.
        num_points: points in a 2D scatter plot.
        dirname: the subfolder of the run dir.
    """

    def __init__(self, every_n_generator_steps: int = 500, num_points: int = 2500, dirname: str = "samples") -> None:
        self.every_n_generator_steps = every_n_generator_steps
        self.num_points = num_points
        self.dirname = dirname
        self._last_written = -1

    def render(self, trainer: L.Trainer, pl_module: Any) -> torch.Tensor:
        """The uint8 ``[3, H, W]`` picture for the current generator."""
        if len(pl_module.sample_shape) == 1:
            seeded = torch.Generator().manual_seed(pl_module.sample_seed)
            points = pl_module.sample(self.num_points, generator=seeded)
            modes = getattr(trainer.datamodule, "modes", None) if trainer.datamodule is not None else None
            return scatter_plot(points[:, :2], modes)
        images, nrow = pl_module.grid_images()
        return image_grid(images, nrow=nrow)

    def write(self, trainer: L.Trainer, pl_module: Any) -> Path | None:
        step = pl_module.generator_steps
        if step == self._last_written:
            return None
        self._last_written = step
        folder = run_dir(trainer) / self.dirname  # trainer.log_dir broadcasts under DDP: every rank calls it
        if not trainer.is_global_zero:  # sampling runs no collective, so other ranks can skip it
            return None
        picture = self.render(trainer, pl_module)
        path = save_png(picture, folder / f"step_{step:07d}.png")
        save_png(picture, folder / "last.png")
        log_image(trainer.loggers, "samples", picture, step, path)
        return path

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n = self.every_n_generator_steps
        if n > 0 and pl_module.generator_steps > 0 and pl_module.generator_steps % n == 0:
            self.write(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.write(trainer, pl_module)
