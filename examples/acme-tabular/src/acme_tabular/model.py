"""The tabular-mlp backbone: residual blocks of LayerNorm, Linear and GELU."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from acme_tabular.hooks import TabularMLPConfig


class TabularMLP(nn.Module):
    """Maps ``in_features``-wide vectors to ``num_features``-wide ones (both ``width``)."""

    def __init__(self, config: TabularMLPConfig) -> None:
        super().__init__()
        self.in_features = self.num_features = config.width
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(config.width), nn.Linear(config.width, config.width), nn.GELU(),
                          nn.Dropout(config.dropout))
            for _ in range(config.depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


def tabular_mlp(config: TabularMLPConfig, export_dir: Path | None = None) -> TabularMLP:
    """A fresh MLP; there are no pretrained weights, so ``export_dir`` has nothing to restore."""
    return TabularMLP(config)
