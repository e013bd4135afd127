"""A small CNN that reads the four attributes of a captioned-shapes image: colour, shape, size, position.

The evaluator of text-to-image models on ``datamodules.shapes_captions`` (like the digits classifier
for the digits): attribute accuracy of generated images against the attributes their captions name,
and FID / KID in its 128-d features (comparable only with itself). The shipped weights
``weights/shapes_attributes.pt`` are trained on the real training images only (seen colour-shape
pairs) by ``python benchmarks/train_attribute_classifier.py``; its accuracy on the real ``heldout``
images is the check that it reads the attributes apart, not the pairs. Torch only.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PACKAGED_WEIGHTS = Path(__file__).parent / "weights" / "shapes_attributes.pt"
ATTRIBUTE_CLASSES = {"colour": 6, "shape": 4, "size": 2, "position": 5}


class AttributeCNN(nn.Module):
    """Four 3x3 conv-BN-ReLU layers (3 -> 32 -> 64 -> 128 -> 128, stride 2), global average pool to 128-d
    features, one linear head per attribute."""

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in ((3, 32), (32, 64), (64, 128), (128, 128)):  # 64 -> 32 -> 16 -> 8 -> 4 px
            layers += [nn.Conv2d(c_in, c_out, 3, 2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({name: nn.Linear(self.feature_dim, k) for name, k in ATTRIBUTE_CLASSES.items()})

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``[N, 3, 64, 64]`` in ``[-1, 1]`` -> (features ``[N, 128]``, attribute name -> logits ``[N, K]``)."""
        features = self.body(x).mean(dim=(2, 3))
        return features, {name: head(features) for name, head in self.heads.items()}


class AttributeClassifier(nn.Module):
    """Frozen :class:`AttributeCNN`: images to features and attribute logits, always in eval mode.

    Inputs of another size are resized to 64 px (bilinear, antialiased when downsampling).

    Args:
        weights_path: a state dict written by ``benchmarks/train_attribute_classifier.py``; None for
            the packaged weights.

    Attributes:
        cache_id: ``"shapes-attributes-" + sha256(weights file)[:12]`` (keys cached real features).
    """

    feature_dim = AttributeCNN.feature_dim
    image_size = 64

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        path = PACKAGED_WEIGHTS if weights_path is None else Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"attribute classifier weights not found: {path} (weights_path); create them "
                                    f"with python benchmarks/train_attribute_classifier.py --out {path}")
        self.net = AttributeCNN()
        self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.cache_id = f"shapes-attributes-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> AttributeClassifier:
        """Stays in eval mode whatever ``mode`` is (frozen BatchNorm statistics)."""
        return super().train(False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """``[N, 3, H, W]`` in ``[-1, 1]`` -> ``{"features": [N, 128], "logits": [N, 17] (the heads side by
        side, colour first), "attributes": {name: [N, K]}}``, float32."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W], got shape {tuple(images.shape)}")
        x = images.detach().float()
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.image_size)
        amp_off = torch.autocast(x.device.type, enabled=False) if x.device.type in ("cpu", "cuda") \
            else contextlib.nullcontext()
        with amp_off:
            features, heads = self.net(x)
        return {"features": features.float(), "logits": torch.cat(list(heads.values()), dim=1).float(),
                "attributes": {k: v.float() for k, v in heads.items()}}
