"""The text-classification task: a text backbone, a head, cross-entropy (or BCE for multi-label).

Texts longer than ``max_length`` are read as overlapping chunks whose vectors are pooled per
text (``task.chunking``); what is still cut is counted (``truncated_fraction``, and
``truncated`` in each prediction).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from omnitune.classification import (
    BackboneHead,
    ChunkedBackboneHead,
    LabelSet,
    TrainingLabels,
    binary_cross_entropy_step,
    cross_entropy_step,
    softmax_evaluation,
)
from omnitune.errors import ConfigError
from omnitune.task import StepOutput, Task
from omnitune_text.backbone import TextBackbone
from omnitune_text.chunks import TextChunker
from omnitune_text.plugin import TextClassificationConfig
from omnitune_text.truncation import TruncationReport


class TextClassification(Task):
    """Single-label (softmax) or multi-label (sigmoid) classification of texts of any length."""

    metrics = ("accuracy", "macro_f1", "truncated_fraction")
    monitor = "accuracy"
    monitor_mode = "max"
    input_kind = "text"  # Predictor.predict takes strings only

    def __init__(self, config: TextClassificationConfig, *, backbone: TextBackbone,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        _check(config, backbone, data_info)
        self.config = config
        self.label_set = LabelSet(data_info["labels"])
        self.labels: list[str] = self.label_set.names
        self.tokenizer = backbone.tokenizer
        self.chunker = TextChunker(backbone.tokenizer, config.max_length, config.chunking)
        self.truncation = TruncationReport("text-classification", _cut_how(config))
        training = TrainingLabels.of(data_info)
        self.monitor, self.monitor_reason = training.monitor()
        self.loss_weights: torch.Tensor | None = None  # set by setup_training
        classifier = head(backbone.num_features, len(self.labels))
        chunking, features = config.chunking, backbone.num_features
        self.model = (BackboneHead(backbone, classifier) if chunking is None else
                      ChunkedBackboneHead(backbone, classifier, chunking.pooling, features))

    def setup_training(self, data_info: dict[str, Any]) -> None:
        """Class weights (``task.class_weights``) from the training split's label counts."""
        config = self.config
        self.loss_weights = TrainingLabels.of(data_info).loss_weights(config.class_weights, self.label_set,
                                                                      config.multi_label)

    def collate(self, examples: list[Any]) -> dict[str, torch.Tensor]:
        batch = self.encode_inputs([e.text for e in examples])
        self.truncation.add(int(batch["truncated"].sum()), len(examples))
        where = [f"text {e.text[:40]!r}" for e in examples]
        if self.config.multi_label:
            return {**batch, "labels": self.label_set.multi_hot([e.label for e in examples], where)}
        return {**batch, "labels": self.label_set.indices([e.label for e in examples], where)}

    def encode_inputs(self, inputs: list[str]) -> dict[str, torch.Tensor]:
        """Chunks (``input_ids``, ``attention_mask``, ``members`` when chunked) and ``truncated``."""
        return self.chunker([str(text) for text in inputs])

    def model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: batch[key] for key in ("input_ids", "attention_mask", "members") if key in batch}

    def num_items(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["labels"])

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        logits = self._logits(model, batch)
        if not self.config.multi_label:
            return cross_entropy_step(logits, batch["labels"], weight=self.loss_weights)
        return binary_cross_entropy_step(logits, batch["labels"], pos_weight=self.loss_weights)

    def evaluation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = self.training_step(model, batch)
        if not self.config.multi_label:
            result = softmax_evaluation(out.loss, out.outputs["logits"], batch["labels"])
        else:
            scores = torch.sigmoid(out.outputs["logits"])
            result = StepOutput(out.loss, {"scores": scores, "predictions": self._chosen(scores),
                                           "targets": batch["labels"].long()})
        result.outputs["truncated"] = batch["truncated"]
        return result

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        logits = self._logits(model, batch)
        cut = [bool(flag) for flag in batch["truncated"].tolist()]
        if not self.config.multi_label:
            predictions = self.label_set.predictions(logits.softmax(dim=-1))
        else:
            scores = torch.sigmoid(logits)
            predictions = [{"labels": [name for name, on in zip(self.labels, row, strict=True) if on],
                            "probabilities": dict(zip(self.labels, row_scores, strict=True))}
                           for row_scores, row in zip(scores.tolist(), self._chosen(scores).tolist(),
                                                      strict=True)]
        return [prediction | {"truncated": flag} for prediction, flag in zip(predictions, cut, strict=True)]

    def preprocessing(self) -> dict[str, Any]:
        chunking = self.config.chunking
        chunks = None if chunking is None else chunking.model_dump() | {"stride": self.chunker.stride}
        return {"max_length": self.config.max_length, "tokenizer": type(self.tokenizer).__name__,
                "pooling": self.model.backbone.pooling, "labels": self.labels, "chunking": chunks}

    def _logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(*self.model_inputs(batch).values()).float()

    def _chosen(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores >= self.config.threshold).long()


def _cut_how(config: TextClassificationConfig) -> str:
    if config.chunking is None:
        return (f"were longer than task.max_length={config.max_length} tokens and were cut there "
                "(task.chunking reads them whole)")
    return (f"were longer than task.chunking.max_chunks={config.chunking.max_chunks} chunks of "
            f"{config.max_length} tokens; the rest was cut")


def _check(config: TextClassificationConfig, backbone: TextBackbone, data_info: dict[str, Any]) -> None:
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
