"""How text-classification exports: token ids in, probabilities out; the tokenizer stays outside
the graph as a ``tokenizer.json`` for the ``tokenizers`` library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnitune.export import ClassificationScores, ExportSpec, label_accuracy
from omnitune_text.classification import TextClassification
from omnitune_text.serving import TOKENIZER_FILE

EXAMPLE_TEXTS = ["a short text", "a second, somewhat longer text to trace the graph with"]


def text_classification_spec(task: TextClassification) -> ExportSpec:
    """The classifier with a softmax (sigmoid for multi-label) on top; dynamic batch and sequence,
    and with chunking, dynamic chunks with their (texts, chunks) ``members`` matrix."""
    tokenizer = task.tokenizer
    chunked = task.config.chunking is not None
    axes = {0: "chunks" if chunked else "batch", 1: "sequence"}
    dynamic_axes = {"input_ids": axes, "attention_mask": axes} | (
        {"members": {0: "batch", 1: "chunks"}} if chunked else {})
    # a text long enough to take several chunks, so chunks and texts differ in number when traced
    examples = [*EXAMPLE_TEXTS, " ".join(["text"] * 3 * task.config.max_length)]

    def write_tokenizer(folder: Path) -> None:
        tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))

    def encode(texts: list[str]) -> dict[str, Any]:
        return task.model_inputs(task.encode_inputs(texts))

    return ExportSpec(
        module=ClassificationScores(task.model, task.config.multi_label),
        inputs=encode(examples if chunked else EXAMPLE_TEXTS),
        dynamic_axes=dynamic_axes,
        outputs=["scores"],
        processor="omnitune_text.serving:TextClassificationProcessor",
        preprocessing={"labels": task.labels, "multi_label": task.config.multi_label,
                       "threshold": task.config.threshold, "max_length": task.config.max_length,
                       "pad_id": tokenizer.pad_token_id, "pad_token": tokenizer.pad_token,
                       "padding_side": tokenizer.padding_side,
                       "chunking": None if not chunked else {"stride": task.chunker.stride,
                                                            "max_chunks": task.chunker.max_chunks}},
        encode=encode,
        raw_input=lambda example: example.text,
        score=label_accuracy(lambda example: example.label),
        write_files=write_tokenizer,
    )
