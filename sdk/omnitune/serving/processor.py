"""What a bundle's processor does: raw inputs -> model feeds, and model outputs -> prediction dicts.

A task's processor is named in the bundle's manifest (``"module:Class"``) and lives in a module
that imports no torch, so the bundle runs where only onnxruntime is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

Feeds = dict[str, np.ndarray]
RunGraph = Callable[[Feeds], dict[str, np.ndarray]]


class Processor(Protocol):
    """Built as ``Processor(directory, preprocessing)`` from the bundle folder and the manifest's
    ``preprocessing``; raises ``omnitune.errors.DataError`` naming ``inputs[i]`` for a bad input."""

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        """Raw inputs -> the graph's named input arrays (also used for int8 calibration)."""

    def predict(self, run: RunGraph, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """One prediction dict per input, the same dicts the PyTorch ``Predictor`` returns."""


class ClassificationProcessor:
    """Shared by the classification tasks: the graph outputs ``scores`` (softmax or sigmoid)."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        self.labels: list[str] = list(preprocessing["labels"])
        self.multi_label: bool = bool(preprocessing.get("multi_label", False))
        self.threshold: float = float(preprocessing.get("threshold", 0.5))

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        raise NotImplementedError

    def predict(self, run: RunGraph, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        return self.decide(run(self.encode(inputs))["scores"])

    def decide(self, scores: np.ndarray) -> list[dict[str, Any]]:
        """Label (argmax) or labels (over the threshold) and every label's probability."""
        results = []
        for row in scores.astype(np.float32).tolist():
            probabilities = dict(zip(self.labels, row, strict=True))
            if self.multi_label:
                chosen = [name for name, score in probabilities.items() if score >= self.threshold]
                results.append({"labels": chosen, "probabilities": probabilities})
            else:
                results.append({"label": self.labels[int(np.argmax(row))], "probabilities": probabilities})
        return results
