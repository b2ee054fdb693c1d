"""Generated audio for the speech tests: tones that tell classes (or characters) apart."""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np
import soundfile

RATE = 16000
TONES = {"low": 300.0, "high": 2200.0}
CHAR_TONES = {"a": 400.0, "b": 1800.0}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech-commands-synth"


def tone(frequency: float, seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    """A sine with random phase and amplitude, plus faint noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    wave = rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 6.3))
    return (wave + rng.normal(0, 0.01, len(t))).astype(np.float32)


def write_tone_folder(root: Path, per_class: int = 24) -> Path:
    """``root/<low|high>/spk<k>_<i>.wav``: half a second each, 8 'speakers' per class."""
    for label, frequency in TONES.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            seed = zlib.crc32(f"{label}/{index}".encode())  # hash() of a str changes per process
            soundfile.write(root / label / f"spk{index % 8}_{index}.wav",
                            tone(frequency * (1 + 0.05 * (index % 5)), 0.5, seed), RATE)
    return root


def write_transcribed_manifest(root: Path, count: int = 48) -> Path:
    """Clips that sound out 'a'/'b' strings as tone segments; manifest.csv with transcripts."""
    root.mkdir(parents=True, exist_ok=True)
    words = ["ab", "ba", "aab", "abb", "bab", "aba"]
    rows = []
    for index in range(count):
        word = words[index % len(words)]
        clip = np.concatenate([tone(CHAR_TONES[c], 0.15, index * 10 + k) for k, c in enumerate(word)]
                              + [np.zeros(800, dtype=np.float32)])
        name = f"clip{index}.flac"
        soundfile.write(root / name, clip, RATE)
        rows.append({"path": name, "text": word.upper(), "speaker": f"s{index % 6}"})
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "text", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def tiny_cnn() -> dict:
    return {"name": "speech-cnn", "channels": [8, 16], "n_mels": 32}


def train_settings(**overrides: object) -> dict:
    return {"epochs": 3, "batch_size": 16, "lr": 5e-3, "head_lr": 5e-3, "warmup_ratio": 0.0,
            "progress": False, **overrides}
