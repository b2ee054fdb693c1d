"""Audio files in, mono float waveforms out: soundfile for I/O (``decode.py``), torchaudio for
resampling.

Every problem raises ``BadAudio`` naming the file and what was expected, so a dataset can stop
or skip, and a prediction can report it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchaudio.functional as AF

from omnitune_speech.decode import AudioChecks, BadAudio, check_header, decode_mono

__all__ = ["AudioChecks", "BadAudio", "check_header", "crop_or_pad", "read_audio", "stack"]


def read_audio(path: str | Path, sample_rate: int, checks: AudioChecks) -> torch.Tensor:
    """Decode ``path`` to a mono float32 waveform at ``sample_rate``; stereo is averaged."""
    data, source_rate = decode_mono(path, checks)
    waveform = torch.from_numpy(data)
    if source_rate != sample_rate:
        waveform = AF.resample(waveform, source_rate, sample_rate)
    return waveform


def crop_or_pad(waveform: torch.Tensor, samples: int) -> torch.Tensor:
    """The middle ``samples`` of a longer clip; a shorter one zero-padded at the end."""
    if len(waveform) >= samples:
        start = (len(waveform) - samples) // 2
        return waveform[start:start + samples]
    return torch.nn.functional.pad(waveform, (0, samples - len(waveform)))


def stack(waveforms: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad to the longest; returns ``(waveforms (B, N), lengths (B,))``."""
    lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.long)
    batch = torch.zeros(len(waveforms), int(lengths.max()) if len(waveforms) else 0)
    for row, waveform in enumerate(waveforms):
        batch[row, :len(waveform)] = waveform
    return batch, lengths

