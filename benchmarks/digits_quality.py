"""Sample quality of every digits preset at one training budget: FID/KID/IS, class statistics and CAS.

What is measured:
    Every ``configs/*_digits.yaml`` (found by glob, so a new preset joins the table the day it is
    added; ``--only`` picks some) is trained with ``train.py fit`` in a subprocess into a temporary run
    folder, for the same ``--generator-steps`` (default 1200, the quickstart's budget) whatever the
    preset's own ``max_generator_steps``; everything else is the preset's (its callbacks included).
    The preset's metric callbacks and validation are left out of training (one sample grid at the end
    is kept); the last checkpoint's generator (the EMA one when the preset keeps it) is then loaded with
    ``gan_modules.load_generator`` and scored:

    * FID, KID and IS (``evaluate.score``) of ``--num-samples`` samples against the 1,438 training
      digits, in the features and logits of ``callbacks.metrics.DigitsClassifier`` (comparable only
      with itself, and only at equal sample counts);
    * ``classes``: classes the classifier finds among the samples, and ``class KL``: KL(histogram ||
      uniform) of its predictions (0 = balanced), as ``GenerativeMetrics``' ``class_histogram``;
    * conditional presets only: ``cond. acc.``, the share of samples the classifier assigns to the
      class they were generated for (classes cycled 0..9), and ``CAS``, the Classification Accuracy
      Score (Ravuri & Vinyals 2019): the digits CNN of ``callbacks/metrics/digits_classifier.py``
      trained with its own recipe (Adam + one-cycle, label smoothing, light jitter) on
      ``--cas-samples`` generated labelled digits only (as many as the real training split by default),
      tested on the 359 real held-out digits. The ``real digits`` row is the same classifier trained on
      the real training split: the ceiling CAS is read against.

    ``train s`` is the wall-clock time of ``train.py fit`` (start-up, the preset's sample grids,
    metrics and validation included). Latents and CAS training are seeded, so a rerun on the same
    machine gives the same numbers up to nondeterministic kernels.

Usage::

    python benchmarks/digits_quality.py                       # every digits preset, 1200 steps
    python benchmarks/digits_quality.py --only cgan_concat_digits acgan_digits
    python benchmarks/digits_quality.py --quick               # tiny budget: checks that the script works
    python benchmarks/digits_quality.py --jobs 2 --threads 1 --grids docs/images   # what made docs/results.md

The table goes to stdout and, except with ``--quick``, into the ``digits_quality`` section of
``docs/results.md`` (``--out`` names another file, and makes ``--quick`` write too).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import RESULTS, machine, write_section  # noqa: E402
from callbacks.metrics.digits_classifier import DigitsClassifier, DigitsCNN, _augment, load_digits_split  # noqa: E402
from evaluate import embed, score  # noqa: E402
from gan_modules import load_generator  # noqa: E402


def presets(only: list[str] | None) -> list[Path]:
    """The digits presets, sorted; ``only`` keeps the named stems (an unknown stem is an error)."""
    found = sorted((ROOT / "configs").glob("*_digits.yaml"))
    if not only:
        return found
    by_stem = {p.stem: p for p in found}
    unknown = [s for s in only if s not in by_stem]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; digits presets: {', '.join(by_stem)}")
    return [by_stem[s] for s in only]


def family(config: Path) -> str:
    """The model class named by a preset, e.g. ``GAN (hinge)``, ``GAN (wasserstein, GP)`` or ``ACGAN``."""
    model = yaml.safe_load(config.read_text())["model"]
    name = model["class_path"].rsplit(".", 1)[-1]
    init = model.get("init_args", {})
    loss = init.get("loss")
    # the two WGANs differ by their Lipschitz constraint, not their loss
    extra = ", GP" if init.get("gp_weight") else ", clipping" if init.get("clip_value") else ""
    return f"{name} ({loss}{extra})" if loss else name


def train(config: Path, run_dir: Path, steps: int, threads: int | None = None, grid_every: int | None = None,
          overrides: list[str] = ()) -> float:
    """Runs ``train.py fit`` on one preset in a subprocess; returns its wall-clock seconds.

    One sample grid at the end, or one every ``grid_every`` generator steps (which also shows how far
    a long run has come). ``overrides`` are further ``train.py`` arguments (``--model.init_args.lr=...``)."""
    command = [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(config),
               f"--trainer.default_root_dir={run_dir}", f"--model.init_args.max_generator_steps={steps}",
               # the preset's own metric callbacks and validation are replaced by the scoring below
               "--trainer.callbacks=[]", "--trainer.callbacks+=callbacks.SampleGrid",
               f"--trainer.callbacks.every_n_generator_steps={grid_every or steps}", "--trainer.limit_val_batches=0",
               "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
               *overrides]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    return seconds


@torch.no_grad()
def generate(generator: torch.nn.Module, n: int, seed: int, batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples in ``[-1, 1]`` from seeded latents; labels cycle 0..K-1 for a conditional generator."""
    seeded = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.latent_dim, generator=seeded)
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    chunks = []
    for index in torch.arange(n).split(batch_size):
        chunks.append(generator(z[index], labels[index]) if labels is not None else generator(z[index]))
    return torch.cat(chunks).clamp(-1, 1), labels


