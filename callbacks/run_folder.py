"""A run's folder: what marks it as holding a run, the lock of a live run, reading checkpoints with
errors that name the file, and comparing a resumed run's settings with the checkpoint's.

Used by ``train.py``; plain Python and torch, no Lightning, so it can be tested and reused alone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import yaml

LOCK = ".run.lock"
# What a fit writes into its folder; any of these means the folder holds a run.
RUN_FILES = ("checkpoints", "samples", "metrics.jsonl", "config.yaml", "hparams.yaml")
# Settings that may differ between a checkpoint's run and its resumed run, because they take effect
# (the stop, compilation, loader workers, how many images `predict` writes). trainer.* and the
# callbacks are not compared at all: they are not part of the checkpoint's training state.
RESUMABLE_CHANGES = ("model.init_args.max_generator_steps", "model.init_args.compile",
                     "model.init_args.compile_backend", "data.init_args.num_workers", "data.init_args.predict_samples")
_LINKED = ("sample_shape", "num_classes", "input_shape")  # filled in from the data by train.py


class RunFolderError(RuntimeError):
    """A fit was refused because of the state of its run folder."""


def process_rank() -> int:
    """This process's global rank as the launcher's environment tells it (0 when launched alone).

    Read before Lightning starts, so that only one process of a multi-process run guards the folder:
    torchrun sets ``RANK``, Lightning's own launcher ``LOCAL_RANK`` (and ``NODE_RANK``), SLURM
    ``SLURM_PROCID``.
    """
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "JSM_NAMESPACE_RANK"):
        value = os.environ.get(key)
        if value not in (None, "", "0"):
            try:
                return int(value)
            except ValueError:
                continue
    return 0


def run_contents(root: str | Path) -> list[str]:
    """The entries of ``root`` that a fit writes (empty when the folder holds no run)."""
    root = Path(root)
    found = [name for name in RUN_FILES if (root / name).exists()]
    found += sorted(p.name for p in root.glob("events.out.tfevents.*"))
    return found


def clear_run(root: str | Path) -> None:
    """Deletes what a fit wrote into ``root`` (``--overwrite true``); other files are left alone."""
    root = Path(root)
    for name in run_contents(root):
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``<root>/.run.lock``: one live fit per folder.

    Created atomically (``O_EXCL``), holding the owner's host, pid and start time. A lock left by a
    process that no longer exists on this host (a killed run) is taken over; a live one, or one from
    another host (whose process cannot be checked from here), is an error naming its owner.
    """

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root) / LOCK
        self.held = False

    def acquire(self) -> list[str]:
        """Takes the lock; returns warnings (a stale lock taken over). Raises RunFolderError."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        warnings: list[str] = []
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                fd = None
            if fd is None:
                owner = self.owner()
                pid = owner.get("pid")
                # dead, or this very process (an earlier run in it that ended without releasing)
                if owner.get("host") == me["host"] and isinstance(pid, int) and (pid == me["pid"] or not _pid_alive(pid)):
                    warnings.append(f"'{self.path}' was left by process {pid} (started {owner.get('started')}), "
                                    "which no longer runs; taking it over")
                    self.path.unlink(missing_ok=True)
                    continue
                if not owner:  # unreadable: a lock being written this instant, or a broken one
                    raise RunFolderError(f"'{self.path}' exists but cannot be read; if no run is using "
                                         f"'{self.path.parent}', delete the file and start again")
                raise RunFolderError(
                    f"another run is writing to '{self.path.parent}' (process {pid} on "
                    f"{owner.get('host')}, started {owner.get('started')}). Wait for it, or give this run its own "
                    f"folder with --trainer.default_root_dir; if that process is dead, delete '{self.path}'")
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            self.held = True
            return warnings
        raise RunFolderError(f"could not take '{self.path}'")

    def owner(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self.held:
            if self.owner().get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False


def read_checkpoint(path: str | Path, what: str = "--ckpt_path") -> dict[str, Any]:
    """:func:`gan_modules.export.read_checkpoint` (``weights_only``; every failure names the file), with
    the option the path came from in the message."""
    from gan_modules.export import read_checkpoint as read

    try:
        return read(path)
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"{what}: {exc}") from exc


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists of dicts are indexed (``a.0.b``)."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(tree, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in tree):
        for i, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = list(tree) if isinstance(tree, tuple) else tree
    return out


def recorded_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The ``{"model": ..., "data": ...}`` config a checkpoint's run recorded (None: none recorded)."""
    state = (checkpoint.get("callbacks") or {}).get("RunCheckpoint") or {}
    text = state.get("run_config")
    return yaml.safe_load(text) if text else None


def config_changes(recorded: dict[str, Any], requested: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Compares the model and data settings of a checkpoint's run with a resumed run's.

    Returns:
        ``(refused, accepted)``: lines ``key: old -> new``; accepted ones are in ``RESUMABLE_CHANGES``.
    """
    old = {k: v for k, v in flatten({s: recorded.get(s) for s in ("model", "data")}).items()}
    new = {k: v for k, v in flatten({s: requested.get(s) for s in ("model", "data")}).items()}
    refused, accepted = [], []
    for key in sorted(set(old) | set(new)):
        if key.rsplit(".", 1)[-1] in _LINKED and key.count("init_args") >= 2:
            continue  # a network's shape, linked from the data
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if a == b or (a in (None, "<unset>") and b in (None, "<unset>")):
            continue
        line = f"{key}: {a!r} (checkpoint) -> {b!r} (now)"
        (accepted if key in RESUMABLE_CHANGES else refused).append(line)
    return refused, accepted


def hparam_changes(hparams: dict[str, Any], model_args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The same comparison for checkpoints without a recorded config: the model's saved scalars."""
    recorded = {"model": {"init_args": {k: v for k, v in hparams.items() if not k.startswith("_")}}}
    requested = {"model": {"init_args": {k: model_args.get(k) for k in recorded["model"]["init_args"]}}}
    return config_changes(recorded, requested)
