"""The photos that ship inside scikit-image and scikit-learn, their fixed splits, and the pure functions that
make tasks.

Everything here works offline: the files are part of the scikit-image wheel (0.26) and, for ``china`` and
``flower``, of the scikit-learn wheel (``sklearn.datasets.load_sample_image``). Photos are
tensors ``float32 [C, H, W]`` in ``[-1, 1]``; a photo whose shorter side exceeds ``MAX_SIDE`` is
downscaled to it, so one large photo does not dominate the patches.

Splits are by photo, never by patch, so validation and test patches show scenes the generator never
saw (see docs/translation.md):

* colour: train ``astronaut, rocket, motorcycle, immunohistochemistry, hubble_deep_field, china, flower``, val
  ``coffee``, test ``chelsea``;
* grayscale (``channels=1``): the luminance of the colour photos of the split, plus train ``camera,
  moon, page, text``, val ``clock``, test ``coins``;
* textures (one photo each): train the top three quarters (rows 0..383), val the bottom-left quarter
  strip (rows 384..511, columns 0..255), test the bottom-right one (columns 256..511).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

MAX_SIDE = 512
SKLEARN_PHOTOS = ("china", "flower")  # scikit-learn's sample images; every other name is a skimage.data photo
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601
COLOR_PHOTOS = {
    "train": ("astronaut", "rocket", "motorcycle", "immunohistochemistry", "hubble_deep_field", "china", "flower"),
    "val": ("coffee",),
    "test": ("chelsea",),
}
GRAY_PHOTOS = {"train": ("camera", "moon", "page", "text"), "val": ("clock",), "test": ("coins",)}
TEXTURES = ("brick", "gravel", "grass")
TEXTURE_REGIONS = {  # (rows, columns) of the 512x512 texture photos
    "train": (slice(0, 384), slice(0, 512)),
    "val": (slice(384, 512), slice(0, 256)),
    "test": (slice(384, 512), slice(256, 512)),
}
SPLITS = ("train", "val", "test")
# Doubly stochastic (non-negative, rows and columns sum to 1): each output channel is a convex
# combination of the inputs, so [-1, 1] maps into [-1, 1] with no clamping, and the matrix is
# invertible (eigenvalues 1 and 0.56 e^{+-2.25i}), so B -> A is a well-defined mapping too.
COLOR_MATRICES = {
    "mix": ((0.1, 0.7, 0.2), (0.2, 0.1, 0.7), (0.7, 0.2, 0.1)),
    "permute": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)),  # (R, G, B) -> (G, B, R)
}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def load_photo(name: str, gray: bool = False) -> torch.Tensor:
    """One scikit-image photo as ``float32 [C, H, W]`` in ``[-1, 1]`` (C = 3 colour, 1 gray), downscaled
    (antialiased) so that its shorter side is at most ``MAX_SIDE``.

    Args:
        name: a photo of ``skimage.data`` (``"motorcycle"`` is the left view of ``stereo_motorcycle``), or
            ``"china"`` / ``"flower"``, scikit-learn's two sample images.
        gray: return the luminance (``luminance``) of a colour photo.
    """
    import skimage.data  # lazily: only the embedded datamodules need scikit-image

    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image  # the two JPEGs inside the scikit-learn wheel

        array = load_sample_image(f"{name}.jpg")
    else:
        array = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    # NumPy and PIL, not torch, for whole photos: they run single-threaded, while torch splits these large
    # element-wise ops across threads, which on a few shared cores costs more than the arithmetic.
    img = Image.fromarray(array[..., :3] if array.ndim == 3 else array)
    short = min(img.size)
    if short > MAX_SIDE:  # PIL's bilinear filter widens with the scale factor: an antialiased downscale
        img = img.resize(tuple(round(s * MAX_SIDE / short) for s in img.size), Image.BILINEAR)
    values = np.asarray(img, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
    values = values[None] if values.ndim == 2 else values.transpose(2, 0, 1)
    if gray and values.shape[0] == 3:
        values = np.tensordot(np.asarray(LUMA_WEIGHTS, np.float32), values, axes=1)[None]
    return torch.from_numpy(np.ascontiguousarray(values.clip(-1.0, 1.0)))


def luminance(img: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``[..., 3, H, W]`` as ``[..., 1, H, W]`` (weights sum to 1: stays in ``[-1, 1]``)."""
    weights = img.new_tensor(LUMA_WEIGHTS).view(3, 1, 1)
    return (img * weights).sum(-3, keepdim=True)


