"""Waveform augmentation in training: random gain and white noise at a random SNR."""

from __future__ import annotations

import torch
from torch import nn

from omnitune_speech.plugin import WaveAugmentOptions


class WaveAugment(nn.Module):
    """Applied in training to a share of the clips; a no-op in evaluation or without options."""

    def __init__(self, options: WaveAugmentOptions | None) -> None:
        super().__init__()
        self.options = options

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training or self.options is None:
            return waveforms
        o = self.options
        count = waveforms.shape[0]
        valid = (torch.arange(waveforms.shape[1], device=waveforms.device) < lengths.unsqueeze(1)).float()
        gain = 10 ** (_uniform(count, -o.gain_db, o.gain_db, waveforms) / 20)
        augmented = waveforms * gain.unsqueeze(1)
        if o.noise_snr_db is not None:
            power = (augmented.square() * valid).sum(1) / lengths.clamp(min=1)
            snr = _uniform(count, *o.noise_snr_db, waveforms)
            scale = (power / 10 ** (snr / 10)).sqrt().unsqueeze(1)
            augmented = augmented + torch.randn_like(augmented) * scale * valid
        chosen = (torch.rand(count, device=waveforms.device) < o.probability).unsqueeze(1)
        return torch.where(chosen, augmented, waveforms)


def _uniform(count: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(count, device=like.device, dtype=like.dtype).uniform_(low, high)
