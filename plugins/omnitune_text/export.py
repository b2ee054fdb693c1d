"""How text-classification exports: token ids in, probabilities out; the tokenizer stays outside
the graph as a ``tokenizer.json`` for the ``tokenizers`` library."""

from __future__ import annotations

from pathlib import Path

from omnitune.export import ClassificationScores, ExportSpec, label_accuracy
from omnitune_text.classification import TextClassification
from omnitune_text.serving import TOKENIZER_FILE

EXAMPLE_TEXTS = ["a short text", "a second, somewhat longer text to trace the graph with"]


def text_classification_spec(task: TextClassification) -> ExportSpec:
    """The classifier with a softmax (sigmoid for multi-label) on top; dynamic batch and sequence."""
    tokenizer = task.tokenizer
    axes = {0: "batch", 1: "sequence"}

    def write_tokenizer(folder: Path) -> None:
        tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))

    return ExportSpec(
        module=ClassificationScores(task.model, task.config.multi_label),
        inputs=task.encode_inputs(EXAMPLE_TEXTS),
        dynamic_axes={"input_ids": axes, "attention_mask": axes},
        outputs=["scores"],
        processor="omnitune_text.serving:TextClassificationProcessor",
        preprocessing={"labels": task.labels, "multi_label": task.config.multi_label,
                       "threshold": task.config.threshold, "max_length": task.config.max_length,
                       "pad_id": tokenizer.pad_token_id, "pad_token": tokenizer.pad_token,
                       "padding_side": tokenizer.padding_side},
        encode=task.encode_inputs,
        raw_input=lambda example: example.text,
        score=label_accuracy(lambda example: example.label),
        write_files=write_tokenizer,
    )
