"""Every table-based dataset loader, the same bad files: each error names the file (and the row or
column where there is one), is a DataError, and the CLI exits with code 3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import omnitune
from omnitune.api import compose_config
from omnitune.build import build_dataset
from omnitune.config import validate_components

# dataset name, the option naming its file, and the two columns a good row has
LOADERS = {
    "text-file": ("train", {"text": "a fine film", "label": "pos"}),
    "image-table": ("train", {"path": "cat.png", "label": "cat"}),
    "audio-manifest": ("manifest", {"path": "yes.wav", "label": "yes"}),
    "interactions-file": ("interactions",
                          {"user_id": "u1", "item_id": "i1", "rating": "5", "timestamp": "1"}),
}


def load(plugins: omnitune.Plugins, dataset: str, path: Path) -> None:
    option, _ = LOADERS[dataset]
    run = compose_config({"task": "text-classification", "backbone": "minilm-l6",
                          "dataset": {"name": dataset, option: str(path)}})  # only the dataset is read
    build_dataset(run, validate_components(run, plugins.registry), plugins.registry)


def csv_text(row: dict[str, str], rows: int = 1) -> str:
    return ",".join(row) + "\n" + "".join(",".join(row.values()) + "\n" for _ in range(rows))


CASES = {
    "missing file": (None, r"nowhere\.csv"),
    "empty file": (b"", r"bad\.csv: the file is empty"),
    "misnamed column": ("renamed", r"bad\.csv: missing column\(s\)"),
    "not UTF-8": ("latin", r"bad\.csv.*not UTF-8"),
    "enormous field": ("huge", r"bad\.csv, row \d+"),
}


@pytest.mark.parametrize("dataset", sorted(LOADERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_table_files(dataset: str, case: str, tmp_path: Path, plugins: omnitune.Plugins) -> None:
    _, good = LOADERS[dataset]
    content, message = CASES[case]
    path = tmp_path / ("nowhere.csv" if content is None else "bad.csv")
    if content == "renamed":
        path.write_text(csv_text({f"{k}_x": v for k, v in good.items()}))
    elif content == "latin":
        path.write_bytes(csv_text({k: v + "é" for k, v in good.items()}).encode("latin-1"))
    elif content == "huge":
        path.write_text(csv_text({next(iter(good)): "x" * 1_100_000, **dict(list(good.items())[1:])}))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(omnitune.DataError, match=message):
        load(plugins, dataset, path)


@pytest.mark.parametrize("dataset", sorted(set(LOADERS) - {"interactions-file"}))
def test_wrong_types_in_jsonl_are_named(dataset: str, tmp_path: Path, plugins: omnitune.Plugins) -> None:
    _, good = LOADERS[dataset]
    first, second = list(good)
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({first: 12, second: ["a", "b"]}) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(omnitune.DataError, match=r"rows\.jsonl, row 1"):
        load(plugins, dataset, path)


def test_wrong_types_in_interactions_are_named(tmp_path: Path, plugins: omnitune.Plugins) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,item_id,rating,timestamp\nu1,i1,5,1\nu1,i2,five,2\n")
    with pytest.raises(omnitune.DataError, match=r"ratings\.csv, row 3: field 'rating' must be a number"):
        load(plugins, "interactions-file", path)


def test_cli_exit_code_for_a_data_error(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "task": "text-classification", "backbone": {"name": "transformers", "model": str(tmp_path)},
        "dataset": {"name": "text-file", "train": str(tmp_path / "nowhere.csv")},
        "output_dir": str(tmp_path / "out")}))
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "train", str(config)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 3, done.stderr
    assert "nowhere.csv: file not found" in done.stderr
    assert "Traceback" not in done.stderr
