"""Negative sampling that never returns an item the user trained on."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from omnitune.errors import DataError

REJECTION_ROUNDS = 8


def negative_weights(popularity: Sequence[int], kind: str, exponent: float = 0.75) -> torch.Tensor:
    """Sampling weight per item: uniform or ``count ** exponent``, zero for items never seen in
    training (a cold item is unknown while training, so it cannot be a negative either)."""
    counts = torch.tensor(popularity, dtype=torch.float64)
    weights = counts.pow(exponent) if kind == "popularity" else torch.ones_like(counts)
    return torch.where(counts > 0, weights, 0.0)


class SeenPairs:
    """The (user, item) pairs of the training split, for vectorised membership tests."""

    def __init__(self, seen: Sequence[Sequence[int]], num_items: int) -> None:
        self.num_items = num_items
        self.items = [list(items) for items in seen]
        keys = [user * num_items + item for user, items in enumerate(seen) for item in items]
        self.keys = torch.tensor(sorted(keys), dtype=torch.long)

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether each (user, item) pair, broadcast together, was seen in training."""
        queries = users * self.num_items + items
        if not len(self.keys):
            return torch.zeros_like(queries, dtype=torch.bool)
        # keys are sorted once here; torch.isin would sort them again on every call
        positions = torch.searchsorted(self.keys, queries).clamp_(max=len(self.keys) - 1)
        return self.keys[positions] == queries


class NegativeSampler:
    """Draws negatives by ``weights``, redrawing any that the user has among ``seen`` items."""

    def __init__(self, seen: SeenPairs, weights: torch.Tensor) -> None:
        if not bool((weights > 0).any()):
            raise DataError("no item can be drawn as a negative: the training split has no items")
        self.seen = seen
        self.weights = weights

    def sample(self, users: torch.Tensor, count: int) -> torch.Tensor:
        """``count`` negatives for each user: a ``(len(users), count)`` tensor of item indices."""
        column = users.unsqueeze(1)
        drawn = torch.multinomial(self.weights, len(users) * count, replacement=True).view(len(users), count)
        for _ in range(REJECTION_ROUNDS):
            bad = self.seen.contains(column, drawn)
            if not bad.any():
                return drawn
            drawn[bad] = torch.multinomial(self.weights, int(bad.sum()), replacement=True)
        for row in self.seen.contains(column, drawn).any(dim=1).nonzero().flatten().tolist():
            drawn[row] = self._from_unseen(int(users[row]), count)
        return drawn

    def _from_unseen(self, user: int, count: int) -> torch.Tensor:
        """Exact draw from the user's unseen items, for users who have seen most of the catalogue."""
        weights = self.weights.clone()
        weights[self.seen.items[user]] = 0.0
        if not bool((weights > 0).any()):
            raise DataError(f"user index {user} has interacted with every item that can be a negative")
        return torch.multinomial(weights, count, replacement=True)
