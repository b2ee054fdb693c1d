"""How image-classification exports: normalised images in, probabilities out; resizing,
cropping and normalisation stay outside the graph (pillow + numpy in the bundle)."""

from __future__ import annotations

from omnitune.errors import ConfigError
from omnitune.export import ClassificationScores, ExportSpec, label_accuracy
from omnitune_vision.classification import ImageClassification

CROP_MODES = ("center", "squash")


def image_classification_spec(task: ImageClassification) -> ExportSpec:
    """The classifier with a softmax on top; dynamic batch, fixed image size; static int8
    (convolutions), calibrated on training images."""
    settings = task.settings
    if settings["crop_mode"] not in CROP_MODES:
        raise ConfigError(f"image-classification export supports crop_mode {CROP_MODES}; this model "
                          f"uses {settings['crop_mode']!r}")
    size = settings["input_size"]
    import torch

    example = torch.zeros(2, *size)
    return ExportSpec(
        module=ClassificationScores(task.model),
        inputs={"images": example},
        dynamic_axes={"images": {0: "batch"}},
        outputs=["scores"],
        processor="omnitune_vision.serving:ImageClassificationProcessor",
        preprocessing={"labels": task.labels, **{key: settings[key] for key in
                       ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")}},
        encode=task.encode_inputs,
        raw_input=lambda example: example.image,
        score=label_accuracy(lambda example: example.label),
        quantization="static",
    )
