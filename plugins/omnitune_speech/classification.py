"""The audio-classification task: one label per clip (keywords, speakers, events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from omnitune.classification import LabelSet, TrainingLabels, cross_entropy_step, softmax_evaluation
from omnitune.errors import ConfigError
from omnitune.task import StepOutput
from omnitune_speech.augment import WaveAugment
from omnitune_speech.backbone import SpeechBackbone
from omnitune_speech.frontend import frame_mask
from omnitune_speech.plugin import AudioClassificationConfig
from omnitune_speech.speech_task import SpeechTask
from omnitune_speech.windows import best_windows, hop_samples


class ClipClassifier(nn.Module):
    """Augment (training only), backbone frames, pooled over time, head."""

    def __init__(self, backbone: SpeechBackbone, head: nn.Module, augment: WaveAugment, pooling: str) -> None:
        super().__init__()
        self.augment = augment
        self.backbone = backbone
        self.head = head
        self.pooling = pooling
        self.frame_scores = nn.Linear(backbone.num_features, 1) if pooling == "attention" else None

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        frames, frame_lengths = self.backbone(self.augment(waveforms, lengths), lengths)
        return self.head(pool(frames, frame_lengths, self.pooling, self.frame_scores))


def pool(frames: torch.Tensor, frame_lengths: torch.Tensor, how: str,
         frame_scores: nn.Module | None = None) -> torch.Tensor:
    """One vector per clip from the frames that hold audio: their mean, max, the last one, or
    attention (``frame_scores`` scores each frame; softmax over the clip's frames)."""
    if how == "last":
        return frames[torch.arange(len(frames), device=frames.device), frame_lengths - 1]
    valid = frame_mask(frame_lengths, frames.shape[1]).unsqueeze(-1)
    if how == "max":
        return frames.masked_fill(~valid, float("-inf")).amax(dim=1)
    if how == "attention":
        if frame_scores is None:
            raise ValueError("attention pooling needs frame_scores (a module scoring each frame)")
        lowest = torch.finfo(frames.dtype).min
        return (frame_scores(frames).masked_fill(~valid, lowest).softmax(dim=1) * frames).sum(1)
    return (frames * valid).sum(1) / frame_lengths.clamp(min=1).unsqueeze(-1).to(frames.dtype)


class AudioClassification(SpeechTask):
    """Softmax over the dataset's labels; cross-entropy weighed per class (``task.class_weights``);
    accuracy and macro-F1, the latter monitored when the training classes are imbalanced."""

    metrics = ("accuracy", "macro_f1")
    monitor_mode = "max"

    def __init__(self, config: AudioClassificationConfig, *, backbone: SpeechBackbone,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        super().__init__(backbone, data_info, config.clip_seconds, "audio-classification")
        if "labels" not in data_info:
            raise ConfigError("audio-classification needs a dataset with labels (audio-folder, or "
                              "audio-manifest with target: label)")
        self.config = config
        self.label_set = LabelSet(data_info["labels"])
        self.labels: list[str] = self.label_set.names
        unknown = sorted(set(config.background_labels) - set(self.labels))
        if unknown:
            raise ConfigError(f"task.background_labels: {unknown} are not labels of the dataset; "
                              f"expected some of {self.labels}")
        self.monitor, self.monitor_reason = TrainingLabels.of(data_info).monitor()
        self.loss_weights: torch.Tensor | None = None  # set by setup_training
        self.model = ClipClassifier(backbone, head(backbone.num_features, len(self.labels)),
                                    WaveAugment(config.augment), config.pooling)

    def setup_training(self, data_info: dict[str, Any]) -> None:
        """Class weights (``task.class_weights``) from the training split's label counts."""
        training = TrainingLabels.of(data_info)
        self.loss_weights = training.loss_weights(self.config.class_weights, self.label_set)

    def collate(self, examples: list[Any]) -> dict[str, torch.Tensor]:
        kept, waveforms, lengths = self.decode([e.path for e in examples])
        labels = self.label_set.indices([examples[i].target for i in kept], [examples[i].path for i in kept])
        return {"waveforms": waveforms, "lengths": lengths, "labels": labels}

    def num_items(self, batch: dict[str, torch.Tensor]) -> int:
        return len(batch["labels"])

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        return cross_entropy_step(model(batch["waveforms"], batch["lengths"]), batch["labels"],
                                  self.config.label_smoothing, self.loss_weights)

    def evaluation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        out = cross_entropy_step(model(batch["waveforms"], batch["lengths"]), batch["labels"],
                                 weight=self.loss_weights)
        return softmax_evaluation(out.loss, out.outputs["logits"], batch["labels"])

    def encode_inputs(self, inputs: list[Any]) -> dict[str, torch.Tensor]:
        """Audio file paths -> ``waveforms``, ``lengths``; files longer than ``clip_seconds`` whole."""
        _, waveforms, lengths = self.decode([str(path) for path in inputs], bad_files="error", whole=True)
        return {"waveforms": waveforms, "lengths": lengths}

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        """Label and probabilities; audio longer than ``clip_seconds`` is scored by sliding windows
        (``omnitune_speech.windows``, shared with the ONNX bundle) and the most confident one (not
        of a background label) reported, with ``window_start_s``, ``window_end_s`` and ``windows``."""
        device = batch["waveforms"].device
        if self.clip_samples is None:
            return self.label_set.predictions(model(batch["waveforms"], batch["lengths"]).float().softmax(-1))

        def score(waveforms: np.ndarray, lengths: np.ndarray) -> np.ndarray:
            inputs = torch.from_numpy(waveforms).to(device), torch.from_numpy(lengths).to(device)
            return model(*inputs).float().softmax(dim=-1).cpu().numpy()

        hop = hop_samples(self.config.window_hop_seconds, self.sample_rate)
        best = best_windows(score, batch["waveforms"].cpu().numpy(), batch["lengths"].tolist(),
                            self.clip_samples, hop, self.background)
        predictions = self.label_set.predictions(torch.from_numpy(np.stack([b.scores for b in best])))
        return [prediction | window.fields(self.sample_rate)
                for prediction, window in zip(predictions, best, strict=True)]

    def preprocessing(self) -> dict[str, Any]:
        return {**super().preprocessing(), "pooling": self.config.pooling, "labels": self.labels,
                "window_hop_seconds": self.config.window_hop_seconds,
                "background_labels": list(self.config.background_labels)}

    @property
    def background(self) -> list[bool]:
        """Per label, whether it is one of ``task.background_labels``."""
        return [name in self.config.background_labels for name in self.labels]
