"""MLflow tracking through its client (no global active run); by default a SQLite store in the run folder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from omnitune.config import RunConfig
from omnitune.loggers.base import RunLogger

BATCH = 100  # MLflow accepts at most 100 params per log_batch call


class MLflowLogger(RunLogger):
    """Params from the resolved config, metrics per step, the final metrics as ``final/*``."""

    name = "mlflow"

    def __init__(self, run: RunConfig, output_dir: Path) -> None:
        super().__init__(run, output_dir)
        from mlflow.tracking import MlflowClient

        settings = run.train.tracking
        default_uri = f"sqlite:///{(output_dir / 'mlflow.db').resolve()}"
        self.tracking_uri = (settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                             or default_uri)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment = self.client.get_experiment_by_name(settings.experiment)
        experiment_id = (experiment.experiment_id if experiment is not None
                         else self.client.create_experiment(settings.experiment))
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_name).info.run_id
        self.finished_ok = False

    def start(self, hyperparameters: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(key, str(value)) for key, value in hyperparameters.items()]
        for start in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[start:start + BATCH])

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(name, float(value), now, step)
                                                    for name, value in values.items()])

    def log_summary(self, metrics: dict[str, float]) -> None:
        self.log_scalars({f"final/{name}": value for name, value in metrics.items()},
                         int(metrics.get("steps", 0)))
        self.finished_ok = True

    def close(self) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if self.finished_ok else "FAILED")
