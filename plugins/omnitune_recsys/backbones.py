"""Recommendation backbones: a user vector and an item vector, scored against each other.

A backbone is built in two stages: its factory reads its options (and loads what is
pretrained), then the task calls ``build(catalogue)`` once the dataset says how many users and
items there are and what each item's text is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnitune.build import BuildContext
from omnitune.config import ComponentSpec
from omnitune.errors import CheckpointError, ConfigError
from omnitune_recsys.plugin import MatrixFactorizationConfig, TwoTowerConfig
from omnitune_recsys.user_features import vocabulary_sizes

TWO_TOWER_FILE = "two_tower.json"
TEXT_EXPORT = "text"


@dataclass(frozen=True)
class Catalogue:
    """What a backbone needs from the dataset: sizes, item texts, which items have training data,
    the users' categorical features (``user_features`` of the dataset's info, if any) and each
    user's training items (the graph of graph backbones)."""

    num_users: int
    num_items: int
    item_texts: list[str] | None
    popularity: list[int]
    user_features: dict[str, Any] | None = None
    train_items: list[list[int]] | None = None


class MatrixFactorization(nn.Module):
    """One learned vector per user and per item."""

    def __init__(self, config: MatrixFactorizationConfig) -> None:
        super().__init__()
        self.config = config
        self.num_features = config.dim

    def build(self, catalogue: Catalogue) -> None:
        self.users = _embedding(catalogue.num_users, self.config.dim, self.config.init_std)
        self.items = _embedding(catalogue.num_items, self.config.dim, self.config.init_std)

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.users(users)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors of ``items``, or of the whole catalogue."""
        return self.items.weight if items is None else self.items(items)

    def export(self, directory: Path) -> None:
        """Nothing to write: the sizes come back from the artifact's data_info."""


