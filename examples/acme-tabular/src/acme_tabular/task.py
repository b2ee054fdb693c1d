"""The tabular-classification task: standardized features -> stem -> backbone -> head."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from acme_tabular.data import Row
from acme_tabular.hooks import TabularClassificationConfig
from acme_tabular.serving import feature_values
from omnitune import StepOutput, Task
from omnitune.errors import ConfigError


class TabularClassifier(nn.Module):
    """A linear stem to the backbone's width, the backbone, then the head."""

    def __init__(self, in_features: int, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Linear(in_features, backbone.in_features)
        self.backbone = backbone
        self.head = head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.stem(features)))


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
        self.labels: list[str] = list(data_info["labels"])
        self.features: list[str] = list(data_info["features"])
        self.mean = torch.tensor(data_info["mean"]) if config.standardize else torch.zeros(len(self.features))
        self.std = torch.tensor(data_info["std"]) if config.standardize else torch.ones(len(self.features))
        self.model = TabularClassifier(len(self.features), backbone,
                                       head(backbone.num_features, len(self.labels)))

    def collate(self, examples: list[Row]) -> dict[str, torch.Tensor]:
        features = self._scale(torch.tensor([row.features for row in examples]))
        labels = torch.tensor([self.labels.index(row.label) for row in examples])
        return {"features": features, "labels": labels}

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        logits = model(batch["features"]).float()
        return StepOutput(F.cross_entropy(logits, batch["labels"]), {"logits": logits})

    def evaluation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = self.training_step(model, batch)
        scores = out.outputs["logits"].softmax(dim=-1)
        return StepOutput(out.loss, {"scores": scores, "predictions": scores.argmax(dim=-1),
                                     "targets": batch["labels"]})

    def encode_inputs(self, inputs: list[Any]) -> dict[str, torch.Tensor]:
        """Each input is a mapping of feature name to value, a sequence of values in feature
        order, or a string holding either (a JSON object, or comma-separated numbers)."""
        return {"features": self._scale(torch.tensor([self.values(raw) for raw in inputs]))}

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        scores = model(batch["features"]).float().softmax(dim=-1)
        return [{"label": self.labels[int(row.argmax())],
                 "probabilities": dict(zip(self.labels, row.tolist(), strict=True))} for row in scores]

    def preprocessing(self) -> dict[str, Any]:
        return {"features": self.features, "mean": self.mean.tolist(), "std": self.std.tolist()}

    def _scale(self, features: torch.Tensor) -> torch.Tensor:
        return (features.float() - self.mean) / self.std

    def values(self, raw: Any) -> list[float]:
        """One input's feature values in feature order (see ``encode_inputs``)."""
        return feature_values(raw, self.features)
