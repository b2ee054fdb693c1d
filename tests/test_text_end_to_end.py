"""Text plugin end to end on a tiny random BERT: config -> fit -> artifact -> Predictor -> prediction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import omnitune

from conftest import sentiment_rows, tiny_run, write_csv


def test_fit_artifact_predictor(tiny_bert: Path, sentiment_csv: Path, tmp_path: Path,
                                plugins: omnitune.Plugins) -> None:
    run = tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", epochs=5)
    result = omnitune.finetune(run, plugins=plugins)

    assert result.metrics["test_accuracy"] > 0.9, result.metrics
    assert result.metrics["eval_accuracy"] > 0.9
    names = {p.name for p in result.artifact.iterdir()}
    assert {"model.safetensors", "config.json", "data_info.json", "preprocessing.json",
            "metrics.json", "omnitune.json", "backbone"} <= names
    assert json.loads((result.artifact / "data_info.json").read_text())["labels"] == ["neg", "pos"]
    resolved = json.loads((result.artifact / "config.json").read_text())
    assert resolved["task"]["max_length"] == 16
    assert resolved["head"]["dropout"] == 0.1

    predictor = omnitune.Predictor.load(result.artifact, plugins=plugins)
    good, bad = predictor.predict(["the film was wonderful", "really dull and tedious plot"])
    assert (good["label"], bad["label"]) == ("pos", "neg")
    assert sum(good["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_accuracy" in line for line in lines)
    assert lines[-1]["final"] is True


def test_predictor_does_not_need_the_original_backbone_folder(
    tiny_bert: Path, sentiment_csv: Path, tmp_path: Path, plugins: omnitune.Plugins
) -> None:
    import shutil

    copy = tmp_path / "bert-copy"
    shutil.copytree(tiny_bert, copy)
    result = omnitune.finetune(tiny_run(copy, sentiment_csv, tmp_path / "run", max_steps=3),
                               plugins=plugins)
    before = omnitune.Predictor.load(result.artifact, plugins=plugins).predict("quite superb")
    shutil.rmtree(copy)
    after = omnitune.Predictor.load(result.artifact, plugins=plugins).predict("quite superb")
    assert after == before  # the artifact alone gives the same label and probabilities


def test_multi_label(tiny_bert: Path, tmp_path: Path, plugins: omnitune.Plugins) -> None:
    rows = [{"text": r["text"], "label": f"{r['label']}|short" if i % 3 else r["label"],
             "source": r["source"]} for i, r in enumerate(sentiment_rows(120))]
    data = write_csv(tmp_path / "multi.csv", rows)
    run = tiny_run(tiny_bert, data, tmp_path / "run", max_steps=4)
    run["task"]["multi_label"] = True
    run["dataset"]["label_separator"] = "|"
    result = omnitune.finetune(run, plugins=plugins)
    prediction = omnitune.Predictor.load(result.artifact, plugins=plugins).predict("fun story")[0]
    assert set(prediction["probabilities"]) == {"neg", "pos", "short"}
    assert isinstance(prediction["labels"], list)

    run["task"]["multi_label"] = False
    run["output_dir"] = str(tmp_path / "other")
    with pytest.raises(omnitune.ConfigError, match="multi-label"):
        omnitune.finetune(run, plugins=plugins)


def test_cli_train_json_then_predict(tiny_bert: Path, sentiment_csv: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_run(tiny_bert, sentiment_csv, tmp_path / "run")))
    trained = subprocess.run(
        [sys.executable, "-m", "omnitune.cli", "train", str(config), "--set", "train.epochs=3",
         "--json"], capture_output=True, text=True, check=False)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["metrics"]["epochs"] == 3
    artifact = summary["artifact"]

    predicted = subprocess.run(
        [sys.executable, "-m", "omnitune.cli", "predict", artifact, "lovely acting", "boring plot", "--json"],
        capture_output=True, text=True, check=False)
    assert predicted.returncode == 0, predicted.stderr
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [r["input"] for r in rows] == ["lovely acting", "boring plot"]
    assert [r["label"] for r in rows] == ["pos", "neg"]

    again = subprocess.run([sys.executable, "-m", "omnitune.cli", "train", str(config)],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 2
    assert "already holds a run" in again.stderr

    evaluated = subprocess.run([sys.executable, "-m", "omnitune.cli", "eval", artifact, "--json"],
                               capture_output=True, text=True, check=False)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["test_accuracy"] == pytest.approx(
        summary["metrics"]["test_accuracy"], abs=1e-6)


def test_cli_config_error_exit_code(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "train", "--set", "train.lr=-1"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "train.lr: Input should be greater than 0" in done.stderr
