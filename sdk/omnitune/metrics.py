"""Generic classification metrics over concatenated evaluation outputs.

Each metric reads ``predictions`` (class indices, or multi-hot rows for multi-label), ``targets``
(same shape) and, for top-k, ``scores`` (one column per class).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Outputs = dict[str, torch.Tensor]
Metric = Callable[[Outputs], float]
"""A metric function: concatenated evaluation outputs in, one number out."""


def accuracy(_config: object) -> Callable[[Outputs], float]:
    """Share of exact matches (for multi-label: every label right)."""

    def compute(outputs: Outputs) -> float:
        correct = outputs["predictions"] == outputs["targets"]
        if correct.ndim > 1:
            correct = correct.all(dim=1)
        return correct.float().mean().item()

    return compute


def macro_f1(_config: object) -> Callable[[Outputs], float]:
    """F1 per class, averaged with equal weight over the classes."""

    def compute(outputs: Outputs) -> float:
        predicted, target = _as_multi_hot(outputs)
        true_positive = (predicted & target).sum(0).float()
        denominator = predicted.sum(0).float() + target.sum(0).float()
        f1 = torch.where(denominator > 0, 2 * true_positive / denominator.clamp(min=1), 0.0)
        present = denominator > 0
        return f1[present].mean().item() if present.any() else 0.0

    return compute


def top5_accuracy(_config: object) -> Callable[[Outputs], float]:
    """Share of examples whose target is among the five highest scores."""

    def compute(outputs: Outputs) -> float:
        scores = outputs["scores"]
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices
        return (top == outputs["targets"].unsqueeze(1)).any(dim=1).float().mean().item()

    return compute


def _as_multi_hot(outputs: Outputs) -> tuple[torch.Tensor, torch.Tensor]:
    predicted, target = outputs["predictions"], outputs["targets"]
    if predicted.ndim > 1:
        return predicted.bool(), target.bool()
    classes = outputs["scores"].shape[1]
    eye = torch.eye(classes, dtype=torch.bool)
    return eye[predicted], eye[target]