def class_statistics(logits: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
    """Classes covered, KL(prediction histogram || uniform) and, with labels, the conditional accuracy."""
    predicted = logits.argmax(1)
    q = torch.bincount(predicted, minlength=logits.shape[1]).double()
    q = q / q.sum()
    nonzero = q > 0
    out = {"classes_covered": float(nonzero.sum()), "class_kl": float((q[nonzero] * (q[nonzero] * len(q)).log()).sum())}
    if labels is not None:
        out["accuracy"] = float((predicted == labels).double().mean())
    return out


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int, batch_size: int = 64) -> DigitsCNN:
    """``DigitsCNN`` trained with ``train_digits_classifier``'s recipe on given images (the CAS classifier)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = DigitsCNN(images.shape[-1])
        total = epochs * math.ceil(len(images) / batch_size)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=total)
        net.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(images), generator=gen).split(batch_size):
                loss = F.cross_entropy(net(_augment(images[idx], gen))[1], labels[idx], label_smoothing=0.05)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: DigitsCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((net(images)[1].argmax(1) == labels).double().mean())


def evaluate_preset(ckpt: Path, extractor: DigitsClassifier, real_feats: torch.Tensor, test: tuple, args) -> dict:
    """All the numbers of one trained preset."""
    generator = load_generator(ckpt)
    images, labels = generate(generator, args.num_samples, args.seed)
    feats, logits = embed(extractor, images, 250)
    out = score(real_feats, feats, logits, ["fid", "kid", "is"], seed=args.seed,
                kid_subset_size=min(1000, len(feats)))
    out.update(class_statistics(logits, labels))
    if generator.num_classes:
        cas_images, cas_labels = generate(generator, args.cas_samples, args.seed + 1)
        out["cas"] = accuracy(train_classifier(cas_images, cas_labels, args.cas_epochs, args.seed), *test)
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(rows: list[dict], real: dict, args, command: str) -> str:
    lines = [
        "## Digits quality",
        "",
        f"`{command}` on {machine()}.",
        "",
        f"Each preset trained for {args.generator_steps} generator steps; {args.num_samples} samples of its (EMA) "
        f"generator scored against the {real['n_train']} training digits with the DigitsClassifier "
        f"(FID/KID in its 128-d features, comparable only with each other); CAS: the same CNN trained on "
        f"{args.cas_samples} generated labelled digits ({args.cas_epochs} epochs), accuracy on the "
        f"{real['n_test']} real held-out digits.",
        "",
        "| preset | family | train s | FID | KID ×10³ | IS | classes | class KL | cond. acc. | CAS |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| real digits | – | – | – | – | {real['is']:.2f} | {real['classes_covered']:.0f} | {real['class_kl']:.3f} | "
        f"{real['accuracy']:.3f} | {real['cas']:.3f} |",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['preset']} | {row['family']} | – | failed: {row['error'][:80]} | | | | | | |")
            continue
        lines.append(
            f"| {row['preset']} | {row['family']} | {row['train_s']:.0f} | {row['fid']:.2f} | {row['kid'] * 1e3:.1f} | "
            f"{row['is']:.2f} | {row['classes_covered']:.0f} | {row['class_kl']:.3f} | "
            f"{_fmt(row.get('accuracy'), '.3f')} | {_fmt(row.get('cas'), '.3f')} |")
    lines += ["", "The real-digits row: IS and class statistics of the training digits, `cond. acc.` the "
              "classifier's accuracy on them, CAS the CNN trained on the real training split."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator-steps", type=int, default=1200, help="training budget of every preset")
    parser.add_argument("--only", nargs="+", default=None, metavar="STEM", help="preset stems, e.g. acgan_digits")
    parser.add_argument("--num-samples", type=int, default=2000, help="samples per preset for FID/KID/IS")
    parser.add_argument("--cas-samples", type=int, default=None, help="generated training set of CAS (default: "
                        "the size of the real training split)")
    parser.add_argument("--cas-epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="10 steps, 200 samples, 1 CAS epoch; prints only")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file for the table (default docs/results.md)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--from-log", type=Path, default=None, help="train nothing: take the rows a run printed "
                        "(its stderr, one JSON line per preset; benchmarks/results/digits_quality_rows.jsonl holds "
                        "the rows of the table in docs/results.md) and write the table of those presets")
    parser.add_argument("--jobs", type=int, default=1, help="presets trained in parallel (one process each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per training process")
    parser.add_argument("--grids", type=Path, default=None, help="copy each run's last sample grid to "
                        "<folder>/<preset>.png (docs/images for the docs)")
    args = parser.parse_args(argv)
    command = " ".join(["python benchmarks/digits_quality.py", *(sys.argv[1:] if argv is None else argv)])
    if args.quick:
        args.generator_steps, args.num_samples, args.cas_epochs = 10, 200, 1
        args.cas_samples = args.cas_samples or 200

    extractor = DigitsClassifier()
    train_x, train_y = load_digits_split("train")
    test = load_digits_split("val")
    args.cas_samples = args.cas_samples or len(train_x)
    real_feats, real_logits = embed(extractor, train_x, 250)
    real = {"n_train": len(train_x), "n_test": len(test[0]), **class_statistics(real_logits, train_y),
            "is": score(real_feats, real_feats, real_logits, ["is"], seed=args.seed)["is"],
            "cas": accuracy(train_classifier(train_x, train_y, args.cas_epochs, args.seed), *test)}
    print(f"real digits: CAS ceiling {real['cas']:.3f}", file=sys.stderr)

    def run(config: Path, tmp: str) -> dict:
        row = {"preset": config.stem, "family": family(config)}
        try:
            row["train_s"] = train(config, Path(tmp) / config.stem, args.generator_steps, args.threads)
            if args.grids is not None:
                args.grids.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(tmp) / config.stem / "samples" / "last.png", args.grids / f"{config.stem}.png")
            start = time.perf_counter()
            row.update(evaluate_preset(Path(tmp) / config.stem / "checkpoints" / "last.ckpt", extractor,
                                       real_feats, test, args))
            row["score_s"] = time.perf_counter() - start
        except Exception as error:  # one broken preset must not lose the others' numbers
            row["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    if args.from_log is not None:
        lines = [line for line in args.from_log.read_text().splitlines() if line.startswith('{"preset"')]
        rows = [json.loads(line) for line in lines]
        for row in rows:  # labels from the presets as they are now
            config = ROOT / "configs" / f"{row['preset']}.yaml"
            if config.exists():
                row["family"] = family(config)
    else:
        with tempfile.TemporaryDirectory(prefix="digits_quality_") as tmp, ThreadPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(lambda config: run(config, tmp), presets(args.only)))

    markdown = table(rows, real, args, command)
    print(markdown)
    if args.out is not None or not args.quick:  # quick numbers never replace the real table by default
        print(f"written to {write_section('digits_quality', markdown, args.out or RESULTS)}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"real": real, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
