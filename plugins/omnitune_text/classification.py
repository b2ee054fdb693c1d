"""The text-classification task: a text backbone, a head, cross-entropy (or BCE for multi-label)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnitune.classification import BackboneHead, LabelSet, cross_entropy_step, softmax_evaluation
from omnitune.errors import ConfigError
from omnitune.task import StepOutput, Task
from omnitune_text.backbone import TextBackbone
from omnitune_text.plugin import TextClassificationConfig


class TextClassification(Task):
    """Single-label (softmax) or multi-label (sigmoid) classification of texts."""

    metrics = ("accuracy", "macro_f1")
    monitor = "accuracy"
    monitor_mode = "max"
    input_kind = "text"  # Predictor.predict takes strings only

    def __init__(self, config: TextClassificationConfig, *, backbone: TextBackbone,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        if not isinstance(backbone, TextBackbone):
            raise ConfigError("text-classification needs a text backbone (transformers, minilm-l6), "
                              f"got {type(backbone).__name__}")
        limit = backbone.max_tokens
        if limit is not None and config.max_length > limit:
            raise ConfigError(f"task.max_length: {config.max_length} is beyond this backbone's "
                              f"{limit} positions; set task.max_length <= {limit}")
        if bool(data_info.get("multi_label")) != config.multi_label:
            raise ConfigError(
                f"task.multi_label is {config.multi_label} but the dataset's labels are "
                f"{'multi' if data_info.get('multi_label') else 'single'}-label; set both alike "
                "(dataset.label_separator makes a dataset multi-label)"
            )
        self.config = config
        self.labels = LabelSet(data_info["labels"])
        self.tokenizer = backbone.tokenizer
        self.model = BackboneHead(backbone, head(backbone.num_features, len(self.labels)))

    def collate(self, examples: list[Any]) -> dict[str, torch.Tensor]:
        batch = self.encode_inputs([e.text for e in examples])
        where = [f"text {e.text[:40]!r}" for e in examples]
        if self.config.multi_label:
            return {**batch, "labels": self.labels.multi_hot([e.label for e in examples], where)}
        return {**batch, "labels": self.labels.indices([e.label for e in examples], where)}

    def encode_inputs(self, inputs: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer([str(text) for text in inputs], padding=True, truncation=True,
                                 max_length=self.config.max_length, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def num_items(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["labels"])

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        logits = model(batch["input_ids"], batch["attention_mask"]).float()
        if not self.config.multi_label:
            return cross_entropy_step(logits, batch["labels"])
        return StepOutput(F.binary_cross_entropy_with_logits(logits, batch["labels"]), {"logits": logits})

    def evaluation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = self.training_step(model, batch)
        if not self.config.multi_label:
            return softmax_evaluation(out.loss, out.outputs["logits"], batch["labels"])
        scores = torch.sigmoid(out.outputs["logits"])
        return StepOutput(out.loss, {"scores": scores, "predictions": self._chosen(scores),
                                     "targets": batch["labels"].long()})

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        logits = model(batch["input_ids"], batch["attention_mask"]).float()
        if not self.config.multi_label:
            return self.labels.predictions(logits.softmax(dim=-1))
        scores = torch.sigmoid(logits)
        return [{"labels": [name for name, on in zip(self.labels, row, strict=True) if on],
                 "probabilities": dict(zip(self.labels, row_scores, strict=True))}
                for row_scores, row in zip(scores.tolist(), self._chosen(scores).tolist(), strict=True)]

    def preprocessing(self) -> dict[str, Any]:
        return {"max_length": self.config.max_length, "tokenizer": type(self.tokenizer).__name__,
                "pooling": self.model.backbone.pooling, "labels": self.labels.names}

    def _chosen(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores >= self.config.threshold).long()