def photo_names(split: str, channels: int, names: Sequence[str] | None = None,
                label: str = "names") -> tuple[str, ...]:
    """The names of a split's photos (the colour ones for ``channels=3``, plus the gray ones for 1), or
    ``names`` checked to be a non-empty subset of the split's colour and gray photos (a gray one in a colour
    set is used as R = G = B): a photo of another split, e.g. a val or test photo asked for in training,
    raises ``ValueError`` naming ``label``."""
    _check_split(split)
    if names is None:
        return COLOR_PHOTOS[split] + (GRAY_PHOTOS[split] if channels == 1 else ())
    allowed = COLOR_PHOTOS[split] + GRAY_PHOTOS[split]  # named gray photos join a colour set as R = G = B
    if not names or any(name not in allowed for name in names):
        raise ValueError(f"{label} must be a non-empty subset of the {split} photos {', '.join(allowed)}, "
                         f"got {list(names)}")
    return tuple(names)


def photos(split: str, channels: int, names: Sequence[str] | None = None) -> list[torch.Tensor]:
    """The photos of a split, ``[channels, H, W]`` each: colour ones for ``channels=3``; their luminance plus
    the gray ones for 1. ``names`` picks photos of the split, in its order (see ``photo_names``)."""
    return [load_photo(name, channels == 1).expand(channels, -1, -1).contiguous()
            for name in photo_names(split, channels, names)]


def texture(name: str, split: str) -> torch.Tensor:
    """The ``split`` region of a texture photo (``brick``, ``gravel``, ``grass``), ``[1, h, w]`` in ``[-1, 1]``."""
    _check_split(split)
    if name not in TEXTURES:
        raise ValueError(f"texture must be one of {', '.join(TEXTURES)}, got {name!r}")
    rows, cols = TEXTURE_REGIONS[split]
    return load_photo(name)[:, rows, cols].contiguous()


def edge_map(img: torch.Tensor, detector: str = "canny", sigma: float = 2.0) -> torch.Tensor:
    """Edges of a photo, black on white like pix2pix's edges2shoes: ``[1, H, W]`` in ``[-1, 1]``.

    Args:
        img: ``[C, H, W]`` in ``[-1, 1]`` (colour photos are reduced to their luminance).
        detector: ``"canny"`` (binary: -1 on an edge, 1 elsewhere) or ``"sobel"`` (the gradient
            magnitude, scaled by its 99th percentile over the photo and clipped: graded strokes).
        sigma: Gaussian smoothing of Canny, in pixels; larger keeps only the main contours.
    """
    values = img.numpy().astype(np.float64)
    gray01 = ((np.tensordot(LUMA_WEIGHTS, values, axes=1) if len(values) == 3 else values[0]) + 1) / 2
    if detector == "canny":
        from skimage.feature import canny

        strength = canny(gray01, sigma=sigma).astype(np.float32)
    elif detector == "sobel":
        from skimage.filters import sobel

        magnitude = sobel(gray01)
        strength = (magnitude / max(np.quantile(magnitude, 0.99), 1e-8)).clip(0, 1).astype(np.float32)
    else:
        raise ValueError(f"edge detector must be 'canny' or 'sobel', got {detector!r}")
    return torch.from_numpy(1.0 - 2.0 * strength[None])


