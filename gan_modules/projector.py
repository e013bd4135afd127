"""GAN inversion: find the latent whose image reproduces a target image.

The method follows stylegan2-ada's ``projector.py`` (Karras et al. 2020, appendix D;
https://github.com/NVlabs/stylegan2-ada-pytorch), reimplemented here: Adam on one latent, a learning
rate ramped up over the first 5% of the steps and down (cosine) over the last 25%, and Gaussian noise
added to the latent whose scale decays quadratically to zero at 75% of the steps, so the early steps
explore. StyleGAN generators are projected in W (one ``w`` broadcast to every style input, starting
at the tracked mean w̄, the noise scaled by the spread of w); the other families in Z (starting
from the best of ``num_starts`` random draws, and for a conditional generator the best class too).

Loss: ``pixel_weight · MSE(G(latent), target) + feature_weight · MSE(φ(G(latent)), φ(target))``.
stylegan2-ada uses LPIPS (VGG16 with learned weights), which cannot be downloaded here. ``φ`` is any
extractor of ``callbacks/metrics`` (the digits classifier ships its weights in the repo; the FID
Inception-v3 needs its weights file) or VGG19 read from a local torchvision state dict, through
:func:`feature_extractor`; each is run differentiably (the metric wrappers detach their input and
quantise it). Departures: StyleGAN's noise maps are not optimised (the stored maps are used, as in
eval-mode sampling), and the Z projection is our addition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_modules.sampling import is_stylegan, is_translation

FEATURES = ("none", "digits", "inception", "vgg")


def _digits_features(weights_path: str | None, option: str) -> Callable[[Tensor], Tensor]:
    from callbacks.metrics.digits_classifier import DigitsClassifier

    classifier = DigitsClassifier(weights_path=weights_path)
    size = classifier.image_size

    def digits(images: Tensor) -> Tensor:  # DigitsClassifier.forward without its detach
        x = images.float().mean(dim=1, keepdim=True)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
        return classifier.net.to(x.device)(x)[0]

    return digits


def _inception_features(weights_path: str | None, option: str) -> Callable[[Tensor], Tensor]:
    from callbacks.metrics.inception import _LAYERS, INPUT_SIZE, FIDInceptionV3

    net = FIDInceptionV3(weights_path=weights_path)

    def inception(images: Tensor) -> Tensor:  # FIDInceptionV3's preprocessing without rounding to uint8
        x = images.float().expand(-1, 3, -1, -1) * (127.5 / 128.0) - (0.5 / 128.0)  # (u8 - 128) / 128
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        net.to(x.device)
        for layer in _LAYERS:
            x = getattr(net, layer)(x)
        return x.mean(dim=(2, 3))

    return inception


def _vgg_features(weights_path: str | None, option: str) -> Callable[[Tensor], Tensor]:
    from gan_modules.perceptual import VGGFeatures

    if weights_path is None:
        raise FileNotFoundError("the vgg feature loss needs a torchvision vgg19 state dict (vgg19-dcbb9e9d.pth), "
                                "which cannot be downloaded here")
    vgg = VGGFeatures(weights_path, layer="relu4_4", option=option)
    return lambda images: vgg(images.float()).flatten(1)


_BUILDERS = {"digits": _digits_features, "inception": _inception_features, "vgg": _vgg_features}


def feature_extractor(name: str, weights_path: str | None = None, option: str = "--weights_path"
                      ) -> Callable[[Tensor], Tensor] | None:
    """A differentiable ``φ: [N, C, H, W] in [-1, 1] -> [N, d]`` by name, or None for ``"none"``.

    Args:
        name: ``"digits"`` (``DigitsClassifier``'s 128-d features; packaged weights unless ``weights_path``),
            ``"inception"`` (``FIDInceptionV3``'s pool3 features; needs its weights file), ``"vgg"``
            (VGG19 ``relu4_4`` from a torchvision ``vgg19`` state dict at ``weights_path``), ``"none"``.
        weights_path: the weights file of the extractor.
        option: the option that set ``weights_path``, named in the error when a file is missing.

    Raises:
        FileNotFoundError: a weights file is missing (the message names it and ``option``).
        ValueError: unknown ``name``.
    """
    if name == "none":
        return None
    if name not in _BUILDERS:
        raise ValueError(f"unknown feature extractor '{name}'; valid: {', '.join(FEATURES)}")
    try:
        return _BUILDERS[name](weights_path, option)
    except FileNotFoundError as error:
        if option in str(error):
            raise
        raise FileNotFoundError(f"{error} (set by {option})") from error


def learning_rate(step: int, num_steps: int, lr: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """stylegan2-ada's projector schedule: linear warm-up over ``rampup``, cosine decay over ``rampdown``."""
    t = step / num_steps
    down = min(1.0, (1.0 - t) / rampdown)
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    return lr * down * min(1.0, t / rampup)


@dataclass
class Projection:
    """What :func:`project` found.

    Attributes:
        space: ``"w"`` or ``"z"``.
        latent: ``[1, w_dim]`` or ``[1, latent_dim]``.
        label: the class (conditional generators), else None.
        image: ``G(latent)``, ``[1, C, H, W]`` in ``[-1, 1]``.
        frames: images along the optimisation (every ``frame_every`` steps, the last one included).
        losses: the total loss at each step.
    """

    space: str
    latent: Tensor
    label: int | None
    image: Tensor
    frames: list[Tensor] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def synthesize(generator: nn.Module, latent: Tensor, space: str, label: int | None = None) -> Tensor:
    """``G(latent)``: through the synthesis network for a ``w`` (broadcast to every style input)."""
    if space == "w":
        return generator.synthesis(latent[:, None].expand(-1, generator.num_ws, -1))
    if label is None:
        return generator(latent)
    return generator(latent, torch.full((len(latent),), label, device=latent.device))


def _start(generator: nn.Module, target: Tensor, loss_fn: Callable[[Tensor], Tensor], num_starts: int,
           class_index: int | None, gen: torch.Generator) -> tuple[Tensor, int | None]:
    """The initial z (and class) of a Z projection: the best of ``num_starts`` draws, per class."""
    device = target.device
    z = torch.randn(num_starts, generator.latent_dim, generator=gen).to(device)
    classes: list[int | None] = [None]
    if generator.num_classes:
        classes = [class_index] if class_index is not None else list(range(generator.num_classes))
    best: tuple[float, Tensor, int | None] = (math.inf, z[:1], None)
    with torch.no_grad():
        for label in classes:
            losses = torch.stack([loss_fn(synthesize(generator, z[i: i + 1], "z", label)) for i in range(num_starts)])
            i = int(losses.argmin())
            if float(losses[i]) < best[0]:
                best = (float(losses[i]), z[i: i + 1], label)
    return best[1].clone(), best[2]


def project(generator: nn.Module, target: Tensor, num_steps: int = 500, lr: float = 0.1,
            feature: Callable[[Tensor], Tensor] | None = None, pixel_weight: float = 1.0, feature_weight: float = 1.0,
            noise_factor: float = 0.05, num_starts: int = 16, class_index: int | None = None,
            frame_every: int = 10, seed: int = 0) -> Projection:
    """Projects ``target`` into the generator's latent space.

    Args:
        generator: from ``load_generator`` (noise-to-image; eval mode, gradients off for its weights).
        target: ``[1, C, H, W]`` (or ``[C, H, W]``) in ``[-1, 1]``, the generator's ``sample_shape``.
        num_steps: Adam steps (stylegan2-ada: 1000).
        lr: peak learning rate (stylegan2-ada: 0.1).
        feature: ``φ`` of the feature loss (:func:`feature_extractor`); None: pixels only.
        pixel_weight: weight of the pixel MSE.
        feature_weight: weight of the feature MSE.
        noise_factor: initial latent noise, relative to the latent's spread (stylegan2-ada: 0.05).
        num_starts: random z tried before optimising a Z projection (StyleGAN starts at w̄).
        class_index: a conditional generator's class; None tries every class and keeps the best start.
        frame_every: keep an image every this many steps (for the progress GIF).
        seed: seeds the starts and the latent noise.

    Returns:
        A :class:`Projection`.
    """
    if is_translation(generator):
        raise ValueError("projection needs a noise-to-image generator; this one maps images to images")
    if target.dim() == 3:
        target = target[None]
    if tuple(target.shape[1:]) != tuple(generator.sample_shape):
        raise ValueError(f"target: shape {tuple(target.shape[1:])} differs from the generator's sample_shape "
                         f"{tuple(generator.sample_shape)}")
    if num_steps < 1 or lr <= 0:
        raise ValueError(f"num_steps must be >= 1 and lr > 0, got {num_steps}, {lr}")
    device = next(generator.parameters()).device
    target = target.to(device).float()
    target_features = feature(target).detach() if feature is not None else None

    def loss_fn(image: Tensor) -> Tensor:
        loss = pixel_weight * F.mse_loss(image, target)
        if feature is not None and feature_weight > 0:
            loss = loss + feature_weight * F.mse_loss(feature(image), target_features)
        return loss

    gen = torch.Generator().manual_seed(seed)
    if is_stylegan(generator):
        space, label = "w", None
        with torch.no_grad():  # the spread of w, as stylegan2-ada (10,000 samples there)
            w = generator.mapping(torch.randn(2000, generator.latent_dim, generator=gen).to(device),
                                  update_w_avg=False)[:, 0]
        spread = float(((w - generator.w_avg).square().sum(1).mean()).sqrt())
        start = generator.w_avg.detach()[None].clone().float()
    else:
        space, spread = "z", 1.0  # z ~ N(0, I)
        start, label = _start(generator, target, loss_fn, num_starts, class_index, gen)
    latent = start.requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=lr, betas=(0.9, 0.999))
    result = Projection(space, latent.detach(), label, target)
    for step in range(num_steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, num_steps, lr)
        noise_scale = spread * noise_factor * max(0.0, 1.0 - step / (0.75 * num_steps)) ** 2
        noise = torch.randn(latent.shape, generator=gen).to(device) * noise_scale
        image = synthesize(generator, latent + noise, space, label)
        loss = loss_fn(image)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result.losses.append(float(loss.detach()))
        if step % frame_every == 0:
            result.frames.append(image.detach())
    with torch.no_grad():
        result.latent = latent.detach()
        result.image = synthesize(generator, result.latent, space, label)
    result.frames.append(result.image)
    return result
