"""Captioned shapes: an embedded text-to-image dataset drawn from a seed, no download.

Each 64x64 RGB image shows one shape on a plain or striped grey background, described by four
attributes (the ``attributes`` vector, in this order):

* colour: red, green, blue, yellow, purple, white;
* shape: circle, square, triangle, diamond;
* size: small, large;
* position: top left, top right, bottom left, bottom right, center.

Each image has :data:`CAPTIONS_PER_IMAGE` captions drawn from a small grammar with synonyms
("a small red circle at the top left", "in the upper left corner there is a tiny crimson disc").
:func:`parse_caption` maps any caption of the grammar back to its attributes. The shapes are drawn
from signed distance functions with a one-pixel soft edge (anti-aliased), their centre jittered by up
to 3 px, their radius drawn within the size's range, their colour jittered a little.

Splits (:func:`make_split`) are fixed by the seed: ``train``, ``val`` and ``test`` draw only the
colour-shape pairs outside :data:`HELD_OUT`; ``heldout`` draws only the pairs in it, which training
never sees (every colour and every shape alone is seen). Pure functions of their arguments.
"""

from __future__ import annotations

import math
import random

import torch
from torch import Tensor

IMAGE_SIZE = 64
CAPTIONS_PER_IMAGE = 5
COLOURS = ("red", "green", "blue", "yellow", "purple", "white")
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "center")
ATTRIBUTES = {"colour": COLOURS, "shape": SHAPES, "size": SIZES, "position": POSITIONS}
HELD_OUT = (("red", "triangle"), ("green", "diamond"), ("blue", "circle"), ("yellow", "square"))
SPLITS = {"train": (3000, 1), "val": (300, 2), "test": (300, 3), "heldout": (300, 4)}  # images, seed offset

_RGB = {"red": (0.9, 0.12, 0.1), "green": (0.1, 0.75, 0.2), "blue": (0.15, 0.3, 0.95),
        "yellow": (0.95, 0.88, 0.1), "purple": (0.6, 0.15, 0.8), "white": (0.95, 0.95, 0.95)}
_CENTRES = {"top left": (18, 18), "top right": (46, 18), "bottom left": (18, 46), "bottom right": (46, 46),
            "center": (32, 32)}  # (x, y) in pixels, y down
_RADII = {"small": (6.0, 7.5), "large": (11.0, 12.5)}

COLOUR_WORDS = {"red": ("red", "crimson", "scarlet"), "green": ("green", "emerald", "grassy"),
                "blue": ("blue", "azure", "cobalt"), "yellow": ("yellow", "golden", "lemon"),
                "purple": ("purple", "violet", "plum"), "white": ("white", "snowy", "ivory")}
SHAPE_WORDS = {"circle": ("circle", "disc", "ball"), "square": ("square", "box", "block"),
               "triangle": ("triangle", "wedge", "pyramid"), "diamond": ("diamond", "rhombus", "lozenge")}
SIZE_WORDS = {"small": ("small", "tiny", "little"), "large": ("large", "big", "huge")}
_VERTICAL = {"top": ("top", "upper"), "bottom": ("bottom", "lower")}
_CENTER_PHRASES = ("in the center", "in the middle", "at the centre")
_CORNER_PHRASES = ("at the {v} {h}", "in the {v} {h} corner", "in the {v} {h}")
_TEMPLATES = ("{a} {size} {colour} {shape} {position}", "there is {a} {size} {colour} {shape} {position}",
              "{position} there is {a} {size} {colour} {shape}", "{a} {size} {shape} coloured {colour} {position}",
              "{position} , {a} {colour} {shape} , {size}")


def _pick(options: tuple[str, ...], rng: random.Random) -> str:
    return options[rng.randrange(len(options))]


def position_phrase(position: str, rng: random.Random) -> str:
    """One phrase for a position ("in the upper left corner", "in the middle", ...)."""
    if position == "center":
        return _pick(_CENTER_PHRASES, rng)
    vertical, horizontal = position.split()
    return _pick(_CORNER_PHRASES, rng).format(v=_pick(_VERTICAL[vertical], rng), h=horizontal)


def make_caption(attributes: Tensor | list[int], rng: random.Random) -> str:
    """A caption of the grammar for ``attributes [4]`` (colour, shape, size, position indices; a tensor or a list)."""
    colour, shape, size, position = (names[int(i)] for names, i in zip(ATTRIBUTES.values(), attributes, strict=True))
    template = _pick(_TEMPLATES, rng)
    words = {"size": _pick(SIZE_WORDS[size], rng), "colour": _pick(COLOUR_WORDS[colour], rng),
             "shape": _pick(SHAPE_WORDS[shape], rng), "position": position_phrase(position, rng)}
    # the article agrees with the word that follows it in the template
    following = words["colour"] if template.startswith("{position} ,") else words["size"]
    return template.format(a="an" if following[0] in "aeiou" else "a", **words)


def parse_caption(caption: str) -> dict[str, str]:
    """The attributes a caption of the grammar names, ``{"colour", "shape", "size", "position"}``.

    Raises:
        ValueError: an attribute is named by no word, or by two different ones.
    """
    words = caption.lower().replace(",", " ").split()
    found: dict[str, set[str]] = {k: set() for k in ATTRIBUTES}
    for key, table in (("colour", COLOUR_WORDS), ("shape", SHAPE_WORDS), ("size", SIZE_WORDS)):
        for name, synonyms in table.items():
            if any(w in synonyms for w in words):
                found[key].add(name)
    vertical = {v for v, synonyms in _VERTICAL.items() if any(w in synonyms for w in words)}
    horizontal = {h for h in ("left", "right") if h in words}
    if vertical and horizontal:
        found["position"] = {f"{v} {h}" for v in vertical for h in horizontal}
    elif {"center", "centre", "middle"} & set(words):
        found["position"] = {"center"}
    bad = [k for k, v in found.items() if len(v) != 1]
    if bad:
        raise ValueError(f"caption {caption!r} names no single {' / '.join(bad)}")
    return {k: next(iter(v)) for k, v in found.items()}


