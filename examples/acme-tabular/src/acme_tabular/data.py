"""The csv-table dataset: numeric features and a label per row, split at random by row."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acme_tabular.hooks import CSVTableConfig
from omnitune.data import Splits, read_table, split_by_group
from omnitune.errors import DataError


@dataclass(frozen=True)
class Row:
    number: int
    features: tuple[float, ...]
    label: str


def csv_table(config: CSVTableConfig) -> Splits:
    """Read the CSV, split it, and record label names and feature statistics in ``info``."""
    path = Path(config.train)
    features = config.feature_columns or _other_columns(path, config.label_column)
    rows = [_row(path, number, raw, features, config.label_column)
            for number, raw in read_table(path, [*features, config.label_column])]
    fractions = (1 - config.validation_fraction - config.test_fraction,
                 config.validation_fraction, config.test_fraction)
    train, validation, test = split_by_group(rows, fractions, config.seed, group=lambda r: str(r.number))
    labels = sorted({row.label for row in rows})
    if len(labels) < 2:
        raise DataError(f"{path}: need at least two labels in {config.label_column!r}, found {labels}")
    columns = list(zip(*(row.features for row in train), strict=True))
    info: dict[str, Any] = {
        "labels": labels,
        "features": features,
        "mean": [statistics.fmean(column) for column in columns],
        "std": [statistics.pstdev(column) or 1.0 for column in columns],
    }
    return Splits(train, validation or None, test or None, info)


def _other_columns(path: Path, label_column: str) -> list[str]:
    _, first = next(read_table(path, [label_column]), (0, None))
    if first is None:
        raise DataError(f"{path}: no rows")
    return [name for name in first if name != label_column]


def _row(path: Path, number: int, raw: dict[str, Any], features: list[str], label_column: str) -> Row:
    values = []
    for name in features:
        try:
            value = float(raw[name])
        except (TypeError, ValueError):
            raise DataError(f"{path}, row {number}: field {name!r} is not a number "
                            f"(got {raw[name]!r})") from None
        if not math.isfinite(value):
            raise DataError(f"{path}, row {number}: field {name!r} is not finite (got {value})")
        values.append(value)
    label = str(raw[label_column]).strip()
    if not label:
        raise DataError(f"{path}, row {number}: field {label_column!r} is empty")
    return Row(number, tuple(values), label)
