"""train.py runs for the run-folder, checkpoint and fault tests: the toy preset at a test's size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

import train

ROOT = Path(__file__).resolve().parents[1]
# 2048 points at batch 256: 8 batches an epoch; no callbacks but train.py's defaults
TOY = ["--config", str(ROOT / "configs" / "gan_mlp_toy_ring.yaml"), "--trainer.enable_progress_bar=false",
       "--trainer.enable_model_summary=false", "--data.init_args.num_samples=2048", "--trainer.callbacks=[]"]


def fit(root: Path, *args: str, base: list[str] = TOY) -> None:
    """``train.py fit`` in-process (the script's code path without an interpreter start)."""
    train.main(["fit", *base, f"--trainer.default_root_dir={root}", *args])


def script(*args: str) -> subprocess.CompletedProcess:
    """``python train.py ...`` itself (tests/ on the path, for the fault-injection callbacks)."""
    # the thread counts of the in-process reference (conftest: torch.set_num_threads(2)); MKL's own would
    # change the order of a BLAS reduction, so the bit-exact comparisons would fail in a shell that sets it
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def last(root: Path) -> dict:
    return load(root / "checkpoints" / "last.ckpt")


def assert_same_weights(a: dict, b: dict) -> None:
    """Two checkpoints hold bit-identical weights (and the same generator step)."""
    assert a["gan"]["generator_steps"] == b["gan"]["generator_steps"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
