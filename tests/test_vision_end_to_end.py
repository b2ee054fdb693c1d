"""Vision plugin end to end on a tiny timm model (test_efficientnet, 99k parameters) and generated
images: config -> fit -> artifact -> Predictor and CLI -> prediction on image files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from vision_fixtures import picture, write_image_folder

import omnitune
from omnitune.cli import main

COLOURS = ["red", "green", "blue"]


def tiny_run(data: Path, output_dir: Path, **train: object) -> dict:
    return {
        "task": {"name": "image-classification", "image_size": 32, "scale": [0.6, 1.0]},
        "backbone": {"name": "timm", "model": "test_efficientnet", "pretrained": False},
        "head": {"name": "linear", "dropout": 0.0},
        "dataset": {"name": "image-folder", "train": str(data), "validation_fraction": 0.2,
                    "test_fraction": 0.2},
        "train": {"epochs": 4, "batch_size": 16, "lr": 3e-3, "warmup_ratio": 0.0, "progress": False,
                  **train},
        "output_dir": str(output_dir),
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> omnitune.RunResult:
    root = tmp_path_factory.mktemp("vision-e2e")
    data = write_image_folder(root / "images", COLOURS, per_class=30)
    return omnitune.finetune(tiny_run(data, root / "run"))


def test_fit_writes_artifact_with_preprocessing(trained: omnitune.RunResult) -> None:
    assert trained.metrics["test_accuracy"] > 0.9, trained.metrics
    assert "test_macro_f1" in trained.metrics
    assert "test_top5_accuracy" not in trained.metrics  # three classes: top-5 would be trivially 1
    artifact = trained.artifact
    preprocessing = json.loads((artifact / "preprocessing.json").read_text())
    assert preprocessing["input_size"] == [3, 32, 32]
    assert preprocessing["architecture"] == "test_efficientnet"
    assert preprocessing["train"]["scale"] == [0.6, 1.0]
    assert json.loads((artifact / "data_info.json").read_text())["labels"] == sorted(COLOURS)
    assert (artifact / "backbone" / "timm.json").is_file()


def test_predictor_on_image_files_of_any_mode(trained: omnitune.RunResult, tmp_path: Path) -> None:
    paths = []
    for colour, mode in zip(COLOURS, ["RGB", "RGBA", "P"], strict=True):
        path = tmp_path / f"{colour}.png"
        picture(colour, seed=99).convert(mode).save(path)
        paths.append(path)
    gray = tmp_path / "gray.png"
    picture("white", seed=1).convert("L").save(gray)

    predictor = omnitune.Predictor.load(trained.artifact)
    predictions = predictor.predict([str(p) for p in paths])
    assert [p["label"] for p in predictions] == COLOURS
    assert sum(predictions[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    in_memory = predictor.predict(Image.open(paths[0]))[0]
    assert in_memory["probabilities"] == pytest.approx(predictions[0]["probabilities"], abs=1e-5)
    assert predictor.predict(str(gray))[0]["label"] in COLOURS  # one channel, made RGB

    with pytest.raises(omnitune.DataError, match="not-there.png"):
        predictor.predict(str(tmp_path / "not-there.png"))


def test_cli_predict(trained: omnitune.RunResult, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "img.png"
    picture("green", seed=7).save(image)
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(trained.artifact),
                           str(image), "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout.splitlines()[-1])
    assert (row["input"], row["label"]) == (str(image), "green")

    text = tmp_path / "note.jpg"
    text.write_text("not a picture")
    capsys.readouterr()
    assert main(["predict", str(trained.artifact), str(text)]) == 3  # DataError's exit code
    error = capsys.readouterr().err
    assert str(text) in error and "not a readable image" in error and "Traceback" not in error


def test_mixup_randaugment_and_layer_decay_train(tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "images", [*COLOURS, "yellow", "purple", "white"], per_class=8)
    run = tiny_run(data, tmp_path / "run", max_steps=3, batch_size=7, layer_decay=0.7, num_workers=2)
    run["task"] |= {"mixup_alpha": 0.4, "cutmix_alpha": 1.0, "rand_augment": "rand-m9-mstd0.5",
                    "label_smoothing": 0.1}
    result = omnitune.finetune(run)
    assert result.metrics["steps"] == 3
    # six classes: top-5 is reported, is at least top-1, and the artifact reproduces it
    assert result.metrics["test_top5_accuracy"] >= result.metrics["test_accuracy"]
    assert omnitune.evaluate(result.artifact)["test_top5_accuracy"] == pytest.approx(
        result.metrics["test_top5_accuracy"])
    preprocessing = json.loads((result.artifact / "preprocessing.json").read_text())
    assert preprocessing["train"]["mixup_alpha"] == 0.4


def test_image_classification_refuses_a_non_image_backbone() -> None:
    from torch import nn

    from omnitune_vision.classification import ImageClassification
    from omnitune_vision.plugin import ImageClassificationConfig

    with pytest.raises(omnitune.ConfigError, match="needs an image backbone"):
        ImageClassification(ImageClassificationConfig(), backbone=nn.Linear(2, 2),
                            head=nn.Linear, data_info={"labels": ["a", "b"]})


def test_explain_pixels_is_complete_and_draws_a_heatmap(trained: omnitune.RunResult, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from omnitune.explain import explain

    image = picture("green", seed=99)
    image.save(tmp_path / "green.png")
    (e,) = explain(omnitune.Predictor.load(trained.artifact), [str(tmp_path / "green.png")], steps=128)
    assert e.label == "green" and e.attributions.shape == (32, 32)
    gap = e.score - e.baseline_score
    assert e.attributions.sum().item() == pytest.approx(gap, abs=1e-3 + 0.02 * abs(gap))
    assert main(["explain", str(trained.artifact), str(tmp_path / "green.png"), "--output-dir",
                 str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.startswith("green\t")
    with Image.open(tmp_path / "out" / "explanation-0.png") as heatmap:
        assert heatmap.format == "PNG" and heatmap.width > 300
