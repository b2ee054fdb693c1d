"""What classification tasks share: the label set, backbone-then-head, chunk pooling, class
weights, the imbalance-aware monitor, and softmax decisions.

Tasks compose these pieces (as llm's default plugins share ``SharedOptions``) instead of
inheriting from a classification base class. Training steps put their logits in
``StepOutput.outputs["logits"]``, so a loss term (distillation, say) can read them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from omnitune.errors import ConfigError, DataError
from omnitune.options import IMBALANCE_RATIO, ClassWeights
from omnitune.task import StepOutput

log = logging.getLogger("omnitune")


class BackboneHead(nn.Module):
    """An optional stem, the backbone, then the head: the model's inputs in, one logit per label out.

    The loop trains the ``backbone`` at ``train.lr`` and everything else at ``train.head_lr``.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, stem: nn.Module | None = None) -> None:
        super().__init__()
        self.stem = stem
        self.backbone = backbone
        self.head = head

    def forward(self, *inputs: torch.Tensor, **named: torch.Tensor) -> torch.Tensor:
        """Positional inputs, or a batch as keywords (``model(**batch)``) passed on in its order."""
        inputs = (*inputs, *named.values())
        if self.stem is not None:
            inputs = (self.stem(*inputs),)
        return self.head(self.backbone(*inputs))


class LabelSet:
    """The dataset's labels in their fixed order: names to indices, and logits back to names."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: list[str] = list(names)
        self._index = {name: i for i, name in enumerate(self.names)}

    def index(self, name: str, where: str) -> int:
        """The index of label ``name``; ``where`` names the example in the error."""
        try:
            return self._index[name]
        except KeyError:
            raise DataError(f"{where}: label {name!r} is not one the model knows; "
                            f"expected one of {self.names}") from None

    def indices(self, names: Sequence[str], where: Sequence[str]) -> torch.Tensor:
        """One label index per example."""
        return torch.tensor([self.index(name, place) for name, place in zip(names, where, strict=True)])

    def multi_hot(self, rows: Sequence[Sequence[str]], where: Sequence[str]) -> torch.Tensor:
        """One row per example with 1.0 at each of its labels."""
        targets = torch.zeros(len(rows), len(self.names))
        for row, (names, place) in enumerate(zip(rows, where, strict=True)):
            targets[row, [self.index(name, place) for name in names]] = 1.0
        return targets

    def predictions(self, scores: torch.Tensor) -> list[dict[str, Any]]:
        """Per row of class probabilities: the most likely label and every label's probability."""
        return [{"label": self.names[int(row.argmax())],
                 "probabilities": dict(zip(self.names, row.tolist(), strict=True))} for row in scores]


