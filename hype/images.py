"""The study's images: folder scans, opaque ids, and the noise masks of HYPE_time.

The client only ever names an image by an id; the id is an HMAC of the pool and the file's path under
its folder keyed by the study's secret, so it is stable across restarts (sessions resume) and reveals
neither the file name nor whether the image is real.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
              ".webp": "image/webp", ".bmp": "image/bmp"}
POOLS = ("real", "fake", "tutorial_real", "tutorial_fake")


@dataclass(frozen=True)
class StudyImage:
    """An image the server may send: its pool, its folder-relative path and the file."""

    id: str
    pool: str
    relpath: str
    file: Path

    @property
    def truth(self) -> str:
        return self.pool.removeprefix("tutorial_")

    @property
    def mimetype(self) -> str:
        return EXTENSIONS[self.file.suffix.lower()]


def scan_folder(folder: str | Path, option: str) -> list[tuple[str, Path]]:
    """The images under ``folder`` (recursive, sorted), as ``(relative path, resolved file)``.

    Files that resolve outside the folder (a symlink pointing elsewhere) are left out, so the server
    can only ever send files that lie inside the folders it was given.

    Raises:
        ValueError: naming ``option`` when the folder is missing or holds no image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{option} {folder}: not a folder")
    root = root.resolve()
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in EXTENSIONS or not path.is_file():
            continue
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            continue
        found.append((path.relative_to(root).as_posix(), resolved))
    if not found:
        raise ValueError(f"{option} {folder}: no images ({', '.join(sorted(EXTENSIONS))}) in it")
    return found


def image_id(secret: str, pool: str, relpath: str) -> str:
    """The opaque, stable id of an image: 20 hex digits of HMAC-SHA256(secret, pool:relpath)."""
    return hmac.new(secret.encode(), f"{pool}:{relpath}".encode(), hashlib.sha256).hexdigest()[:20]


def catalogue(secret: str, scanned: dict[str, list[tuple[str, Path]]]) -> dict[str, StudyImage]:
    """Every image of the study by id.

    Args:
        secret: the study's key for the ids.
        scanned: pool -> that pool's ``scan_folder`` result.
    """
    images = {}
    for pool, files in scanned.items():
        for relpath, file in files:
            key = image_id(secret, pool, relpath)
            images[key] = StudyImage(key, pool, relpath, file)
    return images


def noise_mask(index: int, size: int = 128) -> bytes:
    """A PNG noise mask: grey noise summed over four scales, so it masks both edges and blobs.

    The paper builds its masks with Portilla-Simoncelli texture synthesis from the test images; a
    multi-scale noise is the image-independent stand-in used here (docs/human_eval.md).

    Args:
        index: which mask (each index is its own fixed seed, so the four masks differ).
        size: side in pixels; the page scales it to the image's display size.
    """
    rng = np.random.default_rng(1000 + index)
    total = np.zeros((size, size))
    for cells in (4, 8, 16, size):
        coarse = rng.standard_normal((cells, cells))
        total += np.kron(coarse, np.ones((size // cells, size // cells)))[:size, :size]
    total = (total - total.mean()) / (total.std() + 1e-12)
    pixels = np.clip(127.5 + 60.0 * total, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
