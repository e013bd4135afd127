"""A callback for the SIGTERM test (imported by train.py in a subprocess, so it lives in its own module)."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L


class Sleep(L.Callback):
    """Marks the run as started after a few batches and slows each batch by 5 ms."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if batch_idx == 5:
            (Path(trainer.default_root_dir) / "started").touch()
        time.sleep(0.005)
