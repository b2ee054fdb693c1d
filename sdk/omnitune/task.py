"""The contract between a task and the loop: batches in, loss and outputs out, no device code."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class StepOutput:
    """What a step returns: the loss, and (in evaluation) detached outputs for metrics."""

    loss: torch.Tensor
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


class Task(abc.ABC):
    """A trainable task. ``model`` holds a ``backbone`` and a ``head`` submodule; the loop
    gives the backbone ``train.lr`` and the head ``train.head_lr``, and freezes the backbone
    for the freeze strategies."""

    model: nn.Module
    metrics: tuple[str, ...] = ()
    monitor: str = "loss"
    monitor_mode: str = "min"

    @abc.abstractmethod
    def collate(self, examples: list[Any]) -> dict[str, Any]:
        """Turn dataset examples into a batch of CPU tensors (runs in DataLoader workers)."""

    @abc.abstractmethod
    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> StepOutput:
        """Forward ``batch`` through ``model`` (possibly wrapped by DDP); return the mean loss."""

    def evaluation_step(self, model: nn.Module, batch: dict[str, Any]) -> StepOutput:
        """Like ``training_step``, with the outputs the metrics need."""
        return self.training_step(model, batch)

    def setup_training(self, data_info: dict[str, Any]) -> None:  # noqa: B027 (optional to override)
        """Called by the loop before training starts (fresh or resumed), and by ``evaluate`` of an
        artifact, with the training dataset's info: what only a loss needs from the training split
        (class weights from its label counts) is computed here, never when a task is built to
        predict. Does nothing by default."""

    def num_items(self, batch: dict[str, Any]) -> int:
        """How many items the batch's mean loss averages over (samples by default)."""
        return len(next(iter(batch.values())))

    def num_examples(self, batch: dict[str, Any]) -> int:
        """How many examples the batch holds (what ``samples_per_s`` counts); ``num_items`` by
        default, for tasks whose loss averages over something else (tokens, frames) to override."""
        return self.num_items(batch)

    @abc.abstractmethod
    def encode_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        """Turn raw user inputs (strings, file paths, ids) into a batch, for prediction."""

    def model_inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """What of an ``encode_inputs`` batch the model takes, in its forward's order (by default
        all of it; a task may add keys for ``predict_step`` alone, such as a truncation flag)."""
        return batch

    @abc.abstractmethod
    def predict_step(self, model: nn.Module, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Predictions for an encoded batch, one JSON-able dict per input."""

    def preprocessing(self) -> dict[str, Any]:
        """Preprocessing settings saved in the artifact (JSON-able)."""
        return {}
