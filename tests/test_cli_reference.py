"""A newcomer's first minutes: --version, every component's options from the command line, a dry
run that shows the defaults it resolved, and docs/config.md kept in step with the models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import omnitune
from omnitune.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"omnitune {omnitune.__version__}"


def test_options_of_a_task_as_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["tasks", "text-classification", "--options", "--json"]) == 0
    [task] = json.loads(capsys.readouterr().out)
    options = {row["name"]: row for row in task["options"]}
    assert options["max_length"]["type"] == "int"
    assert options["max_length"]["default"] == 128
    assert options["max_length"]["constraints"] == [">= 8", "<= 8192"]
    assert options["max_length"]["description"] == "Tokens per chunk (per text without chunking)."


def test_options_of_every_kind_as_text(capsys: pytest.CaptureFixture) -> None:
    expected = {"backbones": ("minilm-l6", "pooling  'cls' | 'mean' = 'mean'  mean, as the model"),
                "heads": ("linear", "dropout  float = 0.1 (>= 0, < 1)  Dropout before the linear layer."),
                "datasets": ("rotten-tomatoes", "float = 0.1 (>= 0, < 1)  Held out for testing.")}
    for command, (name, line) in expected.items():
        assert main([command, name, "--options"]) == 0
        assert " ".join(line.split()) in " ".join(capsys.readouterr().out.split())  # alignment aside


def test_dry_run_shows_resolved_component_defaults(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--dry-run"]) == 0
    printed = capsys.readouterr()
    shown = json.loads(printed.out)
    assert shown["task"] == {"name": "text-classification", "max_length": 64, "multi_label": False,
                             "threshold": 0.5, "class_weights": "balanced",
                             "chunking": {"stride": None, "max_chunks": 8, "pooling": "mean"}}
    assert "macro_f1 if its largest class has over 1.5x the examples of its smallest" in printed.err
    assert shown["head"] == {"name": "linear", "dropout": 0.1}
    assert shown["dataset"]["validation_fraction"] == 0.1  # a default the user never wrote


def test_config_reference_is_current() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_docs.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
