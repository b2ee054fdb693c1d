"""Data files as spreadsheets and careless hands make them (issue 16, case 8): each is read
correctly or refused with a DataError (exit code 3) naming the file, the line and the column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import omnitune
from omnitune.api import compose_config
from omnitune.build import build_dataset
from omnitune.config import validate_components
from omnitune.data import MAX_FIELD_CHARS, read_table
from omnitune.errors import DataError

from conftest import sentiment_rows, write_csv

LOADERS = {"text-file": "train", "image-table": "train", "audio-manifest": "manifest"}


def text_splits(plugins: omnitune.Plugins, path: Path, **options: object) -> omnitune.Splits:
    run = compose_config({"task": "text-classification", "backbone": "minilm-l6",
                          "dataset": {"name": "text-file", "train": str(path), **options}})
    return build_dataset(run, validate_components(run, plugins.registry), plugins.registry)


def load(plugins: omnitune.Plugins, dataset: str, path: Path) -> None:
    run = compose_config({"task": "text-classification", "backbone": "minilm-l6",
                          "dataset": {"name": dataset, LOADERS[dataset]: str(path)}})
    build_dataset(run, validate_components(run, plugins.registry), plugins.registry)


def test_a_utf8_bom_header_is_read(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    rows = sentiment_rows(40)
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + write_csv(tmp_path / "plain.csv", rows).read_bytes())
    splits = text_splits(plugins, path)
    assert splits.info["labels"] == ["neg", "pos"]
    jsonl = tmp_path / "excel.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows).encode())
    assert [row["text"] for _, row in read_table(jsonl, ["text"])] == [r["text"] for r in rows]


def test_labels_are_stripped_and_case_clashes_named(tmp_path: Path, plugins: omnitune.Plugins,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    rows = sentiment_rows(40)
    for index, row in enumerate(rows):
        row["label"] = {0: "pos", 1: " pos ", 2: "POS"}.get(index % 4, "neg")
    with caplog.at_level("WARNING", logger="omnitune"):
        splits = text_splits(plugins, write_csv(tmp_path / "labels.csv", rows))
    assert splits.info["labels"] == ["POS", "neg", "pos"]  # " pos " is "pos"; case is kept, but named:
    assert "labels.csv, column 'label': labels 'POS' / 'pos' differ only in case" in caplog.text


@pytest.mark.parametrize("dataset", sorted(LOADERS))
def test_a_latin1_byte_names_its_line(dataset: str, tmp_path: Path, plugins: omnitune.Plugins) -> None:
    path = tmp_path / "latin.csv"
    good = {"text-file": "text,label\n", "image-table": "path,label\n", "audio-manifest": "path,label\n"}
    body = "".join(f"row{i}.png,cat\n" for i in range(2, 101)).encode()
    path.write_bytes(good[dataset].encode() + body + "caf\xe9.png,cat\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv, line 101: not UTF-8 text \(byte 0xe9 at column 4\)"):
        load(plugins, dataset, path)


@pytest.mark.parametrize("kind", ["directory", "symlink-loop", "broken-symlink", "unreadable"])
def test_a_path_that_is_not_a_readable_file_says_why(kind: str, tmp_path: Path, plugins: omnitune.Plugins,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.csv"
    nowhere = "is a symbolic link that leads nowhere"
    expected = {"directory": "is a directory", "symlink-loop": nowhere, "broken-symlink": nowhere,
                "unreadable": "cannot be read"}[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "symlink-loop":
        path.symlink_to(tmp_path / "other.csv")
        (tmp_path / "other.csv").symlink_to(path)
    elif kind == "broken-symlink":
        path.symlink_to(tmp_path / "gone.csv")
    else:
        write_csv(path, sentiment_rows(20))
        path.chmod(0)
        if os.geteuid() == 0:  # root reads any file: fail the way a user's open() would
            monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    with pytest.raises(DataError, match=f"data.csv: {expected}"):
        text_splits(plugins, path)


def test_an_unreadable_file_exits_3_not_4(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "task": "text-classification", "backbone": {"name": "transformers", "model": str(tmp_path)},
        "dataset": {"name": "text-file", "train": str(tmp_path)}, "output_dir": str(tmp_path / "out")}))
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "train", str(config)],
                          capture_output=True, text=True)
    assert done.returncode == 3 and "is a directory" in done.stderr, done.stderr


@pytest.mark.parametrize("dataset", sorted(LOADERS))
def test_too_few_labels_names_the_file_and_column(dataset: str, tmp_path: Path,
                                                  plugins: omnitune.Plugins) -> None:
    path = tmp_path / "one-label.csv"
    path.write_text("path,text,label\n" + "".join(f"a{i}.wav,word {i},yes\n" for i in range(12)))
    if dataset == "image-table":  # image tables check that each image exists first
        path.write_text("path,label\n" + "".join(f"a{i}.png,yes\n" for i in range(12)))
        for i in range(12):
            (tmp_path / f"a{i}.png").write_bytes(b"")
    if dataset == "audio-manifest":
        import soundfile
        from speech_audio import RATE, tone
        for i in range(12):
            soundfile.write(tmp_path / f"a{i}.wav", tone(300.0, 0.5, i), RATE)
    with pytest.raises(DataError, match=r"one-label\.csv, column 'label': need at least two distinct labels"):
        load(plugins, dataset, path)


def test_small_splits_are_warned_about(tmp_path: Path, plugins: omnitune.Plugins,
                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="omnitune"):
        text_splits(plugins, write_csv(tmp_path / "three.csv", sentiment_rows(3)))
    assert "dataset 'text-file': the train split has only" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="omnitune"):
        text_splits(plugins, write_csv(tmp_path / "eight.csv", sentiment_rows(8)))
    assert "split has only 1 example(s)" in caplog.text


def test_the_field_limit_applies_to_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"text": "x" * (MAX_FIELD_CHARS + 1), "label": "pos"}) + "\n")
    with pytest.raises(DataError, match=r"huge\.jsonl, row 1: field 'text' holds 1000001 characters"):
        list(read_table(path, ["text", "label"]))
