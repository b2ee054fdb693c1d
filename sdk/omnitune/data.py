"""Dataset splits, leak-free splitting, and table reading shared by dataset loaders."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnitune.errors import DataError, shorten

MAX_FIELD_CHARS = 1_000_000
MIN_SPLIT_SIZE = 10
log = logging.getLogger("omnitune")


@dataclass
class Splits:
    """A dataset's splits and its ``info`` (label names, vocabularies: saved in the artifact)."""

    train: Sequence[Any]
    validation: Sequence[Any] | None = None
    test: Sequence[Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def split_by_group(
    records: Sequence[Any],
    fractions: tuple[float, float, float],
    seed: int,
    group: Callable[[Any], str],
) -> tuple[list[Any], list[Any], list[Any]]:
    """Split into train/validation/test so that every group lands in exactly one split.

    Groups (a speaker, a user, a source) are shuffled with ``seed`` and handed out until each
    split holds about its fraction of the records, so no test record shares a group with training.
    """
    by_group: dict[str, list[Any]] = {}
    for record in records:
        by_group.setdefault(group(record), []).append(record)
    names = sorted(by_group, key=lambda name: _stable_hash(f"{seed}:{name}"))
    total = len(records)
    bounds = (round(fractions[0] * total), round((fractions[0] + fractions[1]) * total))
    splits: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    taken = 0
    for name in names:
        index = 0 if taken < bounds[0] else 1 if taken < bounds[1] else 2
        splits[index].extend(by_group[name])
        taken += len(by_group[name])
    return splits


def subsample(records: Sequence[Any], limit: int | None, seed: int) -> list[Any]:
    """At most ``limit`` records, drawn reproducibly (all of them, in order, without a limit)."""
    if limit is None or limit >= len(records):
        return list(records)
    chosen = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in chosen]


def read_table(
    path: Path,
    columns: Sequence[str],
    *,
    delimiter: str | None = None,
    header_name: Callable[[str], str] = str.strip,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, row)`` from a CSV, TSV or JSONL file that must hold ``columns``.

    The file type comes from the suffix unless ``delimiter`` is given; ``header_name`` maps each
    header cell to its column name (e.g. RecBole's ``user_id:token`` to ``user_id``). Row numbers
    count the file's lines from 1 (the header is line 1). Errors name the file, the row and the field.
    """
    check_readable_file(path)
    suffix = path.suffix.lower()
    try:
        if delimiter is not None or suffix in (".csv", ".tsv"):
            yield from _read_delimited(path, columns, delimiter or ("\t" if suffix == ".tsv" else ","),
                                       header_name)
        elif suffix in (".jsonl", ".json"):
            yield from _read_jsonl(path, columns)
        else:
            raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .tsv or .jsonl")
    except OSError as error:
        raise DataError(f"{path}: cannot be read: {error.strerror or error}") from error


def check_readable_file(path: Path) -> None:
    """A DataError saying why ``path`` is not a file omnitune can read, if it is not."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a data file")
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path}: is a symbolic link that leads nowhere (broken, or a loop)")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot be read (permission denied)")


def distinct_labels(labels: Iterable[str], where: str) -> list[str]:
    """The sorted distinct labels; fewer than two is a DataError naming ``where`` (the file and
    column), and labels that differ only in case (``pos``/``POS``) are named in a warning."""
    names = sorted(set(labels))
    if len(names) < 2:
        raise DataError(f"{where}: need at least two distinct labels, found {[shorten(n) for n in names]}")
    by_case: dict[str, list[str]] = {}
    for name in names:
        by_case.setdefault(name.casefold(), []).append(name)
    clashes = [group for group in by_case.values() if len(group) > 1]
    if clashes:
        log.warning("%s: labels %s differ only in case and are separate classes; make them alike "
                    "if they are one class", where, "; ".join(" / ".join(map(repr, g)) for g in clashes[:5]))
    return names


def warn_small_splits(splits: Splits, dataset: str) -> None:
    """Warn when a split is too small for its metrics to mean anything, or when there is none
    to evaluate on."""
    if not splits.validation and not splits.test:
        log.warning("dataset %r has no validation or test split: nothing will be evaluated", dataset)
    for name in ("train", "validation", "test"):
        rows = getattr(splits, name)
        if rows and len(rows) < MIN_SPLIT_SIZE:
            log.warning("dataset %r: the %s split has only %d example(s) (fewer than %d); its "
                        "metrics will be noise. Add data or change the split fractions",
                        dataset, name, len(rows), MIN_SPLIT_SIZE)


def _read_delimited(path: Path, columns: Sequence[str], delimiter: str,
                    header_name: Callable[[str], str]) -> Iterator[tuple[int, dict]]:
    csv.field_size_limit(MAX_FIELD_CHARS)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [header_name(name) for name in next(reader, [])]
            if not header:
                raise DataError(f"{path}: the file is empty; expected a header with {list(columns)}")
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(
                    f"{path}: missing column(s) {missing}; the header has {header}. "
                    "Set the dataset's column options to match."
                )
            for fields in reader:
                if not fields:
                    continue
                if len(fields) != len(header):
                    more = "more fields than the header: " if len(fields) > len(header) else ""
                    raise DataError(f"{path}, row {reader.line_num}: {more}expected {len(header)} fields "
                                    f"({', '.join(header)}), found {len(fields)}")
                yield reader.line_num, dict(zip(header, fields, strict=True))
        except UnicodeDecodeError as error:
            raise _not_utf8(path, error) from error
        except csv.Error as error:
            raise DataError(f"{path}, row {reader.line_num}: {error}") from error


def _read_jsonl(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8-sig") as handle:
        seen_any = False
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                seen_any = True
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"{path}, row {number}: not valid JSON ({error.msg})") from error
                if not isinstance(row, dict):
                    raise DataError(f"{path}, row {number}: expected a JSON object, got {type(row).__name__}")
                missing = [c for c in columns if c not in row]
                if missing:
                    raise DataError(f"{path}, row {number}: missing field(s) {missing}")
                _check_field_sizes(path, number, row)
                yield number, row
        except UnicodeDecodeError as error:
            raise _not_utf8(path, error) from error
    if not seen_any:
        raise DataError(f"{path}: the file is empty; expected one JSON object per line")


def _check_field_sizes(path: Path, number: int, row: dict[str, Any]) -> None:
    for name, value in row.items():
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            raise DataError(f"{path}, row {number}: field {shorten(name)} holds {len(value)} characters; "
                            f"the limit is {MAX_FIELD_CHARS}")


def _not_utf8(path: Path, error: UnicodeDecodeError) -> DataError:
    """A DataError naming the line that holds the first byte that is not UTF-8 (the decoder
    reads ahead in blocks, so the reader's own row count is not where the byte is)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                return DataError(f"{path}, line {number}: not UTF-8 text (byte {line[bad.start]:#04x} "
                                 f"at column {bad.start + 1}); save the file as UTF-8")
    return DataError(f"{path}: not UTF-8 text ({error.reason})")


def _stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
