"""Torch-free side of the tabular task: parsing a row of features, and the bundle's processor."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnitune.errors import DataError
from omnitune.serving.processor import ClassificationProcessor


def feature_values(raw: Any, features: list[str]) -> list[float]:
    """A mapping of feature name to value, a sequence of values in feature order, or a string
    holding either (a JSON object, or comma-separated numbers) -> the values in feature order."""
    if isinstance(raw, str):
        text = raw.strip()
        try:
            raw = json.loads(text) if text.startswith("{") else [float(v) for v in text.split(",")]
        except ValueError as error:
            raise DataError(f"input {text!r}: expected a JSON object or numbers and commas") from error
    if isinstance(raw, Mapping):
        missing = [name for name in features if name not in raw]
        if missing:
            raise DataError(f"input {raw!r} lacks feature(s) {missing}")
        raw = [raw[name] for name in features]
    if not isinstance(raw, Sequence) or len(raw) != len(features):
        raise DataError(f"input {raw!r}: expected {len(features)} values for {features}")
    try:
        return [float(value) for value in raw]
    except (TypeError, ValueError) as error:
        raise DataError(f"input {raw!r}: expected numbers for {features}") from error


class TabularProcessor(ClassificationProcessor):
    """Rows in (the standardization is inside the graph); ``label`` and ``probabilities`` out."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        super().__init__(directory, preprocessing)
        self.features: list[str] = list(preprocessing["features"])

    def encode(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        rows = [feature_values(raw, self.features) for raw in inputs]
        return {"features": np.array(rows, dtype=np.float32)}
