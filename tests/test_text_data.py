"""Text datasets: bad rows name the file and row; splits never share a group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnitune.errors import DataError
from omnitune_text.datasets import text_file
from omnitune_text.plugin import TextFileDatasetConfig

from conftest import sentiment_rows, write_csv


def load(path: Path, **options: object):
    return text_file(TextFileDatasetConfig(train=str(path), **options))


def test_csv_splits_by_group_without_leakage(sentiment_csv: Path) -> None:
    splits = load(sentiment_csv, group_column="source")
    groups = [{e.group for e in split} for split in (splits.train, splits.validation, splits.test)]
    assert groups[0].isdisjoint(groups[1]) and groups[0].isdisjoint(groups[2])
    assert groups[1].isdisjoint(groups[2])
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 400
    assert splits.info == {"labels": ["neg", "pos"], "multi_label": False}


def test_jsonl_and_tsv_with_custom_columns(tmp_path: Path) -> None:
    rows = sentiment_rows(20)
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps({"review": r["text"], "y": r["label"]}) + "\n" for r in rows))
    splits = load(jsonl, text_column="review", label_column="y", validation_fraction=0.0, test_fraction=0.0)
    assert len(splits.train) == 20
    tsv = tmp_path / "data.tsv"
    tsv.write_text("text\tlabel\n" + "".join(f"{r['text']}\t{r['label']}\n" for r in rows))
    assert len(load(tsv, test_fraction=0.0, validation_fraction=0.0).train) == 20


def test_given_split_files_are_used_as_they_are(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", sentiment_rows(30))
    test = write_csv(tmp_path / "test.csv", sentiment_rows(8, seed=1))
    splits = load(train, test=str(test))
    assert len(splits.test) == 8
    assert len(splits.train) + len(splits.validation) == 30


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("text,label\ngood film,pos\n,neg\n", {}, r"bad\.csv, row 3: field 'text' is empty"),
        ("text,label\ngood film,pos\nbad film,\n", {}, r"bad\.csv, row 3: field 'label' is empty"),
        ("review,label\ngood,pos\n", {},
         r"bad\.csv: missing column\(s\) \['text'\]; the header has \['review', 'label'\]"),
        ("", {}, r"bad\.csv: the file is empty"),
        ("text,label\ngood,pos\nbad,meh\n", {"labels": ["neg", "pos"]},
         r"bad\.csv, row 3: unknown label\(s\) \['meh'\]"),
        ("text,label\ngood,pos,extra\n", {}, r"bad\.csv, row 2: more fields than the header"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path: Path, content: str, options: dict, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load(path, **options)


def test_bad_rows_can_be_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "some-bad.csv"
    path.write_text("text,label\ngood,pos\n,neg\nbad,neg\nfine,pos\n")
    splits = load(path, bad_rows="skip", validation_fraction=0.0, test_fraction=0.0)
    assert len(splits.train) == 3
    assert "skipped 1 bad row(s), first: row 3" in caplog.text


def test_missing_file_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere\.csv: file not found"):
        load(tmp_path / "nowhere.csv")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("text,label\ncaf\xe9 cr\xe8me,pos\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.csv.*not UTF-8"):
        load(latin)


def test_bad_jsonl_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "ok", "label": "pos"}\n{"text": "oops"\n')
    with pytest.raises(DataError, match=r"rows\.jsonl, row 2: not valid JSON"):
        load(path)
