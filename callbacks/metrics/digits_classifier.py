"""A small CNN trained on scikit-learn's digits: the FID/KID/IS feature extractor for the digits dataset.

Inception features of 32 px grayscale digits say little, so digits experiments measure FID/KID/IS
(and class histograms/accuracy) with this classifier instead ("FID" computed this way is only
comparable with itself). The default weights ship in ``weights/digits_classifier.pt`` (~0.4 MB); they are
reproducible with::

    python -m callbacks.metrics.digits_classifier --out callbacks/metrics/weights/digits_classifier.pt

Data and split replicate ``datamodules/digits.py`` exactly (bilinear upsampling with
``align_corners=False``, ``x / 8 - 1`` into ``[-1, 1]``, validation = the first ``round(0.2 * 1797)`` of
``torch.randperm(1797)`` seeded 1234) without importing it: metrics must not depend on datamodules.
The classifier is trained on the train split only, so real-data statistics of either split are fair.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SPLIT_SEED = 1234
VAL_FRACTION = 0.2
PACKAGED_WEIGHTS = Path(__file__).parent / "weights" / "digits_classifier.pt"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gan_modules`` (default ``~/.cache/gan_modules``): where weights trained on use go."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "gan_modules"


def load_digits_split(split: str = "val", image_size: int = 32) -> tuple[Tensor, Tensor]:
    """One split of the digits, preprocessed and split exactly as ``DigitsDataModule`` does.

    Args:
        split: ``"train"`` (1438 images) or ``"val"`` (359 images).
        image_size: side length (>= 8) the 8x8 digits are bilinearly upsampled to.

    Returns:
        images ``[N, 1, image_size, image_size]`` float32 in ``[-1, 1]`` and labels ``[N]`` int64 in ``0..9``.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    from sklearn.datasets import load_digits  # lazily: sklearn is slow to import

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1)  # 0..16
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    if image_size != images.shape[-1]:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (images / 8.0 - 1.0).clamp_(-1.0, 1.0)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SPLIT_SEED))
    num_val = int(round(VAL_FRACTION * len(images)))
    index = (order[:num_val] if split == "val" else order[num_val:]).sort().values
    return images[index].contiguous(), labels[index]


class DigitsCNN(nn.Module):
    """Four 3x3 conv-BN-ReLU layers (1 -> 32 -> 64 -> 64 -> 128 channels, three with stride 2), global
    average pool to the 128-d features, dropout, linear head to 10 logits.

    ``image_size`` is a buffer so a weights file records the resolution it was trained at.
    """

    feature_dim = 128

    def __init__(self, image_size: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out, stride in ((1, 32, 2), (32, 64, 2), (64, 64, 1), (64, 128, 2)):  # 32 -> 16 -> 8 -> 8 -> 4 px
            layers += [nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(self.feature_dim, 10)
        self.register_buffer("image_size", torch.tensor(image_size, dtype=torch.int64))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[N, 1, S, S]`` in ``[-1, 1]`` -> (features ``[N, 128]`` >= 0, logits ``[N, 10]``)."""
        features = self.body(x).mean(dim=(2, 3))
        return features, self.head(self.dropout(features))


def _augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Light, label-preserving jitter: affine (+-12 deg, +-2 px, 0.9..1.1 scale), blur, contrast, noise."""
    n, _, h, _ = x.shape

    def uniform(lo: float, hi: float) -> Tensor:
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    angle, scale = uniform(-12, 12) * math.pi / 180, uniform(0.9, 1.1)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (4.0 / h)  # 2 px in [-1, 1] grid units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1  # bg = -1
    # Gaussian blur (sigma 0.1..1.2, ~0.1 is a no-op) per sample via a grouped convolution.
    sigma = uniform(0.1, 1.2)
    taps = torch.arange(-2, 3, dtype=torch.float32)
    k1 = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None] ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    kernel = (k1[:, :, None] * k1[:, None, :]).unsqueeze(1)  # [n, 1, 5, 5]
    x = F.conv2d(F.pad(x.transpose(0, 1), (2, 2, 2, 2), mode="replicate"), kernel, groups=n).transpose(0, 1)
    x = (x + 1) * uniform(0.8, 1.1).view(n, 1, 1, 1) - 1  # contrast around the black background
    x = x + torch.randn(x.shape, generator=gen) * uniform(0.0, 0.15).view(n, 1, 1, 1)
    return x.clamp(-1.0, 1.0)


@torch.no_grad()
def _accuracy(net: nn.Module, images: Tensor, labels: Tensor) -> float:
    net.eval()
    return float((net(images)[1].argmax(1) == labels).float().mean())


def train_digits_classifier(path: str | Path, epochs: int = 20, seed: int = 0, image_size: int = 32,
                            batch_size: int = 64, verbose: bool = False) -> dict:
    """Trains ``DigitsCNN`` on the train split (CPU, ~20-40 s on 2 cores) and saves its float32 state dict.

    Adam with a one-cycle learning rate, label smoothing 0.05 and ``_augment``'s jitter, so the classifier
    is not brittle to GAN artifacts (blur, noise, small misplacements). The global RNG is left untouched.

    Args:
        path: output ``.pt`` file (parent folders are created).
        epochs: passes over the 1438 training images.
        seed: seeds initialisation, shuffling and augmentation.
        image_size: training resolution, recorded in the file.
        batch_size: images per step.
        verbose: print the validation accuracy after every epoch.

    Returns:
        ``{"val_accuracy", "train_accuracy", "epochs", "seconds", "path"}``.
    """
    start = time.perf_counter()
    train_x, train_y = load_digits_split("train", image_size)
    val_x, val_y = load_digits_split("val", image_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = DigitsCNN(image_size)
        steps_per_epoch = math.ceil(len(train_x) / batch_size)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * steps_per_epoch)
        for epoch in range(epochs):
            net.train()
            for idx in torch.randperm(len(train_x), generator=gen).split(batch_size):
                loss = F.cross_entropy(net(_augment(train_x[idx], gen))[1], train_y[idx], label_smoothing=0.05)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}: val accuracy {_accuracy(net, val_x, val_y):.4f}")
    result = {"val_accuracy": _accuracy(net, val_x, val_y), "train_accuracy": _accuracy(net, train_x, train_y),
              "epochs": epochs, "seconds": time.perf_counter() - start, "path": str(path)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in net.state_dict().items()}, path)
    return result


