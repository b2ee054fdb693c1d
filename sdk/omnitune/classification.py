"""What classification tasks share: the label set, backbone-then-head, and softmax decisions.

Tasks compose these pieces (as llm's default plugins share ``SharedOptions``) instead of
inheriting from a classification base class. Training steps put their logits in
``StepOutput.outputs["logits"]``, so a loss term (distillation, say) can read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnitune.errors import DataError
from omnitune.task import StepOutput


class BackboneHead(nn.Module):
    """An optional stem, the backbone, then the head: the model's inputs in, one logit per label out.

    The loop trains the ``backbone`` at ``train.lr`` and everything else at ``train.head_lr``.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, stem: nn.Module | None = None) -> None:
        super().__init__()
        self.stem = stem
        self.backbone = backbone
        self.head = head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            inputs = (self.stem(*inputs),)
        return self.head(self.backbone(*inputs))


class LabelSet:
    """The dataset's labels in their fixed order: names to indices, and logits back to names."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: list[str] = list(names)
        self._index = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def index(self, name: str, where: str) -> int:
        """The index of label ``name``; ``where`` names the example in the error."""
        try:
            return self._index[name]
        except KeyError:
            raise DataError(f"{where}: label {name!r} is not one the model knows; "
                            f"expected one of {self.names}") from None

    def indices(self, names: Sequence[str], where: Sequence[str]) -> torch.Tensor:
        """One label index per example."""
        return torch.tensor([self.index(name, place) for name, place in zip(names, where, strict=True)])

    def multi_hot(self, rows: Sequence[Sequence[str]], where: Sequence[str]) -> torch.Tensor:
        """One row per example with 1.0 at each of its labels."""
        targets = torch.zeros(len(rows), len(self.names))
        for row, (names, place) in enumerate(zip(rows, where, strict=True)):
            targets[row, [self.index(name, place) for name in names]] = 1.0
        return targets

    def predictions(self, scores: torch.Tensor) -> list[dict[str, Any]]:
        """Per row of class probabilities: the most likely label and every label's probability."""
        return [{"label": self.names[int(row.argmax())],
                 "probabilities": dict(zip(self.names, row.tolist(), strict=True))} for row in scores]


def cross_entropy_step(logits: torch.Tensor, targets: torch.Tensor,
                       label_smoothing: float = 0.0) -> StepOutput:
    """The single-label training step's result: cross-entropy, with the logits kept in the outputs."""
    logits = logits.float()
    return StepOutput(F.cross_entropy(logits, targets, label_smoothing=label_smoothing), {"logits": logits})


def softmax_evaluation(loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> StepOutput:
    """The single-label evaluation step's result: softmax scores, argmax predictions and targets."""
    scores = logits.float().softmax(dim=-1)
    return StepOutput(loss, {"scores": scores, "predictions": scores.argmax(dim=-1), "targets": targets})
