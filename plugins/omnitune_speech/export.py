"""How the speech tasks export: waveforms and lengths in, with the spectral front end inside the
graph; decoding, resampling and cropping stay outside (soundfile + numpy in the bundle)."""

from __future__ import annotations

from typing import Any

import torch

from omnitune.export import ClassificationScores, ExportSpec, label_accuracy
from omnitune_speech.classification import AudioClassification
from omnitune_speech.metrics import edit_distance
from omnitune_speech.recognition import SpeechRecognition

AXES = {"waveforms": {0: "batch", 1: "samples"}, "lengths": {0: "batch"}}


def _example(sample_rate: int) -> dict[str, torch.Tensor]:
    """Two clips of different lengths, so no axis is traced as a constant."""
    return {"waveforms": torch.randn(2, sample_rate // 2) * 0.1,
            "lengths": torch.tensor([sample_rate // 2, sample_rate // 3])}


def audio_classification_spec(task: AudioClassification) -> ExportSpec:
    """Clip classifier with a softmax on top; static int8 calibrated on training clips."""
    return ExportSpec(
        module=ClassificationScores(task.model),
        inputs=_example(task.sample_rate), dynamic_axes=AXES, outputs=["scores"],
        processor="omnitune_speech.serving:AudioClassificationProcessor",
        preprocessing=task.preprocessing(),
        encode=task.encode_inputs,
        raw_input=lambda example: example.path,
        score=label_accuracy(lambda example: example.target),
        quantization="static",
    )


def speech_recognition_spec(task: SpeechRecognition) -> ExportSpec:
    """Per-frame character logits and the frames that hold audio; greedy CTC decoding in numpy."""
    return ExportSpec(
        module=task.model,
        inputs=_example(task.sample_rate), dynamic_axes=AXES, outputs=["logits", "frame_lengths"],
        processor="omnitune_speech.serving:SpeechRecognitionProcessor",
        preprocessing=task.preprocessing(),
        encode=task.encode_inputs,
        raw_input=lambda example: example.path,
        score=character_accuracy, score_name="1-cer",
        quantization="static",
    )


def character_accuracy(predictions: list[dict[str, Any]], examples: list[Any]) -> float:
    """One minus the character error rate over the examples' transcripts."""
    edits = sum(edit_distance(p["text"], e.target) for p, e in zip(predictions, examples, strict=True))
    return 1.0 - edits / max(sum(len(e.target) for e in examples), 1)
