"""Config files and values that used to hang or leak tracebacks (issue 16, cases 4 and 5): each is
a ConfigError naming the file, key or field (exit code 2) before anything trains."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import omnitune
from omnitune.config import MAX_YAML_NODES, load_config
from omnitune.errors import ConfigError

from conftest import tiny_run

BASE = {"task": "text-classification", "backbone": "minilm-l6", "dataset": "rotten-tomatoes"}


def yaml_bomb(levels: int) -> str:
    """The "billion laughs": each anchor a list of ten aliases to the one before; ~10**levels items."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\ntask: text-classification\ntrain:\n  lr: *a{levels - 1}\n"


@pytest.mark.parametrize("levels", [7, 9])
def test_a_yaml_bomb_is_refused_quickly_with_a_short_message(levels: int, tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml_bomb(levels))
    assert len(path.read_bytes()) < 800
    with pytest.raises(ConfigError, match=f"aliases expand to more than {MAX_YAML_NODES}") as raised:
        load_config(path)
    assert len(str(raised.value)) < 500


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("task: &t [1, *t]\n")
    with pytest.raises(ConfigError, match="refers to a node that contains it"):
        load_config(path)


def test_small_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("defaults: &d {name: minilm-l6}\nbackbone: *d\ntask: text-classification\n"
                    "dataset: rotten-tomatoes\n")
    with pytest.raises(ConfigError, match="defaults: Extra inputs"):  # parsed fine, then validated
        load_config(path)


def test_duplicate_keys_are_an_error_naming_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("task: text-classification\ntrain:\n  lr: 1.0e-3\n  epochs: 2\n  lr: 5.0e-5\n")
    with pytest.raises(ConfigError, match=r"twice.yaml, line 5: key 'lr' is given twice"):
        load_config(path)


def test_echoed_values_are_cut(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({**BASE, "train": {"epochs": "x" * 1_000_000}})
    assert len(str(raised.value)) < 600 and "train.epochs" in str(raised.value)


@pytest.mark.parametrize("kind", ["directory", "not-utf8", "unreadable", "symlink-loop"])
def test_unreadable_config_files_are_config_errors(kind: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b"task: caf\xe9\n")
    elif kind == "unreadable":
        path.write_text("task: text-classification\n")
        path.chmod(0)
        if os.geteuid() == 0:  # root reads any file: make reading it fail as it would for a user
            def denied(self: Path, *args: object, **kwargs: object) -> str:
                raise PermissionError(13, "Permission denied", str(self))
            monkeypatch.setattr(Path, "read_text", denied)
    else:
        path.symlink_to(tmp_path / "other.yaml")
        (tmp_path / "other.yaml").symlink_to(path)
    with pytest.raises(ConfigError, match="config file .*run.yaml"):
        load_config(path)


def test_cli_exit_code_for_a_directory_config(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "train", str(tmp_path), "--dry-run"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "is a directory" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("change", "field"), [
    ({"seed": 2**64}, "train.seed: Input should be less than or equal to 4294967295"),
    ({"lr": float("inf")}, "train.lr: Input should be a finite number"),
    ({"lr": float("nan")}, "train.lr: Input should be a finite number"),
    ({"epochs": 1e12}, "train.epochs: Input should be less than or equal to 100000"),
    ({"max_steps": 10**12}, "train.max_steps: Input should be less than or equal to 1000000000"),
])
def test_values_beyond_their_range_are_named(change: dict, field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({**BASE, "train": change})
    assert field in str(raised.value)


def test_yaml_infinity_is_refused_through_set() -> None:
    with pytest.raises(ConfigError, match="train.lr: Input should be a finite number"):
        load_config(BASE, ["train.lr=.inf"])


def test_max_length_beyond_the_backbone_positions_fails_before_training(
        tiny_bert: Path, sentiment_csv: Path, tmp_path: Path) -> None:
    run = tiny_run(tiny_bert, sentiment_csv, tmp_path / "run")
    run["task"]["max_length"] = 100  # the tiny BERT has 64 positions
    with pytest.raises(ConfigError, match="task.max_length: 100 is beyond this backbone's 64 positions"):
        omnitune.finetune(run)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_bomb_in_a_dry_run_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml_bomb(9))
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "train", str(path), "--dry-run"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr) < 1000, done.stderr[:2000]


def test_valid_yaml_is_unchanged(tmp_path: Path) -> None:
    data = {**BASE, "train": {"lr": 3e-5, "epochs": 2}, "output_dir": "runs/x"}
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_config(path) == load_config(data)
