"""Waveform augmentation in training: speed, random gain and coloured noise at a random SNR."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
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
        if o.speeds is not None:
            waveforms = change_speed(waveforms, o.speeds[int(torch.randint(len(o.speeds), ()))])
        count = waveforms.shape[0]
        valid = (torch.arange(waveforms.shape[1], device=waveforms.device) < lengths.unsqueeze(1)).float()
        gain = 10 ** (_uniform(count, -o.gain_db, o.gain_db, waveforms) / 20)
        augmented = waveforms * gain.unsqueeze(1)
        if o.noise_snr_db is not None:
            power = (augmented.square() * valid).sum(1) / lengths.clamp(min=1)
            snr = _uniform(count, *o.noise_snr_db, waveforms)
            scale = (power / 10 ** (snr / 10)).sqrt().unsqueeze(1)
            noise = coloured_noise(waveforms, _uniform(count, *o.noise_colour, waveforms))
            augmented = augmented + noise * scale * valid
        chosen = (torch.rand(count, device=waveforms.device) < o.probability).unsqueeze(1)
        return torch.where(chosen, augmented, waveforms)


def change_speed(waveforms: torch.Tensor, factor: float) -> torch.Tensor:
    """``waveforms`` (B, N) played ``factor`` times faster (pitch too), cropped or zero-padded to N."""
    if factor == 1.0:
        return waveforms
    faster = AF.resample(waveforms, 100, round(100 / factor))
    samples = waveforms.shape[1]
    if faster.shape[1] >= samples:
        return faster[:, :samples]
    return F.pad(faster, (0, samples - faster.shape[1]))


def coloured_noise(like: torch.Tensor, exponents: torch.Tensor) -> torch.Tensor:
    """Gaussian noise shaped like ``like`` (B, N), row b with power falling as 1/f**exponents[b]
    (0 white, 1 pink, 2 brown), each row scaled to unit RMS."""
    samples = like.shape[1]
    spectrum = torch.fft.rfft(torch.randn_like(like), dim=1)
    frequencies = torch.fft.rfftfreq(samples, device=like.device).clamp(min=1.0 / samples)
    shaped = spectrum / frequencies.unsqueeze(0) ** (exponents.unsqueeze(1) / 2)
    noise = torch.fft.irfft(shaped, n=samples, dim=1)
    return noise / noise.square().mean(1, keepdim=True).sqrt().clamp(min=1e-12)


def _uniform(count: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(count, device=like.device, dtype=like.dtype).uniform_(low, high)
