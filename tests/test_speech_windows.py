"""Audio longer than the training clips: scored by sliding windows, the best window reported, the
same through Predictor, the CLI and batch predict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from speech_audio import RATE, tiny_cnn, tone, train_settings, write_tone_folder

import omnitune
from omnitune.errors import ConfigError
from omnitune_speech.windows import window_starts

KEYWORD_AT = 3.0  # seconds into the long clip


def test_windows_cover_the_audio_and_the_last_one_ends_at_its_end() -> None:
    assert window_starts(40000, 16000, 4000) == [0, 4000, 8000, 12000, 16000, 20000, 24000]
    assert window_starts(40000, 16000, 5000) == [0, 5000, 10000, 15000, 20000, 24000]
    assert window_starts(12000, 16000, 4000) == [0]


def write_noise_class(root: Path, count: int = 32) -> None:
    """``root/noise/``: half a second of quiet Gaussian noise each, the 'no keyword' class."""
    (root / "noise").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        rng = np.random.default_rng(1000 + index)
        noise = rng.normal(0, rng.uniform(0.02, 0.08), RATE // 2).astype(np.float32)
        soundfile.write(root / "noise" / f"spk{index % 8}_{index}.wav", noise, RATE)


def long_noisy_clip(path: Path) -> Path:
    """Four seconds of noise with the 'high' keyword (a tone) from KEYWORD_AT to KEYWORD_AT + 0.5 s."""
    audio = np.random.default_rng(7).normal(0, 0.01, 4 * RATE).astype(np.float32)
    start = int(KEYWORD_AT * RATE)
    audio[start:start + RATE // 2] += tone(2200.0, 0.5, seed=3)
    soundfile.write(path, audio, RATE)
    return path


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tone_folder(tmp_path_factory.mktemp("tones"), per_class=32)
    write_noise_class(root)
    run = {"task": {"name": "audio-classification", "clip_seconds": 0.5, "window_hop_seconds": 0.1,
                    "background_labels": ["noise"], "augment": None},
           "backbone": {**tiny_cnn(), "spec_augment": None},
           "dataset": {"name": "audio-folder", "root": str(root), "group_pattern": r"^(spk\d+)_",
                       "validation_fraction": 0.25, "test_fraction": 0.25},
           "train": train_settings(epochs=8, lr=1e-2, head_lr=1e-2, select_by="last"),
           "output_dir": str(tmp_path_factory.mktemp("run"))}
    result = omnitune.finetune(run)
    assert result.metrics["test_accuracy"] >= 0.9, result.metrics
    return result.artifact


def assert_keyword_found_late(prediction: dict) -> None:
    assert prediction["label"] == "high", prediction
    assert prediction["windows"] == 36  # (4 - 0.5) / 0.1 + 1
    # the reported window overlaps the keyword's half second, and no noise-only window won
    assert KEYWORD_AT - 0.5 < prediction["window_start_s"] < KEYWORD_AT + 0.5, prediction
    assert prediction["window_end_s"] == pytest.approx(prediction["window_start_s"] + 0.5)


def test_a_keyword_late_in_a_long_noisy_clip_is_found(artifact: Path, tmp_path: Path) -> None:
    long_clip = long_noisy_clip(tmp_path / "long.wav")
    short = tmp_path / "low.wav"
    soundfile.write(short, tone(300.0, 0.5, seed=9), RATE)
    long_guess, short_guess = omnitune.Predictor.load(artifact).predict([str(long_clip), str(short)])
    assert_keyword_found_late(long_guess)
    assert short_guess["label"] == "low" and "windows" not in short_guess

    coarse = omnitune.Predictor.load(artifact, overrides=["task.window_hop_seconds=3.5"])
    assert coarse.predict(str(long_clip))[0]["windows"] == 2  # 0-0.5 s, 3.5-4 s: hop set at predict time

    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(artifact), str(long_clip),
                           "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert_keyword_found_late(json.loads(done.stdout))

    folder = tmp_path / "inputs"
    folder.mkdir()
    long_noisy_clip(folder / "long.wav")
    output = tmp_path / "predictions.jsonl"
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(artifact), "--input",
                           str(folder), "--output", str(output)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert_keyword_found_late(json.loads(output.read_text().splitlines()[0]))


def test_background_labels_must_be_labels_of_the_dataset(artifact: Path) -> None:
    with pytest.raises(ConfigError, match=r"task.background_labels: \['silence'\] are not labels"):
        omnitune.Predictor.load(artifact, overrides=["task.background_labels=[silence]"])
