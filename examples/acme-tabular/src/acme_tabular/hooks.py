"""Hook implementations and option models: light, so `omnitune tasks` never imports torch here."""

from __future__ import annotations

from typing import Any

from pydantic import Field

import omnitune
from omnitune.options import Options, SplitFractions
from omnitune.registry import RegisterCallback

OMNITUNE_API_VERSION = 1


class TabularClassificationConfig(Options):
    standardize: bool = Field(True, description="Scale features by the training split's mean and std.")


class TabularMLPConfig(Options):
    width: int = Field(64, ge=1, description="Width of every hidden layer.")
    depth: int = Field(2, ge=1, le=16, description="Number of hidden layers.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each hidden layer.")


class CSVTableConfig(SplitFractions):
    train: str = Field(min_length=1, description="CSV file: numeric feature columns and a label column.")
    label_column: str = Field("label", description="Column holding the class label.")
    feature_columns: list[str] | None = Field(
        None, min_length=1, description="Numeric columns to use; default: every other column."
    )
    validation_fraction: float = Field(0.15, ge=0, lt=1, description="Rows held out for validation.")
    test_fraction: float = Field(0.15, ge=0, lt=1, description="Rows held out for testing.")
    seed: int = Field(0, ge=0, description="Seed of the split.")


@omnitune.hookimpl
def register_tasks(register: RegisterCallback) -> None:
    register("tabular-classification", "acme_tabular.task:TabularClassification",
             config=TabularClassificationConfig,
             description="Classify rows of numeric features; accuracy, macro-F1.")


@omnitune.hookimpl
def register_backbones(register: RegisterCallback) -> None:
    register("tabular-mlp", "acme_tabular.model:tabular_mlp", config=TabularMLPConfig,
             description="A residual MLP over standardized features (trained from scratch).")


@omnitune.hookimpl
def register_datasets(register: RegisterCallback) -> None:
    register("csv-table", "acme_tabular.data:csv_table", config=CSVTableConfig,
             description="A CSV of numeric feature columns and a label column.")


@omnitune.hookimpl
def export_spec(task: Any, config: Any) -> Any:
    """``omnitune export`` of a tabular-classification artifact (ONNX, torch-free processor)."""
    if config.task.name != "tabular-classification":
        return None
    from acme_tabular.export import tabular_spec

    return tabular_spec(task)
