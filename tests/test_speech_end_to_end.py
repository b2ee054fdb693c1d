"""Speech plugin end to end on tiny models and generated audio: config -> fit -> artifact ->
Predictor and the CLI, for audio-classification and speech-recognition."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from speech_audio import RATE, tiny_cnn, tone, train_settings, write_tone_folder, write_transcribed_manifest

import omnitune


def test_keyword_classification_fit_predict_and_cli(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    root = write_tone_folder(tmp_path / "tones", per_class=32)
    run = {"task": {"name": "audio-classification", "clip_seconds": 0.5,
                    "augment": {"gain_db": 3.0, "noise_snr_db": [20, 40], "speeds": None}},
           "backbone": tiny_cnn(),
           "dataset": {"name": "audio-folder", "root": str(root), "group_pattern": r"^(spk\d+)_",
                       "validation_fraction": 0.25, "test_fraction": 0.25},
           "train": train_settings(epochs=5),
           "output_dir": str(tmp_path / "run")}
    result = omnitune.finetune(run, plugins=plugins)

    assert result.metrics["test_accuracy"] >= 0.9, result.metrics
    info = json.loads((result.artifact / "data_info.json").read_text())
    assert info["labels"] == ["high", "low"]
    preprocessing = json.loads((result.artifact / "preprocessing.json").read_text())
    assert (preprocessing["sample_rate"], preprocessing["clip_seconds"]) == (16000, 0.5)

    # Stereo at 44.1 kHz and longer than the clip: mixed to mono, resampled, cropped.
    stereo = tmp_path / "high-stereo.wav"
    wave = tone(2200.0, 0.8, seed=7, rate=44100)
    soundfile.write(stereo, np.stack([wave, wave], axis=1), 44100)
    low = tmp_path / "low.ogg"
    soundfile.write(low, tone(300.0, 0.4, seed=8), RATE)
    predictor = omnitune.Predictor.load(result.artifact, plugins=plugins)
    high_guess, low_guess = predictor.predict([str(stereo), str(low)])
    assert (high_guess["label"], low_guess["label"]) == ("high", "low")
    assert sum(high_guess["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(result.artifact), str(low),
                           "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] == "low"


def test_speech_recognition_fit_predict_and_cli(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    manifest = write_transcribed_manifest(tmp_path / "clips")
    run = {"task": {"name": "speech-recognition"},
           "backbone": {**tiny_cnn(), "spec_augment": None},
           "dataset": {"name": "audio-manifest", "manifest": str(manifest), "target_column": "text",
                       "target": "transcript", "group_column": "speaker",
                       "validation_fraction": 0.17, "test_fraction": 0.17},
           "train": train_settings(epochs=10, batch_size=8, lr=3e-2, head_lr=3e-2),
           "output_dir": str(tmp_path / "run")}
    result = omnitune.finetune(run, plugins=plugins)

    assert json.loads((result.artifact / "data_info.json").read_text())["vocabulary"] == ["a", "b"]
    # After one epoch the model still emits (nearly) nothing, a CER of about 1; trained, it spells.
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first_cer = next(line["eval_cer"] for line in metrics if "eval_cer" in line)
    assert first_cer >= 0.9, metrics
    assert result.metrics["test_cer"] <= 0.25 and result.metrics["test_wer"] <= 0.5, result.metrics

    predictor = omnitune.Predictor.load(result.artifact, plugins=plugins)
    (prediction,) = predictor.predict([str(tmp_path / "clips" / "clip0.flac")])
    assert prediction["text"] == "ab"

    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(result.artifact),
                           str(tmp_path / "clips" / "clip1.flac"), "--json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == "ba"


def test_cli_predict_names_a_bad_file(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    root = write_tone_folder(tmp_path / "tones", per_class=8)
    run = {"task": {"name": "audio-classification", "clip_seconds": 0.5}, "backbone": tiny_cnn(),
           "dataset": {"name": "audio-folder", "root": str(root), "validation_fraction": 0,
                       "test_fraction": 0},
           "train": train_settings(max_steps=1), "output_dir": str(tmp_path / "run")}
    artifact = omnitune.finetune(run, plugins=plugins).artifact
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(artifact), str(broken)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert "broken.wav: not a readable audio file" in done.stderr
