"""How tabular-classification exports (the example of a third-party task joining ``omnitune
export`` through the ``export_spec`` hook): raw feature values in, standardized inside the graph,
probabilities out; the torch-free ``TabularProcessor`` parses rows."""

from __future__ import annotations

import torch
from torch import nn

from acme_tabular.task import TabularClassification
from omnitune.export import ExportSpec, label_accuracy


class RawRowScores(nn.Module):
    """Standardize, classify, softmax."""

    def __init__(self, task: TabularClassification) -> None:
        super().__init__()
        self.model = task.model
        self.register_buffer("mean", task.mean.float())
        self.register_buffer("std", task.std.float())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model((features - self.mean) / self.std).float().softmax(dim=-1)


def tabular_spec(task: TabularClassification) -> ExportSpec:
    def encode(rows: list) -> dict[str, torch.Tensor]:
        return {"features": torch.tensor([task.values(raw) for raw in rows], dtype=torch.float32)}

    return ExportSpec(
        module=RawRowScores(task),
        inputs={"features": torch.zeros(2, len(task.features))},
        dynamic_axes={"features": {0: "batch"}},
        outputs=["scores"],
        processor="acme_tabular.serving:TabularProcessor",
        preprocessing={"labels": task.labels, "features": task.features},
        encode=encode,
        raw_input=lambda row: list(row.features),
        score=label_accuracy(lambda row: row.label),
    )
