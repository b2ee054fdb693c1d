"""audio-classification's ``label_smoothing``: it softens the training loss's targets, and the
validation loss (which chooses checkpoints) stays plain cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from speech_audio import tiny_cnn
from torch import nn

from omnitune_speech.classification import AudioClassification
from omnitune_speech.cnn import speech_cnn
from omnitune_speech.plugin import AudioClassificationConfig, CNNBackboneConfig


class FixedLogits(nn.Module):
    """Always the same two logits: the loss is a known function of the targets."""

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[2.0, 0.0]]).expand(len(waveforms), 2)


def task(label_smoothing: float) -> AudioClassification:
    config = AudioClassificationConfig(label_smoothing=label_smoothing, class_weights=None)
    backbone = speech_cnn(CNNBackboneConfig(**{k: v for k, v in tiny_cnn().items() if k != "name"}))
    return AudioClassification(config, backbone=backbone, head=nn.Linear,
                               data_info={"labels": ["high", "low"]})


def test_label_smoothing_softens_training_targets_only() -> None:
    batch = {"waveforms": torch.zeros(4, 160), "lengths": torch.full((4,), 160),
             "labels": torch.zeros(4, dtype=torch.long)}
    smoothing = 0.2
    log_p = torch.tensor([2.0, 0.0]).log_softmax(0)
    expected = -((1 - smoothing / 2) * log_p[0] + smoothing / 2 * log_p[1]).item()
    smoothed = task(smoothing)
    assert smoothed.training_step(FixedLogits(), batch).loss.item() == pytest.approx(expected)
    assert task(0.0).training_step(FixedLogits(), batch).loss.item() == pytest.approx(-log_p[0].item())
    plain = smoothed.evaluation_step(FixedLogits(), batch).loss.item()
    assert plain == pytest.approx(-log_p[0].item()) and not math.isclose(plain, expected)


def test_label_smoothing_is_off_by_default_and_bounded() -> None:
    assert AudioClassificationConfig().label_smoothing == 0.0
    with pytest.raises(ValidationError, match="label_smoothing"):
        AudioClassificationConfig(label_smoothing=1.0)
