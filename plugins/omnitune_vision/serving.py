"""Torch-free image preprocessing for an exported bundle: timm's evaluation transform (resize the
short side, centre crop, scale to [0, 1], normalise) with pillow and numpy only."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from omnitune.errors import DataError
from omnitune.serving.processor import ClassificationProcessor, Feeds
from omnitune_vision.images import open_rgb, to_rgb

RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
              "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


class EvalTransform:
    """The same pixels as timm's ``transforms_imagenet_eval`` for ``crop_mode`` center or squash."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.size = int(settings["input_size"][-1])
        self.scale = math.floor(self.size / float(settings["crop_pct"]))
        self.squash = settings["crop_mode"] == "squash"
        self.resample = RESAMPLING[settings["interpolation"]]
        self.mean = np.array(settings["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.array(settings["std"], dtype=np.float32).reshape(3, 1, 1)

    def __call__(self, picture: Image.Image) -> np.ndarray:
        width, height = picture.size
        if self.squash:
            new = (self.scale, self.scale)
        elif width <= height:
            new = (self.scale, int(self.scale * height / width))
        else:
            new = (int(self.scale * width / height), self.scale)
        if new != picture.size:
            picture = picture.resize(new, self.resample)
        left = int(round((new[0] - self.size) / 2.0))
        top = int(round((new[1] - self.size) / 2.0))
        picture = picture.crop((left, top, left + self.size, top + self.size))
        pixels = np.asarray(picture, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return (pixels - self.mean) / self.std


def read_picture(item: Any, index: int) -> Image.Image:
    """An RGB picture from a path, raw file bytes or a Pillow image; errors name ``inputs[index]``."""
    if isinstance(item, Image.Image):
        return to_rgb(item)
    if isinstance(item, bytes):
        item = io.BytesIO(item)
    elif not isinstance(item, str | Path):
        raise DataError(f"inputs[{index}]: expected an image file path, image bytes or a PIL image, "
                        f"got {type(item).__name__}")
    try:
        return open_rgb(item)
    except DataError as error:
        raise DataError(f"inputs[{index}]: {error}") from None


class ImageClassificationProcessor(ClassificationProcessor):
    """Images in; ``label`` and ``probabilities`` out."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        super().__init__(directory, preprocessing)
        self.transform = EvalTransform(preprocessing)

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        pictures = [self.transform(read_picture(item, index)) for index, item in enumerate(inputs)]
        return {"images": np.stack(pictures).astype(np.float32)}
