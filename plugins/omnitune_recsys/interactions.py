"""Reading interaction and item files, and turning ratings into implicit feedback."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from omnitune.data import read_table
from omnitune.errors import DataError

TAB_SUFFIXES = (".tsv", ".inter", ".item", ".user")


@dataclass(frozen=True)
class Interaction:
    """One user-item event; ``order`` is its row in the file, breaking timestamp ties."""

    user: str
    item: str
    rating: float
    timestamp: float
    order: int


@dataclass(frozen=True)
class Columns:
    """Which columns of the interactions file hold what (``None``: the file has no such column)."""

    user: str
    item: str
    rating: str | None
    timestamp: str | None


def read_rows(path: Path, columns: Sequence[str], delimiter: str = "auto") -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, row)`` from a delimited file whose header holds ``columns``.

    RecBole-style typed headers (``user_id:token``) are read by their plain name (``user_id``).
    Errors name the file, the row and what was expected.
    """
    if delimiter == "auto":
        delimiter = "\t" if path.suffix.lower() in TAB_SUFFIXES else ","
    return read_table(path, columns, delimiter=delimiter, header_name=_plain_name)


def _plain_name(header_cell: str) -> str:
    return header_cell.split(":", 1)[0].strip()


def read_interactions(path: Path, columns: Columns, delimiter: str = "auto") -> list[Interaction]:
    """Every row of an interactions file; a missing id or a non-numeric rating or time is an error."""
    wanted = [c for c in (columns.user, columns.item, columns.rating, columns.timestamp) if c]
    rows = []
    for line, row in read_rows(path, wanted, delimiter):
        user, item = row[columns.user].strip(), row[columns.item].strip()
        for column, value in ((columns.user, user), (columns.item, item)):
            if not value:
                raise DataError(f"{path}, row {line}: field {column!r} is empty; expected an id")
        rating = _number(row, columns.rating, path, line) if columns.rating else 1.0
        timestamp = _number(row, columns.timestamp, path, line) if columns.timestamp else float(line)
        rows.append(Interaction(user, item, rating, timestamp, line))
    if not rows:
        raise DataError(f"{path}: no interactions")
    return rows


def read_item_texts(path: Path, item_column: str, text_columns: Sequence[str],
                    delimiter: str = "auto") -> dict[str, str]:
    """One text per item id, the ``text_columns`` joined (``"Toy Story. 1995. Animation Comedy"``)."""
    rows = _rows_by_id(path, item_column, text_columns, "item", delimiter)
    return {item: ". ".join(value for value in row.values() if value) for item, row in rows.items()}


def read_user_features(path: Path, user_column: str, feature_columns: Sequence[str],
                       delimiter: str = "auto") -> dict[str, dict[str, str]]:
    """The categorical ``feature_columns`` of each user id (``{"u1": {"gender": "F"}}``)."""
    features = _rows_by_id(path, user_column, feature_columns, "user", delimiter)
    if not features:
        raise DataError(f"{path}: no users; expected one row per user with {list(feature_columns)}")
    return features


def _rows_by_id(path: Path, id_column: str, columns: Sequence[str], kind: str,
                delimiter: str) -> dict[str, dict[str, str]]:
    """The stripped ``columns`` of each row, keyed by its ``id_column``; ids must be present and unique."""
    rows: dict[str, dict[str, str]] = {}
    for line, row in read_rows(path, [id_column, *columns], delimiter):
        key = row[id_column].strip()
        if not key:
            raise DataError(f"{path}, row {line}: field {id_column!r} is empty; expected an id")
        if key in rows:
            raise DataError(f"{path}, row {line}: {kind} {key!r} appears twice")
        rows[key] = {column: row[column].strip() for column in columns}
    return rows


def implicit(interactions: Sequence[Interaction], threshold: float | None) -> list[Interaction]:
    """Positive feedback only: rated at least ``threshold``; each (user, item) once, its earliest
    event kept, so no pair can sit both in training and in a held-out split."""
    ordered = sorted(interactions, key=lambda i: (i.timestamp, i.order))
    seen: set[tuple[str, str]] = set()
    kept = []
    for event in ordered:
        pair = (event.user, event.item)
        if (threshold is None or event.rating >= threshold) and pair not in seen:
            seen.add(pair)
            kept.append(event)
    return kept


def core_filter(interactions: Sequence[Interaction], min_per_user: int,
                min_per_item: int) -> list[Interaction]:
    """Drop users and items with too few interactions, repeatedly, until every one left has enough."""
    kept = list(interactions)
    while True:
        users = Counter(i.user for i in kept)
        items = Counter(i.item for i in kept)
        filtered = [i for i in kept if users[i.user] >= min_per_user and items[i.item] >= min_per_item]
        if len(filtered) == len(kept):
            return kept
        kept = filtered


def _number(row: dict[str, str], column: str, path: Path, line: int) -> float:
    raw = row[column].strip()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(f"{path}, row {line}: field {column!r} must be a number, got {raw!r}")
    return value
