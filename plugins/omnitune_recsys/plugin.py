"""Hook implementations and option models of the recommendation plugin (no heavy imports here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, model_validator

from omnitune import hookimpl
from omnitune.config import ComponentSpec
from omnitune.options import Options, SplitFractions
from omnitune.registry import RegisterCallback

OMNITUNE_API_VERSION = 1

CUTOFFS = (5, 10, 20)
METRICS = tuple(f"{name}_at_{k}" for name in ("recall", "ndcg", "hitrate", "mrr") for k in CUTOFFS) + ("mrr",)


# -- datasets ---------------------------------------------------------------------------------


class InteractionSplitOptions(SplitFractions):
    rating_threshold: float | None = Field(
        None, description="Implicit feedback: keep interactions rated at least this; null keeps all."
    )
    min_user_interactions: int = Field(5, ge=1, description="Drop users with fewer (repeated to a fixpoint).")
    min_item_interactions: int = Field(1, ge=1, description="Drop items with fewer (repeated to a fixpoint).")
    split: Literal["leave-last-out", "random"] = Field(
        "leave-last-out",
        description="leave-last-out: each user's last interaction (by time) is test, the one before "
        "validation; random: interactions drawn at random by the fractions below.",
    )
    cold_item_fraction: float = Field(
        0.0, ge=0, lt=1,
        description="Cold start: this share of items loses every interaction from training and the "
        "test split becomes ranking those items (against each other) for the users who chose them.",
    )
    seed: int = Field(0, ge=0, description="Seed of the random split and of the cold-item draw.")


class InteractionsFileConfig(InteractionSplitOptions):
    interactions: str = Field(min_length=1, description="CSV or TSV of interactions, one per row.")
    items: str | None = Field(None, description="CSV or TSV of item features (titles, genres).")
    delimiter: Literal["auto", ",", "\t"] = Field(
        "auto", description="auto: tab for .tsv/.inter/.item files, comma otherwise."
    )
    user_column: str = Field("user_id", description="Interactions column holding the user id.")
    item_column: str = Field("item_id", description="Column holding the item id (both files).")
    rating_column: str | None = Field("rating", description="Rating column; null: every row is positive.")
    timestamp_column: str | None = Field(
        "timestamp", description="Time column; null: the file's row order is the time order."
    )
    item_text_columns: list[str] = Field(
        default_factory=lambda: ["title", "genres"], description="Item columns joined into the item text."
    )
    users: str | None = Field(
        None, description="CSV or TSV of user features, one row per user (keyed by user_column)."
    )
    user_feature_columns: list[str] = Field(
        default_factory=list,
        description="Categorical user-file columns (age band, country) used as user features.",
    )

    @model_validator(mode="after")
    def _threshold_needs_ratings(self) -> InteractionsFileConfig:
        if self.rating_threshold is not None and self.rating_column is None:
            raise ValueError("rating_threshold needs a rating_column")
        return self

    @model_validator(mode="after")
    def _user_file_needs_columns(self) -> InteractionsFileConfig:
        if self.users and not self.user_feature_columns:
            raise ValueError("users needs user_feature_columns (the categorical columns to read)")
        return self


class MovieLens100kConfig(InteractionSplitOptions):
    rating_threshold: float | None = Field(4.0, description="Ratings of 4 and 5 count as positive.")
    user_feature_columns: list[str] = Field(
        default_factory=lambda: ["age", "gender", "occupation"],
        description="Categorical columns of ml-100k.user used as user features; [] reads none.",
    )


# -- backbones and task -----------------------------------------------------------------------


class MatrixFactorizationConfig(Options):
    dim: int = Field(64, ge=1, le=4096, description="Embedding size of users and items.")
    init_std: float = Field(0.05, gt=0, description="Standard deviation of the initial embeddings.")


class TwoTowerConfig(Options):
    dim: int = Field(64, ge=1, le=4096, description="Size of the user and item vectors.")
    text_backbone: ComponentSpec = Field(
        default_factory=lambda: ComponentSpec(name="minilm-l6"),
        description="A registered text backbone (name and options) that encodes item texts.",
    )
    train_text_encoder: bool = Field(
        False, description="Fine-tune the text encoder; off: item texts are encoded once and cached."
    )
    text_max_length: int = Field(48, ge=4, le=512, description="Tokens kept per item text.")
    text_batch_size: int = Field(64, ge=1, description="Item texts per encoder forward pass.")
    id_dropout: float = Field(
        0.25, ge=0, lt=1,
        description="Share of training items (and, with user features, users) whose id embedding is "
        "hidden, so the text (feature) path learns to stand alone (what a cold item or user has).",
    )
    user_features: bool | None = Field(
        None, description="Add embeddings of the user's categorical features to the user tower; "
        "null: when the dataset has user features.",
    )
    init_std: float = Field(0.05, gt=0, description="Standard deviation of the initial id embeddings.")


class LightGCNConfig(Options):
    dim: int = Field(64, ge=1, le=4096, description="Embedding size of users and items.")
    layers: int = Field(2, ge=0, le=8, description="Propagation steps over the user-item graph.")
    init_std: float = Field(0.1, gt=0, description="Standard deviation of the initial embeddings.")


class SASRecConfig(Options):
    dim: int = Field(64, ge=8, le=1024, description="Size of item embeddings and hidden states.")
    layers: int = Field(2, ge=1, le=12, description="Causal self-attention layers.")
    heads: int = Field(2, ge=1, le=16, description="Attention heads per layer (must divide dim).")
    max_length: int = Field(50, ge=2, le=1024, description="Most recent items read from a history.")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout on embeddings, attention and layers.")
    init_std: float = Field(0.02, gt=0, description="Standard deviation of the initial embeddings.")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> SASRecConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not a multiple of heads {self.heads}")
        return self


class GRU4RecConfig(Options):
    dim: int = Field(64, ge=8, le=1024, description="Size of item embeddings and output vectors.")
    hidden: int = Field(128, ge=8, le=4096, description="Size of the GRU state.")
    layers: int = Field(1, ge=1, le=8, description="Stacked GRU layers.")
    max_length: int = Field(50, ge=2, le=1024, description="Most recent items read from a history.")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout on the item embeddings read.")
    init_std: float = Field(0.02, gt=0, description="Standard deviation of the initial embeddings.")


class RecommendationConfig(Options):
    loss: Literal["bpr", "softmax", "full-softmax"] = Field(
        "bpr", description="bpr: sampled negatives; softmax: sampled softmax over in-batch items; "
        "full-softmax: cross-entropy over the whole catalogue. Sequential backbones (sasrec, gru4rec) always "
        "train on next-item cross-entropy over the whole catalogue."
    )
    negatives: Literal["uniform", "popularity"] = Field(
        "uniform", description="How BPR negatives are drawn (never an item the user trained on)."
    )
    num_negatives: int = Field(1, ge=1, le=1000, description="BPR negatives per positive.")
    popularity_exponent: float = Field(0.75, ge=0, description="popularity negatives: count ** exponent.")
    similarity: Literal["dot", "cosine"] = Field("dot", description="How a user and an item are scored.")
    temperature: float = Field(1.0, gt=0, description="Divides scores in the softmax loss.")
    top_k: int = Field(10, ge=1, description="Items returned per user by predict.")


# -- hooks ------------------------------------------------------------------------------------


@hookimpl
def register_datasets(register: RegisterCallback) -> None:
    register("interactions-file", "omnitune_recsys.datasets:interactions_file", config=InteractionsFileConfig,
             description="User-item interactions from CSV/TSV, with optional item and user feature files.")
    register("movielens-100k", "omnitune_recsys.datasets:movielens_100k", config=MovieLens100kConfig,
             description="MovieLens 100k (943 users, 1,682 movies), offline from the recbole wheel.")


@hookimpl
def register_backbones(register: RegisterCallback) -> None:
    register("mf", "omnitune_recsys.backbones:matrix_factorization", config=MatrixFactorizationConfig,
             description="Matrix factorisation: one embedding per user and per item.")
    register("two-tower", "omnitune_recsys.backbones:two_tower", config=TwoTowerConfig,
             description="User ids | item ids + item text through a pretrained text backbone.")
    register("lightgcn", "omnitune_recsys.lightgcn:lightgcn", config=LightGCNConfig,
             description="LightGCN: user and item embeddings propagated over the training graph.")
    register("sasrec", "omnitune_recsys.sasrec:sasrec", config=SASRecConfig,
             description="SASRec: next item from the user's history by causal self-attention.")
    register("gru4rec", "omnitune_recsys.gru4rec:gru4rec", config=GRU4RecConfig,
             description="GRU4Rec: next item from the user's history read in time order by a GRU.")


@hookimpl
def register_tasks(register: RegisterCallback) -> None:
    register("recommendation", "omnitune_recsys.task:Recommendation", config=RecommendationConfig,
             description="Top-k retrieval from implicit feedback; BPR or sampled softmax; ranking metrics.")


@hookimpl
def register_metrics(register: RegisterCallback) -> None:
    for name in METRICS:
        register(name, _mean_over_users(name),
                 description=f"{name.replace('_at_', '@')} over the full catalogue, averaged over users.")


def _mean_over_users(key: str) -> Callable[[Any], Callable[[dict[str, Any]], float]]:
    """A metric factory: the recommendation task outputs one value per user under ``key``."""

    def factory(_options: Any) -> Callable[[dict[str, Any]], float]:
        return lambda outputs: outputs[key].float().mean().item()

    return factory


@hookimpl
def export_spec(task: Any, config: Any) -> Any:
    if config.task.name != "recommendation":
        return None
    from omnitune_recsys.export import recommendation_spec

    return recommendation_spec(task)
