"""The text-classification task: a text backbone, a head, cross-entropy (or BCE for multi-label)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omnitune.errors import ConfigError
from omnitune.task import StepOutput, Task
from omnitune_text.backbone import TextBackbone
from omnitune_text.plugin import TextClassificationConfig


class TextClassifier(nn.Module):
    """Backbone then head: token ids in, one logit per label out."""

    def __init__(self, backbone: TextBackbone, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(input_ids, attention_mask))


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
        self.labels: list[str] = list(data_info["labels"])
        self.label_index = {name: i for i, name in enumerate(self.labels)}
        self.tokenizer = backbone.tokenizer
        self.model = TextClassifier(backbone, head(backbone.num_features, len(self.labels)))

    def collate(self, examples: list[Any]) -> dict[str, torch.Tensor]:
        batch = self.encode_inputs([e.text for e in examples])
        if self.config.multi_label:
            targets = torch.zeros(len(examples), len(self.labels))
            for row, example in enumerate(examples):
                targets[row, [self.label_index[name] for name in example.label]] = 1.0
        else:
            targets = torch.tensor([self.label_index[e.label] for e in examples])
        return {**batch, "labels": targets}

    def encode_inputs(self, inputs: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer([str(text) for text in inputs], padding=True, truncation=True,
                                 max_length=self.config.max_length, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def num_items(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["labels"])

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        logits = model(batch["input_ids"], batch["attention_mask"]).float()
        if self.config.multi_label:
            return StepOutput(F.binary_cross_entropy_with_logits(logits, batch["labels"]), {"logits": logits})
        return StepOutput(F.cross_entropy(logits, batch["labels"]), {"logits": logits})

    def evaluation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = self.training_step(model, batch)
        scores, predictions = self._decide(out.outputs["logits"])
        targets = batch["labels"].long()
        return StepOutput(out.loss, {"scores": scores, "predictions": predictions, "targets": targets})

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        scores, predictions = self._decide(model(batch["input_ids"], batch["attention_mask"]).float())
        results = []
        for row_scores, row_prediction in zip(scores.tolist(), predictions.tolist(), strict=True):
            probabilities = dict(zip(self.labels, row_scores, strict=True))
            if self.config.multi_label:
                chosen = [name for name, on in zip(self.labels, row_prediction, strict=True) if on]
                results.append({"labels": chosen, "probabilities": probabilities})
            else:
                results.append({"label": self.labels[row_prediction], "probabilities": probabilities})
        return results

    def preprocessing(self) -> dict[str, Any]:
        return {"max_length": self.config.max_length, "tokenizer": type(self.tokenizer).__name__,
                "pooling": self.model.backbone.pooling, "labels": self.labels}

    def _decide(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.multi_label:
            scores = torch.sigmoid(logits)
            return scores, (scores >= self.config.threshold).long()
        scores = logits.softmax(dim=-1)
        return scores, scores.argmax(dim=-1)
