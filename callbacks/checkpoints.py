"""RunCheckpoint: the run's checkpoints, each written where the state is one an exact resume can continue.

``train.py`` adds it to every ``fit`` (in place of Lightning's ``ModelCheckpoint(save_last=True)``). It
owns ``<dirpath>/last.ckpt`` and writes it

* every ``every_n_minutes`` of training (default 5) and/or every ``every_n_generator_steps``, so a crash
  loses at most a few minutes of work;
* at the batch where training stops on a step limit (``trainer.max_steps``, ``max_generator_steps``),
  *before* Lightning closes the epoch. Lightning's own end-of-fit save comes after the epoch is
  closed, and a run resumed from it starts the next epoch, skipping the rest of this epoch's data
  order; a checkpoint written at the batch resumes in the middle of the epoch, exactly;
* at the end of each validation during fit and at the end of fit (max_epochs), as ModelCheckpoint did;
* when training fails between two batches (an unreadable file in the data loader): the weights are
  then those of the last finished batch, so the checkpoint is as good as any other. A failure inside
  a batch (the D step done, the G step not) writes nothing, and the last good ``last.ckpt`` stays.

Beside ``last.ckpt`` it keeps, on request, snapshots every ``snapshot_every_kimg`` thousand images
(stylegan2-ada's network snapshots, ``snapshot-kimg0001000.ckpt``), never deleted, and the ``best_k``
checkpoints with the best value of ``monitor`` (e.g. ``metrics/fid`` from ``GenerativeMetrics``),
``best-fid-0.1234-step0001200.ckpt``, the worse ones deleted as better ones come. All of them are
written at a batch end, so ``--ckpt_path`` on any of them resumes exactly.

Before every write the ``DivergenceGuard`` of the run (if any) checks the weights, so a diverged model
never replaces a good checkpoint. Every rank calls the hooks (a save is a collective: every rank's RNG
state is gathered); rank 0 writes. A write that fails (disk full) raises an error naming the file; the
checkpoint it was replacing is intact, because Lightning writes to a temporary file and renames it.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from callbacks.guards import DivergenceError

log = logging.getLogger(__name__)

LAST = "last.ckpt"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (e.g. the disk is full)."""