def attribute_names(attributes: Tensor) -> dict[str, str]:
    """``attributes [4]`` as names, ``{"colour": "red", ...}``."""
    return {key: names[int(i)] for (key, names), i in zip(ATTRIBUTES.items(), attributes, strict=True)}


def allowed_pairs(held_out: bool) -> list[tuple[int, int]]:
    """(colour, shape) index pairs of the held-out set (``held_out``) or of the seen set."""
    pairs = [(c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES))]
    return [p for p in pairs if ((COLOURS[p[0]], SHAPES[p[1]]) in HELD_OUT) == held_out]


def _signed_distance(shape: str, dx: Tensor, dy: Tensor, radius: Tensor) -> Tensor:
    """Signed distance in pixels (negative inside) of one kind of shape; ``[N, H, W]``."""
    if shape == "circle":
        return torch.sqrt(dx**2 + dy**2) - radius
    if shape == "square":
        return torch.maximum(dx.abs(), dy.abs()) - 0.85 * radius  # about the circle's area
    if shape == "diamond":
        return (dx.abs() + dy.abs() - 1.2 * radius) / math.sqrt(2.0)
    # equilateral triangle pointing up (y grows downwards): three half-planes at the inradius R/2 (R = 1.3 r)
    return torch.maximum(dy, (0.866 * dx.abs() - 0.5 * dy)) - 0.65 * radius


def render(attributes: Tensor, gen: torch.Generator) -> Tensor:
    """Images ``[N, 3, 64, 64]`` uint8 of ``attributes [N, 4]``, the nuisances drawn from ``gen``.

    Nuisances: centre jitter (uniform +-3 px), radius (uniform in the size's range), colour (+-0.05 a
    channel), background grey level (0.1 to 0.3) and, for half the images, faint stripes of random
    angle, frequency and phase.
    """
    n = len(attributes)
    colour, shape, size, position = attributes.T
    centres = torch.tensor([_CENTRES[p] for p in POSITIONS], dtype=torch.float32)[position]
    centres = centres + (torch.rand(n, 2, generator=gen) * 6 - 3)
    low = torch.tensor([_RADII[s][0] for s in SIZES])[size]
    high = torch.tensor([_RADII[s][1] for s in SIZES])[size]
    radius = (low + torch.rand(n, generator=gen) * (high - low)).view(n, 1, 1)
    rgb = torch.tensor([_RGB[c] for c in COLOURS])[colour] + (torch.rand(n, 3, generator=gen) - 0.5) * 0.1
    grey = 0.1 + 0.2 * torch.rand(n, generator=gen)
    striped = torch.rand(n, generator=gen) < 0.5
    angle = torch.rand(n, generator=gen) * math.pi
    frequency = 0.3 + 0.5 * torch.rand(n, generator=gen)
    phase = torch.rand(n, generator=gen) * 2 * math.pi

    coords = torch.arange(IMAGE_SIZE, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    dx = x.unsqueeze(0) - centres[:, 0].view(n, 1, 1)
    dy = y.unsqueeze(0) - centres[:, 1].view(n, 1, 1)
    distance = torch.empty(n, IMAGE_SIZE, IMAGE_SIZE)
    for k, name in enumerate(SHAPES):
        mine = shape == k
        distance[mine] = _signed_distance(name, dx[mine], dy[mine], radius[mine])
    alpha = (0.5 - distance).clamp(0.0, 1.0).unsqueeze(1)  # [N, 1, H, W]
    wave = torch.sin(frequency.view(n, 1, 1) * (x * angle.cos().view(n, 1, 1) + y * angle.sin().view(n, 1, 1))
                     + phase.view(n, 1, 1))
    background = grey.view(n, 1, 1) + 0.06 * wave * striped.view(n, 1, 1)
    image = alpha * rgb.view(n, 3, 1, 1) + (1 - alpha) * background.unsqueeze(1)
    return (image.clamp(0.0, 1.0) * 255).round().to(torch.uint8)


def make_split(split: str, seed: int = 0) -> tuple[Tensor, Tensor, list[list[str]]]:
    """One split of the dataset, a pure function of ``(split, seed)``.

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` (seen colour-shape pairs) or ``"heldout"`` (the
            pairs of :data:`HELD_OUT` only).
        seed: the dataset seed; each split draws from its own stream of it.

    Returns:
        images ``[N, 3, 64, 64]`` uint8, attributes ``[N, 4]`` int64 (colour, shape, size, position)
        and, per image, :data:`CAPTIONS_PER_IMAGE` captions.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    count, offset = SPLITS[split]
    gen = torch.Generator().manual_seed(seed * 1_000_003 + offset)
    pairs = torch.tensor(allowed_pairs(split == "heldout"))
    chosen = pairs[torch.randint(len(pairs), (count,), generator=gen)]
    size = torch.randint(len(SIZES), (count,), generator=gen)
    position = torch.randint(len(POSITIONS), (count,), generator=gen)
    attributes = torch.stack([chosen[:, 0], chosen[:, 1], size, position], dim=1)
    images = render(attributes, gen)
    rng = random.Random(seed * 1_000_003 + offset)
    captions = [[make_caption(a, rng) for _ in range(CAPTIONS_PER_IMAGE)] for a in attributes.tolist()]
    return images, attributes, captions
