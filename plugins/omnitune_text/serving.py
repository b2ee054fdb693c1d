"""Torch-free text preprocessing for an exported bundle: the ``tokenizers`` library only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnitune.errors import DataError
from omnitune.serving.processor import ClassificationProcessor, Feeds, RunGraph

TOKENIZER_FILE = "tokenizer.json"


class Tokenize:
    """Tokenizes as the PyTorch task does: special tokens, truncation to ``max_length``, padding to
    the longest text of the batch on the tokenizer's side."""

    def __init__(self, directory: Path, settings: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(int(settings["max_length"]))
        self.tokenizer.no_padding()
        self.pad_id = int(settings["pad_id"])
        self.pad_left = settings.get("padding_side", "right") == "left"

    def __call__(self, texts: Sequence[Any]) -> Feeds:
        return self.pad(self.ids(texts))

    def ids(self, texts: Sequence[Any]) -> list[list[int]]:
        """Each text's token ids, unpadded."""
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"inputs[{index}]: expected a text string, got {type(text).__name__}")
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    def pad(self, rows: Sequence[list[int]]) -> Feeds:
        """Token id rows padded to the longest, with their attention mask."""
        width = max(len(row) for row in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for index, row in enumerate(rows):
            place = slice(width - len(row), width) if self.pad_left else slice(0, len(row))
            ids[index, place], mask[index, place] = row, 1
        return {"input_ids": ids, "attention_mask": mask}


def length_groups(lengths: Sequence[int], max_ratio: float = 1.5) -> list[list[int]]:
    """Input indices grouped by length so that padding stays small: sorted by length, a group
    ends where the next input is more than ``max_ratio`` times its shortest. A batch of short and
    long texts padded to the longest would spend most of its work on padding."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    groups: list[list[int]] = []
    for index in order:
        if groups and lengths[index] <= max_ratio * lengths[groups[-1][0]]:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


class TextClassificationProcessor(ClassificationProcessor):
    """Texts in; ``label`` (or ``labels``) and ``probabilities`` out. A batch runs in groups of
    similar length (``length_groups``); the predictions come back in input order."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        super().__init__(directory, preprocessing)
        self.tokenize = Tokenize(directory, preprocessing)

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        return self.tokenize(inputs)

    def predict(self, run: RunGraph, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        rows = self.tokenize.ids(inputs)
        results: list[dict[str, Any]] = [{} for _ in rows]
        for group in length_groups([len(row) for row in rows]):
            scores = run(self.tokenize.pad([rows[index] for index in group]))["scores"]
            for index, prediction in zip(group, self.decide(scores), strict=True):
                results[index] = prediction
        return results
