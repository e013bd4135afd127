"""Preemption: a signal (SIGTERM, SLURM's requeue signal) saves ``last.ckpt`` at a batch boundary and exits.

Clusters announce the end of a job with a signal: SLURM sends SIGTERM (or, with
``#SBATCH --signal=B:USR1@120``, SIGUSR1 some time before the limit), Kubernetes and ``torchrun``'s
agent SIGTERM. Lightning on its own stops after the batch without a checkpoint on SIGTERM, and its
SLURM handler writes ``hpc_ckpt_*.ckpt`` from inside the signal handler, in the middle of a step
(after D's update, before G's), which a resume cannot continue exactly.

This callback only records the signal in its handler. At the end of the current batch, every rank
agrees (one all-reduce of a flag, so all ranks stop at the same batch), the checkpoint is written to
``<checkpoint folder>/last.ckpt`` (so ``--ckpt_path last`` continues from it exactly, mid-epoch
included), optionally the SLURM job is requeued, and the process exits with status 0 through
Lightning's ``SIGTERMException``, so no epoch-end hook overwrites the checkpoint afterwards.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class Preemption(L.Callback):
    """Saves ``last.ckpt`` and exits cleanly when one of ``signals`` arrives during fit.

    Args:
        signals: signal names to handle, e.g. ``["SIGTERM", "SIGUSR1"]``. Installing a handler for
            SLURM's requeue signal (SIGUSR1 by default) replaces Lightning's mid-step ``hpc`` save.
        requeue: after saving, run ``scontrol requeue $SLURM_JOB_ID`` (rank 0, when in a SLURM job).
        filename: the checkpoint's file name in the ModelCheckpoint folder (default root dir without one).
    """

    def __init__(self, signals: list[str] | None = None, requeue: bool = False, filename: str = "last.ckpt") -> None:
        names = signals if signals is not None else ["SIGTERM"]
        unknown = [n for n in names if not hasattr(signal, n)]
        if unknown:
            raise ValueError(f"Preemption: unknown signal name(s) {unknown}; use names such as SIGTERM or SIGUSR1")
        self.signals = [getattr(signal, n) for n in names]
        self.requeue = requeue
        self.filename = filename
        self.received: int | None = None
        self.saved_path: Path | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        self.received = signum
        previous = self._previous.get(signum)
        if callable(previous):  # e.g. a handler the launcher installed; Lightning composes with ours itself
            previous(signum, frame)

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        # Lightning registers its own SIGTERM handler after on_fit_start and composes it with this one;
        # for SLURM's requeue signal it skips its own when one is already installed.
        self.received, self.saved_path = None, None
        for signum in self.signals:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handler)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        local = self.received is not None or trainer.received_sigterm
        if not trainer.strategy.reduce_boolean_decision(local, all=False):
            return
        self.saved_path = self.checkpoint_path(trainer)
        trainer.save_checkpoint(self.saved_path)  # every rank takes part; rank 0 writes
        step = getattr(pl_module, "generator_steps", trainer.global_step)
        log.warning(f"preempted: saved {self.saved_path} at generator step {step}; resume with --ckpt_path last")
        if self.requeue and trainer.is_global_zero and "SLURM_JOB_ID" in os.environ:
            subprocess.run(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], check=False)
        raise SIGTERMException()

    def on_exception(self, trainer: L.Trainer, pl_module: Any, exception: BaseException) -> None:
        # A signal that lands after on_train_batch_end ran makes Lightning raise at the batch boundary
        # (on every rank together under DDP): the state is still consistent, so save it there.
        if isinstance(exception, SIGTERMException) and self.saved_path is None and trainer.training:
            self.saved_path = self.checkpoint_path(trainer)
            trainer.save_checkpoint(self.saved_path)
            log.warning(f"preempted: saved {self.saved_path}; resume with --ckpt_path last")

    def checkpoint_path(self, trainer: L.Trainer) -> Path:
        """``<checkpoint folder>/<filename>``: the run's ``RunCheckpoint`` folder (or a ModelCheckpoint's).

        The checkpoint callback is told that this is its last checkpoint, so the resumed run overwrites
        it instead of writing ``last-v1.ckpt`` beside it."""
        from callbacks.checkpoints import find_run_checkpoint

        run_checkpoint = find_run_checkpoint(trainer)
        if run_checkpoint is not None:
            path = run_checkpoint.folder(trainer) / self.filename
            if path.name == run_checkpoint.last_path(trainer).name:
                run_checkpoint.last_model_path = str(path)
            return path
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                path = Path(callback.dirpath) / self.filename
                if callback.save_last and self.filename.startswith(callback.CHECKPOINT_NAME_LAST):
                    callback.last_model_path = str(path)
                return path
        return Path(trainer.default_root_dir) / self.filename

    def teardown(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
