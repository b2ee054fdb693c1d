"""Built-in loggers: loop-event plugins chosen per run with ``train.loggers``.

Each is a ``RunLogger`` registered on the run's plugin manager for the length of ``fit`` (on
rank 0 only) and unregistered after, so it sees exactly the events every other plugin sees.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

from omnitune.config import RunConfig
from omnitune.errors import ConfigError
from omnitune.loggers.base import RunLogger, flatten
from omnitune.plugins import Plugins

# name -> (class path, package it needs, extra that installs it)
LOGGERS = {
    "tensorboard": ("omnitune.loggers.tensorboard_writer:TensorBoardLogger", "tensorboard", "report"),
    "csv": ("omnitune.loggers.csv_file:CSVLogger", None, None),
    "mlflow": ("omnitune.loggers.mlflow_client:MLflowLogger", "mlflow", "mlflow"),
    "wandb": ("omnitune.loggers.wandb_run:WandbLogger", "wandb", "wandb"),
}

__all__ = ["LOGGERS", "RunLogger", "attached", "create_loggers", "flatten"]


def create_loggers(run: RunConfig, output_dir: Path) -> list[RunLogger]:
    """One logger per name in ``run.train.loggers``. ``jsonl`` needs none: the built-in
    ``ProgressLogger`` (omnitune.progress) always writes ``metrics.jsonl``.
    A tracker whose package is missing is a ConfigError."""
    loggers = []
    for name in dict.fromkeys(run.train.loggers):
        if name == "jsonl":
            continue
        path, package, extra = LOGGERS[name]
        if package is not None and importlib.util.find_spec(package) is None:
            raise ConfigError(f"train.loggers: {name!r} needs the {package!r} package; "
                              f"install it with pip install 'omnitune[{extra}]'")
        module, _, cls = path.partition(":")
        loggers.append(getattr(importlib.import_module(module), cls)(run, output_dir))
    return loggers


@contextlib.contextmanager
def attached(plugins: Plugins, loggers: list[RunLogger]) -> Iterator[None]:
    """Register ``loggers`` as plugins while the block runs; close them however it ends."""
    for logger in loggers:
        plugins.manager.register(logger, name=f"omnitune.loggers.{logger.name}")
    try:
        yield
    finally:
        for logger in loggers:
            plugins.manager.unregister(logger)
            logger.finish()
