"""The image-classification task: a timm backbone, a head on pooled features, cross-entropy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from timm.data import Mixup
from torch import nn

from omnitune.classification import (
    BackboneHead,
    LabelSet,
    TrainingLabels,
    cross_entropy_step,
    soft_cross_entropy,
    softmax_evaluation,
)
from omnitune.errors import ConfigError, DataError
from omnitune.task import StepOutput, Task
from omnitune_vision.backbone import TimmBackbone
from omnitune_vision.images import open_rgb, to_rgb
from omnitune_vision.plugin import ImageClassificationConfig
from omnitune_vision.preprocessing import build_transforms, resolve_preprocessing
from omnitune_vision.records import ImageExample


class ImageClassification(Task):
    """Single-label classification of images; mixup/cutmix (soft targets) when configured."""

    monitor = "accuracy"
    monitor_mode = "max"

    def __init__(self, config: ImageClassificationConfig, *, backbone: TimmBackbone,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        if not isinstance(backbone, TimmBackbone):
            raise ConfigError("image-classification needs an image backbone (timm, efficientnet-lite0), "
                              f"got {type(backbone).__name__}")
        self.config = config
        self.label_set = LabelSet(data_info["labels"])
        self.labels: list[str] = self.label_set.names
        self.metrics = ("accuracy", "macro_f1") + (("top5_accuracy",) if len(self.labels) > 5 else ())
        self.settings = resolve_preprocessing(backbone.data_config, config)
        self.train_transform, self.eval_transform = build_transforms(self.settings)
        self.mixup = _mixup(config, len(self.labels))
        training = TrainingLabels.of(data_info)
        self.monitor, self.monitor_reason = training.monitor()
        self.loss_weights: torch.Tensor | None = None  # set by setup_training
        self.model = BackboneHead(backbone, head(backbone.num_features, len(self.labels)))

    def setup_training(self, data_info: dict[str, Any]) -> None:
        """Class weights (``task.class_weights``) from the training split's label counts."""
        training = TrainingLabels.of(data_info)
        self.loss_weights = training.loss_weights(self.config.class_weights, self.label_set)

    def collate(self, examples: list[ImageExample]) -> dict[str, torch.Tensor]:
        kept = [e for e in examples if e.image is not None]
        if not kept:
            raise DataError("every image of a batch was unreadable and skipped: "
                            + ", ".join(e.name for e in examples))
        images = [(self.train_transform if e.augment else self.eval_transform)(e.image) for e in kept]
        labels = self.label_set.indices([e.label for e in kept], [e.name for e in kept])
        return {"images": torch.stack(images), "labels": labels}

    def encode_inputs(self, inputs: list[str | Path | Image.Image]) -> dict[str, torch.Tensor]:
        pictures = [to_rgb(item) if isinstance(item, Image.Image) else open_rgb(item) for item in inputs]
        return {"images": torch.stack([self.eval_transform(picture) for picture in pictures])}

    def num_items(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["labels"])

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        images, labels = batch["images"], batch["labels"]
        if self.mixup is not None and model.training:
            even = len(images) - len(images) % 2  # timm mixes images pairwise: an odd batch drops one
            images, soft_targets = self.mixup(images[:even], labels[:even])
            logits = model(images).float()
            return StepOutput(soft_cross_entropy(logits, soft_targets, self.loss_weights), {"logits": logits})
        return cross_entropy_step(model(images), labels, self.config.label_smoothing, self.loss_weights)

    def evaluation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = cross_entropy_step(model(batch["images"]), batch["labels"], weight=self.loss_weights)
        return softmax_evaluation(out.loss, out.outputs["logits"], batch["labels"])

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        return self.label_set.predictions(model(batch["images"]).float().softmax(dim=-1))

    def preprocessing(self) -> dict[str, Any]:
        training = self.settings["train"] | {"mixup_alpha": self.config.mixup_alpha,
                                             "cutmix_alpha": self.config.cutmix_alpha,
                                             "label_smoothing": self.config.label_smoothing}
        return self.settings | {"train": training, "architecture": self.model.backbone.architecture,
                                "labels": self.labels}


def _mixup(config: ImageClassificationConfig, num_classes: int) -> Mixup | None:
    if config.mixup_alpha == 0 and config.cutmix_alpha == 0:
        return None
    return Mixup(mixup_alpha=config.mixup_alpha, cutmix_alpha=config.cutmix_alpha,
                 label_smoothing=config.label_smoothing, num_classes=num_classes)
