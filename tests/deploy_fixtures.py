"""Fixtures of the deployment tests (loaded by conftest.py through pytest_plugins): tiny trained
deployment tests (export, torch-free venv, HTTP server, batch prediction)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from speech_audio import tiny_cnn, train_settings, write_tone_folder, write_transcribed_manifest
from vision_fixtures import write_image_folder

import omnitune
from omnitune.export import Tolerances, export

from conftest import save_tiny_bert, sentiment_rows, tiny_run, write_csv


def _train(root: Path, run: dict) -> Path:
    return omnitune.finetune({**run, "output_dir": str(root / "run")}).artifact


@pytest.fixture(scope="session")
def text_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text")
    data = write_csv(root / "reviews.csv", sentiment_rows(240))
    return _train(root, tiny_run(save_tiny_bert(root / "bert"), data, root / "run", epochs=3))


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("images") / "images", ["red", "green", "blue"], 20)


@pytest.fixture(scope="session")
def image_artifact(image_folder: Path) -> Path:
    run = {"task": {"name": "image-classification", "image_size": 32},
           "backbone": {"name": "timm", "model": "test_efficientnet", "pretrained": False},
           "dataset": {"name": "image-folder", "train": str(image_folder), "validation_fraction": 0.2,
                       "test_fraction": 0.2},
           "train": {"epochs": 3, "batch_size": 16, "lr": 3e-3, "progress": False}}
    return _train(image_folder.parent, run)


@pytest.fixture(scope="session")
def tone_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tone_folder(tmp_path_factory.mktemp("tones") / "tones", per_class=16)


@pytest.fixture(scope="session")
def audio_artifact(tone_folder: Path) -> Path:
    # augmentation off, as before it became the default: three epochs on tones need no robustness
    run = {"task": {"name": "audio-classification", "clip_seconds": 0.5, "augment": None},
           "backbone": tiny_cnn(),
           "dataset": {"name": "audio-folder", "root": str(tone_folder), "group_pattern": r"^(spk\d+)_",
                       "validation_fraction": 0.25, "test_fraction": 0.25},
           "train": train_settings(epochs=3)}
    return _train(tone_folder.parent, run)


@pytest.fixture(scope="session")
def ctc_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ctc")
    manifest = write_transcribed_manifest(root / "clips", count=24)
    run = {"task": {"name": "speech-recognition"},
           "backbone": {**tiny_cnn(), "spec_augment": None},
           "dataset": {"name": "audio-manifest", "manifest": str(manifest), "target_column": "text",
                       "target": "transcript", "group_column": "speaker",
                       "validation_fraction": 0.17, "test_fraction": 0.17,
                       "limitations": ["Synthetic audio: tone sequences stand in for speech."]},
           "train": train_settings(epochs=2, batch_size=8, lr=1e-2, head_lr=1e-2)}
    return _train(root, run)


@pytest.fixture(scope="session")
def recsys_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_recsys_end_to_end import write_world

    root = tmp_path_factory.mktemp("recsys")
    interactions, items = write_world(root, users=60)
    run = {"task": {"name": "recommendation", "top_k": 5},
           "backbone": {"name": "mf", "dim": 16},
           "dataset": {"name": "interactions-file", "interactions": str(interactions), "items": str(items),
                       "rating_threshold": 4},
           "train": {"epochs": 3, "batch_size": 64, "lr": 2e-2, "weight_decay": 0.0, "progress": False}}
    return _train(root, run)


EXPORTERS = {"text": "torchscript", "image": "torchscript", "audio": "dynamo", "ctc": "dynamo",
             "recsys": "torchscript"}


@pytest.fixture(scope="session")
def bundle_of(tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``bundle_of("text")``: that task's artifact exported with int8, once per session. Text,
    image and recommendation use the TorchScript exporter to keep the suite fast; the speech
    tasks use dynamo (the TorchScript exporter has no complex STFT)."""
    made: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in made:
            artifact = request.getfixturevalue(f"{kind}_artifact")
            made[kind] = tmp_path_factory.mktemp(f"bundle-{kind}") / "bundle"
            export(artifact, made[kind], quantize="int8", exporter=EXPORTERS[kind],
                   tolerances=Tolerances(max_int8_drop=1.0))  # a handful of test rows: one flip is 20%
        return made[kind]

    return get