class TwoTower(nn.Module):
    """User tower: an id embedding, plus (with ``user_features``) a sum of embeddings of the
    user's categorical features. Item tower: an id embedding plus a trainable projection of the
    item's text, encoded by a pretrained text backbone.

    Items without training interactions (cold items) use the text path alone, and training hides
    the id embedding of a share of items (``id_dropout``) so the text path learns to stand alone;
    likewise for users with features, so that a user unseen in training can be scored from
    features alone (``feature_user_vectors``).
    With a frozen encoder (the default) every item text is encoded once into a buffer; with
    ``train_text_encoder`` the encoder is part of the model and item texts are encoded per batch.
    """

    def __init__(self, config: TwoTowerConfig, load_encoder: Callable[[], nn.Module] | None,
                 text_features: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.num_features = config.dim
        self._load_encoder = load_encoder
        self.text_features = text_features
        self.user_feature_info: dict[str, Any] | None = None
        self._cached_items: torch.Tensor | None = None

    def build(self, catalogue: Catalogue) -> None:
        if catalogue.item_texts is None:
            raise ConfigError("two-tower needs item texts: give the dataset an item file (dataset.items) "
                              "or use the mf backbone")
        dim, std = self.config.dim, self.config.init_std
        self.users = _embedding(catalogue.num_users, dim, std)
        self._build_user_features(catalogue.user_features)
        self.item_ids = _embedding(catalogue.num_items, dim, std)
        self.register_buffer("has_history", torch.tensor(catalogue.popularity) > 0, persistent=False)
        if self.config.train_text_encoder:
            self._attach_encoder(catalogue.item_texts)
        elif self._load_encoder is None:  # restoring an artifact: the cached text vectors are in its weights
            self.register_buffer("item_text", torch.zeros(catalogue.num_items, self.text_features))
        else:
            self.register_buffer("item_text", self._encode_once(catalogue.item_texts))
        self.text_projection = nn.Linear(self.text_features, dim)

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """The id embedding, plus the feature embeddings when the tower has user features."""
        ids = self.users(users)
        if self.user_feature_info is None:
            return ids
        return self._drop_ids(ids) + self.feature_user_vectors(self.user_feature_index[users])

    def feature_user_vectors(self, indices: torch.Tensor) -> torch.Tensor:
        """User vectors from features alone: ``indices`` is (users, columns) of vocabulary indices."""
        return self.user_feature_embeddings(indices + self.user_feature_offsets).sum(1)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors of ``items``, or of the whole catalogue (cached while in eval mode)."""
        if items is not None:
            return self._item_vectors(items)
        if self.training:
            return self._item_vectors(torch.arange(len(self.has_history), device=self.has_history.device))
        if self._cached_items is None:
            all_items = torch.arange(len(self.has_history), device=self.has_history.device)
            self._cached_items = torch.cat([self._item_vectors(chunk) for chunk in
                                            all_items.split(self.config.text_batch_size * 16)])
        return self._cached_items

    def train(self, mode: bool = True) -> TwoTower:
        self._cached_items = None
        return super().train(mode)

    def export(self, directory: Path) -> None:
        """Write the text width and, when the encoder trains, the encoder's own export."""
        (directory / TWO_TOWER_FILE).write_text(json.dumps({"text_features": self.text_features}))
        if self.config.train_text_encoder:
            (directory / TEXT_EXPORT).mkdir()
            self.text_encoder.export(directory / TEXT_EXPORT)

    # -- internals ---------------------------------------------------------------------------

    def _build_user_features(self, info: dict[str, Any] | None) -> None:
        """One embedding table for every feature column (each at its own offset), if enabled."""
        wanted = self.config.user_features
        if wanted and info is None:
            raise ConfigError("two-tower user_features needs a dataset with user features "
                              "(dataset.users and dataset.user_feature_columns)")
        if info is None or wanted is False:
            return
        self.user_feature_info = info
        sizes = vocabulary_sizes(info)
        offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0)
        self.register_buffer("user_feature_offsets", offsets, persistent=False)
        self.register_buffer("user_feature_index", torch.tensor(info["indices"], dtype=torch.long)
                             .view(-1, len(sizes)), persistent=False)
        self.user_feature_embeddings = _embedding(sum(sizes), self.config.dim, self.config.init_std)

    def _drop_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """While training, hide the id embedding of ``id_dropout`` of the rows."""
        if not self.training or self.config.id_dropout == 0:
            return ids
        return ids * (torch.rand(len(ids), 1, device=ids.device) >= self.config.id_dropout)

    def _item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        ids = self.item_ids(items) * self.has_history[items].unsqueeze(1)
        return self._drop_ids(ids) + self.text_projection(self._text(items))

    def _text(self, items: torch.Tensor) -> torch.Tensor:
        if not self.config.train_text_encoder:
            return self.item_text[items]
        return self.text_encoder(self.item_input_ids[items], self.item_attention_mask[items])

    def _attach_encoder(self, texts: list[str]) -> None:
        self.text_encoder = self._load_encoder()
        self.text_features = self.text_encoder.num_features
        tokens = self._tokenize(self.text_encoder, texts)
        self.register_buffer("item_input_ids", tokens["input_ids"], persistent=False)
        self.register_buffer("item_attention_mask", tokens["attention_mask"], persistent=False)

    @torch.no_grad()
    def _encode_once(self, texts: list[str]) -> torch.Tensor:
        encoder = self._load_encoder().eval()
        self.text_features = encoder.num_features
        tokens = self._tokenize(encoder, texts)
        step = self.config.text_batch_size
        return torch.cat([encoder(tokens["input_ids"][i:i + step], tokens["attention_mask"][i:i + step])
                          for i in range(0, len(texts), step)]).float()

    def _tokenize(self, encoder: nn.Module, texts: list[str]) -> dict[str, torch.Tensor]:
        tokenizer = getattr(encoder, "tokenizer", None)
        if tokenizer is None:
            raise ConfigError(f"backbone.text_backbone: {type(encoder).__name__} has no tokenizer; "
                              "expected a text backbone such as minilm-l6 or transformers")
        return tokenizer([text or "[no text]" for text in texts], padding=True, truncation=True,
                         max_length=self.config.text_max_length, return_tensors="pt")


def matrix_factorization(config: MatrixFactorizationConfig,
                         export_dir: Path | None = None) -> MatrixFactorization:
    """The ``mf`` backbone (its sizes come from the dataset, through ``build``)."""
    return MatrixFactorization(config)


def two_tower(config: TwoTowerConfig, export_dir: Path | None = None, *,
              context: BuildContext) -> TwoTower:
    """The ``two-tower`` backbone. Its text backbone is built by name through the run's
    ``context``; from an artifact, a frozen encoder is not loaded at all (its item vectors are
    in the weights)."""
    if export_dir is None:
        return TwoTower(config, _text_backbone_loader(context, config.text_backbone, None))
    saved = export_dir / TWO_TOWER_FILE
    if not saved.is_file():
        raise CheckpointError(f"{export_dir}: {TWO_TOWER_FILE} is missing; not a two-tower artifact")
    text_features = json.loads(saved.read_text())["text_features"]
    if config.train_text_encoder:
        text_export = export_dir / TEXT_EXPORT
        return TwoTower(config, _text_backbone_loader(context, config.text_backbone, text_export))
    return TwoTower(config, None, text_features)


def _text_backbone_loader(context: BuildContext, spec: ComponentSpec,
                          export_dir: Path | None) -> Callable[[], nn.Module]:
    """Validate the text backbone's options now; build it only when called."""
    build = context.builder("backbone", spec, where="backbone.text_backbone")
    return lambda: build(export_dir=export_dir)


def _embedding(count: int, dim: int, std: float) -> nn.Embedding:
    table = nn.Embedding(count, dim)
    nn.init.normal_(table.weight, std=std)
    return table
