"""TensorBoard event files through ``torch.utils.tensorboard``, under ``<output_dir>/tensorboard``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from omnitune.config import RunConfig
from omnitune.loggers.base import RunLogger


class TensorBoardLogger(RunLogger):
    """Scalars per step, the config as text and as hyperparameters with the final metrics."""

    name = "tensorboard"

    def __init__(self, run: RunConfig, output_dir: Path) -> None:
        super().__init__(run, output_dir)
        from torch.utils.tensorboard import SummaryWriter

        self.directory = output_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.directory))
        self.hyperparameters: dict[str, Any] = {}

    def start(self, hyperparameters: dict[str, Any]) -> None:
        self.hyperparameters = hyperparameters
        config = yaml.safe_dump(self.run.model_dump(mode="json"), sort_keys=False)
        self.writer.add_text("config", f"```yaml\n{config}```")

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def log_summary(self, metrics: dict[str, float]) -> None:
        # run_name "." keeps the hparams summary in this run's folder, beside its scalars
        self.writer.add_hparams(self.hyperparameters, {f"final/{k}": v for k, v in metrics.items()},
                                run_name=".")

    def close(self) -> None:
        self.writer.close()
