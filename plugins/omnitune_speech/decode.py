"""Audio files in, mono float32 numpy waveforms out, with soundfile only (no torch): shared by
training (``audio.py`` resamples with torchaudio) and the torch-free bundle (``serving.py``).

Every problem raises ``BadAudio`` naming the file and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import soundfile

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


def decode_mono(source: str | Path | IO[bytes], checks: AudioChecks, name: str | None = None,
                ) -> tuple[np.ndarray, int]:
    """``(mono float32 waveform, its rate)``; stereo is averaged. ``name`` is shown in errors."""
    name = name or str(source)
    try:
        data, source_rate = soundfile.read(source if not isinstance(source, Path) else str(source),
                                           dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
        raise BadAudio(f"{name}: not a readable audio file ({error}); expected wav, flac or ogg") from None
    _check_shape(name, len(data), source_rate, checks)
    if not np.isfinite(data).all():
        raise BadAudio(f"{name}: contains NaN or infinite samples; expected finite audio")
    return data.mean(axis=1), source_rate


def _check_shape(path: Path | str, frames: int, rate: int, checks: AudioChecks) -> None:
    if frames <= 0:
        raise BadAudio(f"{path}: empty audio (0 samples)")
    if checks.sample_rate is not None and rate != checks.sample_rate:
        raise BadAudio(f"{path}: sample rate {rate} Hz, expected {checks.sample_rate} Hz "
                       "(or set dataset.sample_rate: null to resample any rate)")
    seconds = frames / rate
    if seconds > checks.max_seconds:
        raise BadAudio(f"{path}: {seconds:.1f} s long, longer than max_seconds={checks.max_seconds:g}")
