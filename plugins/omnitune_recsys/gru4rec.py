"""GRU4Rec: the next item from a user's history, read in time order by a GRU.

It reads the same left-padded histories as SASRec (``sasrec.history_tensor``: item index + 1, 0
for padding) and is trained by the same next-item windows. The GRU runs over each history's real
items only (a packed sequence), so the padding in front never changes the state.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from omnitune_recsys.backbones import Catalogue
from omnitune_recsys.plugin import GRU4RecConfig
from omnitune_recsys.sasrec import PAD, SequentialBackbone


class GRU4Rec(SequentialBackbone):
    """Item embeddings, dropout, a GRU, and a projection of its state back to the item space
    (RecBole's GRU4Rec); items are scored against the same embeddings the history is read with."""

    config: GRU4RecConfig

    def build(self, catalogue: Catalogue) -> None:
        config = self.config
        self.build_items(catalogue.num_items)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.dim, config.hidden, config.layers, batch_first=True, bias=False)
        self.project = nn.Linear(config.hidden, config.dim)

    def history_vectors(self, histories: torch.Tensor) -> torch.Tensor:
        """``(batch, length, dim)``: at each real position, the vector predicting the item after
        it (what padded positions hold means nothing)."""
        width = histories.shape[1]
        lengths = (histories != PAD).sum(dim=1).clamp(min=1)
        columns = torch.arange(width, device=histories.device)
        padding = (width - lengths).unsqueeze(1)
        to_front = (columns + padding) % width  # left-padded row -> its items first
        items = histories.gather(1, to_front)
        packed = pack_padded_sequence(self.dropout(self.items(items)), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=width)
        back = ((columns - padding) % width).unsqueeze(2).expand(-1, -1, states.shape[2])
        return self.project(states.gather(1, back))


def gru4rec(config: GRU4RecConfig, export_dir: Path | None = None) -> GRU4Rec:
    """The ``gru4rec`` backbone (its sizes come from the dataset, through ``build``)."""
    return GRU4Rec(config)
