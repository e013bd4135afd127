"""Milliseconds per generator step of a preset, for variants of its command line, measured side by side.

What is measured:
    Each variant is ``train.py fit --config <preset> <variant arguments>`` in a fresh subprocess with
    ``--threads`` torch threads (``OMP_NUM_THREADS``), logger, checkpointing, validation and the
    preset's callbacks off, stopped after ``--warmup + --steps`` generator steps. A callback takes the
    wall-clock time between the first batch after generator step ``--warmup`` and the end of training,
    so start-up, the first steps and tear-down are excluded; the time covers whole steps (data loading,
    the D and G updates, the LR schedulers and the module's logging).

How it is compared:
    The variants run one after another inside each of ``--rounds`` rounds, in an order rotated from
    round to round, so a slowly varying background load is shared. Reported: the median ms/step per
    variant over rounds, and its ratio to the first variant's (the median of per-round ratios).

Usage::

    # the grid preset with its lazy R1/R2 (every 4th D step) against penalties at every step
    python benchmarks/step_time.py configs/rpgan_toy_grid.yaml --variant= \\
        --variant=--model.init_args.reg_interval=1
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
MARK = "STEP_TIME_MS"


class StepTimer(Callback):
    """Prints ``STEP_TIME_MS <ms per generator step after warmup>`` when training ends."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start = warmup, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.start is None and pl_module.generator_steps >= self.warmup:
            self.start, self.first = time.perf_counter(), pl_module.generator_steps

    def on_train_end(self, trainer, pl_module) -> None:
        steps = pl_module.generator_steps - self.first
        print(f"{MARK} {1000 * (time.perf_counter() - self.start) / max(steps, 1):.3f}", flush=True)


def run(preset: Path, variant: str, warmup: int, steps: int, threads: int) -> float:
    """ms per generator step of one variant, measured in a fresh ``train.py`` process."""
    command = [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(preset),
               f"--model.init_args.max_generator_steps={warmup + steps}", "--trainer.max_epochs=-1",
               "--trainer.logger=false", "--trainer.enable_checkpointing=false", "--trainer.limit_val_batches=0",
               "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
               "--trainer.callbacks=[benchmarks.step_time.StepTimer]", f"--trainer.callbacks.warmup={warmup}",
               # every run replaces the last one's folder (train.py refuses a folder that holds a run)
               f"--trainer.default_root_dir={ROOT / 'runs' / 'step_time'}", "--overwrite=true", *shlex.split(variant)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return float(line.split()[1])
    raise RuntimeError(f"{shlex.join(command)} failed:\n{proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", type=Path)
    parser.add_argument("--variant", action="append", default=None,
                        help="train.py arguments of a variant as one string, written --variant='ARGS' (--variant= for the "
                             "preset as it is); repeatable")
    parser.add_argument("--steps", type=int, default=1300, help="timed generator steps per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed generator steps first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    variants = args.variant or [""]
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for variant in order:
            times[variant].append(run(args.preset, variant, args.warmup, args.steps, args.threads))
            print(f"round {r}: {variant or '(preset)'}: {times[variant][-1]:.2f} ms/step", flush=True)
    first = times[variants[0]]
    lines = [f"`python benchmarks/step_time.py {' '.join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))}`"
             f": {args.steps} timed generator steps after {args.warmup}, {args.threads} torch thread(s), "
             f"{args.rounds} rounds.", "", "| variant | ms / G step (median) | ratio to the first |", "| --- | --- | --- |"]
    for variant in variants:
        ratio = statistics.median(t / f for t, f in zip(times[variant], first, strict=True))
        lines.append(f"| {variant or '(preset)'} | {statistics.median(times[variant]):.2f} | {ratio:.3f} |")
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
