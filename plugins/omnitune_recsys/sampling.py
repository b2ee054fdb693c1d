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


class NegativeSampler:
    """Draws negatives by ``weights``, redrawing any that the user has among ``seen`` items."""

    def __init__(self, seen: Sequence[Sequence[int]], weights: torch.Tensor) -> None:
        if not bool((weights > 0).any()):
            raise DataError("no item can be drawn as a negative: the training split has no items")
        self.seen = [frozenset(items) for items in seen]
        self.weights = weights

    def sample(self, users: Sequence[int], count: int) -> torch.Tensor:
        """``count`` negatives for each user: a ``(len(users), count)`` tensor of item indices."""
        drawn = torch.multinomial(self.weights, len(users) * count, replacement=True).view(len(users), count)
        for _ in range(REJECTION_ROUNDS):
            bad = self._seen_mask(users, drawn)
            if not bad.any():
                return drawn
            drawn[bad] = torch.multinomial(self.weights, int(bad.sum()), replacement=True)
        for row in self._seen_mask(users, drawn).any(dim=1).nonzero().flatten().tolist():
            drawn[row] = self._from_unseen(users[row], count)
        return drawn

    def _seen_mask(self, users: Sequence[int], drawn: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[item in self.seen[user] for item in row]
                             for user, row in zip(users, drawn.tolist(), strict=True)], dtype=torch.bool)

    def _from_unseen(self, user: int, count: int) -> torch.Tensor:
        """Exact draw from the user's unseen items, for users who have seen most of the catalogue."""
        weights = self.weights.clone()
        weights[list(self.seen[user])] = 0.0
        if not bool((weights > 0).any()):
            raise DataError(f"user index {user} has interacted with every item that can be a negative")
        return torch.multinomial(weights, count, replacement=True)
