"""Torch-free text preprocessing for an exported bundle: the ``tokenizers`` library only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnitune.errors import DataError
from omnitune.serving.processor import ClassificationProcessor, Feeds

TOKENIZER_FILE = "tokenizer.json"


class Tokenize:
    """Tokenizes as the PyTorch task does: special tokens, truncation to ``max_length``, padding to
    the longest text of the batch on the tokenizer's side."""

    def __init__(self, directory: Path, settings: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(int(settings["max_length"]))
        self.tokenizer.enable_padding(pad_id=int(settings["pad_id"]), pad_token=str(settings["pad_token"]),
                                      direction=str(settings.get("padding_side", "right")))

    def __call__(self, texts: Sequence[Any]) -> Feeds:
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"inputs[{index}]: expected a text string, got {type(text).__name__}")
        encodings = self.tokenizer.encode_batch(list(texts))
        return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}


class TextClassificationProcessor(ClassificationProcessor):
    """Texts in; ``label`` (or ``labels``) and ``probabilities`` out."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        super().__init__(directory, preprocessing)
        self.tokenize = Tokenize(directory, preprocessing)

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        return self.tokenize(inputs)
