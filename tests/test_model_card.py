"""Every artifact carries a model card (README.md, Hugging Face format, bootstrap intervals) and a
reproducibility record; ``evaluate`` warns when the installed versions differ from the recorded ones."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

import omnitune
from omnitune.metrics import accuracy
from omnitune.outputs import bootstrap_intervals


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_model_card_metadata_and_results(trained_text_run: Path) -> None:
    artifact = trained_text_run / "artifact"
    card = (artifact / "README.md").read_text()
    metrics = json.loads((artifact / "metrics.json").read_text())
    meta = front_matter(card)
    assert meta["library_name"] == "omnitune" and meta["pipeline_tag"] == "text-classification"
    assert meta["datasets"] == ["text-file"]
    assert meta["metrics"] == ["accuracy", "macro_f1", "truncated_fraction"]
    (validation, test) = meta["model-index"][0]["results"]
    assert (validation["dataset"]["split"], test["dataset"]["split"]) == ("validation", "test")
    assert test["metrics"][0] == {"type": "accuracy", "value": round(metrics["test_accuracy"], 4),
                                  "name": "test accuracy"}
    row = next(line for line in card.splitlines() if line.startswith("| test | accuracy |"))
    low, high = map(float, row.split("[")[1].split("]")[0].split(","))
    assert low <= metrics["test_accuracy"] <= high and high - low > 0
    for heading in ("## Intended use", "## Training data and split", "## Training", "## Known limitations"):
        assert heading in card
    assert "`group_column`: `source`" in card and "precision `fp32`" in card


def test_bootstrap_interval_matches_the_binomial_width() -> None:
    correct = torch.arange(1000) % 5 != 0  # 80% right
    outputs = {"predictions": correct.long(), "targets": torch.ones(1000, dtype=torch.long)}
    low, high = bootstrap_intervals(outputs, {"accuracy": accuracy(None)})["accuracy"]
    half_width = 1.96 * (0.8 * 0.2 / 1000) ** 0.5  # normal approximation: 0.0248
    assert low < 0.8 < high
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)


def test_outputs_that_are_not_per_example_get_no_interval() -> None:
    outputs = {"predictions": torch.zeros(10), "targets": torch.zeros(7)}
    assert bootstrap_intervals(outputs, {"accuracy": accuracy(None)}) == {}


def test_reproducibility_record(trained_text_run: Path) -> None:
    record = json.loads((trained_text_run / "artifact" / "reproducibility.json").read_text())
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    assert set(record["versions"]) >= {"python", "torch", "transformers", "timm", "torchaudio", "peft"}
    assert (record["device"], record["precision"], record["seed"]) == ("cpu", "fp32", 42)
    repository = trained_text_run.parent / "repository"
    head = subprocess.run(["git", "-C", str(repository), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert record["git"] == {"commit": head, "dirty": False}
    assert record["command"]


def test_eval_warns_when_versions_differ(trained_text_run: Path, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture,
                                         plugins: omnitune.Plugins) -> None:
    artifact = shutil.copytree(trained_text_run / "artifact", tmp_path / "artifact")
    record = json.loads((artifact / "reproducibility.json").read_text())
    record["versions"]["torch"] = "0.0.1"
    (artifact / "reproducibility.json").write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="omnitune"):
        omnitune.evaluate(artifact, split="test", plugins=plugins)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"torch 0.0.1 (recorded) != {torch.__version__.split('+')[0]} (installed)" in w
               for w in warnings), warnings
    assert not any("transformers" in w for w in warnings)
