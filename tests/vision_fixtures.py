"""Generated images for the vision tests: classes told apart by colour, in mixed file modes."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220),
           "yellow": (230, 220, 40), "purple": (150, 40, 190), "white": (245, 245, 245)}


def picture(colour: str, seed: int, size: int = 40) -> Image.Image:
    """A noisy square of ``colour`` with a darker random rectangle on it."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(COLOURS[colour]) + rng.normal(0, 25, (size, size, 3)), 0, 255)
    top, left = rng.integers(0, size // 2, 2)
    pixels[top:top + size // 3, left:left + size // 3] *= 0.5
    return Image.fromarray(pixels.astype(np.uint8))


def write_picture(image: Image.Image, path: Path, index: int) -> Path:
    """Save in a mode that varies with ``index``: RGB PNG, JPEG, grayscale-with-alpha... as RGBA PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if index % 5 == 3:
        image.convert("RGBA").save(path.with_suffix(".png"))
        return path.with_suffix(".png")
    if index % 5 == 4:
        image.save(path.with_suffix(".jpg"), quality=90)
        return path.with_suffix(".jpg")
    image.save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def write_image_folder(root: Path, colours: list[str], per_class: int, seed: int = 0) -> Path:
    """``root/<colour>/<n>.png|.jpg`` for each colour."""
    for c, colour in enumerate(colours):
        for n in range(per_class):
            write_picture(picture(colour, seed + 1000 * c + n), root / colour / f"{n}", n)
    return root


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file of unsigned bytes, gzipped when ``path`` ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path
