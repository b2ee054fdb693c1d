"""SASRec: the next item from a user's history, by causal self-attention over item embeddings.

Histories are left-padded index tensors (item index + 1, 0 for padding), so the last position
always holds the latest item and its output is the user's vector. Item vectors are the same
embeddings the history is read with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from omnitune_recsys.backbones import Catalogue
from omnitune_recsys.plugin import GRU4RecConfig, SASRecConfig

PAD = 0


class SequentialBackbone(nn.Module):
    """What every sequential backbone shares: it reads histories of up to ``config.max_length``
    items (``history_vectors``, defined by each), and scores items against the same item
    embeddings (``self.items``, index 0 the padding) that it reads histories with."""

    sequential = True

    def __init__(self, config: SASRecConfig | GRU4RecConfig) -> None:
        super().__init__()
        self.config = config
        self.num_features = config.dim
        self.max_length = config.max_length

    def build_items(self, num_items: int) -> None:
        """The item embeddings: normal(``init_std``), the padding row zero."""
        self.items = nn.Embedding(num_items + 1, self.config.dim, padding_idx=PAD)
        nn.init.normal_(self.items.weight, std=self.config.init_std)
        with torch.no_grad():
            self.items.weight[PAD].zero_()

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} scores histories, not user ids: call history_vectors")

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors of ``items`` (catalogue indices), or of the whole catalogue."""
        return self.items.weight[1:] if items is None else self.items(items + 1)

    def export(self, directory: Path) -> None:
        """Nothing to write: the sizes come back from the artifact's data_info."""


class SASRec(SequentialBackbone):
    """Item + position embeddings, pre-norm transformer layers with a causal mask, a final norm."""

    config: SASRecConfig

    def build(self, catalogue: Catalogue) -> None:
        dim = self.config.dim
        self.build_items(catalogue.num_items)
        self.positions = nn.Embedding(self.config.max_length, dim)
        nn.init.normal_(self.positions.weight, std=self.config.init_std)
        layer = nn.TransformerEncoderLayer(dim, self.config.heads, dim * 4, self.config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, self.config.layers, norm=nn.LayerNorm(dim),
                                             enable_nested_tensor=False)
        self.dropout = nn.Dropout(self.config.dropout)

    def history_vectors(self, histories: torch.Tensor) -> torch.Tensor:
        """``(batch, length, dim)``: at each position, the vector predicting the item after it."""
        return self.encode(self.items(histories), histories)

    def encode(self, item_embeddings: torch.Tensor, histories: torch.Tensor) -> torch.Tensor:
        """``history_vectors`` from given embeddings of the history's items (explanations vary
        them; ``histories`` still sets the attention mask)."""
        length = histories.shape[1]
        positions = torch.arange(self.max_length - length, self.max_length, device=histories.device)
        hidden = self.dropout(item_embeddings * self.config.dim ** 0.5 + self.positions(positions))
        return self.encoder(hidden, mask=self._blocked(histories))

    def _blocked(self, histories: torch.Tensor) -> torch.Tensor:
        """Attention mask, one per head: a position sees itself and the real items before it."""
        length = histories.shape[1]
        future = torch.ones(length, length, dtype=torch.bool, device=histories.device).triu(1)
        itself = torch.eye(length, dtype=torch.bool, device=histories.device)
        padding = (histories == PAD).unsqueeze(1) & ~itself
        return (future | padding).repeat_interleave(self.config.heads, dim=0)


def history_tensor(histories: Sequence[Sequence[int]], max_length: int) -> torch.Tensor:
    """The last ``max_length`` items of each history (catalogue indices), shifted by one and
    left-padded with ``PAD`` to the longest one kept (at least one column)."""
    kept = [list(history)[-max_length:] for history in histories]
    width = max(1, *(len(history) for history in kept)) if kept else 1
    rows = [[PAD] * (width - len(history)) + [item + 1 for item in history] for history in kept]
    return torch.tensor(rows, dtype=torch.long)


def training_windows(sequences: Sequence[Sequence[int]], ends: Sequence[int],
                     max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-item targets of the windows of ``sequences`` whose last target is at
    ``ends``: at most ``max_length`` predictions each, left-padded; targets ``-100`` where padded."""
    inputs, targets = [], []
    for sequence, end in zip(sequences, ends, strict=True):
        start = max(1, end - max_length + 1)
        inputs.append(sequence[start - 1:end])
        targets.append(sequence[start:end + 1])
    width = max(len(window) for window in targets)
    padded = torch.tensor([[PAD] * (width - len(w)) + [i + 1 for i in w] for w in inputs], dtype=torch.long)
    labels = torch.tensor([[-100] * (width - len(w)) + list(w) for w in targets], dtype=torch.long)
    return padded, labels


def sasrec(config: SASRecConfig, export_dir: Path | None = None) -> SASRec:
    """The ``sasrec`` backbone (its sizes come from the dataset, through ``build``)."""
    return SASRec(config)
