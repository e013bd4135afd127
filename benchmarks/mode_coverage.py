"""Mode coverage of the GAN families on the 2D ring (8 modes) and grid (25 modes), beside published numbers.

What is measured:
    Six families are trained on both toy mixtures (``datamodules.Toy2DDataModule``) for ``--seeds``
    seeds each, through ``train.py fit`` in subprocesses, each built from a preset in ``configs/``:

    * GAN (non-saturating), LSGAN, WGAN-GP and hinge: ``gan_mlp_toy_<data>.yaml`` with the loss
      overridden; WGAN-GP adds the gradient penalty with λ = 0.1 (the value of Gulrajani et al.'s toy
      experiments), 5 critic steps per generator step and Adam betas (0.5, 0.9); hinge adds spectral
      norm to the discriminator (Miyato et al. 2018);
    * Unrolled GAN (k = 5): ``unrolled_toy_<data>.yaml``;
    * RpGAN + R1 + R2: ``rpgan_toy_<data>.yaml``.

    Every run gets the same generator-step budget (``--steps``; the presets' own when omitted), the
    same batch size (``--batch-size``, 512) and Adam learning rate (``--lr``, 3e-3, both players),
    decaying linearly to 1% of its start over the budget: the settings of the tuned toy presets
    (``rpgan_toy_*``, ``unrolled_toy_*``), given to every family so that the table compares
    objectives, not optimizer settings (the ``gan_mlp_toy`` presets themselves use batch 256, lr 1e-3
    and no decay). After training, ``GenerativeMetrics`` (in every toy preset) scores 2,500 samples of the
    generator with ``callbacks.metrics.mode_coverage``: the PacGAN protocol (Lin et al. 2018, after
    VEEGAN): a sample is high quality within 3 standard deviations of its nearest mode, a mode is
    covered when it is the nearest mode of at least one high-quality sample, and the reverse KL is
    ``KL(q || uniform)`` of the high-quality samples' histogram over the modes.

    The table gives mean ± sample standard deviation over seeds, and the mean wall time of a run
    (start-up included). Published rows are copied from the papers (their own networks, budgets and
    10 or more runs), for orientation only.

Usage::

    python benchmarks/mode_coverage.py                 # 6 families x 2 datasets x 3 seeds; writes docs/results.md
    python benchmarks/mode_coverage.py --quick         # 100 generator steps, 1 seed: checks that it works
    python benchmarks/mode_coverage.py --steps 2000     # the fixed budget of the table in docs/results.md
    python benchmarks/mode_coverage.py --families rpgan --section mode_coverage_rpgan   # presets' own budgets
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import machine, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("ring", "grid")
LR_END_FACTOR = 0.01


@dataclass(frozen=True)
class Family:
    """A row of the table: a preset (``{data}`` is replaced by the dataset) and overrides."""

    name: str
    preset: str
    overrides: tuple[str, ...] = ()
    n_critic: int = 1


FAMILIES: dict[str, Family] = {
    "gan": Family("GAN (non-saturating)", "gan_mlp_toy_{data}.yaml"),
    "lsgan": Family("LSGAN", "gan_mlp_toy_{data}.yaml", ("--model.init_args.loss=lsgan",)),
    "wgan_gp": Family("WGAN-GP (λ 0.1, 5 critic steps)", "gan_mlp_toy_{data}.yaml", (
        "--model.init_args.loss=wasserstein", "--model.init_args.gp_weight=0.1", "--model.init_args.n_critic=5",
        "--model.init_args.g_optimizer.init_args.betas=[0.5, 0.9]",
        "--model.init_args.d_optimizer.init_args.betas=[0.5, 0.9]"), n_critic=5),
    "hinge": Family("Hinge + spectral norm", "gan_mlp_toy_{data}.yaml", (
        "--model.init_args.loss=hinge", "--model.init_args.discriminator.init_args.spectral_norm=true")),
    "unrolled": Family("Unrolled GAN (k = 5)", "unrolled_toy_{data}.yaml"),
    "rpgan": Family("RpGAN + R1 + R2", "rpgan_toy_{data}.yaml"),
}

# (method, dataset) -> (modes, high-quality %, reverse KL or None)
PUBLISHED = [
    ("GAN, PacGAN Table 1 (Lin et al. 2018)", "ring", 6.3, 98.2, 0.45),
    ("PacGAN2, PacGAN Table 1", "ring", 7.9, 95.6, 0.07),
    ("VEEGAN (Srivastava et al. 2017)", "ring", 8.0, 52.9, None),
    ("GAN, PacGAN Table 1 (Lin et al. 2018)", "grid", 17.3, 94.8, 0.70),
    ("PacGAN4, PacGAN Table 1", "grid", 24.8, 93.6, 0.04),
    ("VEEGAN (Srivastava et al. 2017)", "grid", 24.6, 40.0, None),
]


def preset_steps(preset: Path) -> int:
    """``model.init_args.max_generator_steps`` of a preset (a plain line in every toy preset)."""
    for line in preset.read_text().splitlines():
        if line.strip().startswith("max_generator_steps:"):
            return int(line.split(":", 1)[1])
    raise ValueError(f"{preset} sets no max_generator_steps; pass --steps")


def schedule(player: str, total_iters: int) -> str:
    spec = {"class_path": "torch.optim.lr_scheduler.LinearLR",
            "init_args": {"start_factor": 1.0, "end_factor": LR_END_FACTOR, "total_iters": total_iters}}
    return f"--model.init_args.{player}_scheduler={json.dumps(spec)}"


def command(family: Family, data: str, seed: int, steps: int, batch_size: int, lr: float, root: Path) -> list[str]:
    """The ``train.py fit`` command line of one run."""
    args = [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(ROOT / "configs" / family.preset.format(data=data)),
            *family.overrides, f"--seed_everything={seed}", f"--data.init_args.seed={seed}",
            f"--model.init_args.max_generator_steps={steps}", schedule("g", steps), schedule("d", steps * family.n_critic),
            f"--model.init_args.g_optimizer.init_args.lr={lr}", f"--model.init_args.d_optimizer.init_args.lr={lr}",
            f"--data.init_args.batch_size={batch_size}",
            f"--trainer.default_root_dir={root}", "--trainer.logger=false", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false", "--trainer.enable_checkpointing=false"]
    return args


def _finished(root: Path, steps: int) -> dict[str, float] | None:
    """The result of an earlier run in ``root`` that reached ``steps`` (``--reuse``), or None."""
    result = root / "result.json"
    if not result.is_file():
        return None
    record = json.loads(result.read_text())
    return record if record.get("steps") == steps else None


def run_one(key: str, data: str, seed: int, steps: int, batch_size: int, lr: float, out: Path,
            threads: int, reuse: bool = False) -> dict[str, float]:
    """Trains one run (in ``out/<family>_<data>_s<seed>``) and returns its final metrics and wall time."""
    family = FAMILIES[key]
    root = out / f"{key}_{data}_s{seed}"
    metrics_file = root / "metrics.jsonl"
    if reuse:
        done = _finished(root, steps)
        if done is not None:
            return done
    metrics_file.unlink(missing_ok=True)  # GenerativeMetrics appends
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    args = command(family, data, seed, steps, batch_size, lr, root)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"run failed: {shlex.join(args)}\n{proc.stderr[-3000:]}")
    records = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    final = [r for r in records if r["generator_steps"] == steps]
    if not final:
        raise RuntimeError(f"{metrics_file} has no record at generator step {steps}")
    record = final[-1]
    result = {"modes": record["metrics/modes"], "high_quality": 100.0 * record["metrics/high_quality"],
              "reverse_kl": record["metrics/reverse_kl"], "seconds": seconds}
    (root / "result.json").write_text(json.dumps({**result, "steps": steps}))
    return result


def mean_std(values: list[float], digits: int) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "n/a"
    text = f"{statistics.fmean(finite):.{digits}f}"
    if len(finite) > 1:
        text += f" ± {statistics.stdev(finite):.{digits}f}"
    if len(finite) < len(values):
        text += f" ({len(values) - len(finite)} run(s) without high-quality samples)"
    return text


def table(results: dict[tuple[str, str], list[dict[str, float]]], datasets: list[str], families: list[str]) -> str:
    lines = ["| Method | Data | Seeds | Modes | High quality (%) | Reverse KL | Wall s / run |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for data in datasets:
        total = 8 if data == "ring" else 25
        for key in families:
            runs = results[(key, data)]
            if not runs:
                lines.append(f"| {FAMILIES[key].name} (ours) | {data} | 0 | not run | | | |")
                continue
            lines.append(f"| {FAMILIES[key].name} (ours) | {data} | {len(runs)} | {mean_std([r['modes'] for r in runs], 1)} / {total} | "
                         f"{mean_std([r['high_quality'] for r in runs], 1)} | {mean_std([r['reverse_kl'] for r in runs], 3)} | "
                         f"{statistics.fmean(r['seconds'] for r in runs):.0f} |")
        for method, published_data, modes, quality, kl in PUBLISHED:
            if published_data == data:
                kl_text = "-" if kl is None else f"{kl:.2f}"
                lines.append(f"| {method} (published) | {data} | - | {modes} / {total} | {quality} | {kl_text} | - |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="generator steps per run (default: each preset's own)")
    parser.add_argument("--batch-size", type=int, default=512, help="batch size of every run")
    parser.add_argument("--lr", type=float, default=3e-3, help="initial Adam learning rate of both players, every run")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one process each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (tiny MLPs: 1 is fastest)")
    parser.add_argument("--quick", action="store_true", help="100 generator steps, 1 seed, docs untouched")
    parser.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "mode_coverage"))
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--section", default="mode_coverage", help="the section of docs/results.md to (re)write")
    parser.add_argument("--from-results", action="store_true", help="train nothing: make the table from the "
                        "runs already finished in --out (those missing are left out; the Seeds column counts them)")
    parser.add_argument("--reuse", action="store_true", help="keep the result of a run already finished in --out "
                        "with the same step budget (an interrupted benchmark continues where it stopped)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.seeds, args.no_write = args.steps or 100, 1, True
    out = Path(args.out)
    jobs = []
    for data in args.datasets:
        for key in args.families:
            family = FAMILIES[key]
            steps = args.steps or preset_steps(ROOT / "configs" / family.preset.format(data=data))
            jobs += [(key, data, seed, steps) for seed in range(args.seeds)]
    # the slowest runs first, so the two queues end together
    jobs.sort(key=lambda job: -job[3] * {"unrolled": 6, "wgan_gp": 5}.get(job[0], 1))
    start = time.perf_counter()
    results: dict[tuple[str, str], list[dict[str, float]]] = {(k, d): [] for k in args.families for d in args.datasets}

    def work(job: tuple[str, str, int, int]) -> None:
        key, data, seed, steps = job
        if args.from_results:
            done = _finished(out / f"{key}_{data}_s{seed}", steps)
            if done is not None:
                results[(key, data)].append(done)
            return
        result = run_one(key, data, seed, steps, args.batch_size, args.lr, out, args.threads, args.reuse)
        results[(key, data)].append(result)
        print(f"{key:9s} {data:4s} seed {seed}: modes {result['modes']:.0f}, high quality {result['high_quality']:.1f}%, "
              f"reverse KL {result['reverse_kl']:.3f}, {result['seconds']:.0f} s", flush=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(work, jobs))
    wall = time.perf_counter() - start
    steps_text = f"{args.steps} generator steps" if args.steps else "each preset's generator steps"
    cmd = "python benchmarks/mode_coverage.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    markdown = "\n".join([
        f"## Mode coverage on the 2D ring and grid: {steps_text}",
        "",
        f"`{cmd.strip()}`: {len(args.families)} families x {len(args.datasets)} datasets x {args.seeds} seeds, "
        f"{steps_text}, batch {args.batch_size}, Adam lr {args.lr:g} decaying linearly to {LR_END_FACTOR:g}x, "
        f"{args.jobs} runs in parallel with "
        f"{args.threads} torch thread(s) each; {wall / 60:.1f} min in all. Each run is scored on 2,500 samples "
        "(PacGAN protocol: high quality within 3 std of the nearest mode; reverse KL of the high-quality "
        "histogram to uniform). Ours: mean ± std over seeds. Published rows: the papers' own setups.",
        "",
        table(results, args.datasets, args.families),
        "",
        f"Machine: {machine()} (the runs set their own thread count).",
    ])
    print()
    print(markdown)
    if not args.no_write:
        print(f"\nwritten to {write_section(args.section, markdown)}")


if __name__ == "__main__":
    main()
