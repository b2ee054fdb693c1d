"""Smaller transformers encoders from their own weights: keep a subset of the layers
(DistilBERT-style initialisation) and remove attention heads for good."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

from omnitune.errors import ConfigError


def encoder_layers(encoder: nn.Module) -> tuple[nn.Module, str]:
    """The module holding the encoder's blocks and the attribute naming them (``encoder.layer``
    for BERT, ``transformer.layer`` for DistilBERT): the ModuleList with one entry per layer."""
    count = encoder.config.num_hidden_layers
    for parent in encoder.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ModuleList) and len(child) == count:
                return parent, name
    raise ConfigError(f"backbone.layers: no list of {count} layers found in this "
                      f"{encoder.config.model_type} model")


def keep_layers(encoder: nn.Module, layers: Sequence[int]) -> None:
    """Keep only ``layers`` (increasing indices) of ``encoder``, with their current weights."""
    count = encoder.config.num_hidden_layers
    if list(layers) != sorted(set(layers)) or not all(0 <= index < count for index in layers):
        raise ConfigError(f"backbone.layers: expected increasing layer indices in 0..{count - 1}, "
                          f"got {list(layers)}")
    parent, name = encoder_layers(encoder)
    kept = nn.ModuleList(getattr(parent, name)[index] for index in layers)
    for position, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = position
    setattr(parent, name, kept)
    encoder.config.num_hidden_layers = len(kept)
    if isinstance(getattr(encoder.config, "layer_types", None), list):
        encoder.config.layer_types = [encoder.config.layer_types[index] for index in layers]


def prune_heads(encoder: nn.Module, heads: dict[int, list[int]]) -> None:
    """Remove the attention heads ``{layer: [head, ...]}`` of a BERT-style encoder for good:
    the query, key and value projections lose their rows and the output projection its columns,
    so the model has fewer parameters and computes less."""
    parent, name = encoder_layers(encoder)
    blocks = getattr(parent, name)
    for layer, removed in sorted(heads.items()):
        if not 0 <= layer < len(blocks):
            raise ConfigError(f"backbone.prune_heads: layer {layer} is not in 0..{len(blocks) - 1}")
        attention, output = _attention_parts(blocks[layer], encoder.config.model_type)
        _prune_attention(attention, output, sorted(set(removed)), layer)


def attention_heads(encoder: nn.Module) -> list[int]:
    """How many heads each layer has now."""
    parent, name = encoder_layers(encoder)
    return [_attention_parts(block, encoder.config.model_type)[0].num_attention_heads
            for block in getattr(parent, name)]


def _attention_parts(block: nn.Module, model_type: str) -> tuple[nn.Module, nn.Module]:
    """BERT's self-attention (query, key, value) and its output module (``dense``)."""
    attention = getattr(getattr(block, "attention", None), "self", None)
    output = getattr(getattr(block, "attention", None), "output", None)
    if not hasattr(attention, "query") or not isinstance(getattr(output, "dense", None), nn.Linear):
        raise ConfigError(f"backbone.prune_heads supports BERT-style encoders (attention.self.query/"
                          f"key/value and attention.output.dense); {model_type} has another layout")
    return attention, output


def _prune_attention(attention: nn.Module, output: nn.Module, removed: list[int], layer: int) -> None:
    heads, width = attention.num_attention_heads, attention.attention_head_size
    if not all(0 <= head < heads for head in removed):
        raise ConfigError(f"backbone.prune_heads: layer {layer} has heads 0..{heads - 1}, got {removed}")
    if len(removed) == heads:
        raise ConfigError(f"backbone.prune_heads: layer {layer} would lose all {heads} heads; "
                          "drop the layer with backbone.layers instead")
    kept = torch.tensor([head * width + offset for head in range(heads) if head not in removed
                         for offset in range(width)])
    for projection in ("query", "key", "value"):
        setattr(attention, projection, prune_linear_layer(getattr(attention, projection), kept, dim=0))
    output.dense = prune_linear_layer(output.dense, kept, dim=1)
    attention.num_attention_heads = heads - len(removed)
    attention.all_head_size = attention.num_attention_heads * width
