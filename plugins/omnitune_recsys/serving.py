"""Torch-free recommendation for an exported bundle: the graph scores a batch of known users
against the whole catalogue; masking what a user had in training, the top k, and the
most-popular answer for unknown users are numpy over ``catalogue.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnitune.errors import DataError
from omnitune.serving.processor import Feeds, RunGraph

CATALOGUE_FILE = "catalogue.json"


def query(value: Any, index: int) -> tuple[str, Mapping[str, Any] | None]:
    """``(user id, features)`` of an input: an id, or a dict with ``user`` and ``features``."""
    if isinstance(value, Mapping):
        if "user" not in value:
            raise DataError(f"inputs[{index}]: a recommendation input dict needs a 'user' key, "
                            f"got keys {sorted(value)}")
        return str(value["user"]), value.get("features")
    if isinstance(value, str | int):
        return str(value), None
    raise DataError(f"inputs[{index}]: expected a user id or {{'user': id}}, got {type(value).__name__}")


class RecommendationProcessor:
    """User ids in; ``{"user", "known_user", "basis", "items": [{"item", "score", "text"}]}`` out."""

    def __init__(self, directory: Path, preprocessing: dict[str, Any]) -> None:
        catalogue = json.loads((directory / CATALOGUE_FILE).read_text(encoding="utf-8"))
        self.users: list[str] = catalogue["users"]
        self.items: list[str] = catalogue["items"]
        self.item_texts: list[str] | None = catalogue.get("item_texts")
        self.train_items: list[list[int]] = catalogue["train_items"]
        self.popularity = np.array(catalogue["popularity"], dtype=np.float32)
        self.user_index = {user: i for i, user in enumerate(self.users)}
        self.top_k = int(preprocessing["top_k"])

    def encode(self, inputs: Sequence[Any]) -> Feeds:
        indices = []
        for index, value in enumerate(inputs):
            user, _ = query(value, index)
            if user not in self.user_index:
                raise DataError(f"inputs[{index}]: user {user!r} is not in the training data")
            indices.append(self.user_index[user])
        return {"users": np.array(indices, dtype=np.int64)}

    def predict(self, run: RunGraph, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        queries = [query(value, index) for index, value in enumerate(inputs)]
        known = [user for user, _ in queries if user in self.user_index]
        scores = run(self.encode(known))["scores"] if known else np.zeros((0, len(self.items)))
        rows = dict(zip(known, scores, strict=True))
        return [self._known(user, rows[user]) if user in rows else self._unknown(user, features)
                for user, features in queries]

    def _known(self, user: str, scores: np.ndarray) -> dict[str, Any]:
        scores = scores.astype(np.float32).copy()
        scores[self.train_items[self.user_index[user]]] = -np.inf
        return {"user": user, "known_user": True, "basis": "history", "items": self._top(scores)}

    def _unknown(self, user: str, features: Mapping[str, Any] | None) -> dict[str, Any]:
        if features:
            raise DataError(f"user {user!r}: scoring an unknown user from features needs the PyTorch "
                            "artifact; this bundle scores known users and answers others with popular items")
        return {"user": user, "known_user": False, "basis": "popular", "items": self._top(self.popularity),
                "note": f"unknown user {user!r}: not in the training data, so these are the most "
                        "popular items"}

    def _top(self, scores: np.ndarray) -> list[dict[str, Any]]:
        k = min(self.top_k, len(self.items))
        best = np.argsort(-scores, kind="stable")[:k]
        return [{"item": self.items[i], "score": round(float(scores[i]), 4),
                 "text": self.item_texts[i] if self.item_texts else None} for i in best.tolist()]
