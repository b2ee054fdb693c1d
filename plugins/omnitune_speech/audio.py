"""Audio files in, mono float waveforms out: soundfile for I/O, torchaudio for resampling.

Every problem raises ``BadAudio`` naming the file and what was expected, so a dataset can stop
or skip, and a prediction can report it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from omnitune.errors import DataError


class BadAudio(DataError):
    """An audio file that cannot be used: unreadable, empty, NaN, too long or the wrong rate."""


@dataclass(frozen=True)
class AudioChecks:
    """What a file must satisfy; saved in the artifact so predictions are held to the same rules."""

    max_seconds: float = 30.0
    sample_rate: int | None = None  # required source rate; None: any rate, resampled

    def to_dict(self) -> dict[str, float | int | None]:
        return {"max_seconds": self.max_seconds, "sample_rate": self.sample_rate}


def check_header(path: Path, checks: AudioChecks) -> None:
    """Check what the header tells (readable, not empty, rate, length) without decoding."""
    if not path.is_file():
        raise BadAudio(f"{path}: file not found")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise BadAudio(f"{path}: not a readable audio file ({error}); expected wav, flac or ogg") from None
    _check_shape(path, info.frames, info.samplerate, checks)


def read_audio(path: str | Path, sample_rate: int, checks: AudioChecks) -> torch.Tensor:
    """Decode ``path`` to a mono float32 waveform at ``sample_rate``; stereo is averaged."""
    try:
        data, source_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise BadAudio(f"{path}: not a readable audio file ({error}); expected wav, flac or ogg") from None
    _check_shape(path, len(data), source_rate, checks)
    if not np.isfinite(data).all():
        raise BadAudio(f"{path}: contains NaN or infinite samples; expected finite audio")
    waveform = torch.from_numpy(data.mean(axis=1))
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


def _check_shape(path: Path | str, frames: int, rate: int, checks: AudioChecks) -> None:
    if frames <= 0:
        raise BadAudio(f"{path}: empty audio (0 samples)")
    if checks.sample_rate is not None and rate != checks.sample_rate:
        raise BadAudio(f"{path}: sample rate {rate} Hz, expected {checks.sample_rate} Hz "
                       "(or set dataset.sample_rate: null to resample any rate)")
    seconds = frames / rate
    if seconds > checks.max_seconds:
        raise BadAudio(f"{path}: {seconds:.1f} s long, longer than max_seconds={checks.max_seconds:g}")

