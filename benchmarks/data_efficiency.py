"""Data efficiency on the digits: FID/KID/IS with less training data, without and with D augmentation.

What is measured:
    ``dcgan_digits`` and ``stylegan_digits`` (``--presets`` picks others) are trained with ``train.py
    fit`` on 100%, 25% and 10% of the 1,438 training digits (``data.train_fraction``: a fixed,
    class-stratified subset; ``--fractions``), each with ``augment: none``, ``diffaugment``
    (colour, translation, cutout) and ``ada`` (``--augments``), all for the same ``--steps`` generator
    steps (default 1200, the presets' budget) and otherwise the presets' settings. Training and scoring
    are ``benchmarks/digits_quality.py``'s: the last checkpoint's (EMA) generator is loaded with
    ``gan_modules.load_generator`` and ``--num-samples`` samples are scored with FID, KID and IS in the
    features and logits of ``callbacks.metrics.DigitsClassifier``, against the FULL training split
    whatever fraction the run trained on (so a generator that memorises its 143 digits is penalised).
    ``ADA p`` is the augmentation probability at the end of an ADA run (``augmenter.p`` in the
    checkpoint), and ``train s`` the wall-clock time of the fit.

Usage::

    python benchmarks/data_efficiency.py                        # 2 presets x 3 fractions x 3 augments
    python benchmarks/data_efficiency.py --jobs 2 --threads 1   # two fits at a time
    python benchmarks/data_efficiency.py --quick                # tiny budget: checks that the script works

The table goes to stdout and, except with ``--quick``, into the ``data_efficiency`` section of
``docs/results.md`` (``--out`` names another file, and makes ``--quick`` write too).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import machine, publish, read_rows  # noqa: E402
from benchmarks.digits_quality import evaluate_preset, presets, train  # noqa: E402
from callbacks.metrics.digits_classifier import DigitsClassifier, load_digits_split  # noqa: E402
from evaluate import embed  # noqa: E402

AUGMENTS = ("none", "diffaugment", "ada")


def final_p(ckpt: Path) -> float | None:
    """ADA's probability at the end of a run (None when the run did not use ADA)."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    p = state.get("augmenter.p")
    return None if p is None else float(p)


def table(rows: list[dict], args, command: str, n_train: int) -> str:
    lines = [
        "## Data efficiency",
        "",
        f"`{command}` on {machine()}." if args.from_log is None else
        f"`{command}`: the rows its runs printed; each run was `python benchmarks/data_efficiency.py --presets "
        f"PRESET --jobs 1 --threads 1` (one torch thread per training run, two for scoring; another job on the "
        f"second core) on {machine(threads=False)}.",
        "",
        f"Each preset trained for {args.steps} generator steps on a class-stratified share of the {n_train} "
        f"training digits (`data.train_fraction`), with the discriminator's inputs augmented or not "
        f"(`model.augment`); {args.num_samples} samples of its (EMA) generator scored against all {n_train} "
        "training digits with the DigitsClassifier (FID/KID in its 128-d features, comparable only with "
        "each other). `ADA p`: the augmentation probability at the end.",
        "",
        "| preset | data % | augment | train s | FID | KID ×10³ | IS | ADA p |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        head = f"| {row['preset']} | {row['fraction'] * 100:g} | {row['augment']} |"
        if "error" in row:
            lines.append(f"{head} – | failed: {row['error'][:80]} | | | |")
            continue
        p = "–" if row.get("ada_p") is None else f"{row['ada_p']:.3f}"
        lines.append(f"{head} {row['train_s']:.0f} | {row['fid']:.2f} | {row['kid'] * 1e3:.1f} | {row['is']:.2f} | {p} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["dcgan_digits", "stylegan_digits"], metavar="STEM")
    parser.add_argument("--fractions", nargs="+", type=float, default=[1.0, 0.25, 0.1])
    parser.add_argument("--augments", nargs="+", choices=AUGMENTS, default=list(AUGMENTS))
    parser.add_argument("--steps", type=int, default=1200, help="generator steps of every run")
    parser.add_argument("--num-samples", type=int, default=2000, help="samples per run for FID/KID/IS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 steps, 200 samples; prints only")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file for the table (default docs/results.md)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained in parallel (one process each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per training process")
    parser.add_argument("--from-log", type=Path, nargs="+", default=None, help="train nothing: the rows earlier "
                        "runs printed (their stderr, one JSON line per run; benchmarks/results/"
                        "data_efficiency_rows.jsonl holds the rows of the table in docs/results.md), in the order given")
    args = parser.parse_args(argv)
    command = " ".join(["python benchmarks/data_efficiency.py", *(sys.argv[1:] if argv is None else argv)])
    for fraction in args.fractions:
        if not 0.0 < fraction <= 1.0:
            parser.error(f"argument --fractions: {fraction} is not in (0, 1]")
    if args.quick:
        args.steps, args.num_samples = 4, 200
    # evaluate_preset's CAS arguments: unused (the presets here are unconditional), kept for its signature
    args.cas_samples, args.cas_epochs = 0, 0

    train_x, _ = load_digits_split("train")
    if args.from_log is not None:
        return write(read_rows(args.from_log, "preset"), args, command, len(train_x))
    extractor = DigitsClassifier()
    test = load_digits_split("val")
    real_feats, _ = embed(extractor, train_x, 250)
    configs = presets(args.presets)

    def run(job: tuple[Path, float, str], tmp: str) -> dict:
        config, fraction, augment = job
        row = {"preset": config.stem, "fraction": fraction, "augment": augment}
        run_dir = Path(tmp) / f"{config.stem}_{fraction:g}_{augment}"
        try:
            row["train_s"] = train(config, run_dir, args.steps, args.threads,
                                   overrides=[f"--data.init_args.train_fraction={fraction}",
                                              f"--model.init_args.augment={augment}"])
            ckpt = run_dir / "checkpoints" / "last.ckpt"
            row.update(evaluate_preset(ckpt, extractor, real_feats, test, args))
            row["ada_p"] = final_p(ckpt)
        except Exception as error:  # one broken run must not lose the others' numbers
            row["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    jobs = list(itertools.product(configs, args.fractions, args.augments))
    with tempfile.TemporaryDirectory(prefix="data_efficiency_") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: run(job, tmp), jobs))
    return write(rows, args, command, len(train_x))


def write(rows: list[dict], args, command: str, n_train: int) -> list[dict]:
    """Prints the table of ``rows`` and writes it (except for ``--quick`` without ``--out``) and the JSON rows."""
    publish('data_efficiency', table(rows, args, command, n_train), args, rows)
    return rows


if __name__ == "__main__":
    main()
