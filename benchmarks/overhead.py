"""Framework overhead: our DCGAN training step against a hand-written PyTorch loop.

What is measured:
    The wall-clock time per training batch of the quickstart preset (``configs/dcgan_digits.yaml``:
    ``DCGANGenerator(latent_dim=64, base_channels=32)``, ``DCGANDiscriminator(base_channels=32)``,
    Adam(2e-4, betas (0.5, 0.999)) for both players, non-saturating loss, generator EMA with decay
    0.99, scikit-learn digits upsampled to 32 px, batch 64) for two candidates doing the same math:

    * ``framework``: ``gan_modules.GAN`` fitted by a real ``lightning.Trainer`` on ``DigitsDataModule``
      (manual optimization, toggled optimizers, ``self.log_dict`` per step, Lightning's loops,
      progress tracking and ``LightningOptimizer`` wrappers). The Trainer is built directly, so the
      callbacks ``train.py`` adds (``ModelCheckpoint``, ``DivergenceGuard``) and the config's
      ``SampleGrid`` are absent: this is the bare module, logger off. A third candidate,
      ``framework+guard``, adds ``callbacks.DivergenceGuard()`` (a ``train.py`` default) to show its cost.
    * ``plain``: a hand-written loop over the datamodule's own ``train_dataloader()`` (the same
      dict batches, sampler and seed): D step (``z ~ N(0, I)``, ``fake = G(z)`` under ``no_grad``,
      ``softplus(-D(real)).mean() + softplus(D(fake)).mean()``, zero_grad, backward, step) with G's
      parameters frozen, G step (new ``z``, ``softplus(-D(G(z))).mean()``) with D's parameters frozen,
      then the EMA (``lerp_`` of parameters, ``copy_`` of buffers).

    Every candidate starts each round from deep copies of the same initial networks and the same
    global RNG seed, so both do bit-for-bit the same arithmetic on the same batches; the script checks
    this by comparing the final generator weights of every framework candidate with plain's in each round.

How it is timed:
    Each candidate runs ``warmup + batches`` batches; the time is taken between the end of batch
    ``warmup`` and the end of the last batch (a Callback's ``on_train_batch_end`` for the framework,
    the same point of the hand-written loop for plain), so it covers exactly ``batches`` full
    iterations (data loading, loop bookkeeping, hooks, logging, the two optimizer steps and the EMA)
    and excludes Trainer start-up and tear-down. The candidates are interleaved: every round runs each
    of them once, in an order rotated from round to round, so a varying background load is shared.
    A short untimed pass of every candidate comes first. Reported: the per-candidate median (and min,
    max) of ms/batch over rounds, and the ratio framework/plain as the median of the per-round ratios
    (each round's pair ran back to back), with the min-max of those per-round ratios as its spread.
    Target: <= 1.05.

Other load:
    Interleaving shares a slowly varying background load between the candidates, but on a small
    machine a job that wants the same cores oversubscribes them and slows each run erratically (one
    round can be 10x slower than the next). The script therefore measures, around every run, how many
    cores other processes used (``/proc/stat`` minus its own CPU time), prints it per round, and leaves
    rounds above ``--contended-cores`` (default 0.25) out of the summary, saying so; if every round
    was contended it keeps them all and warns. For numbers to quote, run it on an idle machine.

Usage::

    python benchmarks/overhead.py                      # 5 rounds x (5 warm-up + 40 timed) batches
    python benchmarks/overhead.py --rounds 9 --batches 60 --threads 2 --json overhead.json
    python benchmarks/overhead.py --no-guard           # skip the framework+guard candidate

The default run takes about a minute on 2 idle CPU cores. Per-round timings go to stderr, the
summary (markdown table and ratio) to stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from callbacks import DivergenceGuard  # noqa: E402
from datamodules import DigitsDataModule  # noqa: E402
from gan_modules import GAN  # noqa: E402
from gan_modules.nets import DCGANDiscriminator, DCGANGenerator  # noqa: E402

LR, BETAS, EMA_DECAY, IMAGE_SIZE, LATENT_DIM, BASE_CHANNELS = 2e-4, (0.5, 0.999), 0.99, 32, 64, 32
TARGET = 1.05


def build_networks(seed: int) -> tuple[nn.Module, nn.Module]:
    """The quickstart preset's initial generator and discriminator (to be deep-copied per run)."""
    torch.manual_seed(seed)
    shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    generator = DCGANGenerator(sample_shape=shape, latent_dim=LATENT_DIM, base_channels=BASE_CHANNELS,
                               upsample="transposed")
    discriminator = DCGANDiscriminator(sample_shape=shape, base_channels=BASE_CHANNELS)
    return generator, discriminator


def adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=LR, betas=BETAS)


class BatchTimer(L.Callback):
    """Times ``batches`` consecutive training batches after ``warmup`` ones (end of batch to end of batch)."""

    def __init__(self, warmup: int, batches: int) -> None:
        self.warmup, self.batches = warmup, batches
        self.count = 0
        self.start: float | None = None
        self.stop: float | None = None
        self.threads: int | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.count += 1  # counted across epochs: batch_idx restarts at every epoch
        if self.count == self.warmup:
            self.start = time.perf_counter()
            self.threads = torch.get_num_threads()
        elif self.count == self.warmup + self.batches:
            self.stop = time.perf_counter()


def run_framework(nets: tuple[nn.Module, nn.Module], dm: DigitsDataModule, warmup: int, batches: int,
                  seed: int, guard: bool) -> tuple[float, nn.Module]:
    """Fits ``GAN`` with a real Trainer; returns (seconds per timed batch, trained generator)."""
    generator, discriminator = (copy.deepcopy(net) for net in nets)
    model = GAN(generator, discriminator, loss="nonsaturating", ema_decay=EMA_DECAY, g_optimizer=adam,
                d_optimizer=adam)
    timer = BatchTimer(warmup, batches)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=2 * (warmup + batches),  # two optimizer steps per batch
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[timer, DivergenceGuard()] if guard else [timer],
    )
    torch.manual_seed(seed)
    trainer.fit(model, datamodule=dm)
    if timer.start is None or timer.stop is None:
        raise RuntimeError(f"the Trainer ran {timer.count} batches, expected {warmup + batches}")
    if timer.threads != torch.get_num_threads():
        raise RuntimeError(f"thread count changed during the run: {timer.threads} != {torch.get_num_threads()}")
    return (timer.stop - timer.start) / batches, model.generator


def run_plain(nets: tuple[nn.Module, nn.Module], dm: DigitsDataModule, warmup: int, batches: int,
              seed: int) -> tuple[float, nn.Module]:
    """The same training in hand-written PyTorch; returns (seconds per timed batch, trained generator)."""
    generator, discriminator = (copy.deepcopy(net) for net in nets)
    ema = copy.deepcopy(generator).requires_grad_(False)
    generator.train(), discriminator.train(), ema.train()
    g_params, d_params = list(generator.parameters()), list(discriminator.parameters())
    g_opt, d_opt = adam(g_params), adam(d_params)
    ema_pairs = list(zip(ema.parameters(), g_params, strict=True))
    buffer_pairs = list(zip(ema.buffers(), generator.buffers(), strict=True))
    loader = dm.train_dataloader()
    total, done, epoch = warmup + batches, 0, 0
    start = 0.0
    torch.manual_seed(seed)
    while done < total:
        loader.sampler.set_epoch(epoch)  # what Lightning does at each epoch start
        for batch in loader:
            real = batch["image"]
            n = real.shape[0]
            # discriminator step, generator frozen
            for p in g_params:
                p.requires_grad_(False)
            with torch.no_grad():
                fake = generator(torch.randn(n, LATENT_DIM))
            d_loss = F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake)).mean()
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            for p in g_params:
                p.requires_grad_(True)
            # generator step, discriminator frozen
            for p in d_params:
                p.requires_grad_(False)
            g_loss = F.softplus(-discriminator(generator(torch.randn(n, LATENT_DIM)))).mean()
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            for p in d_params:
                p.requires_grad_(True)
            # generator EMA
            with torch.no_grad():
                for p_ema, p in ema_pairs:
                    p_ema.lerp_(p, 1.0 - EMA_DECAY)
                for b_ema, b in buffer_pairs:
                    b_ema.copy_(b)
            done += 1
            if done == warmup:
                start = time.perf_counter()
            if done == total:
                break
        epoch += 1
    return (time.perf_counter() - start) / batches, generator


