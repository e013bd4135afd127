"""VGG19 feature maps for perceptual ("content") losses, from a local torchvision state_dict.

SRGAN's content loss (Ledig et al. 2017) is the MSE between VGG19 feature maps of the generated and
the real image, ``φ_{i,j}``: the j-th convolution, after its ReLU, before the i-th max-pooling
(``VGG54`` = ``relu5_4``, ``VGG22`` = ``relu2_2``). The weights are ImageNet's, which an offline machine
cannot download: :class:`VGGFeatures` reads torchvision's ``vgg19`` state_dict (the file
``vgg19-dcbb9e9d.pth`` from ``torchvision.models.VGG19_Weights.IMAGENET1K_V1``) from a path, with
``torch.load(weights_only=True)``, and says which file and which option when it is missing.

The weights are kept as plain tensors (not parameters or buffers): they are not trained, not saved in
the family's checkpoints, and not broadcast between processes; they follow the inputs' device.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

# torchvision's vgg19 "E" configuration: channels of each 3x3 convolution, "M" = 2x2 max-pooling
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """Names of ``vgg19.features`` by index: ``conv1_1, relu1_1, ..., pool1, conv2_1, ...``."""
    names, block, conv = [], 1, 0
    for item in VGG19_CONFIG:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


class VGGFeatures:
    """``φ(x)``: VGG19 features of images in ``[-1, 1]`` up to ``layer`` (a callable, not a module).

    Args:
        weights_path: torchvision ``vgg19`` state_dict (keys ``features.<i>.weight``/``bias``).
        layer: the last layer kept, e.g. ``relu5_4`` (SRGAN's VGG54) or ``relu2_2`` (VGG22).
        option: the option name that set ``weights_path``, quoted in the error when the file is missing.

    Raises:
        FileNotFoundError: the file does not exist (the message names it and ``option``).
        ValueError: unknown ``layer``, or the file is not a vgg19 state_dict.
    """

    def __init__(self, weights_path: str | Path, layer: str = "relu5_4", option: str = "vgg_weights_path") -> None:
        names = vgg19_layer_names()
        if layer not in names:
            raise ValueError(f"unknown VGG19 layer '{layer}'; valid: {', '.join(names)}")
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG19 weights '{path}' not found (option {option}). The perceptual loss needs torchvision's "
                f"ImageNet vgg19 state_dict, which cannot be downloaded here: save "
                f"torchvision.models.vgg19(weights='IMAGENET1K_V1').state_dict() (vgg19-dcbb9e9d.pth) on a machine "
                f"with internet access and set {option} to that file, or set the VGG loss weight to 0.")
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.layers: list[tuple[str, Tensor | None, Tensor | None]] = []
        index = 0
        for item in VGG19_CONFIG:
            if item == "M":
                self.layers.append(("pool", None, None))
                index += 1
            else:
                weight, bias = state.get(f"features.{index}.weight"), state.get(f"features.{index}.bias")
                if weight is None or bias is None or weight.shape[0] != item:
                    raise ValueError(f"'{path}' is not a torchvision vgg19 state_dict (features.{index} is missing or "
                                     f"has the wrong shape); {option} must point to one")
                self.layers += [("conv", weight.float(), bias.float()), ("relu", None, None)]
                index += 2
            if len(self.layers) > names.index(layer):
                break
        self.layers = self.layers[: names.index(layer) + 1]
        self.layer = layer

    def to(self, device: torch.device) -> VGGFeatures:
        self.layers = [(kind, None if w is None else w.to(device), None if b is None else b.to(device))
                       for kind, w, b in self.layers]
        return self

    def __call__(self, images: Tensor) -> Tensor:
        """Features ``[N, C_l, H_l, W_l]`` of images ``[N, 1 or 3, H, W]`` in ``[-1, 1]`` (grey is repeated)."""
        if self.layers[0][1] is not None and self.layers[0][1].device != images.device:
            self.to(images.device)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        x = ((images + 1) / 2 - mean) / std  # torchvision's ImageNet normalisation of [0, 1] images
        for kind, weight, bias in self.layers:
            if kind == "conv":
                x = F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=1)
            elif kind == "relu":
                x = F.relu(x)
            else:
                x = F.max_pool2d(x, 2)
        return x


def perceptual_loss(features: VGGFeatures, fake: Tensor, real: Tensor) -> Tensor:
    """``mean((φ(fake) - φ(real))²)``: SRGAN's VGG content loss; gradients flow through ``fake`` only."""
    with torch.no_grad():
        target = features(real)
    return F.mse_loss(features(fake), target)
