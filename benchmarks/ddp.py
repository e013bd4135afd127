"""GAN-aware DDP against ``ddp_find_unused_parameters_true``: step time and equal results.

What is measured:
    The same preset, the same per-rank batch and the same random numbers (``tests/ddp_worker.py``
    makes latents and WGAN-GP's interpolation weights rank-independent) trained for ``--batches``
    batches on ``--devices`` processes with two strategies:

    * ``gan_ddp``: :class:`gan_modules.GANDDPStrategy`, no DDP wrapper; each player's gradients are
      averaged in one flat all-reduce before its optimizer step;
    * ``ddp_fup``: Lightning's ``ddp_find_unused_parameters_true``: the module wrapped in
      ``DistributedDataParallel``, which searches the autograd graph for unused parameters after each
      backward and all-reduces the gradient buckets of both players at every step.

    Reported per preset and strategy: the median wall time of a training batch on rank 0 (batches
    after the first two; each batch is one D step and, every ``n_critic`` batches, one G step), the
    bytes each strategy all-reduces per batch (from the parameter counts: ours sends one player's
    gradients per step, DDP both players' at every backward), and the largest absolute difference
    between the final weights of the two strategies (equal results: float rounding only).

    The strategies alternate over ``--rounds`` rounds so that background load is shared; each run
    is a fresh set of processes (start-up excluded from the times).

Run:  python benchmarks/ddp.py [--presets dcgan_digits wgan_gp_digits] [--batches 30] [--rounds 2]
      (on a GPU machine add --accelerator gpu; the processes use gloo on CPU, nccl on GPUs)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "ddp_worker.py"
STRATEGIES = {"gan_ddp": "ddp", "ddp_fup": "ddp_find_unused_parameters_true"}


def run(preset: str, strategy: str, devices: int, batch: int, batches: int, out: Path, accelerator: str) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(WORKER), str(ROOT / "configs" / f"{preset}.yaml"), str(out), strategy, str(devices),
            str(batch), str(batches)]
    if accelerator != "cpu":
        args.append(f"--trainer.accelerator={accelerator}")
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{preset} / {strategy} failed:\n{proc.stderr[-3000:]}")
    return torch.load(out / "rank0.pt", weights_only=True)


def player_bytes(state: dict[str, torch.Tensor]) -> tuple[int, int]:
    g = sum(v.numel() * v.element_size() for k, v in state.items() if k.startswith("generator."))
    d = sum(v.numel() * v.element_size() for k, v in state.items() if k.startswith("discriminator."))
    return g, d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["dcgan_digits", "wgan_gp_digits"])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="per-process batch")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args()
    print(f"# {args.devices} processes, accelerator {args.accelerator}, per-process batch {args.batch}, "
          f"{args.batches} batches per run, {args.rounds} rounds; torch {torch.__version__}")
    print("| preset | strategy | ms / batch (median) | min-max over rounds | MB all-reduced / batch | max abs weight diff |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            times: dict[str, list[float]] = {name: [] for name in STRATEGIES}
            finals: dict[str, dict] = {}
            for r in range(args.rounds):
                names = list(STRATEGIES) if r % 2 == 0 else list(reversed(STRATEGIES))
                for name in names:
                    out = Path(tmp) / f"{preset}_{name}_{r}"
                    result = run(preset, STRATEGIES[name], args.devices, args.batch, args.batches, out, args.accelerator)
                    times[name].append(1000 * statistics.median(result["times"]))
                    finals[name] = result
            n_critic = max(1, finals["gan_ddp"]["counters"][1] // max(1, finals["gan_ddp"]["counters"][0]))
            g, d = player_bytes(finals["gan_ddp"]["state"])
            sent = {"gan_ddp": d + g / n_critic, "ddp_fup": (g + d) * (1 + 1 / n_critic)}
            diff = max((finals["gan_ddp"]["state"][k].float() - finals["ddp_fup"]["state"][k].float()).abs().max().item()
                       for k in finals["gan_ddp"]["state"] if finals["gan_ddp"]["state"][k].numel())
            for name in STRATEGIES:
                ts = times[name]
                print(f"| {preset} | {name} | {statistics.median(ts):.1f} | {min(ts):.1f}-{max(ts):.1f} | "
                      f"{sent[name] / 1e6:.2f} | {diff:.2e} |")
            ratio = statistics.median(times["gan_ddp"]) / statistics.median(times["ddp_fup"])
            print(f"| {preset} | gan_ddp / ddp_fup | {ratio:.3f} | | {sent['gan_ddp'] / sent['ddp_fup']:.2f} | |")


if __name__ == "__main__":
    main()
