"""Digits presets at their own budgets, trained side by side: which is better for the same wall-clock time?

What is measured:
    Each preset (default ``stylegan_digits`` and ``r3gan_digits``) is trained with ``train.py fit`` for
    its OWN ``max_generator_steps`` (read from the preset; ``--steps STEM=N`` overrides one), all
    presets at the same time, one process and ``--threads`` torch threads each (default 1), so every
    run sees the same machine: the wall-clock times are comparable with each other within one run of
    this script, not across runs or machines. Training and scoring are ``benchmarks/digits_quality.py``'s
    (the preset's metric callbacks and validation left out, one sample grid at the end; FID/KID/IS of
    ``--num-samples`` samples of the last checkpoint's EMA generator against the 1,438 training digits
    in the features of ``callbacks.metrics.DigitsClassifier``). ``s/step`` is the wall-clock time of the
    whole fit (start-up included) over its generator steps.

Usage::

    python benchmarks/equal_wallclock.py                    # stylegan_digits beside r3gan_digits
    python benchmarks/equal_wallclock.py --presets dcgan_digits r3gan_digits --steps r3gan_digits=1200
    python benchmarks/equal_wallclock.py --quick            # 4 steps, 200 samples: checks that it works

The table goes to stdout and, except with ``--quick``, into the ``equal_wallclock`` section of
``docs/results.md`` (``--out`` names another file, and makes ``--quick`` write too).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import machine, publish  # noqa: E402
from benchmarks.digits_quality import evaluate_preset, family, presets, train  # noqa: E402
from callbacks.metrics.digits_classifier import DigitsClassifier, load_digits_split  # noqa: E402
from evaluate import embed  # noqa: E402


def preset_steps(config: Path) -> int:
    """The preset's own ``model.init_args.max_generator_steps``."""
    steps = yaml.safe_load(config.read_text())["model"].get("init_args", {}).get("max_generator_steps")
    if not isinstance(steps, int) or steps < 1:
        raise SystemExit(f"{config.name} sets no max_generator_steps; give --steps {config.stem}=N")
    return steps


def parse_steps(items: list[str], stems: list[str]) -> dict[str, int]:
    """``["r3gan_digits=2400"]`` -> ``{"r3gan_digits": 2400}``; stems must be among the presets run."""
    out: dict[str, int] = {}
    for item in items:
        stem, sep, value = item.partition("=")
        if not sep or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"--steps takes STEM=N with N >= 1, got {item!r}")
        if stem not in stems:
            raise SystemExit(f"--steps names {stem!r}, which is not among --presets ({', '.join(stems)})")
        out[stem] = int(value)
    return out


def table(rows: list[dict], args, command: str) -> str:
    lines = [
        "## Equal wall-clock: digits presets at their own budgets",
        "",
        f"`{command}` on {machine(threads=False)}. The presets trained at the same time, one process and "
        f"{args.threads} torch thread(s) each (nothing else running), for their own `max_generator_steps`; "
        f"{args.num_samples} samples of each (EMA) generator scored against the training digits in the "
        "DigitsClassifier's features (FID/KID comparable with the digits quality table's).",
        "",
        "| preset | family | steps | train s | s/step | FID | KID ×10³ | IS |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        head = f"| {row['preset']} | {row['family']} | {row['steps']} |"
        if "error" in row:
            lines.append(f"{head} – | – | failed: {row['error'][:80]} | | |")
            continue
        lines.append(f"{head} {row['train_s']:.0f} | {row['train_s'] / row['steps']:.3f} | {row['fid']:.2f} | "
                     f"{row['kid'] * 1e3:.1f} | {row['is']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["stylegan_digits", "r3gan_digits"], metavar="STEM")
    parser.add_argument("--steps", nargs="*", default=[], metavar="STEM=N", help="another budget for one preset")
    parser.add_argument("--num-samples", type=int, default=2000, help="samples per preset for FID/KID/IS")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 steps, 200 samples; prints only")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file for the table (default docs/results.md)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    command = " ".join(["python benchmarks/equal_wallclock.py", *(sys.argv[1:] if argv is None else argv)])
    configs = presets(args.presets)
    budgets = {c.stem: preset_steps(c) for c in configs} if not args.quick else {c.stem: 4 for c in configs}
    budgets.update(parse_steps(args.steps, list(budgets)))
    if args.quick:
        args.num_samples = 200
    args.cas_samples, args.cas_epochs = 0, 0  # evaluate_preset's CAS arguments: the presets are unconditional

    extractor = DigitsClassifier()
    train_x, _ = load_digits_split("train")
    test = load_digits_split("val")
    real_feats, _ = embed(extractor, train_x, 250)

    def run(config: Path, tmp: str) -> dict:
        row = {"preset": config.stem, "family": family(config), "steps": budgets[config.stem]}
        try:
            row["train_s"] = train(config, Path(tmp) / config.stem, row["steps"], args.threads)
        except Exception as error:  # one broken preset must not lose the others' numbers
            row["error"] = f"{type(error).__name__}: {error}"
        return row

    with tempfile.TemporaryDirectory(prefix="equal_wallclock_") as tmp:
        with ThreadPoolExecutor(len(configs)) as pool:  # all trainings at once: the same machine for each
            rows = list(pool.map(lambda config: run(config, tmp), configs))
        for row in rows:  # scoring after every training ended, so it does not slow any of them
            if "error" not in row:
                row.update(evaluate_preset(Path(tmp) / row["preset"] / "checkpoints" / "last.ckpt", extractor,
                                           real_feats, test, args))
            print(json.dumps(row), file=sys.stderr, flush=True)

    publish('equal_wallclock', table(rows, args, command), args, rows)
    return rows


if __name__ == "__main__":
    main()
