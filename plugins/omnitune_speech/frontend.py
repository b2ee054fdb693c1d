"""Spectral front ends (log-mel, MFCC, power mel) and SpecAugment masking, from torchaudio."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
import torchaudio.transforms as T
from torch import nn

from omnitune_speech.plugin import SpecAugmentOptions

FrontEndKind = Literal["log-mel", "mfcc", "power-mel"]
LOG_FLOOR = 1e-6


class MelFrontEnd(nn.Module):
    """Waveforms ``(B, N)`` -> features ``(B, F, T)``, one frame every ``hop_ms``."""

    def __init__(self, kind: FrontEndKind, sample_rate: int, n_mels: int, window_ms: float,
                 hop_ms: float, n_mfcc: int = 20, slaney: bool = False) -> None:
        super().__init__()
        self.kind = kind
        window = round(sample_rate * window_ms / 1000)
        self.hop = round(sample_rate * hop_ms / 1000)
        mel_options = {"n_fft": window, "win_length": window, "hop_length": self.hop, "n_mels": n_mels,
                       "mel_scale": "slaney" if slaney else "htk", "norm": "slaney" if slaney else None}
        if kind == "mfcc":
            self.transform: nn.Module = T.MFCC(sample_rate, n_mfcc=n_mfcc, melkwargs=mel_options)
            self.num_bands = n_mfcc
        else:
            self.transform = T.MelSpectrogram(sample_rate, **mel_options)
            self.num_bands = n_mels
        _derived_buffers_not_saved(self.transform)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        features = self.transform(waveforms.float())
        return torch.log(features + LOG_FLOOR) if self.kind == "log-mel" else features

    def frame_lengths(self, lengths: torch.Tensor, frames: int) -> torch.Tensor:
        """Frames that hold audio, for inputs of ``lengths`` samples (centred STFT)."""
        return (lengths // self.hop + 1).clamp(min=1, max=frames)


def _derived_buffers_not_saved(module: nn.Module) -> None:
    """Windows and filter banks follow from the options: keep them out of checkpoints."""
    for owner in module.modules():
        for name, buffer in list(owner.named_buffers(recurse=False)):
            delattr(owner, name)
            owner.register_buffer(name, buffer.clone(), persistent=False)


class SpecAugment(nn.Module):
    """Random mel-axis stretch, frequency and time masks on ``(B, F, T)`` features, in training only,
    one draw per example; masked cells take the batch mean."""

    def __init__(self, options: SpecAugmentOptions) -> None:
        super().__init__()
        self.options = options
        self.freq = T.FrequencyMasking(options.freq_width, iid_masks=True)
        self.time = T.TimeMasking(options.time_width, iid_masks=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return features
        if self.options.mel_warp > 0:
            warp = self.options.mel_warp
            factors = torch.empty(features.shape[0], self.options.mel_warp_points,
                                  device=features.device).uniform_(1 - warp, 1 + warp)
            features = stretch_bands(features, across_bands(factors, features.shape[1]))
        fill = features.mean().detach()  # a tensor: no GPU-to-CPU sync each step
        masked = features.unsqueeze(1)
        for _ in range(self.options.freq_masks):
            masked = self.freq(masked, fill)
        for _ in range(self.options.time_masks):
            masked = self.time(masked, fill)
        return masked.squeeze(1)


def across_bands(points: torch.Tensor, bands: int) -> torch.Tensor:
    """``points`` (B, K) spread evenly over ``bands`` and interpolated linearly: (B, bands)."""
    if points.shape[1] == 1:
        return points.expand(-1, bands)
    return F.interpolate(points.unsqueeze(1), size=bands, mode="linear", align_corners=True).squeeze(1)


def stretch_bands(features: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``features`` (B, F, T) with example b's band axis stretched by ``factors[b]`` (one factor, or
    one per band): band f takes the (interpolated) value of band f / factor, the top band repeats
    past the edge."""
    bands = features.shape[1]
    factors = factors.unsqueeze(1) if factors.dim() == 1 else factors
    source = (torch.arange(bands, device=features.device) / factors).clamp(max=bands - 1)
    below = source.floor().long()
    above = (below + 1).clamp(max=bands - 1)
    weight = (source - below).unsqueeze(2)
    low = features.gather(1, below.unsqueeze(2).expand_as(features))
    high = features.gather(1, above.unsqueeze(2).expand_as(features))
    return low + (high - low) * weight


class NoiseFloor(nn.Module):
    """Spectral subtraction on power features ``(B, F, T)``: each band loses ``factor`` times the
    clip's noise floor (its mean power over the quietest ``QUIET_SHARE`` of the frames that hold
    audio) and keeps at least ``RESIDUAL`` of the floor. Clean clips (silent pauses) pass nearly
    unchanged; steady noise is mostly removed. Hand-written because torchaudio has no noise
    subtraction, and in the model it runs alike in training, prediction and the ONNX graph."""

    QUIET_SHARE = 0.2
    RESIDUAL = 0.05

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, power: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        holds_audio = frame_mask(frame_lengths, power.shape[2])
        energy = power.sum(1).masked_fill(~holds_audio, float("inf"))
        last_quiet = (frame_lengths * self.QUIET_SHARE).long().clamp(min=1) - 1
        threshold = energy.sort(dim=1).values.gather(1, last_quiet.unsqueeze(1))
        quiet = ((energy <= threshold) & holds_audio).to(power.dtype).unsqueeze(1)
        floor = (power * quiet).sum(2, keepdim=True) / quiet.sum(2, keepdim=True).clamp(min=1)
        return torch.maximum(power - self.factor * floor, self.RESIDUAL * floor)


def frame_mask(frame_lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, T)`` booleans: True where a frame holds audio."""
    return torch.arange(frames, device=frame_lengths.device) < frame_lengths.unsqueeze(1)