def max_abs_diff(a: nn.Module, b: nn.Module) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
               if x.is_floating_point())


def quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "lightning": L.__version__, "threads": torch.get_num_threads()}


def _machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``); None off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class OtherLoad:
    """Measures how many cores OTHER processes kept busy during a ``with`` block.

    The machine's busy CPU time minus this process's own CPU time (all its threads), over the wall
    time; ``cores`` is None where ``/proc/stat`` is missing. With 2 threads on 2 cores, anything much
    above 0 means the candidates were oversubscribed, which slows them unevenly (OpenMP threads wait
    on descheduled peers), so interleaving alone does not make such rounds comparable.
    """

    cores: float | None = None

    def __enter__(self) -> OtherLoad:
        self._wall, self._busy, self._own = time.perf_counter(), _machine_busy_seconds(), sum(os.times()[:2])
        return self

    def __exit__(self, *exc: object) -> None:
        busy, wall = _machine_busy_seconds(), time.perf_counter() - self._wall
        if busy is not None and self._busy is not None and wall > 0:
            other = (busy - self._busy) - (sum(os.times()[:2]) - self._own)
            self.cores = max(0.0, other / wall)


def busy_cores(seconds: float = 1.0) -> float | None:
    """Cores kept busy by other processes while this one sleeps for ``seconds``."""
    with OtherLoad() as load:
        time.sleep(seconds)
    return load.cores