def downsample(img: torch.Tensor, factor: int) -> torch.Tensor:
    """``[..., C, H, W]`` averaged over ``factor x factor`` blocks (the box filter: exact and alias-free
    for integer factors; SRGAN used bicubic)."""
    *lead, h, w = img.shape
    return img.reshape(*lead, h // factor, factor, w // factor, factor).mean((-3, -1))


def mix_colors(img: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """A 3x3 colour matrix on every pixel of ``[..., 3, H, W]``: output channel o is ``sum_c matrix[o, c] * img[c]``."""
    if img.shape[-3] != 3:
        raise ValueError(f"colour transform needs 3 channels, got shape {tuple(img.shape)}")
    return torch.einsum("oc,...chw->...ohw", matrix.to(img), img)


def color_transform(img: torch.Tensor, kind: str = "mix") -> torch.Tensor:
    """The true A -> B mapping of the ``photo2transformed`` task: a fixed 3x3 colour matrix on every pixel.

    Args:
        img: ``[..., 3, H, W]`` in ``[-1, 1]``.
        kind: ``"mix"`` (a doubly stochastic mixing matrix) or ``"permute"`` ((R, G, B) -> (G, B, R)).

    Returns:
        the transformed image, same shape, in ``[-1, 1]``.
    """
    if kind not in COLOR_MATRICES:
        raise ValueError(f"colour transform must be one of {', '.join(COLOR_MATRICES)}, got {kind!r}")
    return mix_colors(img, torch.tensor(COLOR_MATRICES[kind]))


def box_mask(size: int, generator: torch.Generator) -> torch.Tensor:
    """A random rectangle hole, sides uniform in ``[size/4, size/2]``: ``[1, size, size]``, 1 = hole."""
    low, high = max(1, size // 4), max(1, size // 2)
    h, w = (int(v) for v in torch.randint(low, high + 1, (2,), generator=generator))
    top = int(torch.randint(size - h + 1, (), generator=generator))
    left = int(torch.randint(size - w + 1, (), generator=generator))
    mask = torch.zeros(1, size, size)
    mask[:, top:top + h, left:left + w] = 1.0
    return mask


def free_form_mask(size: int, generator: torch.Generator) -> torch.Tensor:
    """Random brush strokes (DeepFill v2's free-form masks): ``[1, size, size]``, 1 = hole.

    1 to 4 strokes, each a polyline of 2 to 6 segments of random direction and length in
    ``[size/8, size/3]``, drawn with a brush of width ``max(2, size/16)`` to ``max(2, size/8)``.
    """
    # One draw of the generator, then NumPy: the distance field is ~10^5 elements, which torch would split
    # across threads, and on a few busy cores that synchronisation costs 10x the arithmetic.
    u = torch.rand(1 + 4 * 16, generator=generator, dtype=torch.float64).numpy()
    starts, ends, radii = [], [], []
    for k in range(1 + int(u[0] * 4)):
        s = u[1 + 16 * k:17 + 16 * k]  # this stroke: start (2), width, segment count, 6 angles, 6 lengths
        segments = 2 + int(s[3] * 5)
        angle, length = 2 * np.pi * s[4:4 + segments], size / 8 + s[10:10 + segments] * (size / 3 - size / 8)
        steps = np.stack([np.sin(angle), np.cos(angle)], -1) * length[:, None]
        points = np.concatenate([s[None, :2] * size, s[None, :2] * size + steps.cumsum(0)]).clip(0, size - 1)
        starts.append(points[:-1])
        ends.append(points[1:])
        radii.append(np.full(segments, 0.5 * max(2.0, size / 16 + s[2] * size / 16)))
    start, end, r = np.concatenate(starts), np.concatenate(ends), np.concatenate(radii)  # [S, 2] (row, col), [S]
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).reshape(-1, 1, 2) + 0.5
    direction = end - start
    # Distance from each pixel centre to each segment: project, clamp to the segment, measure.
    t = ((grid - start) * direction).sum(-1) / np.maximum((direction * direction).sum(-1), 1e-8)
    nearest = start + t.clip(0, 1)[..., None] * direction
    inside = (np.linalg.norm(grid - nearest, axis=-1) <= r).any(-1)
    return torch.from_numpy(inside.reshape(1, size, size)).float()


def random_mask(kind: str, size: int, generator: torch.Generator) -> torch.Tensor:
    """``box_mask`` or ``free_form_mask`` by name."""
    if kind == "box":
        return box_mask(size, generator)
    if kind == "free_form":
        return free_form_mask(size, generator)
    raise ValueError(f"mask_kind must be 'box' or 'free_form', got {kind!r}")


def random_patch(images: list[torch.Tensor], size: int, generator: torch.Generator,
                 extra: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
    """A ``size`` square at a random place of a random image (uniform over images, then places).

    ``extra`` are maps aligned with ``images`` (e.g. their edges); the same window is cut from them.
    """
    k = int(torch.randint(len(images), (), generator=generator))
    h, w = images[k].shape[-2:]
    top = int(torch.randint(h - size + 1, (), generator=generator))
    left = int(torch.randint(w - size + 1, (), generator=generator))
    sources = [images[k]] + ([extra[k]] if extra is not None else [])
    return tuple(s[:, top:top + size, left:left + size] for s in sources)


def random_dihedral(images: Sequence[torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """The same random one of the 8 flips and quarter-turns of a square, applied to every ``[C, P, P]`` map."""
    k, flip = divmod(int(torch.randint(8, (), generator=generator)), 2)  # k quarter-turns, after a mirror or not
    return tuple((img.flip(-1) if flip else img).rot90(k, (-2, -1)) for img in images)


def rotate_hue(img: torch.Tensor, angle: float) -> torch.Tensor:
    """``[..., 3, H, W]`` in ``[-1, 1]`` with its colours turned by ``angle`` radians about the grey axis.

    Rodrigues' rotation about ``(1, 1, 1) / sqrt(3)``: the mean of the three channels (brightness) and
    the distance from grey (saturation) are kept, the hue turns; values pushed outside ``[-1, 1]`` are clipped.
    """
    axis = torch.full((3,), 3 ** -0.5, dtype=torch.float64)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], dtype=torch.float64) * 3 ** -0.5
    rotation = (math.cos(angle) * torch.eye(3, dtype=torch.float64) + math.sin(angle) * cross
                + (1 - math.cos(angle)) * torch.outer(axis, axis))
    return mix_colors(img, rotation).clamp(-1.0, 1.0)
