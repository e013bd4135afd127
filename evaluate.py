"""Score a folder of generated images against a dataset or another folder, without a Trainer.

    python evaluate.py --fake runs/dcgan_digits/predictions --real digits
    python evaluate.py --fake my_samples/ --real data/cifar_train_png/ --extractor inception \
        --weights_path pt_inception-2015-12-05-6726825d.pth --metrics fid kid is precision recall

``--real digits`` (or ``digits:val``) uses the embedded digits split; any other value is a folder
read like ``ImageFolderDataModule`` (recursive, resized and center-cropped to ``--image_size``).
Images are embedded with the chosen extractor and scored with ``callbacks.metrics``; the table goes
to stdout and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor, nn

from callbacks.metrics.frechet import frechet_distance
from callbacks.metrics.inception_score import inception_score
from callbacks.metrics.kid import kernel_inception_distance
from callbacks.metrics.prdc import density_coverage, precision_recall
from datamodules.folder import ImageFolderDataModule

METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage")


def build_extractor(name: str, weights_path: str | None) -> nn.Module:
    if name == "digits":
        from callbacks.metrics.digits_classifier import DigitsClassifier

        return DigitsClassifier(weights_path=weights_path)
    if name == "inception":
        from callbacks.metrics.inception import FIDInceptionV3

        return FIDInceptionV3(weights_path=weights_path)
    raise ValueError(f"unknown extractor '{name}'; valid: digits, inception")


def load_images(source: str, image_size: int, channels: int, limit: int | None) -> Tensor:
    """``[N, C, H, W]`` in [-1, 1] from ``digits[:train|val]`` or an image folder."""
    if source.split(":")[0] == "digits":
        from datamodules.digits import DigitsDataModule

        split = source.split(":")[1] if ":" in source else "train"
        datamodule = DigitsDataModule(image_size=image_size)
        datamodule.setup("fit")
        images = datamodule.tensors(split)[0]
    else:
        datamodule = ImageFolderDataModule(root=source, image_size=image_size, channels=channels, batch_size=1)
        datamodule.setup("fit")
        images = torch.stack([datamodule.train_set[i]["image"] for i in range(len(datamodule.train_set))])
    return images[:limit] if limit else images


@torch.no_grad()
def embed(extractor: nn.Module, images: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    feats, logits = [], []
    for chunk in images.split(batch_size):
        out = extractor(chunk)
        feats.append(out["features"].float())
        logits.append(out["logits"].float())
    return torch.cat(feats), torch.cat(logits)


def score(real: Tensor, fake: Tensor, fake_logits: Tensor, metrics: list[str], seed: int = 0) -> dict[str, float]:
    out: dict[str, float] = {}
    if "fid" in metrics:
        out["fid"] = frechet_distance(real, fake)
    if "kid" in metrics:
        out["kid"], out["kid_std"] = kernel_inception_distance(real, fake, subset_size=min(1000, len(real), len(fake)), seed=seed)
    if "is" in metrics:
        out["is"], out["is_std"] = inception_score(fake_logits, splits=min(10, len(fake_logits)), seed=seed)
    if {"precision", "recall"} & set(metrics):
        out.update({k: v for k, v in precision_recall(real, fake).items() if k in metrics})
    if {"density", "coverage"} & set(metrics):
        out.update({k: v for k, v in density_coverage(real, fake).items() if k in metrics})
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fake", required=True, help="folder of generated images")
    parser.add_argument("--real", required=True, help="'digits', 'digits:val' or a folder of real images")
    parser.add_argument("--extractor", default="digits", choices=["digits", "inception"])
    parser.add_argument("--weights_path", default=None, help="extractor weights file (Inception: pt_inception-2015-12-05-6726825d.pth)")
    parser.add_argument("--metrics", nargs="+", default=["fid", "kid", "is"], choices=METRICS)
    parser.add_argument("--image_size", type=int, default=None, help="default: 32 for digits, 299 for inception")
    parser.add_argument("--num_real", type=int, default=None)
    parser.add_argument("--num_fake", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    for name in (args.fake, args.real):
        if not name.startswith("digits") and not Path(name).is_dir():
            parser.error(f"folder '{name}' does not exist")
    size = args.image_size or (32 if args.extractor == "digits" else 299)
    channels = 1 if args.extractor == "digits" else 3
    extractor = build_extractor(args.extractor, args.weights_path)
    real_feats, _ = embed(extractor, load_images(args.real, size, channels, args.num_real), args.batch_size)
    fake_feats, fake_logits = embed(extractor, load_images(args.fake, size, channels, args.num_fake), args.batch_size)
    values = score(real_feats, fake_feats, fake_logits, args.metrics)
    print(f"| metric | value |  ({len(fake_feats)} fake vs {len(real_feats)} real, extractor {args.extractor})")
    print("| --- | --- |")
    for key, value in values.items():
        print(f"| {key} | {value:.6g} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"fake": args.fake, "real": args.real, "extractor": args.extractor,
                                               "n_fake": len(fake_feats), "n_real": len(real_feats), **values}, indent=2))
    return values


if __name__ == "__main__":
    main()