class DigitsClassifier(nn.Module):
    """Frozen digits CNN mapping images to 128-d features (FID/KID) and 10 class logits (IS, histograms).

    Inputs are brought to the training format: RGB is averaged to one channel, other sizes are resized
    to ``image_size`` (bilinear, ``align_corners=False``, antialiased when downsampling). No uint8
    quantisation: the real digits are not quantised either. Runs in float32 with autocast disabled.

    Args:
        weights_path: a state dict written by ``train_digits_classifier``. ``None``: the packaged
            ``weights/digits_classifier.pt`` (32 px); if it is missing (or for another ``image_size``),
            weights cached in ``cache_dir()``, trained there on first use (~30 s, with a warning).
        image_size: the resolution the network runs at; must match the one the weights were trained at.

    Attributes:
        feature_dim: 128.
        num_classes: 10.
        cache_id: ``"digits-cnn-" + sha256(weights file)[:12]``.

    Raises:
        FileNotFoundError: ``weights_path`` given but missing.
        ValueError: the weights were trained at another ``image_size``.
    """

    feature_dim = DigitsCNN.feature_dim
    num_classes = 10

    def __init__(self, weights_path: str | None = None, image_size: int = 32) -> None:
        super().__init__()
        path = self._resolve(weights_path, image_size)
        self.net = DigitsCNN(image_size)
        self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        if int(self.net.image_size) != image_size:
            raise ValueError(f"{path} was trained at {int(self.net.image_size)} px, not image_size={image_size}; "
                             f"train matching weights with train_digits_classifier(..., image_size={image_size})")
        self.image_size = image_size
        self.weights_path = str(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self.cache_id = f"digits-cnn-{digest[:12]}"
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _resolve(weights_path: str | None, image_size: int) -> Path:
        if weights_path is not None:
            path = Path(weights_path).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"digits classifier weights not found: {path} (weights_path); create them "
                                        f"with python -m callbacks.metrics.digits_classifier --out {path}")
            return path
        if image_size == 32 and PACKAGED_WEIGHTS.is_file():
            return PACKAGED_WEIGHTS
        name = "digits_classifier.pt" if image_size == 32 else f"digits_classifier_{image_size}px.pt"
        path = cache_dir() / name
        if not path.is_file():
            warnings.warn(f"no digits classifier weights for {image_size} px; training them once into {path} "
                          f"(about 30 s on CPU)", stacklevel=3)
            train_digits_classifier(path, image_size=image_size)
        return path

    def train(self, mode: bool = True) -> DigitsClassifier:
        """Stays in eval mode whatever ``mode`` is (frozen BatchNorm statistics, no dropout)."""
        return super().train(False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Features and logits.

        Args:
            images: ``[N, C, H, W]`` float in ``[-1, 1]``, C = 1 or 3, any H, W.

        Returns:
            ``{"features": [N, 128] float32 (>= 0), "logits": [N, 10] float32}``.
        """
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be [N, 1 or 3, H, W], got shape {tuple(images.shape)}")
        x = images.detach().float().mean(dim=1, keepdim=True)
        size = (self.image_size, self.image_size)
        if x.shape[-2:] != size:
            downsampling = x.shape[-2] > size[0] or x.shape[-1] > size[1]
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=downsampling)
        amp_off = torch.autocast(x.device.type, enabled=False) if x.device.type in ("cpu", "cuda") \
            else contextlib.nullcontext()
        with amp_off:
            features, logits = self.net(x)
        return {"features": features.float(), "logits": logits.float()}


def main(argv: list[str] | None = None) -> dict:
    """``python -m callbacks.metrics.digits_classifier --out FILE``: trains and writes the weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(PACKAGED_WEIGHTS), help="output state dict (.pt)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args(argv)
    result = train_digits_classifier(args.out, epochs=args.epochs, seed=args.seed, image_size=args.image_size,
                                     verbose=True)
    print(f"val accuracy {result['val_accuracy']:.4f} (train {result['train_accuracy']:.4f}) in "
          f"{result['seconds']:.1f} s -> {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KiB)")
    return result


if __name__ == "__main__":
    main()
