"""Turning samples into PNG files: image grids and 2D scatter plots. No Lightning import."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torchvision.utils import make_grid


def to_uint8(images: Tensor) -> Tensor:
    """``[N, C, H, W]`` in ``[-1, 1]`` to uint8 ``[N, C, H, W]`` in ``[0, 255]`` (round half up)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8).cpu()


def image_grid(images: Tensor, nrow: int | None = None, padding: int = 2) -> Tensor:
    """A uint8 ``[3, H, W]`` grid of ``[N, C, H, W]`` images in ``[-1, 1]`` (a square by default)."""
    nrow = nrow or max(1, int(math.ceil(math.sqrt(len(images)))))
    grid = make_grid(to_uint8(images), nrow=nrow, padding=padding, pad_value=255)
    return grid


def save_png(image: Tensor, path: str | Path) -> Path:
    """Saves a uint8 ``[C, H, W]`` tensor (C = 1 or 3) as PNG, creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
    return path


def scatter_plot(points: Tensor, modes: Tensor | None = None, size: int = 512, extent: float | None = None) -> Tensor:
    """A uint8 ``[3, size, size]`` scatter plot of ``[N, 2]`` points (blue) over mode centers (red).

    ``extent`` is the half-width of the square view; by default it covers the modes (or the points)
    with a 25% margin, so samples far from every mode show up at the border.
    """
    pts = points.detach().float().cpu().numpy()
    ref = modes.detach().float().cpu().numpy() if modes is not None else pts
    if extent is None:
        extent = 1.25 * float(np.abs(ref).max()) if ref.size else 1.0
        extent = max(extent, 1e-3)
    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)

    def pixel(xy: np.ndarray) -> tuple[float, float]:
        return ((xy[0] / extent + 1) * 0.5 * (size - 1), (1 - (xy[1] / extent + 1) * 0.5) * (size - 1))

    draw.line([pixel(np.array([-extent, 0])), pixel(np.array([extent, 0]))], fill=(220, 220, 220))
    draw.line([pixel(np.array([0, -extent])), pixel(np.array([0, extent]))], fill=(220, 220, 220))
    for p in np.clip(pts, -extent, extent):
        x, y = pixel(p)
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(40, 90, 200))
    if modes is not None:
        for m in ref:
            x, y = pixel(m)
            draw.line([x - 5, y, x + 5, y], fill=(220, 30, 30), width=2)
            draw.line([x, y - 5, x, y + 5], fill=(220, 30, 30), width=2)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)


def save_gif(frames: list[Tensor], path: str | Path, duration_ms: int = 80, loop: int = 0) -> Path:
    """Saves uint8 ``[C, H, W]`` frames (C = 1 or 3, all one size) as an animated GIF, creating folders.

    Pillow writes it (no other dependency); ``loop = 0`` repeats forever.
    """
    if not frames:
        raise ValueError("save_gif: no frames")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures = [Image.fromarray(f.expand(3, -1, -1).permute(1, 2, 0).numpy()) for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=duration_ms, loop=loop)
    return path
