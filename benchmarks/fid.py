"""Frechet distance from statistics: ours vs ``scipy.linalg.sqrtm`` vs torchmetrics, time and agreement.

What is measured:
    Two feature sets of ``n`` rows and ``d`` columns are drawn once: ``X = Z1 @ A`` and
    ``Y = 1.1 * (Z2 @ A) + 0.05`` with ``Z1, Z2`` standard normal and ``A`` a random ``[d, d]`` Gaussian
    matrix divided by ``sqrt(d)`` (correlated, fairly ill-conditioned covariances, like real features).
    Their float64 statistics come from ``callbacks.metrics.frechet.feature_statistics`` (timed
    separately, for both sets together). Then only the distance from the statistics is timed for:

    * ``ours``: ``frechet_distance_from_statistics`` (Cholesky factor + symmetric ``eigvalsh``) on ``--device``;
    * ``scipy sqrtm``: the reference FID formula ``||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrtm(S1 @ S2).real``
      in numpy/scipy (CPU only; the product ``S1 @ S2`` is inside the timing);
    * ``torchmetrics``: ``torchmetrics.image.fid._compute_fid`` (general ``eigvals`` of ``S1 @ S2``) on
      float64 tensors on ``--device``, when that private function exists.

How it is timed:
    Every method first runs once on a small (d = 64) problem so that library start-up costs are not
    counted. Each method is then run ``--repeats`` times (``--scipy-repeats`` for scipy, which takes tens
    of seconds at d = 2048) and the median wall-clock time is reported (``torch.cuda.synchronize`` around
    GPU calls). The relative difference is ``|value - scipy| / |scipy|``. The last line is the speed-up
    of ours over scipy (median over median); target >= 4x at float64 accuracy.

Usage::

    python benchmarks/fid.py                         # d = 2048, n = 10,000, CPU: a few minutes on 2 cores
    python benchmarks/fid.py --dim 512 --n 2000 --repeats 5
    python benchmarks/fid.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callbacks.metrics.frechet import feature_statistics, frechet_distance_from_statistics  # noqa: E402

try:
    from torchmetrics.image.fid import _compute_fid
except ImportError:  # private function: absent in some torchmetrics versions
    _compute_fid = None


def scipy_reference(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The classic FID formula with ``scipy.linalg.sqrtm`` of the (non-symmetric) product."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean.real))


def make_features(n: int, d: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlated Gaussian features ``X = Z1 A`` and ``Y = 1.1 Z2 A + 0.05`` (float32, on ``device``)."""
    g = torch.Generator(device=device).manual_seed(seed)
    a = torch.randn(d, d, generator=g, device=device) / d**0.5
    x = torch.randn(n, d, generator=g, device=device) @ a
    y = 1.1 * (torch.randn(n, d, generator=g, device=device) @ a) + 0.05
    return x, y


def timed(fn: Callable[[], float], repeats: int, device: torch.device) -> tuple[float, float]:
    """Median seconds over ``repeats`` calls and the value of the last call."""
    times, value = [], float("nan")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        value = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def candidates(stats: tuple[torch.Tensor, ...]) -> dict[str, Callable[[], float]]:
    """The methods to compare, each a closure over one set of statistics."""
    mu1, s1, mu2, s2 = stats
    np_stats = tuple(t.cpu().numpy() for t in stats)
    methods = {"ours": lambda: frechet_distance_from_statistics(mu1, s1, mu2, s2),
               "scipy sqrtm": lambda: scipy_reference(*np_stats)}
    if _compute_fid is not None:
        methods["torchmetrics"] = lambda: float(_compute_fid(mu1, s1, mu2, s2))
    return methods


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` when readable (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension d")
    parser.add_argument("--n", type=int, default=10_000, help="samples per set")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours / torchmetrics / statistics")
    parser.add_argument("--scipy-repeats", type=int, default=2, help="timed runs of the (slow) scipy path")
    parser.add_argument("--device", default="cpu", help="device of the torch methods: cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    print(f"machine: {cpu_name()} | os.cpu_count()={os.cpu_count()} | "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads) | numpy {np.__version__} | "
          f"scipy {scipy.__version__} | device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"d = {args.dim}, n = {args.n} per set, repeats = {args.repeats} (scipy: {args.scipy_repeats})\n")

    warm_x, warm_y = make_features(256, 64, args.seed + 1, device)
    for fn in candidates(feature_statistics(warm_x) + feature_statistics(warm_y)).values():
        fn()

    x, y = make_features(args.n, args.dim, args.seed, device)
    stats: tuple[torch.Tensor, ...] = ()

    def compute_statistics() -> float:
        nonlocal stats
        stats = feature_statistics(x) + feature_statistics(y)
        return 0.0

    stats_time, _ = timed(compute_statistics, args.repeats, device)

    rows = {}
    for name, fn in candidates(stats).items():
        repeats = args.scipy_repeats if name == "scipy sqrtm" else args.repeats
        rows[name] = timed(fn, repeats, device) + (repeats,)
    reference = rows["scipy sqrtm"][1]

    print("| method | seconds (median) | FID | rel. diff to scipy |")
    print("|---|---:|---:|---:|")
    print(f"| feature_statistics, both sets (float64) | {stats_time:.3f} (of {args.repeats}) | | |")
    for name, (seconds, value, repeats) in rows.items():
        rel = abs(value - reference) / abs(reference)
        print(f"| {name} | {seconds:.3f} (of {repeats}) | {value:.10f} | {rel:.2e} |")
    speed_up = rows["scipy sqrtm"][0] / rows["ours"][0]
    print(f"\nspeed-up of ours over scipy sqrtm: {speed_up:.1f}x (target >= 4x), "
          f"relative difference {abs(rows['ours'][1] - reference) / abs(reference):.1e}")


if __name__ == "__main__":
    main()
