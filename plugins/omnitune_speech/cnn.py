"""A small CNN over log-mels or MFCCs, trained from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnitune.errors import ConfigError
from omnitune_speech.backbone import SpeechBackbone
from omnitune_speech.frontend import MelFrontEnd, SpecAugment, frame_mask
from omnitune_speech.plugin import CNNBackboneConfig


class SpeechCNN(SpeechBackbone):
    """Conv blocks over ``(bands, frames)``; the first halves time and frequency, the rest only
    frequency; each remaining time step (every 2 frames) is flattened over channels and bands,
    which keeps where in frequency the energy is, and projected to ``channels[-1]`` features."""

    time_stride = 2

    def __init__(self, config: CNNBackboneConfig) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.frontend = MelFrontEnd(config.features, config.sample_rate, config.n_mels,
                                    config.window_ms, config.hop_ms, n_mfcc=config.n_mfcc)
        self.spec_augment = SpecAugment(config.spec_augment) if config.spec_augment else nn.Identity()
        self.normalized = nn.Identity()  # marks the per-band normalised features, for explanations
        layers: list[nn.Module] = []
        width = 1
        for index, channels in enumerate(config.channels):
            layers += [nn.Conv2d(width, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(), nn.MaxPool2d((2, 2) if index == 0 else (2, 1))]
            width = channels
        self.blocks = nn.Sequential(*layers)
        bands = self.frontend.num_bands // 2 ** len(config.channels)
        if bands < 1:
            raise ConfigError(f"backbone.channels: {len(config.channels)} blocks halve the "
                              f"{self.frontend.num_bands} bands to nothing; use fewer blocks or more bands")
        self.project = nn.Sequential(nn.Linear(width * bands, width), nn.ReLU())
        self.num_features = width

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.frontend(waveforms)
        valid = frame_mask(self.frontend.frame_lengths(lengths, features.shape[-1]), features.shape[-1])
        features = self.normalized(_normalize_per_band(features, valid))
        grid = self.blocks(self.spec_augment(features).unsqueeze(1))
        frames = self.project(grid.flatten(1, 2).transpose(1, 2))
        frame_lengths = (valid.sum(1) // self.time_stride).clamp(min=1, max=frames.shape[1])
        return frames, frame_lengths

    def feature_module(self) -> nn.Module:
        """The log-mels (or MFCCs) after per-band normalisation: they are scale-free per band, so
        silence normalises to zeros, the explanations' baseline."""
        return self.normalized

    def export_spec(self) -> dict[str, Any]:
        return {"config": self.config.model_dump(mode="json")}


def speech_cnn(config: CNNBackboneConfig, export_dir: Path | None = None) -> SpeechCNN:
    """A freshly initialised CNN; its whole architecture is in ``config``, so ``export_dir``
    adds nothing to rebuild it."""
    return SpeechCNN(config)


def _normalize_per_band(features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per band over the frames that hold audio; padding set to 0."""
    weight = valid.unsqueeze(1).to(features.dtype)
    count = weight.sum(-1, keepdim=True).clamp(min=1)
    mean = (features * weight).sum(-1, keepdim=True) / count
    std = (((features - mean) ** 2 * weight).sum(-1, keepdim=True) / count).sqrt().clamp(min=1e-5)
    return (features - mean) / std * weight
