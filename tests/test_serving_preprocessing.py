"""The bundle's torch-free preprocessing equals the PyTorch side's: timm's evaluation transform
(pillow + numpy), torchaudio's resampler (numpy port), the transformers tokenizer's padding; text
batches run in groups of similar length and come back in input order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio.functional as AF
from PIL import Image
from transformers import AutoTokenizer

from omnitune_speech.serving import resample
from omnitune_text.serving import TOKENIZER_FILE, TextClassificationProcessor, length_groups
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


REVIEWS = ["great", "a dull and tedious plot with nothing to say about anything at all", "superb acting",
           "", "the acting was superb really", "dull dull dull dull dull dull dull dull dull dull"]


def test_length_groups_cover_every_input_once_with_bounded_padding() -> None:
    lengths = [3, 30, 4, 5, 31, 9, 40, 2, 3]
    groups = length_groups(lengths, max_ratio=1.5)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    for group in groups:
        assert max(lengths[i] for i in group) <= 1.5 * min(lengths[i] for i in group)
    assert [lengths[g[0]] for g in groups] == sorted(lengths[g[0]] for g in groups)


@pytest.mark.parametrize("side", ["right", "left"])
def test_text_processor_pads_like_transformers_and_keeps_input_order(tmp_path: Path, side: str) -> None:
    from conftest import save_tiny_bert

    folder = save_tiny_bert(tmp_path / "bert")
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side=side)
    tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    settings = {"labels": ["neg", "pos"], "max_length": 8, "pad_id": tokenizer.pad_token_id,
                "pad_token": tokenizer.pad_token, "padding_side": side}
    processor = TextClassificationProcessor(folder, json.loads(json.dumps(settings)))
    expected = tokenizer(REVIEWS, padding=True, truncation=True, max_length=8, return_tensors="np")
    feeds = processor.encode(REVIEWS)
    assert np.array_equal(feeds["input_ids"], expected["input_ids"])
    assert np.array_equal(feeds["attention_mask"], expected["attention_mask"])

    widths: list[int] = []

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Scores from the unpadded tokens only, as a model with an attention mask gives."""
        widths.append(feeds["input_ids"].shape[1])
        total = (feeds["input_ids"] * feeds["attention_mask"]).sum(axis=1).astype(np.float32)
        return {"scores": np.stack([np.tanh(total / 50), np.ones_like(total)], axis=1)}

    grouped = processor.predict(run, REVIEWS)
    assert len(widths) > 1 and max(widths) == feeds["input_ids"].shape[1]
    assert [{k: v for k, v in p.items() if k != "truncated"} for p in grouped] == processor.decide(
        run(feeds)["scores"])
    assert [p["truncated"] for p in grouped] == [len(tokenizer(r)["input_ids"]) > 8 for r in REVIEWS]
