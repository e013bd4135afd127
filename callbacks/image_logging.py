"""Sending a picture to every logger of a run that can take one.

TensorBoard gets ``add_image``, Weights & Biases ``WandbLogger.log_image``, MLflow the image through
``MlflowClient.log_image`` (listed under the run's images at that step), and a CSV run, which has no
image type, the path of the PNG written beside it as a column of ``metrics.csv``. Other loggers are
left alone. Only call it on rank 0 (the loggers write there).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
from torch import Tensor


def log_image(loggers: Iterable[Any], key: str, picture: Tensor, step: int, path: str | Path | None = None) -> None:
    """Logs a uint8 ``[C, H, W]`` picture (C = 1 or 3) under ``key`` at ``step``.

    Args:
        loggers: ``trainer.loggers``.
        key: the name, e.g. ``"samples"``.
        picture: the image.
        step: the x axis (the generator step for sample grids).
        path: where the PNG was written; a CSV logger records it (``<key>_path``), others ignore it.
    """
    array = picture.permute(1, 2, 0).cpu().numpy()
    array = array[..., 0] if array.shape[2] == 1 else array
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, picture, global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[array], step=step)
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_image(logger.run_id, array, key=key, step=step)
        elif isinstance(logger, CSVLogger) and path is not None:
            logger.log_metrics({f"{key}_path": str(path)}, step=step)
