"""StackGAN on the captioned shapes: attribute accuracy, R-precision and FID, seen and held-out pairs.

What is measured:
    ``configs/stackgan_stage1_shapes.yaml`` is trained with ``train.py fit`` in a subprocess for
    ``--stage1-steps`` generator steps, then ``configs/stackgan_stage2_shapes.yaml`` on that run's
    checkpoint for ``--stage2-steps`` (the presets' metric callbacks and validation left out, a
    sample grid every 100 steps kept). The generators (EMA weights) are loaded with ``gan_modules.load_generator`` and
    each scored on ``--num-samples`` (image, caption) pairs drawn from two splits of the embedded set:
    ``test`` (colour-shape pairs seen in training) and ``heldout`` (pairs training never saw). One
    sample per caption, seeded latents. Scores (``callbacks.metrics.text_image.text_image_scores``):

    * ``colour``, ``shape``, ``size``, ``position``: the attribute classifier's
      (``callbacks.metrics.AttributeClassifier``) accuracy on the generated images against the
      attributes the caption names; chance is 1/6, 1/4, 1/2, 1/5;
    * ``R-prec.``: R-precision (1 of 100) with the packaged matching encoders; the 99 other captions
      come from other attribute combinations; chance is 0.01;
    * ``FID``: in the classifier's 128-d features, against the real images of the same split
      (each once), comparable only with itself and at equal sample counts.

    The ``real images`` rows score the pairs' real images the same way (the ceiling of the accuracies
    and R-precision; their FID is the floor at this sample count). Stage-I's 32 px images are
    upsampled by the classifier and the image encoder (bilinear). ``train s`` is the wall-clock time
    of each ``train.py fit`` with ``--threads`` torch threads, start-up and one sample grid included.

Usage::

    python benchmarks/text_to_image.py --quick                     # tiny budget: checks that the script works
    python benchmarks/text_to_image.py --stage1-steps 1500 --stage2-steps 600 --threads 2 --grids docs/images
    python benchmarks/text_to_image.py --stage1-checkpoint runs/stackgan_stage1_shapes/checkpoints/last.ckpt

The step counts in the table are read from the checkpoints (a run stopped early, e.g. by SIGTERM
through ``callbacks.Preemption``, reports the steps it made). With ``--stage1-checkpoint`` an
existing Stage-I run is scored and Stage-II trained on it; its training time is then not measured
(``--stage1-seconds`` reports the time that run took, e.g. as ``train_s`` of its own benchmark). With both
``--stage1-checkpoint`` and ``--stage2-checkpoint`` nothing is trained: the two runs are scored.

The table goes to stdout and, except with ``--quick``, into the ``text_to_image`` section of
``docs/results.md`` (``--out`` names another file, and makes ``--quick`` write too).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import RESULTS, machine, write_section  # noqa: E402
from digits_quality import train  # noqa: E402

from callbacks.caption_grid import caption_grid  # noqa: E402
from callbacks.metrics.attribute_classifier import AttributeClassifier  # noqa: E402
from callbacks.metrics.text_image import text_image_scores  # noqa: E402
from datamodules.text_image import CaptionedImages, TextImageDataModule  # noqa: E402
from gan_modules import load_generator  # noqa: E402
from gan_modules.nets.text import load_text_image_encoders  # noqa: E402

CONFIGS = ROOT / "configs"
SPLITS = {"test": "seen", "heldout": "held-out"}


@torch.no_grad()
def score(images_of: object, data: CaptionedImages, n: int, classifier: AttributeClassifier,
          encoders: tuple, seed: int = 0, batch_size: int = 250) -> dict[str, float]:
    """Scores of the images ``images_of(z, tokens, index)`` makes for ``n`` pairs of ``data``."""
    _, text_encoder, image_encoder, _ = encoders
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    index = index.repeat(-(-n // len(index)))[:n]
    pairs = data.__getitems__(index.tolist())
    z = torch.randn(n, 1024, generator=torch.Generator().manual_seed(seed + 1))
    features, embeddings, heads = [], [], {}
    for chunk in torch.arange(n).split(batch_size):
        images = images_of(z[chunk], pairs["caption_tokens"][chunk], chunk, pairs)
        out = classifier(images)
        features.append(out["features"])
        embeddings.append(image_encoder(images))
        for name, logits in out["attributes"].items():
            heads.setdefault(name, []).append(logits)
    real = torch.cat([classifier(x)["features"] for x in (data.images.float() / 127.5 - 1).split(batch_size)])
    return text_image_scores({k: torch.cat(v) for k, v in heads.items()}, pairs["attributes"], real,
                             torch.cat(features), torch.cat(embeddings), text_encoder(pairs["caption_tokens"]),
                             kid_subsets=10, seed=seed)


@torch.no_grad()
def conditioning_probe(generator: torch.nn.Module, data: TextImageDataModule, seed: int = 0) -> dict[str, float]:
    """What Stage-I's conditioning code carries of each attribute: a logistic regression fitted on the
    ``train`` captions' ``mu`` (and on one draw of the code ``c``: ``mu + sigma * eps``, or ``mu`` without
    conditioning augmentation) predicts the attribute of the ``val`` captions; ``mu/<name>``, ``c/<name>``
    accuracies and ``sigma``, the mean of sigma (0 without conditioning augmentation)."""
    from sklearn.linear_model import LogisticRegression

    from datamodules.shapes_captions import ATTRIBUTES

    stage1 = getattr(generator, "stage1", generator)
    gen = torch.Generator().manual_seed(seed)

    def codes(split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        pairs = data.split(split)
        phi = stage1.embed(pairs.tokens)
        c, mu, logvar = stage1.ca(phi, torch.randn(len(phi), stage1.ca.cond_dim, generator=gen))
        # without conditioning augmentation c is mu and no noise is added: sigma 0
        sigma = torch.exp(0.5 * logvar) if stage1.ca.noise else torch.zeros_like(mu)
        return mu, c, pairs.attributes[pairs.pairs[:, 0]], sigma

    train_mu, train_c, train_y, _ = codes("train")
    val_mu, val_c, val_y, sigma = codes("val")
    out = {"sigma": float(sigma.mean())}
    for k, name in enumerate(ATTRIBUTES):
        for code, x_train, x_val in (("mu", train_mu, val_mu), ("c", train_c, val_c)):
            probe = LogisticRegression(max_iter=3000).fit(x_train.numpy(), train_y[:, k].numpy())
            out[f"{code}/{name}"] = float(probe.score(x_val.numpy(), val_y[:, k].numpy()))
    return out


def generator_images(generator: torch.nn.Module):  # noqa: ANN201
    def images_of(z, tokens, index, pairs):  # noqa: ANN001, ANN202
        return generator(z[:, :generator.latent_dim], tokens)
    return images_of


def real_images(z, tokens, index, pairs):  # noqa: ANN001, ANN201
    return pairs["image"][index]


def generator_steps(checkpoint: Path) -> int:
    """The generator steps a checkpoint was trained for (what the table reports)."""
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["gan"]["generator_steps"])


def _stage2_config(stage1_ckpt: Path, folder: Path) -> Path:
    preset = yaml.safe_load((CONFIGS / "stackgan_stage2_shapes.yaml").read_text())
    preset["model"]["init_args"]["generator"]["init_args"]["stage1_checkpoint"] = str(stage1_ckpt)
    path = folder / "stackgan_stage2_shapes.yaml"
    path.write_text(yaml.safe_dump(preset, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1-steps", type=int, default=1500)
    parser.add_argument("--stage2-steps", type=int, default=600)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the training processes")
    parser.add_argument("--grids", default=None, help="folder for the caption sample grids (e.g. docs/images)")
    parser.add_argument("--quick", action="store_true", help="4 + 2 steps, 200 samples: checks the script")
    parser.add_argument("--out", default=None, help="Markdown file for the table (default docs/results.md)")
    parser.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--stage1-checkpoint", default=None,
                        help="score this Stage-I checkpoint and train Stage-II on it instead of training Stage-I")
    parser.add_argument("--stage1-seconds", type=float, default=None,
                        help="with --stage1-checkpoint: that run's training time, reported in the table")
    parser.add_argument("--stage2-checkpoint", default=None,
                        help="with --stage1-checkpoint: score this Stage-II checkpoint instead of training Stage-II")
    args = parser.parse_args(argv)
    if args.stage1_seconds is not None and not args.stage1_checkpoint:
        parser.error("--stage1-seconds goes with --stage1-checkpoint (a Stage-I run trained here is timed here)")
    if args.stage2_checkpoint and not args.stage1_checkpoint:
        parser.error("--stage2-checkpoint needs --stage1-checkpoint (the Stage-I run it was trained on)")
    if args.quick:
        args.stage1_steps, args.stage2_steps, args.num_samples = 4, 2, 200
    work = Path(args.workdir or tempfile.mkdtemp(prefix="text_to_image_"))
    work.mkdir(parents=True, exist_ok=True)
    seconds1 = None
    if args.stage1_checkpoint:  # an existing Stage-I run: scored as it is, its training time as given
        stage1_ckpt, seconds1 = Path(args.stage1_checkpoint), args.stage1_seconds
    else:
        seconds1 = train(CONFIGS / "stackgan_stage1_shapes.yaml", work / "stage1", args.stage1_steps, args.threads, 100)
        stage1_ckpt = work / "stage1" / "checkpoints" / "last.ckpt"
    if args.stage2_checkpoint:  # both stages trained already: only scored
        seconds2, stage2_ckpt = None, Path(args.stage2_checkpoint)
    else:
        seconds2 = train(_stage2_config(stage1_ckpt, work), work / "stage2", args.stage2_steps, args.threads, 100)
        stage2_ckpt = work / "stage2" / "checkpoints" / "last.ckpt"
    stage1, stage2 = load_generator(stage1_ckpt), load_generator(stage2_ckpt)
    steps1, steps2 = generator_steps(stage1_ckpt), generator_steps(stage2_ckpt)

    data = TextImageDataModule()
    data.setup()
    classifier, encoders = AttributeClassifier(), load_text_image_encoders()
    rows = [("real images", None, real_images), (f"Stage-I, 32 px ({steps1} steps)", seconds1, generator_images(stage1)),
            (f"Stage-I + II, 64 px (+{steps2} steps)", seconds2, generator_images(stage2))]
    lines = ["| images | captions | colour | shape | size | position | R-prec. | FID | train s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, seconds, images_of in rows:
        for split, label in SPLITS.items():
            s = score(images_of, data.split(split), args.num_samples, classifier, encoders)
            lines.append(f"| {name} | {label} | {s['attr/colour']:.3f} | {s['attr/shape']:.3f} | {s['attr/size']:.3f} | "
                         f"{s['attr/position']:.3f} | {s['r_precision']:.3f} | {s['fid']:.2f} | "
                         f"{'' if seconds is None else f'{seconds:.0f}'} |")
    probe = conditioning_probe(stage1, data)
    lines += ["", f"What Stage-I's conditioning code carries (`conditioning_probe`: a logistic regression from the "
              f"code of the `train` captions to each attribute, accuracy on the `val` captions; mean sigma "
              f"{probe['sigma']:.2f}):", "",
              "| code | colour | shape | size | position |", "| --- | ---: | ---: | ---: | ---: |"]
    for code, label in (("mu", "mu"), ("c", "c (one draw of mu + sigma * eps; mu without CA)")):
        lines.append(f"| {label} | " + " | ".join(f"{probe[f'{code}/{n}']:.3f}" for n in
                                                  ("colour", "shape", "size", "position")) + " |")
    table = "\n".join(lines)
    header = (f"## Text to image: StackGAN on the captioned shapes\n\n"
              f"Written by `benchmarks/text_to_image.py {' '.join(argv if argv is not None else sys.argv[1:])}`; "
              f"{args.num_samples} "
              f"captions per row, one sample each. Machine: {machine()}.\n\n")
    print(header + table)
    if args.grids:
        captions = [data.split(split).captions[i][0] for split in SPLITS for i in range(4)]
        for name, generator in (("stackgan_stage1_shapes", stage1), ("stackgan_stage2_shapes", stage2)):
            print("grid:", caption_grid(generator, captions, 4, Path(args.grids) / f"{name}.png"))
    if not args.quick or args.out:
        write_section("text_to_image", header + table, Path(args.out) if args.out else RESULTS)
    return table


if __name__ == "__main__":
    main()
