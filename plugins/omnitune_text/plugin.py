"""Hook implementations and option models of the text plugin (no heavy imports here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from omnitune import hookimpl
from omnitune.options import ClassificationOptions, Options, SplitFractions
from omnitune.registry import RegisterCallback

OMNITUNE_API_VERSION = 1


class ShrinkOptions(Options):
    layers: list[int] | None = Field(
        None, min_length=1, description="Keep only these encoder layers (increasing indices, e.g. "
        "[0, 2, 4] of six), with their pretrained weights; null: all."
    )
    prune_heads: dict[int, list[int]] | None = Field(
        None, description="Remove attention heads for good, {layer: [head, ...]} by the original "
        "layer index (BERT-style encoders); applied after backbone.layers."
    )


class TransformersBackboneConfig(ShrinkOptions):
    model: str = Field(min_length=1, description="Hugging Face hub id or local model folder.")
    pooling: Literal["cls", "mean"] = Field("cls", description="How token states become one vector.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    trust_remote_code: bool = Field(False, description="Run the model repo's own code. Off by default.")


class MiniLMConfig(ShrinkOptions):
    pooling: Literal["cls", "mean"] = Field("mean", description="mean, as the model was trained.")


class ChunkingOptions(Options):
    stride: int | None = Field(
        None, ge=0, description="Tokens each chunk shares with the one before it; null: max_length // 8."
    )
    max_chunks: int = Field(8, ge=1, le=1024, description="Chunks kept per text; the rest is cut "
                            "(counted in truncated_fraction and in each prediction's 'truncated').")
    pooling: Literal["mean", "max", "attention"] = Field(
        "mean", description="How a text's chunk vectors become one: mean, max, or learned attention."
    )


class TextClassificationConfig(ClassificationOptions):
    max_length: int = Field(128, ge=8, le=8192, description="Tokens per chunk (per text without chunking).")
    chunking: ChunkingOptions | None = Field(
        default_factory=ChunkingOptions, description="Texts longer than max_length are read as "
        "overlapping chunks pooled per text, in training and prediction alike; null: cut at max_length."
    )
    multi_label: bool = Field(False, description="Several labels per text (sigmoid + BCE).")
    threshold: float = Field(0.5, gt=0, lt=1, description="multi-label: probability for a label.")


class SplitOptions(SplitFractions):
    max_train_samples: int | None = Field(None, ge=1, description="Subsample the training split.")
    max_eval_samples: int | None = Field(None, ge=1, description="Subsample validation and test.")
    seed: int = Field(0, ge=0, description="Seed of the split and the subsampling.")


class TextFileDatasetConfig(SplitOptions):
    train: str = Field(min_length=1, description="CSV, TSV or JSONL file of training rows.")
    validation: str | None = Field(None, description="Validation file; else split from train.")
    test: str | None = Field(None, description="Test file; else split from train.")
    text_column: str = Field("text", description="Column holding the text.")
    label_column: str = Field("label", description="Column holding the label(s).")
    group_column: str | None = Field(
        None, description="Rows sharing this column's value stay in one split (no leakage)."
    )
    labels: list[str] | None = Field(None, min_length=2, description="Allowed labels, in order.")
    label_separator: str | None = Field(None, min_length=1, description="Splits multi-label cells.")
    bad_rows: Literal["error", "skip"] = Field("error", description="Stop at a bad row, or skip it.")


class RottenTomatoesConfig(SplitOptions):
    pass


class ConventionSpeechesConfig(SplitOptions):
    validation_fraction: float = Field(0.2, ge=0, lt=1, description="Held out for validation.")
    test_fraction: float = Field(0.3, ge=0, lt=1, description="Held out for testing.")


@hookimpl
def register_backbones(register: RegisterCallback) -> None:
    from omnitune_text import lm_options  # it builds on SplitOptions above

    register("transformers", "omnitune_text.backbone:transformers_backbone",
             config=TransformersBackboneConfig,
             description="Any transformers AutoModel encoder, by hub id or local folder.")
    register("minilm-l6", "omnitune_text.backbone:minilm_l6", config=MiniLMConfig,
             description="all-MiniLM-L6-v2 (6-layer BERT, 22.7M), offline from a PyPI wheel.")
    register("transformers-causal-lm", "omnitune_text.lm_backbone:causal_lm_backbone",
             config=lm_options.CausalLMBackboneConfig,
             description="Any transformers AutoModelForCausalLM, by hub id or local folder.")
    register("smollm2-135m", "omnitune_text.lm_backbone:smollm2_135m", config=lm_options.SmolLM2Config,
             description="SmolLM2-135M-Instruct (Llama, 134.5M), offline from a PyPI wheel's GGUF.")


@hookimpl
def register_tasks(register: RegisterCallback) -> None:
    from omnitune_text import lm_options  # it builds on SplitOptions above

    register("text-classification", "omnitune_text.classification:TextClassification",
             config=TextClassificationConfig,
             description="Single- or multi-label text classification; accuracy, macro-F1.")
    register("causal-lm", "omnitune_text.causal_lm:CausalLM", config=lm_options.CausalLMConfig,
             description="Causal LM fine-tuning (answers-only SFT or plain text); perplexity; generation.")


@hookimpl
def register_datasets(register: RegisterCallback) -> None:
    from omnitune_text import lm_options  # it builds on SplitOptions above

    register("text-file", "omnitune_text.datasets:text_file", config=TextFileDatasetConfig,
             description="CSV, TSV or JSONL with text and label columns.")
    register("rotten-tomatoes", "omnitune_text.datasets:rotten_tomatoes", config=RottenTomatoesConfig,
             description="13k Rotten Tomatoes snippets, fresh vs rotten, split by movie.")
    register("convention-speeches", "omnitune_text.datasets:convention_speeches",
             config=ConventionSpeechesConfig,
             description="189 long 2012 US convention speeches, democrat vs republican, split by speaker.")
    register("chat-file", "omnitune_text.lm_datasets:chat_file", config=lm_options.ChatFileConfig,
             description="JSONL, CSV or Parquet: prompt/response pairs, chat messages, or plain text.")
    register("movielens-genres", "omnitune_text.lm_datasets:movielens_genres",
             config=lm_options.MovieLensGenresConfig,
             description="MovieLens 100k movie title -> genres (1,681 movies), split by movie.")


@hookimpl
def export_spec(task: Any, config: Any) -> Any:
    if config.task.name != "text-classification":
        return None
    from omnitune_text.export import text_classification_spec

    return text_classification_spec(task)


@hookimpl
def register_metrics(register: RegisterCallback) -> None:
    register("perplexity", "omnitune_text.causal_lm:perplexity_metric",
             description="exp of the mean loss per predicted token.")
    register("truncated_fraction", "omnitune_text.causal_lm:truncated_metric",
             description="Share of examples cut at task.max_length.")
    register("exact_match", "omnitune_text.causal_lm:exact_match_metric",
             description="Generated answers equal to the reference (normalised, SQuAD-style).")
    register("token_f1", "omnitune_text.causal_lm:token_f1_metric",
             description="Word-overlap F1 of generated answers and references (SQuAD-style).")
