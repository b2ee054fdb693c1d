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
    the longest text of the batch on the tokenizer's side; with ``chunking`` settings, a long text
    becomes its first ``max_chunks`` overflowing chunks (``stride`` tokens shared) and a
    (texts, chunks) ``members`` matrix says which text each chunk belongs to."""

    def __init__(self, directory: Path, settings: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        self.chunking: dict[str, int] | None = settings.get("chunking")
        self.pad_id, self.left = int(settings["pad_id"]), settings.get("padding_side", "right") == "left"
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        stride = int(self.chunking["stride"]) if self.chunking else 0
        self.tokenizer.enable_truncation(int(settings["max_length"]), stride=stride)
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=str(settings["pad_token"]),
                                      direction=str(settings.get("padding_side", "right")))

    def __call__(self, texts: Sequence[Any]) -> Feeds:
        return self.with_cuts(texts)[0]

    def with_cuts(self, texts: Sequence[Any]) -> tuple[Feeds, list[bool]]:
        """The graph's inputs, and per text whether some of it was cut (beyond ``max_chunks``)."""
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"inputs[{index}]: expected a text string, got {type(text).__name__}")
        encodings = self.tokenizer.encode_batch(list(texts))
        kept = int(self.chunking["max_chunks"]) if self.chunking else 1
        cuts = [len(e.overflowing) + 1 > kept for e in encodings]
        if self.chunking is None:
            return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}, cuts
        return self._chunks(encodings), cuts

    def _chunks(self, encodings: list[Any]) -> Feeds:
        limit = int(self.chunking["max_chunks"])
        chunks = [(text, chunk) for text, e in enumerate(encodings) for chunk in [e, *e.overflowing][:limit]]
        rows = [[i for i, m in zip(c.ids, c.attention_mask, strict=True) if m] for _, c in chunks]
        width = max(len(row) for row in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for index, row in enumerate(rows):
            place = slice(width - len(row), width) if self.left else slice(0, len(row))
            ids[index, place], mask[index, place] = row, 1
        owners = np.array([text for text, _ in chunks])
        members = (owners[None, :] == np.arange(len(encodings))[:, None]).astype(np.int64)
        return {"input_ids": ids, "attention_mask": mask, "members": members}


class TextClassificationProcessor(ClassificationProcessor):
    """Texts in; ``label`` (or ``labels``) and ``probabilities`` out."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        super().__init__(directory, preprocessing)
        self.tokenize = Tokenize(directory, preprocessing)

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        return self.tokenize(inputs)

    def predict(self, run: RunGraph, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """As the PyTorch task: each prediction says whether its text was ``truncated``."""
        feeds, cuts = self.tokenize.with_cuts(inputs)
        decided = self.decide(run(feeds)["scores"])
        return [result | {"truncated": cut} for result, cut in zip(decided, cuts, strict=True)]
