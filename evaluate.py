"""Score a folder of generated images against a dataset, another folder or reference statistics, without a Trainer.

    python evaluate.py --fake runs/dcgan_digits/predictions --real digits
    python evaluate.py --fake my_samples/ --real data/cifar_train_png/ --extractor inception \
        --weights_path pt_inception-2015-12-05-6726825d.pth --metrics fid kid is precision recall
    python evaluate.py --fake my_samples/ --reference_stats fid_stats_cifar10_train.npz --extractor inception

``--real digits`` (or ``digits:val``) uses the embedded digits split; any other value is a folder read
recursively (sorted file names). ``--reference_stats`` takes FID's real mean and covariance from an
``.npz`` with ``mu`` and ``sigma`` (pytorch-fid's format); ``--save_real_stats`` writes the real set's
statistics in that format, with the preprocessing mode recorded.

Images stream through a ``DataLoader`` (``--num_workers``, a progress bar on stderr) and are dropped once
embedded: FID keeps float64 sums, KID and the k-NN metrics the features of the first ``--max_features``
images, IS running sums (``callbacks.metrics.streaming``), so memory does not grow with the number of
images. ``--num_fake`` / ``--num_real`` pick the first files (sorted) before any image is decoded.
Inception images are read at their own size (the network resizes them with its ``--resize`` mode) unless
``--image_size`` is given. The table goes to stdout and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from callbacks.metrics.reference_stats import load_reference_statistics, save_reference_statistics
from callbacks.metrics.scoring import score_sets
from callbacks.metrics.streaming import SUBSET_METRICS, SetSummary
from datamodules.folder import DEFAULT_EXTENSIONS, _scan, load_image, open_image

METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage")
REAL_METRICS = ("fid", *SUBSET_METRICS)


def small_set_warnings(n_fake: int, n_real: int | None, feature_dim: int | None, metrics: list[str]) -> list[str]:
    """Warnings for sets too small for the numbers to mean anything (FID's bias grows as 1/n)."""
    if "fid" not in metrics:
        return []
    smallest = min(n for n in (n_fake, n_real) if n is not None)
    if feature_dim is not None and smallest <= feature_dim:
        return [f"WARNING: FID from {smallest} images, no more than the {feature_dim} feature dimensions: the "
                "covariance is singular and the value is dominated by the sample-size bias; it is not "
                "comparable with anything but a score at the same n (use thousands; published FIDs use 50,000)"]
    if smallest < 2000:
        return [f"WARNING: FID from {smallest} images is strongly biased by the sample count: compare only "
                "at equal n (published FIDs use 50,000)"]
    return []


def build_extractor(name: str, weights_path: str | None, resize: str = "tf1") -> nn.Module:
    if name == "digits":
        from callbacks.metrics.digits_classifier import DigitsClassifier

        return DigitsClassifier(weights_path=weights_path)
    if name == "inception":
        from callbacks.metrics.inception import FIDInceptionV3

        return FIDInceptionV3(weights_path=weights_path, resize=resize)
    raise ValueError(f"unknown extractor '{name}'; valid: digits, inception")


class ImageFiles(Dataset):
    """Files decoded on access: ``{"image": [C, H, W]}`` in [-1, 1], at their own size or ``image_size``."""

    def __init__(self, files: list[str], channels: int, image_size: int | None) -> None:
        self.files, self.channels, self.image_size = files, channels, image_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        path = self.files[index]
        if self.image_size is not None:
            return {"image": load_image(path, self.image_size, self.channels)}
        pixels = TF.pil_to_tensor(open_image(path, self.channels)).float()
        return {"image": pixels / 127.5 - 1.0}


def _collate(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    sizes = {tuple(item["image"].shape) for item in items}
    if len(sizes) > 1:
        raise ValueError(f"images of different sizes {sorted(sizes)} in one batch: pass --image_size to resize them")
    return {"image": torch.stack([item["image"] for item in items])}


def folder_files(folder: str, limit: int | None, option: str, limit_option: str) -> list[str]:
    """The first ``limit`` image files under ``folder`` (sorted), checked before anything is decoded."""
    files = _scan(folder, DEFAULT_EXTENSIONS)
    if not files:
        raise ValueError(f"{option}: no images ({', '.join(DEFAULT_EXTENSIONS)}) under '{folder}'")
    if limit is not None:
        if limit > len(files):
            raise ValueError(f"{limit_option}={limit} but {option} '{folder}' holds only {len(files)} images")
        files = files[:limit]
    return files


def source_dataset(source: str, image_size: int | None, channels: int, limit: int | None, option: str,
                   limit_option: str) -> Dataset:
    """``digits[:train|val]`` (tensors in memory, 32 px by default) or a folder of files decoded on access."""
    if source.split(":")[0] == "digits":
        from datamodules.digits import DigitsDataModule
        from datamodules.tensors import TensorDictDataset

        split = source.split(":")[1] if ":" in source else "train"
        datamodule = DigitsDataModule(image_size=image_size or 32)
        datamodule.setup("fit")
        images = datamodule.tensors(split)[0]
        if limit is not None and limit > len(images):
            raise ValueError(f"{limit_option}={limit} but digits:{split} holds only {len(images)} images")
        return TensorDictDataset(images[:limit] if limit else images)
    return ImageFiles(folder_files(source, limit, option, limit_option), channels, image_size)


@torch.no_grad()
def embed_into(summary: SetSummary, extractor: nn.Module, dataset: Dataset, batch_size: int, num_workers: int,
               device: torch.device, description: str, progress: bool = True) -> None:
    """Streams ``dataset`` through ``extractor`` into ``summary`` (rows in dataset order)."""
    from tqdm import tqdm

    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=_collate)
    start = 0
    for batch in tqdm(loader, desc=description, unit="batch", disable=not progress, file=sys.stderr):
        out = extractor(batch["image"].to(device))
        index = torch.arange(start, start + len(batch["image"]))
        summary.update(index, out["features"].float(), out["logits"].float())
        start += len(index)


@torch.no_grad()
def embed(extractor: nn.Module, images: Tensor, batch_size: int = 250) -> tuple[Tensor, Tensor]:
    """Features ``[N, d]`` and logits ``[N, K]`` (float32) of in-memory ``images [N, C, H, W]`` in [-1, 1]."""
    feats, logits = [], []
    for chunk in images.split(batch_size):
        out = extractor(chunk)
        feats.append(out["features"].float())
        logits.append(out["logits"].float())
    return torch.cat(feats), torch.cat(logits)


def score(real: Tensor, fake: Tensor, fake_logits: Tensor, metrics: list[str], seed: int = 0,
          kid_subset_size: int = 1000, max_features: int = 10_000) -> dict[str, float]:
    """The metrics of full feature matrices (``[n, d]`` real, ``[m, d]`` fake, ``[m, K]`` fake logits).

    The same computation as the streamed one: the matrices are summarised as one batch each.
    """
    fake_summary = SetSummary(len(fake), metrics, max_features=max_features, is_seed=seed)
    fake_summary.update(torch.arange(len(fake)), fake, fake_logits)
    real_summary = SetSummary(len(real), [m for m in metrics if m in REAL_METRICS], max_features=max_features)
    real_summary.update(torch.arange(len(real)), real)
    statistics = real_summary.moments.mean_covariance() if real_summary.moments is not None else None
    subset = real_summary.subset.rows if real_summary.subset is not None else None
    return score_sets(fake_summary, metrics, statistics, subset, kid_subset_size=kid_subset_size, seed=seed)


def main(argv: list[str] | None = None, extractor: nn.Module | None = None) -> dict[str, float]:
    """Parses ``argv``, scores, prints the table; ``extractor`` (an already built module) overrides ``--extractor``'s
    network but not its image format (benchmarks use it with a stand-in network)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fake", required=True, help="folder of generated images")
    parser.add_argument("--real", default=None, help="'digits', 'digits:val' or a folder of real images")
    parser.add_argument("--reference_stats", default=None, help="FID statistics .npz (mu, sigma) instead of --real for FID")
    parser.add_argument("--save_real_stats", default=None, help="write the real set's FID statistics to this .npz")
    parser.add_argument("--extractor", default="digits", choices=["digits", "inception"])
    parser.add_argument("--weights_path", default=None, help="extractor weights file (Inception: pt_inception-2015-12-05-6726825d.pth)")
    parser.add_argument("--resize", default="tf1", choices=["tf1", "pytorch_fid", "torchmetrics"],
                        help="Inception preprocessing: tf1 (published numbers, torch-fidelity), pytorch_fid, torchmetrics")
    parser.add_argument("--metrics", nargs="+", default=["fid", "kid", "is"], choices=METRICS)
    parser.add_argument("--image_size", type=int, default=None, help="resize files to this size (default: 32 for "
                        "digits; Inception reads files at their own size)")
    parser.add_argument("--num_real", type=int, default=None)
    parser.add_argument("--num_fake", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--max_features", type=int, default=10_000, help="features kept for KID, precision/recall, density/coverage")
    parser.add_argument("--kid_subsets", type=int, default=100)
    parser.add_argument("--kid_subset_size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    if "fid" in args.metrics and args.real is None and args.reference_stats is None:
        parser.error("fid needs a reference: give --real (a dataset or folder) or --reference_stats (an .npz with mu and sigma)")
    needs_subset = any(m in SUBSET_METRICS for m in args.metrics)
    if args.real is None and needs_subset:
        parser.error(f"metrics {[m for m in args.metrics if m in SUBSET_METRICS]} need real images: give --real")
    for option, name in (("--fake", args.fake), ("--real", args.real)):
        if name is not None and not name.startswith("digits") and not Path(name).is_dir():
            parser.error(f"{option}: folder '{name}' does not exist")
    for option, value in (("--num_fake", args.num_fake), ("--num_real", args.num_real)):
        if value is not None and value < 2:
            parser.error(f"{option} must be >= 2, got {value}")
    size = args.image_size or (32 if args.extractor == "digits" else None)
    channels = 1 if args.extractor == "digits" else 3
    device = torch.device(args.device)
    progress = not args.no_progress
    try:
        fake_set = source_dataset(args.fake, size, channels, args.num_fake, "--fake", "--num_fake")
        real_set = source_dataset(args.real, size, channels, args.num_real, "--real", "--num_real") if args.real else None
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    for option, name, dataset in (("--fake", args.fake, fake_set), ("--real", args.real, real_set)):
        if dataset is not None and len(dataset) < 2 and {"fid", "kid", "precision", "recall"} & set(args.metrics):
            parser.error(f"{option} '{name}' holds {len(dataset)} image(s): a covariance, a KID subset or a "
                         "nearest-neighbour radius needs at least 2 (use thousands; published FIDs use 50,000)")
    if extractor is None:
        extractor = build_extractor(args.extractor, args.weights_path, args.resize)
    extractor = extractor.to(device)
    preprocessing = getattr(extractor, "preprocessing", None)
    reference = None
    if args.reference_stats is not None:
        try:
            reference = load_reference_statistics(args.reference_stats, getattr(extractor, "feature_dim", None),
                                                  preprocessing)
        except (ValueError, FileNotFoundError) as error:
            parser.error(f"--reference_stats: {error}")

    fake = SetSummary(len(fake_set), args.metrics, max_features=args.max_features, is_seed=args.seed, device=device)
    embed_into(fake, extractor, fake_set, args.batch_size, args.num_workers, device, "fake", progress)
    statistics, subset = None, None
    if real_set is not None and (needs_subset or reference is None or args.save_real_stats):
        real_metrics = [m for m in REAL_METRICS if m in args.metrics or (m == "fid" and args.save_real_stats)]
        real = SetSummary(len(real_set), real_metrics, max_features=args.max_features, device=device)
        embed_into(real, extractor, real_set, args.batch_size, args.num_workers, device, "real", progress)
        if real.moments is not None:
            statistics = real.moments.mean_covariance()
            if args.save_real_stats:
                save_reference_statistics(args.save_real_stats, *statistics, len(real_set), preprocessing)
        subset = real.subset.rows.cpu() if real.subset is not None else None
    if reference is not None:
        statistics = (reference.mu, reference.sigma)
    values = score_sets(fake, args.metrics, statistics, subset, kid_subsets=args.kid_subsets,
                        kid_subset_size=args.kid_subset_size, seed=args.seed)
    n_real = len(real_set) if real_set is not None else reference.num_samples
    where = args.real or args.reference_stats
    mode = f", preprocessing {preprocessing}" if preprocessing else ""
    print(f"| metric | value |  ({len(fake_set)} fake vs {n_real if n_real is not None else '?'} real from {where}, "
          f"extractor {args.extractor}{mode})")
    print("| --- | --- |")
    for key, value in values.items():
        print(f"| {key} | {value:.6g} |")
    if "kid_subset_size" in values:
        print(f"KID: subset size capped at {int(values['kid_subset_size'])} (fewer images than --kid_subset_size="
              f"{args.kid_subset_size}): one full-set MMD^2, no std")
    for warning in small_set_warnings(len(fake_set), n_real, getattr(extractor, "feature_dim", None), args.metrics):
        print(warning)
        print(warning, file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"fake": args.fake, "real": where, "extractor": args.extractor,
                                               "preprocessing": preprocessing, "n_fake": len(fake_set),
                                               "n_real": n_real, **values}, indent=2))
    return values


if __name__ == "__main__":
    main()
