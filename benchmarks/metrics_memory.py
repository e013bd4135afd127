"""Peak host memory (and time) of FID against the number of samples: streaming vs keeping every sample.

What is measured:
    FID alone, against reference statistics from an ``.npz`` (so only the generated side is measured, as
    when the real statistics are cached). Two consumers, each in two forms:

    * ``callback streaming``: ``GenerativeMetrics.compute`` as it is (embed each batch, keep float64 sums);
    * ``callback kept``: the accumulation the callback did before streaming, re-done here: every batch's
      flattened samples and features appended to lists, concatenated, then ``frechet_distance``;
    * ``evaluate streaming``: ``evaluate.main`` on a folder of PNG files (``--reference_stats``);
    * ``evaluate kept``: what ``evaluate.py`` did before: decode every file, stack them, then embed.

    The generator is a 2-layer MLP to ``3 x S x S`` and the extractor 4x4 average pools followed by a
    fixed ``48 -> 2048`` projection (Inception's feature size), so both networks are a few MB and the
    numbers are the evaluation's own memory, not the networks'. Samples are 3 x 128 x 128 (``--sizes``
    counts); the streaming callback is also measured at 3 x 256 x 256 at the two smallest counts.

How it is measured:
    Every configuration runs in a fresh Python process. After imports and network construction the
    freed heap is returned to the OS (glibc ``malloc_trim``), the peak-RSS counter is reset (Linux
    ``/proc/self/clear_refs``), and the reported figure is the peak
    resident set (``VmHWM``) minus the resident set just before the measured call, in MiB. Time is the
    wall clock of that call; it is only meaningful on an otherwise idle machine.

    The 50,000 x 3 x 256 x 256 row is a projection: for ``kept``, a straight line fitted to the measured
    128-px peaks, with the per-sample slope scaled by the pixel ratio (4x); for ``streaming``, the
    measured 256-px peak, which does not depend on the count.

Usage::

    python benchmarks/metrics_memory.py                          # 1k, 4k, 16k samples (needs ~7 GB for "kept")
    python benchmarks/metrics_memory.py --sizes 500 1000 --evaluate-sizes 200 400   # a quick check
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 250
FEATURES = 2048


def _proc_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _networks(size: int):
    import torch
    import torch.nn.functional as F
    from torch import nn

    from gan_modules import GAN
    from gan_modules.nets import MLPDiscriminator, MLPGenerator

    class PoolProjection(nn.Module):
        """4x4 average pools projected to 2048 features (Inception's size); logits: the first 10."""

        cache_id = "pool-projection"
        feature_dim = FEATURES

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.project = nn.Linear(48, FEATURES)

        def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
            features = self.project(F.adaptive_avg_pool2d(images.float(), 4).flatten(1)).relu()
            return {"features": features, "logits": features[:, :10]}

    torch.manual_seed(0)
    model = GAN(MLPGenerator((3, size, size), latent_dim=4, hidden_dim=8, num_layers=2),
                MLPDiscriminator((3, size, size), hidden_dim=8, num_layers=2))
    return model, PoolProjection()


def _reference(folder: Path) -> Path:
    import torch

    from callbacks.metrics.reference_stats import save_reference_statistics

    return save_reference_statistics(folder / "reference.npz", torch.zeros(FEATURES), torch.eye(FEATURES))


def _write_folder(folder: Path, count: int, size: int) -> None:
    """``count`` smooth 3 x size x size PNGs (upsampled 8x8 noise: small files, quick to write)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(len(list(folder.glob("*.png"))), count):
        tile = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(tile).resize((size, size), Image.BILINEAR).save(folder / f"{i:06d}.png")


def measure(consumer: str, form: str, count: int, size: int, work: Path) -> dict:
    """Runs one configuration in this process and returns its peak memory growth and time."""
    import torch

    from callbacks.metrics.frechet import frechet_distance

    model, extractor = _networks(size)
    reference = _reference(work)
    if consumer == "callback" and form == "streaming":
        from callbacks import GenerativeMetrics

        trainer = SimpleNamespace(world_size=1, global_rank=0, is_global_zero=True, log_dir=str(work),
                                  default_root_dir=str(work), datamodule=None)
        metrics = GenerativeMetrics(extractor, metrics=["fid"], num_samples=count, batch_size=BATCH,
                                    reference_stats=str(reference))

        def run() -> None:
            metrics.compute(trainer, model, force=True)
    elif consumer == "callback":
        def run() -> None:
            raw, feats = [], []
            with torch.no_grad():
                for b, index in enumerate(torch.arange(count).split(BATCH)):
                    samples = model.sample(len(index), generator=torch.Generator().manual_seed(b))
                    feats.append(extractor(samples)["features"])
                    raw.append(samples.flatten(1).float())
                fake, _ = torch.cat(feats), torch.cat(raw)
                frechet_distance(fake, torch.randn(100, FEATURES))
    elif form == "streaming":
        import evaluate

        folder = work / f"png{size}"

        def run() -> None:
            evaluate.main(["--fake", str(folder), "--num_fake", str(count), "--reference_stats", str(reference),
                           "--metrics", "fid", "--image_size", str(size), "--batch_size", str(BATCH),
                           "--extractor", "inception", "--num_workers", "2", "--no_progress"], extractor=extractor)
    else:
        from datamodules.folder import _scan, load_image

        folder = work / f"png{size}"

        def run() -> None:
            files = _scan(str(folder), (".png",))[:count]
            images = torch.stack([load_image(f, size, 3) for f in files])
            with torch.no_grad():
                fake = torch.cat([extractor(chunk)["features"] for chunk in images.split(BATCH)])
            frechet_distance(fake, torch.randn(100, FEATURES))
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap pages back to the OS: the start is live memory only
    Path("/proc/self/clear_refs").write_text("5")
    start = _proc_kib("VmRSS")
    tic = time.perf_counter()
    run()
    seconds = time.perf_counter() - tic
    return {"consumer": consumer, "form": form, "count": count, "size": size,
            "peak_mib": (_proc_kib("VmHWM") - start) / 1024, "seconds": seconds}


def _child(consumer: str, form: str, count: int, size: int, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run([sys.executable, __file__, "--one", consumer, form, str(count), str(size), str(work)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{consumer} {form} n={count} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _projection(rows: list[dict], form: str, consumer: str) -> float | None:
    """Peak MiB at 50,000 x 3 x 256 x 256 (see the module docstring)."""
    if form == "streaming":
        big = [r["peak_mib"] for r in rows if r["consumer"] == consumer and r["form"] == form and r["size"] == 256]
        return max(big) if big else None
    pts = [(r["count"], r["peak_mib"]) for r in rows if r["consumer"] == consumer and r["form"] == form
           and r["size"] == 128]
    if len(pts) < 2:
        return None
    (n0, m0), (n1, m1) = pts[0], pts[-1]
    slope = (m1 - m0) / (n1 - n0)
    return m0 + slope * 4 * (50_000 - n0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000], help="callback sample counts")
    parser.add_argument("--evaluate-sizes", type=int, nargs="+", default=[1000, 4000, 16000], help="folder sizes")
    parser.add_argument("--skip-kept", action="store_true", help="measure the streaming forms only")
    parser.add_argument("--one", nargs=5, metavar=("CONSUMER", "FORM", "N", "SIZE", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        consumer, form, count, size, work = args.one
        print(json.dumps(measure(consumer, form, int(count), int(size), Path(work))))
        return
    forms = ["streaming"] if args.skip_kept else ["streaming", "kept"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for form in forms:
            for count in args.sizes:
                rows.append(_child("callback", form, count, 128, work))
        for count in sorted(args.sizes)[:2]:
            rows.append(_child("callback", "streaming", count, 256, work))
        _write_folder(work / "png128", max(args.evaluate_sizes), 128)
        for form in forms:
            for count in args.evaluate_sizes:
                rows.append(_child("evaluate", form, count, 128, work))
    print("| consumer | form | samples | size | peak MiB above start | seconds |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['consumer']} | {r['form']} | {r['count']} | {r['size']} | {r['peak_mib']:.0f} | {r['seconds']:.1f} |")
    for consumer in ("callback", "evaluate"):
        for form in forms:
            value = _projection(rows, form, consumer)
            if value is not None:
                print(f"| {consumer} | {form} | 50000 (projected) | 256 | {value:.0f} | |")


if __name__ == "__main__":
    main()
