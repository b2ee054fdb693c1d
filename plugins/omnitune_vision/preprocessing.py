"""Training and evaluation transforms from timm's data config, with the task's overrides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from PIL import Image
from timm.data import create_transform

from omnitune_vision.plugin import ImageClassificationConfig

Transform = Callable[[Image.Image], torch.Tensor]


def resolve_preprocessing(data_config: dict[str, Any], options: ImageClassificationConfig) -> dict[str, Any]:
    """The backbone's input size, interpolation, mean/std and crop, with the task's overrides
    and training augmentation: everything needed to rebuild both transforms (JSON-able)."""
    size = options.image_size or int(data_config["input_size"][-1])
    return {
        "input_size": [3, size, size],
        "interpolation": data_config.get("interpolation", "bilinear"),
        "mean": list(data_config["mean"]),
        "std": list(data_config["std"]),
        "crop_pct": options.crop_pct or data_config.get("crop_pct", 0.875),
        "crop_mode": data_config.get("crop_mode", "center"),
        "train": {"scale": list(options.scale), "hflip": options.hflip, "rand_augment": options.rand_augment},
    }


def build_transforms(settings: dict[str, Any]) -> tuple[Transform, Transform]:
    """(training transform, evaluation transform) for ``resolve_preprocessing``'s settings."""
    common = {"input_size": tuple(settings["input_size"]), "interpolation": settings["interpolation"],
              "mean": tuple(settings["mean"]), "std": tuple(settings["std"])}
    train = settings["train"]
    training = create_transform(**common, is_training=True, scale=tuple(train["scale"]),
                                hflip=train["hflip"], auto_augment=train["rand_augment"], color_jitter=None)
    evaluation = create_transform(**common, is_training=False, crop_pct=settings["crop_pct"],
                                  crop_mode=settings["crop_mode"])
    return training, evaluation
