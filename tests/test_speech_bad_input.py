"""Bad audio: every case is an error naming the file (and manifest row), or a skip with a warning."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile
from speech_audio import RATE, tone

from omnitune.errors import DataError
from omnitune_speech.audio import AudioChecks, BadAudio, read_audio
from omnitune_speech.datasets import audio_folder, audio_manifest
from omnitune_speech.plugin import AudioFolderConfig, AudioManifestConfig


def _manifest(folder: Path, bad: str | None) -> Path:
    """Four good clips of two labels, plus ``bad`` (a file name in ``folder``) if given."""
    rows = []
    for index in range(4):
        soundfile.write(folder / f"good{index}.wav", tone(300 + 500 * (index % 2), 0.3, index), RATE)
        rows.append({"path": f"good{index}.wav", "label": "ab"[index % 2]})
    if bad:
        rows.append({"path": bad, "label": "a"})
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _write_bad(folder: Path, case: str) -> str:
    path = folder / f"{case}.wav"
    if case == "unreadable":
        path.write_bytes(b"RIFF not really a wave file")
    elif case == "empty":
        soundfile.write(path, np.zeros(0, dtype=np.float32), RATE)
    elif case == "zero-bytes":
        path.write_bytes(b"")
    elif case == "wrong-rate":
        soundfile.write(path, tone(300, 0.3, 0, rate=8000), 8000)
    elif case == "too-long":
        soundfile.write(path, tone(300, 3.0, 0), RATE)
    return path.name


@pytest.mark.parametrize(("case", "expected"), [
    ("unreadable", "not a readable audio file"),
    ("zero-bytes", "not a readable audio file"),
    ("empty", "empty audio (0 samples)"),
    ("wrong-rate", "sample rate 8000 Hz, expected 16000 Hz"),
    ("too-long", "3.0 s long, longer than max_seconds=2"),
    ("missing", "file not found"),
])
def test_bad_file_in_manifest_is_named_with_its_row(tmp_path: Path, case: str, expected: str) -> None:
    name = _write_bad(tmp_path, case) if case != "missing" else "missing.wav"
    config = AudioManifestConfig(manifest=str(_manifest(tmp_path, name)), sample_rate=RATE, max_seconds=2)
    with pytest.raises(BadAudio) as caught:
        audio_manifest(config)
    message = str(caught.value)
    assert f"manifest.csv, row 6: {tmp_path / name}: {expected}" in message
    assert "bad_files: skip" in message


def test_skip_leaves_the_bad_file_out_with_a_warning(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    name = _write_bad(tmp_path, "unreadable")
    config = AudioManifestConfig(manifest=str(_manifest(tmp_path, name)), bad_files="skip",
                                 validation_fraction=0, test_fraction=0)
    with caplog.at_level(logging.WARNING, logger="omnitune"):
        splits = audio_manifest(config)
    assert len(splits.train) == 4
    assert name in caplog.text and "skipped 1 bad audio file" in caplog.text


def test_nan_samples_are_caught_when_decoded(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    wave = tone(300, 0.2, 0)
    wave[100] = np.nan
    soundfile.write(path, wave, RATE, subtype="FLOAT")
    with pytest.raises(BadAudio, match=r"nan\.wav: contains NaN or infinite samples"):
        read_audio(path, RATE, AudioChecks())


def test_stereo_is_mixed_and_resampled(tmp_path: Path) -> None:
    path = tmp_path / "stereo.flac"
    left = tone(440, 0.5, 0, rate=22050)
    soundfile.write(path, np.stack([left, -left], axis=1), 22050)
    mixed = read_audio(path, RATE, AudioChecks())
    assert mixed.shape == (RATE // 2,)
    assert mixed.abs().max() < 1e-4  # the channels cancel: they were averaged, not one kept


def test_manifest_row_with_empty_field_is_named(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, None)
    manifest.write_text(manifest.read_text() + ",a\n")
    with pytest.raises(DataError, match=r"manifest\.csv, row 6: field 'path' is empty"):
        audio_manifest(AudioManifestConfig(manifest=str(manifest)))


def test_folder_groups_keep_a_speaker_in_one_split(tmp_path: Path) -> None:
    for label in ("yes", "no"):
        (tmp_path / label).mkdir()
        for index in range(20):
            soundfile.write(tmp_path / label / f"spk{index % 5}_{index}.wav", tone(300, 0.1, index), RATE)
    splits = audio_folder(AudioFolderConfig(root=str(tmp_path), group_pattern=r"^(spk\d)_",
                                            validation_fraction=0.25, test_fraction=0.25))
    speakers = [{e.group for e in s} for s in (splits.train, splits.validation, splits.test)]
    assert all(speakers) and speakers[0].isdisjoint(speakers[1] | speakers[2])
    assert speakers[1].isdisjoint(speakers[2])
    assert splits.info["labels"] == ["no", "yes"]
