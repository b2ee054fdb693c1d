"""omnitune: fine-tune pretrained models across modalities through one plugin registry and one loop.

Importing ``omnitune`` is light: torch and the modality libraries load only when a run needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from omnitune.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    OmnituneError,
    PluginError,
)
from omnitune.hookspecs import hookimpl, hookspec
from omnitune.plugins import API_VERSION, Plugins, load_plugins

__version__ = "0.1.0"

_LAZY = {
    "finetune": "omnitune.api",
    "evaluate": "omnitune.api",
    "RunResult": "omnitune.api",
    "list_tasks": "omnitune.api",
    "list_backbones": "omnitune.api",
    "list_datasets": "omnitune.api",
    "Predictor": "omnitune.predict",
    "Task": "omnitune.task",
    "StepOutput": "omnitune.task",
    "Splits": "omnitune.data",
    "RunConfig": "omnitune.config",
    "TrainConfig": "omnitune.config",
    "load_config": "omnitune.config",
    "tune": "omnitune.tuning",
    "TuneResult": "omnitune.tuning",
}

__all__ = [
    "API_VERSION", "CheckpointError", "ConfigError", "DataError", "OmnituneError", "PluginError",
    "Plugins", "hookimpl", "hookspec", "load_plugins", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'omnitune' has no attribute {name!r}")
