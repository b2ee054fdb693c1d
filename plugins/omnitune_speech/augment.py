"""Waveform augmentation in training: speed, a random equalizer, random gain and coloured noise at a
random SNR."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

from omnitune_speech.plugin import WaveAugmentOptions

EQUALIZER_POINTS = 6
EQUALIZER_LOWEST = 50 / 16000  # 50 Hz at 16 kHz, as a share of the sample rate


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
        augmented = random_equalizer(waveforms, o.equalizer_db) if o.equalizer_db > 0 else waveforms
        gain = 10 ** (_uniform(count, -o.gain_db, o.gain_db, waveforms) / 20)
        augmented = augmented * gain.unsqueeze(1) * valid
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


def random_equalizer(waveforms: torch.Tensor, max_db: float) -> torch.Tensor:
    """``waveforms`` (B, N), each through its own zero-phase filter: gains drawn uniformly in
    [-max_db, max_db] dB at ``EQUALIZER_POINTS`` frequencies spaced evenly on a log axis from
    ``EQUALIZER_LOWEST`` (a share of the sample rate) to Nyquist, linear in dB between them."""
    samples = waveforms.shape[1]
    frequencies = torch.fft.rfftfreq(samples, device=waveforms.device).clamp(min=EQUALIZER_LOWEST)
    position = torch.log(frequencies / EQUALIZER_LOWEST) / math.log(0.5 / EQUALIZER_LOWEST)
    position = position * (EQUALIZER_POINTS - 1)
    below = position.floor().long().clamp(max=EQUALIZER_POINTS - 2)
    weight = position - below
    knots = torch.empty(waveforms.shape[0], EQUALIZER_POINTS, device=waveforms.device,
                        dtype=waveforms.dtype).uniform_(-max_db, max_db)
    gains_db = knots[:, below] * (1 - weight) + knots[:, below + 1] * weight
    spectrum = torch.fft.rfft(waveforms, dim=1) * 10 ** (gains_db / 20)
    return torch.fft.irfft(spectrum, n=samples, dim=1)


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
