"""StackGAN Stage-I objective ablation on the captioned shapes: what makes the generator draw the shape.

What is measured:
    ``configs/stackgan_stage1_shapes.yaml`` trained with ``train.py fit`` (``benchmarks/digits_quality.py``'s
    ``train``: metric callbacks and validation left out, a sample grid every 250 steps) for
    ``--steps`` generator steps (default 1500, the preset's) in each variant of :data:`VARIANTS`, which
    sets conditioning augmentation (CA), its KL weight and the text-image matching term explicitly, so a
    variant means the same whatever the preset says. Each run's EMA generator is scored as
    ``benchmarks/text_to_image.py`` scores Stage-I (1000 captions of ``test``, seen colour-shape pairs,
    and of ``heldout``; attribute accuracy, R-precision, FID in the attribute classifier's features),
    and its conditioning code is probed (``text_to_image.conditioning_probe``: how well a linear model
    reads each attribute from ``c``). ``train s``: the wall-clock time of the fit with ``--threads``
    torch threads.

Usage::

    python benchmarks/stackgan_ablation.py --threads 1 --jobs 2        # every variant (about 15 min each)
    python benchmarks/stackgan_ablation.py --only paper no_ca_match5
    python benchmarks/stackgan_ablation.py --from-log benchmarks/results/stackgan_ablation_rows.jsonl

The table goes to stdout and into the ``stackgan_ablation`` section of ``docs/results.md`` (``--out``
names another file); ``--quick`` (4 steps, 200 captions) prints only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import machine, publish, read_rows  # noqa: E402
from digits_quality import train  # noqa: E402
from text_to_image import conditioning_probe, generator_images, generator_steps, score  # noqa: E402

PRESET = ROOT / "configs" / "stackgan_stage1_shapes.yaml"
M = "--model.init_args."
CA = M + "generator.init_args.conditioning_augmentation="


def _variant(ca: bool, match: float, kl: float = 2.0) -> list[str]:
    return [f"{CA}{str(ca).lower()}", f"{M}matching_weight={match}", f"{M}kl_weight={kl}"]


VARIANTS: dict[str, tuple[str, list[str]]] = {
    "paper": ("CA, KL weight 2, no matching term (the paper's objective)", _variant(True, 0.0)),
    "ca_kl0.2": ("CA, KL weight 0.2", _variant(True, 0.0, 0.2)),
    "ca_match2": ("CA, matching term 2", _variant(True, 2.0)),
    "no_ca": ("no CA", _variant(False, 0.0)),
    "no_ca_match2": ("no CA, matching term 2", _variant(False, 2.0)),
    "no_ca_match5": ("no CA, matching term 5", _variant(False, 5.0)),
    "no_ca_match10": ("no CA, matching term 10 (the presets)", _variant(False, 10.0)),
}


def table(rows: list[dict], command: str, from_log: bool) -> str:
    source = (f"`{command}`: the rows of earlier runs, each a `python benchmarks/stackgan_ablation.py --threads 1` "
              f"variant (one torch thread, another job on the second core) on {machine(threads=False)}."
              if from_log else f"`{command}` on {machine()}.")
    lines = ["## StackGAN Stage-I: what makes the generator draw the shape", "", source, "",
             "Stage-I trained for the steps shown, 1000 captions per split scored; `c shape`, `c colour`: how well a "
             "logistic regression reads the attribute from the conditioning code `c` (one draw) of the `val` "
             "captions. Chance: shape 0.25, colour 0.167.", "",
             "| variant | steps | train s | colour | shape | size | position | R-prec. | FID | held-out colour | "
             "held-out shape | c colour | c shape |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        what = VARIANTS.get(row["variant"], (row["variant"], []))[0]
        if "error" in row:
            lines.append(f"| {what} | – | – | failed: {row['error'][:80]} | | | | | | | | | |")
            continue
        seen, held = row["test"], row["heldout"]
        seconds = "–" if row.get("train_s") is None else f"{row['train_s']:.0f}"
        lines.append(f"| {what} | {row['steps']} | {seconds} | {seen['attr/colour']:.3f} | {seen['attr/shape']:.3f} | "
                     f"{seen['attr/size']:.3f} | {seen['attr/position']:.3f} | {seen['r_precision']:.3f} | "
                     f"{seen['fid']:.2f} | {held['attr/colour']:.3f} | {held['attr/shape']:.3f} | "
                     f"{row['probe']['c/colour']:.3f} | {row['probe']['c/shape']:.3f} |")
    return "\n".join(lines)


def evaluate(ckpt: Path, num_samples: int) -> dict:
    """Scores of one Stage-I checkpoint on ``test`` and ``heldout``, and its conditioning probe."""
    from callbacks.metrics.attribute_classifier import AttributeClassifier
    from datamodules.text_image import TextImageDataModule
    from gan_modules import load_generator
    from gan_modules.nets.text import load_text_image_encoders

    generator = load_generator(ckpt)
    data = TextImageDataModule()
    data.setup()
    classifier, encoders = AttributeClassifier(), load_text_image_encoders()
    out = {"steps": generator_steps(ckpt), "probe": conditioning_probe(generator, data)}
    for split in ("test", "heldout"):
        out[split] = score(generator_images(generator), data.split(split), num_samples, classifier, encoders)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=None, metavar="VARIANT")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads per training process")
    parser.add_argument("--jobs", type=int, default=1, help="variants trained at once")
    parser.add_argument("--quick", action="store_true", help="4 steps, 200 captions; prints only")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file for the table (default docs/results.md)")
    parser.add_argument("--from-log", type=Path, nargs="+", default=None, help="train nothing: the JSON rows earlier "
                        "runs printed (their stderr; benchmarks/results/stackgan_ablation_rows.jsonl holds the table's)")
    args = parser.parse_args(argv)
    command = " ".join(["python benchmarks/stackgan_ablation.py", *(sys.argv[1:] if argv is None else argv)])
    if args.quick:
        args.steps, args.num_samples = 4, 200

    if args.from_log is not None:
        rows = read_rows(args.from_log, "variant")
    else:
        def run(name: str, tmp: str) -> dict:
            row: dict = {"variant": name}
            try:
                row["train_s"] = train(PRESET, Path(tmp) / name, args.steps, args.threads, 250, VARIANTS[name][1])
                row.update(evaluate(Path(tmp) / name / "checkpoints" / "last.ckpt", args.num_samples))
            except Exception as error:  # one broken variant must not lose the others' numbers
                row["error"] = f"{type(error).__name__}: {error}"
            print(json.dumps(row), file=sys.stderr, flush=True)
            return row

        with tempfile.TemporaryDirectory(prefix="stackgan_ablation_") as tmp, ThreadPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(lambda name: run(name, tmp), args.only or list(VARIANTS)))

    publish("stackgan_ablation", table(rows, command, args.from_log is not None), args)
    return rows


if __name__ == "__main__":
    main()
