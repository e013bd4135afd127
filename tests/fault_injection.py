"""Callbacks that inject a fault at a chosen generator step; named in a train.py command line
(``--trainer.callbacks+=fault_injection.SignalAt``) by tests/test_faults.py, with tests/ on PYTHONPATH."""

from __future__ import annotations

import os
import signal

import lightning as L
import torch


class SignalAt(L.Callback):
    """Sends ``signal`` to this process at the end of the batch that makes generator step ``step``."""

    def __init__(self, step: int, signal_name: str = "SIGTERM") -> None:
        self.step, self.signal_name = step, signal_name

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_steps == self.step and "loss/G" in outputs:
            os.kill(os.getpid(), getattr(signal, self.signal_name))


class ExplodeAt(L.Callback):
    """Multiplies the discriminator's weights by 1e9 at the start of the batch after generator step ``step``
    (finite weights, finite losses for a while: the divergence an absurd learning rate causes)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.generator_steps == self.step:
            with torch.no_grad():
                for p in pl_module.discriminator.parameters():
                    p.mul_(1e9)


class CorruptFilesAt(L.Callback):
    """Overwrites every ``.png`` under ``folder`` with garbage at the end of generator step ``step``, so the
    data loader's next read fails (a disk or a sync gone bad mid-run)."""

    def __init__(self, step: int, folder: str) -> None:
        self.step, self.folder = step, folder

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_steps == self.step and "loss/G" in outputs:
            for name in os.listdir(self.folder):
                if name.endswith(".png"):
                    with open(os.path.join(self.folder, name), "wb") as handle:
                        handle.write(b"\x89PNG truncated")


class LogScores(L.Callback):
    """Logs ``scores[i]`` as ``name`` at generator step ``2 * (i + 1)`` (a stand-in for GenerativeMetrics)."""

    def __init__(self, scores: list[float], name: str = "metrics/fid") -> None:
        self.scores, self.name = scores, name

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.generator_steps
        if "loss/G" in outputs and step % 2 == 0 and 0 < step <= 2 * len(self.scores):
            pl_module.log(self.name, self.scores[step // 2 - 1])
