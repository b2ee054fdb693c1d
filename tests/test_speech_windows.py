"""Audio longer than the training clips: scored by sliding windows, the best window reported, the
same through Predictor, the CLI, batch predict, the torch-free ONNX bundle and a real
``omnitune serve`` on 127.0.0.1 (attention pooling over the frames, so the exported graph has it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
from speech_audio import RATE, tiny_cnn, tone, train_settings, write_tone_folder
from test_serve import _free_port, _wait_healthy

import omnitune
from omnitune.errors import ConfigError
from omnitune.export import export
from omnitune.serving import Bundle
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
                    "background_labels": ["noise"], "augment": None, "pooling": "attention"},
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


@pytest.fixture(scope="module")
def bundle(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bundle") / "bundle"
    export(artifact, folder, exporter="dynamo")  # the TorchScript exporter has no complex STFT
    return folder


def long_clips(folder: Path) -> list[str]:
    """The late keyword, a 'low' tone at 1.2 s in 2.5 s of noise, noise alone, a clip a little
    longer than the 0.5 s window, and one shorter."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(11)
    low = rng.normal(0, 0.01, int(2.5 * RATE)).astype(np.float32)
    low[int(1.2 * RATE):int(1.7 * RATE)] += tone(300.0, 0.5, seed=12)
    clips = {"late.wav": None, "low.wav": low, "noise.wav": rng.normal(0, 0.02, 3 * RATE),
             "little_longer.wav": np.concatenate([tone(2200.0, 0.5, seed=13), rng.normal(0, 0.01, 1200)]),
             "short.wav": tone(300.0, 0.3, seed=14)}
    for name, audio in clips.items():
        if audio is None:
            long_noisy_clip(folder / name)
        else:
            soundfile.write(folder / name, np.asarray(audio, dtype=np.float32), RATE)
    return [str(folder / name) for name in clips]


WINDOW_FIELDS = ("label", "window_start_s", "window_end_s", "windows")
TORCH_FREE_PREDICT = """
import json, sys
sys.modules.update(dict.fromkeys(["torch", "torchaudio", "transformers", "timm"]))  # importing them fails
from omnitune.serving import Bundle
print(json.dumps(Bundle(sys.argv[1]).predict(json.loads(sys.argv[2]))))
"""


def test_the_bundle_slides_the_predictors_windows_and_finds_the_late_keyword(
        artifact: Path, bundle: Path, tmp_path: Path) -> None:
    clips = long_clips(tmp_path)
    expected = omnitune.Predictor.load(artifact).predict(clips)
    done = subprocess.run([sys.executable, "-c", TORCH_FREE_PREDICT, str(bundle), json.dumps(clips)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert_keyword_found_late(got[0])
    for mine, theirs in zip(got, expected, strict=True):
        assert {k: mine.get(k) for k in WINDOW_FIELDS} == {k: theirs.get(k) for k in WINDOW_FIELDS}
        assert mine["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-4)
    assert got[1]["label"] == "low" and got[1]["window_start_s"] == pytest.approx(1.2, abs=0.15)
    assert got[2]["label"] == "noise" and got[3]["windows"] == 2 and "windows" not in got[4]
    one_at_a_time = [Bundle(bundle).predict(clip)[0] for clip in clips[:2]]
    assert [p["window_start_s"] for p in one_at_a_time] == [p["window_start_s"] for p in got[:2]]


def test_a_real_server_on_the_bundle_reports_the_predictors_window(
        artifact: Path, bundle: Path, tmp_path: Path) -> None:
    clips = long_clips(tmp_path)[:2]
    expected = omnitune.Predictor.load(artifact).predict(clips)
    port = _free_port()
    command = [sys.executable, "-m", "omnitune.cli", "serve", str(bundle), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        files = [("inputs", (Path(clip).name, Path(clip).read_bytes(), "audio/wav")) for clip in clips]
        answer = httpx.post(f"{url}/predict", files=files, timeout=60)
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert_keyword_found_late(got[0])
    assert [{k: p.get(k) for k in WINDOW_FIELDS} for p in got] == [
        {k: p.get(k) for k in WINDOW_FIELDS} for p in expected]