class RunCheckpoint(Checkpoint):
    """Writes ``last.ckpt`` (and optional snapshots and best-k checkpoints) at exactly resumable points.

    Args:
        dirpath: the folder of the checkpoints; ``<default_root_dir>/checkpoints`` when None.
        every_n_minutes: write ``last.ckpt`` when this many minutes of training have passed since the
            last write (checked every ``check_every_n_batches`` batches, all ranks agreeing); None: never.
        every_n_generator_steps: also write it every this many generator steps; None: never.
        snapshot_every_kimg: keep a snapshot every this many thousand images seen; None: no snapshots.
        best_k: keep the ``best_k`` checkpoints with the best ``monitor`` value; 0: none.
        monitor: the logged metric that ranks the best-k checkpoints.
        mode: ``"min"`` (FID, KID) or ``"max"`` (IS).
        on_validation: write ``last.ckpt`` at the end of each validation during fit.
        check_every_n_batches: how often the ranks agree on the time-based write (one all-reduce).
    """

    def __init__(self, dirpath: str | None = None, every_n_minutes: float | None = 5.0,
                 every_n_generator_steps: int | None = None, snapshot_every_kimg: float | None = None,
                 best_k: int = 0, monitor: str = "metrics/fid", mode: str = "min", on_validation: bool = True,
                 check_every_n_batches: int = 10) -> None:
        if every_n_minutes is not None and every_n_minutes <= 0:
            raise ValueError(f"RunCheckpoint: every_n_minutes must be > 0 or None, got {every_n_minutes}")
        if every_n_generator_steps is not None and every_n_generator_steps < 1:
            raise ValueError(f"RunCheckpoint: every_n_generator_steps must be >= 1 or None, got {every_n_generator_steps}")
        if snapshot_every_kimg is not None and snapshot_every_kimg <= 0:
            raise ValueError(f"RunCheckpoint: snapshot_every_kimg must be > 0 or None, got {snapshot_every_kimg}")
        if best_k < 0 or mode not in ("min", "max"):
            raise ValueError(f"RunCheckpoint: need best_k >= 0 and mode 'min' or 'max', got {best_k} and {mode!r}")
        self.dirpath = dirpath
        self.every_n_minutes, self.every_n_generator_steps = every_n_minutes, every_n_generator_steps
        self.snapshot_every_kimg = snapshot_every_kimg
        self.best_k, self.monitor, self.mode = best_k, monitor, mode
        self.on_validation = on_validation
        self.check_every_n_batches = max(1, check_every_n_batches)
        self.last_model_path: str = ""
        self.best: dict[str, float] = {}  # path -> monitor value of the kept best-k checkpoints
        self.run_config: str | None = None  # the resolved model/data config (YAML), set by train.py
        self._last_saved_step = -1
        self._last_time = time.monotonic()
        self._in_batch = False
        self._last_score: float | None = None
        self._snapshot_index = 0

    # ------------------------------------------------------------------------------------------ paths

    def folder(self, trainer: L.Trainer) -> Path:
        return Path(self.dirpath) if self.dirpath else Path(trainer.default_root_dir) / "checkpoints"

    def last_path(self, trainer: L.Trainer) -> Path:
        return self.folder(trainer) / LAST

    # ------------------------------------------------------------------------------------------ writing

    def save(self, trainer: L.Trainer, pl_module: Any, path: Path | None = None, check: bool = True) -> Path:
        """Writes a checkpoint of the current state (``last.ckpt`` by default); every rank must call it."""
        if check:
            for callback in trainer.callbacks:
                verify = getattr(callback, "verify_weights", None)
                if callable(verify):
                    verify(trainer, pl_module)  # raises DivergenceError before anything is written
        path = self.last_path(trainer) if path is None else path
        if path.name == LAST:
            self.last_model_path = str(path)  # part of the saved callback state
            self._last_saved_step = trainer.global_step
            self._last_time = time.monotonic()
        try:
            trainer.save_checkpoint(path)
        except OSError as exc:
            raise CheckpointWriteError(
                f"could not write checkpoint '{path}': {exc}. The file it was replacing (if any) is intact; "
                f"free some space (or set trainer.default_root_dir elsewhere) and resume with --ckpt_path") from exc
        return path

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._last_time = time.monotonic()
        self._last_saved_step = trainer.global_step  # a resumed run has its state on disk already
        if not self.last_model_path and self.last_path(trainer).is_file():
            self.last_model_path = str(self.last_path(trainer))
        every = self.snapshot_every_kimg
        self._snapshot_index = math.floor(getattr(pl_module, "images_seen", 0) / (every * 1000.0)) if every else 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._in_batch = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._in_batch = False
        if getattr(trainer, "fast_dev_run", False):
            return
        g_steps = getattr(pl_module, "generator_steps", trainer.global_step)
        stopping = trainer.should_stop or (0 <= trainer.max_steps <= trainer.global_step)
        due = stopping
        n = self.every_n_generator_steps
        if n and g_steps > 0 and g_steps % n == 0 and outputs_has_generator_step(outputs):
            due = True
        if self.every_n_minutes is not None and batch_idx % self.check_every_n_batches == 0:
            elapsed = (time.monotonic() - self._last_time) / 60.0 >= self.every_n_minutes
            # the ranks' clocks differ: agree, so every rank takes part in the same saves
            due = trainer.strategy.reduce_boolean_decision(elapsed, all=False) or due
        if due:
            self.save(trainer, pl_module)
        self._snapshot(trainer, pl_module)
        self._keep_best(trainer, pl_module)

    def _snapshot(self, trainer: L.Trainer, pl_module: Any) -> None:
        every = self.snapshot_every_kimg
        if every is None:
            return
        index = math.floor(getattr(pl_module, "images_seen", 0) / (every * 1000.0))
        if index > self._snapshot_index:  # this batch crossed a multiple of `every` kimg
            self._snapshot_index = index
            kimg = index * every
            name = f"snapshot-kimg{int(kimg):07d}.ckpt" if float(kimg).is_integer() else f"snapshot-kimg{kimg:09.2f}.ckpt"
            self.save(trainer, pl_module, self.folder(trainer) / name)

    def _keep_best(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not self.best_k:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        if self._last_score is not None and score == self._last_score:
            return  # not a new measurement
        self._last_score = score
        if not math.isfinite(score):
            return
        better = (lambda a, b: a < b) if self.mode == "min" else (lambda a, b: a > b)
        if len(self.best) >= self.best_k and not any(better(score, v) for v in self.best.values()):
            return
        name = self.monitor.rsplit("/", 1)[-1]
        g_steps = getattr(pl_module, "generator_steps", trainer.global_step)
        path = self.folder(trainer) / f"best-{name}-{score:.4f}-step{g_steps:07d}.ckpt"
        self.best[str(path)] = score
        if len(self.best) > self.best_k:
            worst = max(self.best, key=self.best.get) if self.mode == "min" else min(self.best, key=self.best.get)
            del self.best[worst]
        else:
            worst = None
        self.save(trainer, pl_module, path)
        if worst is not None and trainer.is_global_zero:
            Path(worst).unlink(missing_ok=True)

    def on_validation_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.state.fn != "fit" or trainer.sanity_checking or getattr(trainer, "fast_dev_run", False):
            return
        if self.on_validation and self._last_saved_step != trainer.global_step:
            self.save(trainer, pl_module)
        self._keep_best(trainer, pl_module)  # metrics measured at this validation

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not getattr(trainer, "fast_dev_run", False) and self._last_saved_step != trainer.global_step:
            self.save(trainer, pl_module)

    def on_exception(self, trainer: L.Trainer, pl_module: Any, exception: BaseException) -> None:
        # Between batches (a data loader that raised, a callback at epoch start) the state is that of
        # the last finished batch: save it. Inside a batch it may be half a step: keep the last good file.
        # SIGTERM is Preemption's; a divergence must not be saved; under DDP one rank's error cannot
        # join the collective a save needs.
        if (self._in_batch or not trainer.training or getattr(trainer, "fast_dev_run", False)
                or isinstance(exception, (SIGTERMException, DivergenceError, CheckpointWriteError, KeyboardInterrupt))
                or trainer.world_size > 1 or self._last_saved_step == trainer.global_step):
            return
        try:
            path = self.save(trainer, pl_module)
        except Exception as exc:  # noqa: BLE001 (the original error is the one to report)
            log.error(f"could not save a checkpoint after the error: {exc}")
            return
        step = getattr(pl_module, "generator_steps", trainer.global_step)
        log.error(f"training failed between batches; saved {path} at generator step {step} "
                  "(the last finished batch): fix the cause and resume with --ckpt_path last")

    # ------------------------------------------------------------------------------------------ state

    @property
    def state_key(self) -> str:
        return "RunCheckpoint"

    def state_dict(self) -> dict[str, Any]:
        return {"last_model_path": self.last_model_path, "best": dict(self.best), "run_config": self.run_config}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))


def outputs_has_generator_step(outputs: Any) -> bool:
    """Whether the batch made a generator step (its outputs carry ``loss/G``; True when unknown)."""
    return not isinstance(outputs, dict) or "loss/G" in outputs or "loss/D" not in outputs


def find_run_checkpoint(trainer: L.Trainer) -> RunCheckpoint | None:
    for callback in trainer.callbacks:
        if isinstance(callback, RunCheckpoint):
            return callback
    return None
