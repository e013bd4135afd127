"""ImageWriter: ``train.py predict`` writes each generated sample to a PNG file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

from callbacks.images import save_png, to_uint8
from callbacks.sample_grid import run_dir


class ImageWriter(BasePredictionWriter):
    """Writes predictions as ``<output_dir>/<index>.png``, or ``<output_dir>/<class>/<index>.png``
    for conditional models (an ImageFolder layout that ``ImageFolderDataModule`` reads back).

    Args:
        output_dir: the folder; by default ``<run dir>/predictions``.
    """

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir

    def folder(self, trainer: L.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else run_dir(trainer) / "predictions"

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: Any, prediction: Any, batch_indices: Any,
                           batch: Any, batch_idx: int, dataloader_idx: int) -> None:
        images = prediction["image"]
        if images.dim() != 4:
            raise ValueError(f"ImageWriter writes images [N, C, H, W]; the model predicted {tuple(images.shape)}")
        folder = self.folder(trainer)
        labels = prediction.get("label")
        for i, (index, image) in enumerate(zip(prediction["index"].tolist(), to_uint8(images), strict=True)):
            subfolder = folder / str(int(labels[i])) if labels is not None else folder
            save_png(image, subfolder / f"{index:06d}.png")
