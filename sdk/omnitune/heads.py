"""Generic heads: a map from pooled backbone features to task outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from omnitune.options import Options

if TYPE_CHECKING:  # torch is imported only when a head is built
    from torch import nn


class LinearHeadConfig(Options):
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the linear layer.")


class MLPHeadConfig(Options):
    hidden: int = Field(256, ge=1, description="Width of the hidden layer.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before each linear layer.")


def linear_head(config: LinearHeadConfig, in_features: int, out_features: int) -> nn.Module:
    """Dropout then one linear layer."""
    from torch import nn

    return nn.Sequential(nn.Dropout(config.dropout), nn.Linear(in_features, out_features))


def mlp_head(config: MLPHeadConfig, in_features: int, out_features: int) -> nn.Module:
    """Dropout, linear, GELU, dropout, linear."""
    from torch import nn

    return nn.Sequential(
        nn.Dropout(config.dropout),
        nn.Linear(in_features, config.hidden),
        nn.GELU(),
        nn.Dropout(config.dropout),
        nn.Linear(config.hidden, out_features),
    )
