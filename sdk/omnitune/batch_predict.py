"""``omnitune predict MODEL --input FILE_OR_FOLDER --output preds.jsonl``: batched prediction over
CSV/JSONL rows or a folder of files, one output line per input in input order, bad inputs
reported by row or path (skipped or fatal), resumable: a rerun appends only what is missing."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from omnitune.errors import DataError, OmnituneError

log = logging.getLogger("omnitune")
FILE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                           ".wav", ".flac", ".ogg"})


@dataclass(frozen=True)
class Item:
    """One input and where it came from (``row 3`` of a file, or a path in a folder)."""

    id: str
    value: Any


def read_items(source: Path, column: str | None) -> list[Item]:
    """Inputs of a CSV/TSV (``column``, default the first), a JSONL file (a JSON value per line,
    or an object whose ``column`` is taken), a plain text file (a line each), or a folder (its
    image and audio files, sorted by relative path)."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in FILE_SUFFIXES)
        if not files:
            raise DataError(f"{source}: no image or audio files ({', '.join(sorted(FILE_SUFFIXES))})")
        return [Item(str(p.relative_to(source)), str(p)) for p in files]
    if not source.is_file():
        raise DataError(f"--input {source}: no such file or folder")
    suffix = source.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return list(_csv_items(source, column, "\t" if suffix == ".tsv" else ","))
    if suffix == ".jsonl":
        return list(_jsonl_items(source, column))
    lines = source.read_text(encoding="utf-8").splitlines()
    return [Item(f"line {n}", line) for n, line in enumerate(lines, start=1) if line.strip()]


def _csv_items(path: Path, column: str | None, delimiter: str) -> Iterator[Item]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = reader.fieldnames or []
        name = column or (header[0] if header else None)
        if name not in header:
            raise DataError(f"{path}: no column {name!r}; the header has {header} (choose with --column)")
        for row in reader:
            yield Item(f"row {reader.line_num - 1}", row[name])


def _jsonl_items(path: Path, column: str | None) -> Iterator[Item]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}, line {number}: not JSON ({error})") from None
            if column is not None:
                if not isinstance(value, dict) or column not in value:
                    raise DataError(f"{path}, line {number}: expected an object with key {column!r}")
                value = value[column]
            yield Item(f"line {number}", value)


def done_ids(output: Path) -> list[str]:
    """Ids already written to ``output``; a torn last line (a killed run) is cut off."""
    if not output.is_file():
        return []
    text = output.read_text(encoding="utf-8")
    complete = text[:text.rfind("\n") + 1]
    if len(complete) < len(text):
        output.write_text(complete, encoding="utf-8")
    return [json.loads(line)["id"] for line in complete.splitlines() if line.strip()]


def predict_file(model: Any, source: Path, output: Path, *, column: str | None = None, batch_size: int = 32,
                 bad_inputs: Literal["error", "skip"] = "error", progress: bool = True) -> dict[str, int]:
    """Predict every input of ``source`` into ``output`` (JSONL), appending after what is there."""
    items = read_items(source, column)
    done = done_ids(output)
    if done != [item.id for item in items[:len(done)]]:
        raise DataError(f"{output} holds predictions of other inputs than {source}; choose another "
                        "--output or delete it")
    todo = items[len(done):]
    counts = {"inputs": len(items), "already_done": len(done), "predicted": 0, "bad": 0}
    with open(output, "a", encoding="utf-8") as handle, tqdm(total=len(todo), disable=not progress,
                                                             unit="input") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            for line in _predict_batch(model, batch, bad_inputs):
                counts["bad" if "error" in line else "predicted"] += 1
                handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            bar.update(len(batch))
    return counts


def _predict_batch(model: Any, batch: list[Item], bad_inputs: str) -> list[dict[str, Any]]:
    """Predict a batch; when it fails, each input alone, to report or skip only the bad ones."""
    try:
        predictions = model.predict([item.value for item in batch])
    except OmnituneError as error:
        if len(batch) > 1:
            return [line for item in batch for line in _predict_batch(model, [item], bad_inputs)]
        if bad_inputs == "error":
            raise DataError(f"{batch[0].id}: {error} (--bad-inputs skip skips it)") from error
        log.warning("skipping %s: %s", batch[0].id, error)
        return [{"id": batch[0].id, "input": batch[0].value, "error": str(error)}]
    return [{"id": item.id, "input": item.value, **p} for item, p in zip(batch, predictions, strict=True)]
