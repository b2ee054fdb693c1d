"""How the speech tasks export: waveforms and lengths in, with the spectral front end inside the
graph; decoding, resampling and cropping stay outside (soundfile + numpy in the bundle)."""

from __future__ import annotations

from typing import Any

import torch

from omnitune.errors import ConfigError
from omnitune.export import ClassificationScores, ExportSpec, label_accuracy
from omnitune_speech.classification import AudioClassification
from omnitune_speech.metrics import edit_distance
from omnitune_speech.recognition import SpeechRecognition

AXES = {"waveforms": {0: "batch", 1: "samples"}, "lengths": {0: "batch"}}
CLIP_AXES = {"waveforms": {0: "batch"}, "lengths": {0: "batch"}}


def _example(samples: int) -> dict[str, torch.Tensor]:
    """Two clips of ``samples`` holding audio for different lengths."""
    return {"waveforms": torch.randn(2, samples) * 0.1, "lengths": torch.tensor([samples, samples * 2 // 3])}


def audio_classification_spec(task: AudioClassification) -> ExportSpec:
    """Clip classifier with a softmax on top; int8 as the backbone says (``SpeechBackbone.int8``:
    static, calibrated on training clips, or dynamic). With ``clip_seconds`` every input (a clip
    or a window of a longer file) has that length, so the graph takes exactly that many samples:
    an LSTM (GE2E) exports with a fixed sequence length only."""
    clip = task.clip_samples
    if clip is None:
        _refuse_varying_length(task, "set task.clip_seconds")
    return ExportSpec(
        module=ClassificationScores(task.model),
        inputs=_example(clip or task.sample_rate // 2), dynamic_axes=CLIP_AXES if clip else AXES,
        outputs=["scores"],
        processor="omnitune_speech.serving:AudioClassificationProcessor",
        preprocessing=task.preprocessing(),
        encode=task.encode_inputs,
        raw_input=lambda example: example.path,
        score=label_accuracy(lambda example: example.target),
        quantization=task.model.backbone.int8,
        int8_float_nodes=lambda graph: nodes_through_first(graph, task.model.backbone.float_through),
    )


def _refuse_varying_length(task: AudioClassification | SpeechRecognition, remedy: str) -> None:
    backbone = task.model.backbone
    if backbone.exports_fixed_length_only:
        raise ConfigError(f"{type(backbone).__name__} exports to ONNX for one input length only; {remedy}")


def nodes_through_first(graph: Any, op_types: tuple[str, ...]) -> list[str]:
    """The nodes up to and including the first of ``op_types`` (none without one): what
    ``SpeechBackbone.float_through`` keeps out of int8."""
    names = []
    for node in graph.node:
        names.append(node.name)
        if node.op_type in op_types:
            return names
    return []


def speech_recognition_spec(task: SpeechRecognition) -> ExportSpec:
    """Per-frame character logits and the frames that hold audio; greedy CTC decoding in numpy."""
    _refuse_varying_length(task, "use another backbone (speech-recognition takes clips of any length)")
    return ExportSpec(
        module=task.model,
        inputs=_example(task.sample_rate // 2), dynamic_axes=AXES, outputs=["logits", "frame_lengths"],
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
