"""Decoding image files into RGB pictures, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omnitune.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def open_rgb(path: str | Path) -> Image.Image:
    """Read an image file fully and return it as RGB; a missing, corrupt, truncated or
    non-image file raises a DataError naming the path."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except FileNotFoundError as error:
        raise DataError(f"{path}: image file not found") from error
    # Pillow signals malformed data with many exception types (OSError, SyntaxError, ValueError,
    # struct.error, zlib.error, DecompressionBombError...); each means "not a readable image".
    except Exception as error:
        raise DataError(
            f"{path}: not a readable image ({type(error).__name__}: {error}); "
            f"expected a complete {', '.join(sorted(s[1:] for s in IMAGE_SUFFIXES))} file"
        ) from error


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB version of any Pillow image: grayscale is replicated, transparency laid on white."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "F"):  # 16-bit or float grayscale: rescale to 8 bits
        pixels = np.asarray(image, dtype=np.float64)
        span = max(pixels.max() - pixels.min(), 1e-12)
        image = Image.fromarray(((pixels - pixels.min()) / span * 255).astype(np.uint8))
    return image.convert("RGB")


def from_pixels(pixels: np.ndarray) -> Image.Image:
    """RGB picture from a uint8 array of shape (H, W) or (H, W, 3)."""
    return to_rgb(Image.fromarray(np.ascontiguousarray(pixels)))
