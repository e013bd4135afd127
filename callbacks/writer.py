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
    for conditional models (an ImageFolder layout that ``ImageFolderDataModule`` reads back; class
    folders are zero-padded, ``00`` .. ``99`` for 100 classes, so sorted names keep the label order). Vector
    samples (2D toy data) go to ``<output_dir>/points.csv``, one ``index,x,y`` row each.

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
        folder = self.folder(trainer)
        if images.dim() == 2:
            self._write_points(folder / "points.csv", prediction["index"].tolist(), images.detach().cpu().tolist())
            return
        if images.dim() != 4:
            raise ValueError(f"ImageWriter writes images [N, C, H, W] or points [N, D]; got {tuple(images.shape)}")
        labels = prediction.get("label")
        for i, (index, image) in enumerate(zip(prediction["index"].tolist(), to_uint8(images), strict=True)):
            subfolder = folder / self.class_folder(int(labels[i]), pl_module.num_classes) if labels is not None else folder
            save_png(image, subfolder / f"{index:06d}.png")

    @staticmethod
    def class_folder(label: int, num_classes: int) -> str:
        """The class folder's name, zero-padded to the digits of ``num_classes - 1`` ("07" of 100 classes),
        so that the name order an ImageFolder reader sorts by is the label order."""
        return f"{label:0{len(str(max(num_classes - 1, 0)))}d}"

    @staticmethod
    def _write_points(path: Path, indices: list[int], points: list[list[float]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists() or indices[0] == 0  # the first batch starts the file afresh
        with path.open("w" if new else "a") as f:
            if new:
                f.write("index," + ",".join(f"x{d}" for d in range(len(points[0]))) + "\n")
            for index, point in zip(indices, points, strict=True):
                f.write(f"{index}," + ",".join(f"{v:.6g}" for v in point) + "\n")