class ChunkedBackboneHead(nn.Module):
    """The backbone over every chunk of a batch, the chunks pooled per document, then the head.

    ``members`` is (documents, chunks) with 1 where a chunk belongs to a document; without it
    every chunk is a document of its own. The loop trains ``backbone`` at ``train.lr`` and the
    pooling (attention's scores) with the head at ``train.head_lr``. A batch with no more chunks
    than documents takes one pass, as without chunking. A batch of long documents passes the
    backbone in slices of about ``TOKENS_PER_PASS`` tokens (at least ``MIN_CHUNKS_PER_PASS``
    chunks), each recomputed in the backward pass (activation checkpointing), so activation
    memory is that of one slice: 8 chunks of 256 MiniLM tokens, about 1 GB, whatever the batch.

    The training forward runs the slices without building an autograd graph (reentrant
    checkpointing). Non-reentrant checkpointing keeps each slice's graph nodes, small live
    allocations scattered among its freed activations, so glibc's heap could not reuse that
    memory and grew by a slice's activations per slice (8.8 GB on the long-document benchmark).
    Under ``torch.distributed`` (DDP, FSDP), whose gradient hooks expect one accumulation per
    parameter, slices use non-reentrant checkpointing.
    """

    MIN_CHUNKS_PER_PASS = 8
    TOKENS_PER_PASS = 2048

    def __init__(self, backbone: nn.Module, head: nn.Module, pooling: str, features: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.pool = ChunkPooling(pooling, features)
        self.head = head

    def forward(self, *inputs: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """``model(input_ids, attention_mask, members)``; ``members`` may come by position or name."""
        if members is None and len(inputs) == 3:
            *inputs, members = inputs
        if members is None:  # one pass: Captum's layer hooks expect the whole batch at once
            return self.head(self.backbone(*inputs))
        return self.head(self.pool(self._encode(*inputs, documents=len(members)), members))

    def chunks_per_pass(self, chunk: torch.Tensor) -> int:
        """Chunks in one slice: ``TOKENS_PER_PASS`` over a chunk's size, at least the minimum."""
        return max(self.MIN_CHUNKS_PER_PASS, self.TOKENS_PER_PASS // max(chunk.numel(), 1))

    def _encode(self, *inputs: torch.Tensor, documents: int) -> torch.Tensor:
        count = len(inputs[0])
        size = self.chunks_per_pass(inputs[0][0])
        if count <= max(documents, size) or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return self.backbone(*inputs)  # exporters trace one pass
        slices = [[tensor[start:start + size] for tensor in inputs] for start in range(0, count, size)]
        trained = any(p.requires_grad for p in self.backbone.parameters())
        if not (torch.is_grad_enabled() and self.training and trained):
            return torch.cat([self.backbone(*part) for part in slices])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.cat([checkpoint(self.backbone, *part, use_reentrant=False) for part in slices])
        anchor = torch.ones((), requires_grad=True)  # reentrant checkpointing needs an input with grad
        return torch.cat([checkpoint(_after_anchor, self.backbone, anchor, *part, use_reentrant=True)
                          for part in slices])


def _after_anchor(backbone: nn.Module, anchor: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
    """``backbone(*inputs)``; ``anchor`` only makes reentrant checkpointing track gradients."""
    return backbone(*inputs)


class ChunkPooling(nn.Module):
    """One vector per document from its chunks' vectors: their mean, their element-wise max, or
    attention (a learned score per chunk, softmax over the document's chunks). Dense matrix
    operations only, so the graph exports to ONNX with any number of documents and chunks."""

    def __init__(self, mode: str, features: int) -> None:
        super().__init__()
        if mode not in ("mean", "max", "attention"):
            raise ConfigError(f"chunk pooling {mode!r}: expected mean, max or attention")
        self.mode = mode
        self.score = nn.Linear(features, 1) if mode == "attention" else None

    def forward(self, vectors: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        """``vectors`` (chunks, features) and ``members`` (documents, chunks) -> (documents, features)."""
        outside = members.unsqueeze(-1) == 0 if self.mode == "max" else members == 0
        lowest = torch.finfo(vectors.dtype).min
        if self.mode == "max":
            return vectors.unsqueeze(0).masked_fill(outside, lowest).amax(dim=1)
        if self.mode == "attention":
            weights = self.score(vectors).squeeze(-1).unsqueeze(0).masked_fill(outside, lowest).softmax(-1)
        else:
            share = members.to(vectors.dtype)
            weights = share / share.sum(dim=-1, keepdim=True).clamp(min=1)
        return weights.to(vectors.dtype) @ vectors


def chunk_members(owners: torch.Tensor, documents: int) -> torch.Tensor:
    """(documents, chunks) membership from each chunk's document index."""
    return (owners.unsqueeze(0) == torch.arange(documents).unsqueeze(1)).long()


@dataclass(frozen=True)
class TrainingLabels:
    """How often each label occurs in the training split (``data_info["train_label_counts"]``,
    filled by ``omnitune.build``) and the split's size: what class weights and the default
    monitor are computed from."""

    counts: dict[str, int] | None
    size: int | None

    @classmethod
    def of(cls, data_info: dict[str, Any]) -> TrainingLabels:
        return cls(data_info.get("train_label_counts"), data_info.get("train_size"))

    @property
    def imbalance(self) -> float | None:
        """Largest class count over the smallest (inf when a class has no example)."""
        if not self.counts:
            return None
        smallest = min(self.counts.values())
        return max(self.counts.values()) / smallest if smallest else float("inf")

    def monitor(self) -> tuple[str, str]:
        """The default monitored metric and why: macro-F1 when imbalanced, else accuracy."""
        ratio = self.imbalance
        if ratio is None:
            return "accuracy", "training label counts unknown"
        counts = ", ".join(f"{label} {count}" for label, count in self.counts.items())
        if ratio > IMBALANCE_RATIO:
            return "macro_f1", (f"the largest training class has {ratio:.2f}x the examples of the "
                                f"smallest (> {IMBALANCE_RATIO}: {counts})")
        return "accuracy", f"training classes within {IMBALANCE_RATIO}x of each other ({counts})"

    def loss_weights(self, setting: ClassWeights, label_set: LabelSet,
                     multi_label: bool = False) -> torch.Tensor | None:
        """Per-class weights of the loss (multi-label: ``pos_weight`` per label), or None."""
        if setting is None:
            return None
        if isinstance(setting, dict):
            unknown = sorted(set(setting) - set(label_set.names))
            if unknown:
                raise ConfigError(f"task.class_weights: labels {unknown} are not in the dataset; "
                                  f"expected some of {label_set.names}")
            return torch.tensor([float(setting.get(name, 1.0)) for name in label_set.names])
        if not self.counts or not self.size:
            log.warning("task.class_weights: balanced needs the training split's label counts, which "
                        "this dataset (or artifact) does not record; the loss is not weighted")
            return None
        counts = torch.tensor([float(self.counts.get(name, 0)) for name in label_set.names]).clamp(min=1)
        if multi_label:  # negatives per positive, as BCE's pos_weight expects
            return (self.size - counts).clamp(min=1) / counts
        return self.size / (len(counts) * counts)


def training_label_counts(examples: Sequence[Any], labels: Sequence[str]) -> dict[str, int] | None:
    """How many training examples carry each label (each label of a multi-label row counts once);
    None when the examples hold no ``label`` (or ``target``) field to read."""
    records = getattr(examples, "records", examples)  # an image split decodes pictures when indexed
    counts = dict.fromkeys(labels, 0)
    for record in records:
        label = getattr(record, "label", getattr(record, "target", None))
        if label is None:
            return None
        for name in (label,) if isinstance(label, str) else label:
            if name in counts:
                counts[name] += 1
    return counts


def cross_entropy_step(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
                       weight: torch.Tensor | None = None) -> StepOutput:
    """The single-label training step's result: cross-entropy (weighted per class when ``weight``
    is given: PyTorch's weighted mean), with the logits kept in the outputs."""
    logits = logits.float()
    weight = weight.to(logits.device) if weight is not None else None
    loss = F.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
    return StepOutput(loss, {"logits": logits})


def soft_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy against soft targets (mixup), each example weighed by its targets' class
    weights; equal to the weighted ``cross_entropy_step`` for one-hot targets."""
    losses = torch.sum(-soft_targets * logits.float().log_softmax(-1), dim=-1)
    if weight is None:
        return losses.mean()
    example_weights = soft_targets @ weight.to(logits.device)
    return (losses * example_weights).sum() / example_weights.sum()


def binary_cross_entropy_step(logits: torch.Tensor, targets: torch.Tensor,
                              pos_weight: torch.Tensor | None = None) -> StepOutput:
    """The multi-label training step's result: BCE per label, positives weighed by ``pos_weight``."""
    logits = logits.float()
    pos_weight = pos_weight.to(logits.device) if pos_weight is not None else None
    loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
    return StepOutput(loss, {"logits": logits})


def softmax_evaluation(loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> StepOutput:
    """The single-label evaluation step's result: softmax scores, argmax predictions and targets."""
    scores = logits.float().softmax(dim=-1)
    return StepOutput(loss, {"scores": scores, "predictions": scores.argmax(dim=-1), "targets": targets})
