"""audio-classification on an imbalanced (9:1) folder of generated tones: the shared class weights
and monitor rule, weights computed when training starts (an artifact built to predict needs no
label counts and warns of none), and a minority class that weighted training recalls."""

from __future__ import annotations

import json
import logging
import shutil
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from speech_audio import RATE, tiny_cnn, tone, train_settings

import omnitune
from omnitune.api import dataset_split

FREQUENCIES = {"low": 300.0, "high": 2200.0}
COUNTS = {"low": 72, "high": 8}  # 9:1


def noisy_tone(label: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wave = tone(FREQUENCIES[label] * (1 + 0.04 * rng.uniform(-1, 1)), 0.5, seed)
    return wave + rng.normal(0, 0.01, len(wave)).astype(np.float32)


@pytest.fixture(scope="module")
def imbalanced_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``low/`` 72 clips, ``high/`` 8, half a second each, 8 'speakers' (``spk<k>_``)."""
    root = tmp_path_factory.mktemp("imbalanced")
    for label, count in COUNTS.items():
        (root / label).mkdir()
        for index in range(count):
            soundfile.write(root / label / f"spk{index % 8}_{index}.wav",
                            noisy_tone(label, zlib.crc32(f"{label}/{index}".encode())), RATE)
    return root


def train(folder: Path, output: Path, class_weights: str | None) -> omnitune.RunResult:
    run = {"task": {"name": "audio-classification", "clip_seconds": 0.5, "augment": None,
                    "class_weights": class_weights},
           "backbone": {**tiny_cnn(), "spec_augment": None},
           "dataset": {"name": "audio-folder", "root": str(folder), "group_pattern": r"^(spk\d+)_",
                       "validation_fraction": 0.25, "test_fraction": 0.0},
           "train": train_settings(epochs=2, lr=5e-3, head_lr=5e-3),
           "output_dir": str(output)}
    return omnitune.finetune(run)


@pytest.fixture(scope="module")
def balanced(imbalanced_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> omnitune.RunResult:
    return train(imbalanced_folder, tmp_path_factory.mktemp("balanced"), "balanced")


def test_weights_are_n_over_k_count_of_the_training_split_and_weigh_the_loss(
        balanced: omnitune.RunResult) -> None:
    predictor = omnitune.Predictor.load(balanced.artifact)
    training = dataset_split(predictor, "train")
    counts = Counter(example.target for example in training)
    labels = predictor.task.labels
    expected = [len(training) / (len(labels) * counts[name]) for name in labels]
    assert balanced.task.loss_weights.tolist() == pytest.approx(expected)
    assert balanced.task.monitor == "macro_f1"  # 9:1 is beyond 1.5x

    task, model = balanced.task, balanced.task.model.eval()
    batch = task.collate(list(training))
    with torch.no_grad():
        nll = -model(batch["waveforms"], batch["lengths"]).log_softmax(-1)
        nll = nll[torch.arange(len(batch["labels"])), batch["labels"]]
        weight = torch.tensor(expected)[batch["labels"]]
        loss = task.training_step(model, batch).loss
    assert loss.item() == pytest.approx(((weight * nll).sum() / weight.sum()).item(), rel=1e-5)


def test_balanced_weights_recall_the_minority_class_the_plain_loss_misses(
        imbalanced_folder: Path, balanced: omnitune.RunResult, tmp_path: Path) -> None:
    held_out = []
    for index in range(30):
        path = tmp_path / f"high{index}.wav"
        soundfile.write(path, noisy_tone("high", zlib.crc32(f"held-out/{index}".encode())), RATE)
        held_out.append(str(path))
    plain = train(imbalanced_folder, tmp_path / "plain", None)
    assert plain.task.loss_weights is None

    def minority_recall(artifact: Path) -> float:
        predictions = omnitune.Predictor.load(artifact).predict(held_out)
        return sum(p["label"] == "high" for p in predictions) / len(held_out)

    unweighted, weighted = minority_recall(plain.artifact), minority_recall(balanced.artifact)
    assert unweighted < 0.3 and weighted > unweighted + 0.5, (unweighted, weighted)  # 0.0, 0.9


def test_an_artifact_from_before_class_weights_predicts_without_label_counts_or_warnings(
        balanced: omnitune.RunResult, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = shutil.copytree(balanced.artifact, tmp_path / "old")
    info_path = old / "data_info.json"
    info = json.loads(info_path.read_text())
    for key in ("train_label_counts", "train_size"):
        del info[key]
    info_path.write_text(json.dumps(info))
    clip = tmp_path / "high.wav"
    soundfile.write(clip, noisy_tone("high", 5), RATE)
    with caplog.at_level(logging.INFO, logger="omnitune"):
        predictor = omnitune.Predictor.load(old)
        expected = omnitune.Predictor.load(balanced.artifact).predict(str(clip))
        assert predictor.predict(str(clip)) == expected
    assert predictor.task.loss_weights is None  # computed where training starts, not when built
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