def summarize(seconds: list[float]) -> dict[str, float]:
    ms = [1000.0 * s for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--batches", type=int, default=40, help="timed batches per candidate and round (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches before them (default 5, >= 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the networks and latents (default 0)")
    parser.add_argument("--contended-cores", type=float, default=0.25, metavar="C",
                        help="leave out of the summary rounds in which other processes used more than C cores, "
                             "unless every round did (default 0.25)")
    parser.add_argument("--no-guard", action="store_true", help="skip the framework+guard candidate")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.batches < 1 or args.warmup < 1 or args.batch_size < 1 or args.threads < 1:
        parser.error("--rounds, --batches, --warmup, --batch-size and --threads must be >= 1")

    quiet_lightning()
    torch.set_num_threads(args.threads)
    dm = DigitsDataModule(image_size=IMAGE_SIZE, batch_size=args.batch_size, seed=args.seed)
    images, _ = dm.tensors("train")
    per_epoch = len(images) // args.batch_size
    nets = build_networks(args.seed)

    def candidates_for(warmup: int, batches: int) -> dict[str, Callable[[int], tuple[float, nn.Module]]]:
        found: dict[str, Callable[[int], tuple[float, nn.Module]]] = {
            "framework": lambda s: run_framework(nets, dm, warmup, batches, s, guard=False),
            "plain": lambda s: run_plain(nets, dm, warmup, batches, s),
        }
        if not args.no_guard:
            found["framework+guard"] = lambda s: run_framework(nets, dm, warmup, batches, s, guard=True)
        return found

    candidates = candidates_for(args.warmup, args.batches)
    names = list(candidates)

    info = machine()
    print("# Framework overhead: DCGAN on digits, GAN (lightning.Trainer) vs hand-written PyTorch")
    print(f"machine: {info['processor']}, {info['cpu_count']} CPUs ({info['platform']}); python {info['python']}, "
          f"torch {info['torch']}, lightning {info['lightning']}, threads {info['threads']}")
    busy = info["busy_cores_before"] = busy_cores()
    if busy is not None:
        print(f"other load before the run: {busy:.2f} of {info['cpu_count']} cores busy")
        if busy > 0.3 and busy + args.threads > (info["cpu_count"] or 1):
            print("WARNING: other processes are using the CPU and there are more busy threads than cores: "
                  "timings are slow and noisy and the ratio is unreliable even though the candidates are "
                  "interleaved; rerun on an idle machine")
    print(f"setup: DCGAN G(latent 64, base 32) / D(base 32), Adam 2e-4 (0.5, 0.999), non-saturating loss, "
          f"EMA 0.99; digits train split {len(images)} images at 32 px, batch {args.batch_size} "
          f"({per_epoch} batches/epoch, drop_last)")
    print(f"timing: {args.rounds} rounds x {args.warmup} warm-up + {args.batches} timed batches per candidate, "
          f"order rotated each round; 'framework' is the bare module (Trainer built directly: no "
          f"ModelCheckpoint, DivergenceGuard or SampleGrid, logger off)"
          + ("; 'framework+guard' adds DivergenceGuard()" if not args.no_guard else ""))
    print()

    # One short untimed pass of each candidate first, so that no timed round pays for lazy imports,
    # first-call kernel selection or the allocator growing its pools.
    for name, run in candidates_for(1, 2).items():
        torch.set_num_threads(args.threads)
        run(args.seed)
        print(f"primed {name}", file=sys.stderr, flush=True)
    times: dict[str, list[float]] = {name: [] for name in names}
    parity: list[float] = []
    other: list[float | None] = []  # per round, the most cores other processes used during one of its runs
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        generators: dict[str, nn.Module] = {}
        loads: list[float] = []
        for name in order:
            torch.set_num_threads(args.threads)
            with OtherLoad() as load:
                seconds, generators[name] = candidates[name](args.seed + r)
            times[name].append(seconds)
            if load.cores is not None:
                loads.append(load.cores)
        other.append(max(loads) if loads else None)
        parity.append(max(max_abs_diff(generators[name], generators["plain"]) for name in names if name != "plain"))
        row = ", ".join(f"{name} {1000 * times[name][-1]:.2f}" for name in names)
        busy = "" if other[-1] is None else f"; other processes used up to {other[-1]:.2f} cores"
        print(f"round {r + 1}/{args.rounds} (order {' > '.join(order)}): ms/batch {row}; "
              f"max |G_framework - G_plain| = {parity[-1]:.1e}{busy}", file=sys.stderr, flush=True)

    contended = [r for r, cores in enumerate(other) if cores is not None and cores > args.contended_cores]
    used = [r for r in range(args.rounds) if r not in contended] or list(range(args.rounds))
    kept = {name: [times[name][r] for r in used] for name in names}
    stats = {name: summarize(kept[name]) for name in names}
    ratios = {name: [times[name][r] / times["plain"][r] for r in used] for name in names if name != "plain"}
    print()
    if contended and len(used) < args.rounds:
        print(f"note: dropped {len(contended)} of {args.rounds} rounds in which other processes used more than "
              f"{args.contended_cores} cores (rounds {', '.join(str(r + 1) for r in contended)}); "
              f"the numbers below are over the other {len(used)}")
    elif contended:
        print(f"WARNING: other processes used more than {args.contended_cores} cores in every round; "
              "the numbers below are slow and noisy and the ratio is unreliable; rerun on an idle machine")
    print("| candidate | ms/batch (median) | min | max |")
    print("|---|---:|---:|---:|")
    for name in names:
        s = stats[name]
        print(f"| {name} | {s['median_ms']:.2f} | {s['min_ms']:.2f} | {s['max_ms']:.2f} |")
    print()
    if max(parity) > 1e-5:
        print(f"WARNING: the candidates' generators differ by up to {max(parity):.2e} after training; "
              "they are not doing the same work")
    else:
        exact = "bit for bit" if max(parity) == 0 else f"to {max(parity):.1e}"
        print(f"parity: the framework and plain generators agree {exact} after every round (same work)")
    if "framework+guard" in ratios:
        g = ratios["framework+guard"]
        print(f"ratio framework+guard/plain: {statistics.median(g):.3f} (per-round range {min(g):.3f}–{max(g):.3f})")
    f = ratios["framework"]
    ratio = statistics.median(f)
    print(f"ratio framework/plain: {ratio:.3f} (per-round range {min(f):.3f}–{max(f):.3f}); target <= {TARGET}")

    if args.json is not None:
        report = {
            "machine": info,
            "config": {"rounds": args.rounds, "batches": args.batches, "warmup": args.warmup,
                       "batch_size": args.batch_size, "threads": args.threads, "seed": args.seed,
                       "train_images": len(images)},
            "seconds_per_batch": times,
            "other_load_cores": other,
            "rounds_used": [r + 1 for r in used],
            "summary_ms": stats,
            "per_round_ratio": ratios,
            "ratio_framework_over_plain": ratio,
            "ratio_of_medians": stats["framework"]["median_ms"] / stats["plain"]["median_ms"],
            "max_abs_generator_diff": parity,
            "target": TARGET,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
