"""How recommendation exports: the user tower and the item table in one graph that scores a
batch of known users against the whole catalogue; the catalogue (ids, texts, training items,
popularity) goes to ``catalogue.json`` for the numpy side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnitune.export import ExportSpec
from omnitune_recsys.serving import CATALOGUE_FILE
from omnitune_recsys.task import Recommendation


class CatalogueScores(nn.Module):
    """User indices -> their score for every item (dot or cosine, as the task scores)."""

    def __init__(self, task: Recommendation) -> None:
        super().__init__()
        self.model = task.model
        self.score = task._score

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        user_vectors, item_vectors = self.model(users)
        return self.score(user_vectors, item_vectors).float()


def recommendation_spec(task: Recommendation) -> ExportSpec:
    """Scores in the graph; masking and top-k in numpy; dynamic int8 (embeddings and linears)."""
    index = task.user_index

    def encode(users: list[Any]) -> dict[str, torch.Tensor]:
        return {"users": torch.tensor([index[str(user)] for user in users], dtype=torch.long)}

    def write_catalogue(folder: Path) -> None:
        catalogue = {"users": task.users, "items": task.items, "item_texts": task.item_texts,
                     "train_items": task.train_items, "popularity": task.popularity.tolist()}
        (folder / CATALOGUE_FILE).write_text(json.dumps(catalogue), encoding="utf-8")

    return ExportSpec(
        module=CatalogueScores(task),
        inputs={"users": torch.tensor([0, min(1, len(task.users) - 1)])},
        dynamic_axes={"users": {0: "batch"}},
        outputs=["scores"],
        processor="omnitune_recsys.serving:RecommendationProcessor",
        preprocessing={"top_k": task.config.top_k, "similarity": task.config.similarity},
        encode=encode,
        raw_input=lambda example: task.users[example.user],
        score=lambda predictions, examples: hit_rate(task, predictions, examples),
        score_name=f"hit_rate_at_{task.config.top_k}",
        write_files=write_catalogue,
    )


def hit_rate(task: Recommendation, predictions: list[dict[str, Any]], examples: list[Any]) -> float:
    """The share of users with at least one held-out item among their recommendations."""
    hits = [bool({task.items[i] for i in e.targets} & {row["item"] for row in p["items"]})
            for p, e in zip(predictions, examples, strict=True)]
    return sum(hits) / max(len(hits), 1)
