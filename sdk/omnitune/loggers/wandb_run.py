"""Weights & Biases; ``train.tracking.wandb_mode: offline`` writes under ``<output_dir>/wandb``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnitune.config import RunConfig
from omnitune.loggers.base import RunLogger


class WandbLogger(RunLogger):
    """The resolved config as the run's config, metrics per step, the final metrics as summary."""

    name = "wandb"

    def __init__(self, run: RunConfig, output_dir: Path) -> None:
        super().__init__(run, output_dir)
        import wandb

        self.wandb = wandb
        self.tracker: Any = None
        self.finished_ok = False

    def start(self, hyperparameters: dict[str, Any]) -> None:
        settings = self.run.train.tracking
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.tracker = self.wandb.init(project=settings.experiment, name=self.run_name,
                                       dir=str(self.output_dir), mode=settings.wandb_mode,
                                       config=hyperparameters, reinit="create_new")

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        self.tracker.log(values, step=step)

    def log_summary(self, metrics: dict[str, float]) -> None:
        self.tracker.summary.update(metrics)
        self.finished_ok = True

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.finish(exit_code=0 if self.finished_ok else 1)
