"""The tabular-classification task: standardized features -> stem -> backbone -> head."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from acme_tabular.data import Row
from acme_tabular.hooks import TabularClassificationConfig
from acme_tabular.serving import feature_values
from omnitune import StepOutput, Task
from omnitune.classification import BackboneHead, LabelSet, cross_entropy_step, softmax_evaluation
from omnitune.errors import ConfigError


class TabularClassification(Task):
    """Softmax classification of rows of numeric features."""

    metrics = ("accuracy", "macro_f1")
    monitor = "accuracy"
    monitor_mode = "max"

    def __init__(self, config: TabularClassificationConfig, *, backbone: nn.Module,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        if not hasattr(backbone, "in_features"):
            raise ConfigError("tabular-classification needs a backbone with in_features "
                              f"(tabular-mlp), got {type(backbone).__name__}")
        self.labels = LabelSet(data_info["labels"])
        self.features: list[str] = list(data_info["features"])
        self.mean = torch.tensor(data_info["mean"]) if config.standardize else torch.zeros(len(self.features))
        self.std = torch.tensor(data_info["std"]) if config.standardize else torch.ones(len(self.features))
        stem = nn.Linear(len(self.features), backbone.in_features)  # to the backbone's width
        self.model = BackboneHead(backbone, head(backbone.num_features, len(self.labels)), stem)

    def collate(self, examples: list[Row]) -> dict[str, torch.Tensor]:
        features = self._scale(torch.tensor([row.features for row in examples]))
        where = [f"row {row.number}" for row in examples]
        labels = self.labels.indices([row.label for row in examples], where)
        return {"features": features, "labels": labels}

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        return cross_entropy_step(model(batch["features"]), batch["labels"])

    def evaluation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = self.training_step(model, batch)
        return softmax_evaluation(out.loss, out.outputs["logits"], batch["labels"])

    def encode_inputs(self, inputs: list[Any]) -> dict[str, torch.Tensor]:
        """Each input is a mapping of feature name to value, a sequence of values in feature
        order, or a string holding either (a JSON object, or comma-separated numbers)."""
        return {"features": self._scale(torch.tensor([self.values(raw) for raw in inputs]))}

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        return self.labels.predictions(model(batch["features"]).float().softmax(dim=-1))

    def preprocessing(self) -> dict[str, Any]:
        return {"features": self.features, "mean": self.mean.tolist(), "std": self.std.tolist()}

    def _scale(self, features: torch.Tensor) -> torch.Tensor:
        return (features.float() - self.mean) / self.std

    def values(self, raw: Any) -> list[float]:
        """One input's feature values in feature order (see ``encode_inputs``)."""
        return feature_values(raw, self.features)
