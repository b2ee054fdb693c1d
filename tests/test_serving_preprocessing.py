"""The bundle's torch-free preprocessing equals the PyTorch side's: timm's evaluation transform
(pillow + numpy) and torchaudio's resampler (numpy port)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio.functional as AF
from PIL import Image

from omnitune_speech.serving import resample
from omnitune_vision.preprocessing import build_transforms
from omnitune_vision.serving import EvalTransform


@pytest.mark.parametrize(("width", "height", "crop_mode", "interpolation"), [
    (40, 40, "center", "bilinear"), (64, 37, "center", "bicubic"), (31, 90, "center", "bilinear"),
    (50, 70, "squash", "bicubic")])
def test_image_transform_matches_timm(width: int, height: int, crop_mode: str, interpolation: str) -> None:
    settings = {"input_size": [3, 32, 32], "interpolation": interpolation, "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225], "crop_pct": 0.875, "crop_mode": crop_mode,
                "train": {"scale": [0.5, 1.0], "hflip": 0.5, "rand_augment": None}}
    pixels = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    picture = Image.fromarray(pixels)
    expected = build_transforms(settings)[1](picture).numpy()
    np.testing.assert_allclose(EvalTransform(settings)(picture), expected, atol=1e-6)


@pytest.mark.parametrize(("source", "target"),
                         [(44100, 16000), (8000, 16000), (22050, 16000), (16000, 16000)])
def test_resampler_matches_torchaudio(source: int, target: int) -> None:
    wave = np.random.default_rng(source).normal(0, 0.3, source // 3 + 17).astype(np.float32)
    expected = AF.resample(torch.from_numpy(wave), source, target).numpy()
    got = resample(wave, source, target)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-6)
