"""LightGCN: user and item embeddings smoothed over the user-item graph of the training split.

Propagation is a torch sparse matrix product (no SciPy): ``E_{k+1} = D^-1/2 A D^-1/2 E_k`` over
the bipartite graph, and the vectors are the mean of ``E_0 .. E_layers``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from omnitune.errors import ConfigError
from omnitune_recsys.backbones import Catalogue, _embedding
from omnitune_recsys.plugin import LightGCNConfig


def normalized_adjacency(train_items: list[list[int]], num_users: int, num_items: int) -> torch.Tensor:
    """The symmetric-normalised adjacency of the bipartite graph, users first, as a sparse CSR tensor."""
    users = torch.tensor([u for u, items in enumerate(train_items) for _ in items], dtype=torch.long)
    items = torch.tensor([i for chosen in train_items for i in chosen], dtype=torch.long) + num_users
    rows, columns = torch.cat([users, items]), torch.cat([items, users])
    size = num_users + num_items
    degree = torch.zeros(size).index_add_(0, rows, torch.ones(len(rows)))
    scale = degree.clamp(min=1).rsqrt()
    values = scale[rows] * scale[columns]
    adjacency = torch.sparse_coo_tensor(torch.stack([rows, columns]), values, (size, size))
    return adjacency.coalesce().to_sparse_csr()


class LightGCN(nn.Module):
    """One embedding per user and item (layer 0), propagated ``layers`` times over the graph."""

    def __init__(self, config: LightGCNConfig) -> None:
        super().__init__()
        self.config = config
        self.num_features = config.dim
        self._cached: tuple[torch.Tensor, torch.Tensor] | None = None

    def build(self, catalogue: Catalogue) -> None:
        if catalogue.train_items is None:
            raise ConfigError("lightgcn needs the training interactions (data_info train_items)")
        self.num_users = catalogue.num_users
        self.embeddings = _embedding(catalogue.num_users + catalogue.num_items, self.config.dim,
                                     self.config.init_std)
        adjacency = normalized_adjacency(catalogue.train_items, catalogue.num_users, catalogue.num_items)
        self.register_buffer("adjacency", adjacency, persistent=False)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All user vectors and all item vectors (cached while in eval mode)."""
        if not self.training and self._cached is not None:
            return self._cached
        layer = self.embeddings.weight
        total = layer
        for _ in range(self.config.layers):
            layer = self.adjacency @ layer
            total = total + layer
        mean = total / (self.config.layers + 1)
        vectors = (mean[:self.num_users], mean[self.num_users:])
        if not self.training:
            self._cached = vectors
        return vectors

    def vectors(self, users: torch.Tensor,
                items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors of ``users`` and item vectors of ``items`` (``None``: all), one propagation."""
        user_table, item_table = self.propagate()
        return user_table[users], item_table if items is None else item_table[items]

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.propagate()[0][users]

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        table = self.propagate()[1]
        return table if items is None else table[items]

    def train(self, mode: bool = True) -> LightGCN:
        self._cached = None
        return super().train(mode)

    def export(self, directory: Path) -> None:
        """Nothing to write: the graph is rebuilt from the artifact's data_info."""


def lightgcn(config: LightGCNConfig, export_dir: Path | None = None) -> LightGCN:
    """The ``lightgcn`` backbone (its graph comes from the dataset, through ``build``)."""
    return LightGCN(config)
