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
    """Tokenizes as the PyTorch task does: special tokens, truncation to ``max_length``, padding
    (in numpy) to the longest text of the batch on the tokenizer's padding side; with ``chunking``
    settings, a long text becomes its first ``max_chunks`` overflowing chunks (``stride`` tokens shared) and a
    (texts, chunks) ``members`` matrix says which text each chunk belongs to."""

    def __init__(self, directory: Path, settings: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        self.chunking: dict[str, int] | None = settings.get("chunking")
        self.pad_id, self.left = int(settings["pad_id"]), settings.get("padding_side", "right") == "left"
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        stride = int(self.chunking["stride"]) if self.chunking else 0
        self.tokenizer.enable_truncation(int(settings["max_length"]), stride=stride)
        self.tokenizer.no_padding()

    def __call__(self, texts: Sequence[Any]) -> Feeds:
        return self.feeds(self.encode(texts))

    def encode(self, texts: Sequence[Any]) -> list[Any]:
        """Each text's ``tokenizers`` encoding, unpadded; its chunks beyond the first (when
        chunking) in ``overflowing``."""
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"inputs[{index}]: expected a text string, got {type(text).__name__}")
        return self.tokenizer.encode_batch(list(texts))

    def ids(self, texts: Sequence[Any]) -> list[list[int]]:
        """Each text's token ids (its first chunk's), unpadded."""
        return [encoding.ids for encoding in self.encode(texts)]

    def cuts(self, encodings: Sequence[Any]) -> list[bool]:
        """Per text, whether some of it was cut (beyond ``max_chunks``, or ``max_length``)."""
        kept = int(self.chunking["max_chunks"]) if self.chunking else 1
        return [len(e.overflowing) + 1 > kept for e in encodings]

    def feeds(self, encodings: Sequence[Any]) -> Feeds:
        """The graph's inputs: padded ids and mask, and ``members`` (text x chunk) when chunking."""
        if self.chunking is None:
            return self.pad([e.ids for e in encodings])
        limit = int(self.chunking["max_chunks"])
        chunks = [(text, chunk) for text, e in enumerate(encodings) for chunk in [e, *e.overflowing][:limit]]
        feeds = self.pad([[i for i, m in zip(c.ids, c.attention_mask, strict=True) if m] for _, c in chunks])
        owners = np.array([text for text, _ in chunks])
        members = (owners[None, :] == np.arange(len(encodings))[:, None]).astype(np.int64)
        return feeds | {"members": members}

    def pad(self, rows: Sequence[list[int]]) -> Feeds:
        """Token id rows padded to the longest, with their attention mask."""
        width = max(len(row) for row in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for index, row in enumerate(rows):
            place = slice(width - len(row), width) if self.left else slice(0, len(row))
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
        """As the PyTorch task, each prediction saying whether its text was ``truncated``; the
        texts run in groups of similar length and come back in input order."""
        encodings = self.tokenize.encode(inputs)
        cuts = self.tokenize.cuts(encodings)
        lengths = [sum(len(e.ids) for e in [encoding, *encoding.overflowing]) for encoding in encodings]
        results: list[dict[str, Any]] = [{} for _ in encodings]
        for group in length_groups(lengths):
            scores = run(self.tokenize.feeds([encodings[index] for index in group]))["scores"]
            for index, prediction in zip(group, self.decide(scores), strict=True):
                results[index] = prediction | {"truncated": cuts[index]}
        return results
