"""``omnitune predict MODEL --input FILE_OR_FOLDER --output preds.jsonl``: one line per input in
order, bad inputs reported by path (skipped or fatal), and a rerun appends only what is missing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import omnitune
from omnitune.cli import main
from omnitune.errors import DataError


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_csv_rows_to_jsonl_in_order_with_the_bundle(bundle_of: Callable[[str], Path], text_artifact: Path,
                                                     tmp_path: Path) -> None:
    texts = ["great fun", "dull", "superb acting", "tedious plot", "lovely", "weak"] * 3
    source = tmp_path / "texts.csv"
    source.write_text("id,review\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)))
    output = tmp_path / "preds.jsonl"
    assert main(["predict", str(bundle_of("text")), "--input", str(source), "--column", "review",
                 "--output", str(output), "--batch-size", "4"]) == 0
    lines = _lines(output)
    assert [line["id"] for line in lines] == [f"row {n}" for n in range(1, len(texts) + 1)]
    assert [line["input"] for line in lines] == texts
    expected = omnitune.Predictor.load(text_artifact).predict(texts)
    assert [line["label"] for line in lines] == [p["label"] for p in expected]


def test_folder_with_a_bad_image_is_skipped_or_fatal_and_resumes(
        bundle_of: Callable[[str], Path], image_folder: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pictures"
    pictures = sorted(image_folder.rglob("*.png"))[:7]
    for index, picture in enumerate(pictures):
        (folder / picture.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / picture.parent.name / f"{index}.png").write_bytes(picture.read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")
    bundle, output = str(bundle_of("image")), tmp_path / "preds.jsonl"

    assert main(["predict", bundle, "--input", str(folder), "--output", str(output)]) == DataError.exit_code
    assert "broken.png" in capsys.readouterr().err

    assert main(["predict", bundle, "--input", str(folder), "--output", str(output), "--bad-inputs", "skip",
                 "--batch-size", "3"]) == 0
    lines = _lines(output)
    assert len(lines) == 8 and [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    assert [line["id"] for line in lines if "error" in line] == ["broken.png"]
    assert sum("label" in line for line in lines) == 7

    # a killed run: three complete lines and a torn fourth; the rerun appends the rest only
    text = output.read_text().splitlines(keepends=True)
    output.write_text("".join(text[:3]) + text[3][:10])
    assert main(["predict", bundle, "--input", str(folder), "--output", str(output), "--bad-inputs",
                 "skip", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["already_done"] == 3
    assert _lines(output) == lines


def test_output_of_other_inputs_is_refused(bundle_of: Callable[[str], Path], tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("great\ndull\n")
    output = tmp_path / "preds.jsonl"
    output.write_text(json.dumps({"id": "row 1", "label": "pos"}) + "\n")
    assert main(["predict", str(bundle_of("text")), "--input", str(source), "--output", str(output)]) == 3
