"""A PNG of captions and the images a text-to-image generator draws for them. No Lightning import."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import nn

from callbacks.images import to_uint8


@torch.no_grad()
def caption_grid(generator: nn.Module, captions: Sequence[str], per_caption: int, path: str | Path, seed: int = 0,
                 tile: int = 96) -> Path:
    """Writes one row per caption: its text, then ``per_caption`` samples shown at ``tile`` px (nearest).

    Args:
        generator: a text-conditioned generator with ``encode(captions)`` and ``G(z, tokens)``
            (``gan_modules.load_generator`` of a StackGAN checkpoint).
        captions: caption strings (an empty one, or one of only unknown words, is an error).
        per_caption: samples per caption.
        path: the PNG file (folders are created).
        seed: seeds the latents.
    """
    text_width, pad = 260, 4
    canvas = Image.new("RGB", (text_width + per_caption * (tile + pad), len(captions) * (tile + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    gen = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    for row, caption in enumerate(captions):
        tokens = generator.encode([caption] * per_caption).to(device)
        z = torch.randn(per_caption, generator.latent_dim, generator=gen).to(device)
        images = to_uint8(generator(z, tokens))
        y = row * (tile + pad)
        draw.multiline_text((4, y + 8), "\n".join(textwrap.wrap(caption, 34)), fill="black")
        for k, image in enumerate(images):
            picture = Image.fromarray(image.permute(1, 2, 0).numpy()).resize((tile, tile), Image.NEAREST)
            canvas.paste(picture, (text_width + k * (tile + pad), y))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
