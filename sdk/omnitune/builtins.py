"""The core's own contributions: generic heads and metrics. Loaded first, as plugin 'omnitune'."""

from __future__ import annotations

from omnitune.heads import LinearHeadConfig, MLPHeadConfig
from omnitune.hookspecs import hookimpl
from omnitune.registry import RegisterCallback


@hookimpl
def register_heads(register: RegisterCallback) -> None:
    register("linear", "omnitune.heads:linear_head", config=LinearHeadConfig,
             description="Dropout and one linear layer.")
    register("mlp", "omnitune.heads:mlp_head", config=MLPHeadConfig,
             description="Two linear layers with GELU.")


@hookimpl
def register_metrics(register: RegisterCallback) -> None:
    register("accuracy", "omnitune.metrics:accuracy", description="Exact-match accuracy.")
    register("macro_f1", "omnitune.metrics:macro_f1", description="Macro-averaged F1.")
    register("top5_accuracy", "omnitune.metrics:top5_accuracy", description="Top-5 accuracy.")
