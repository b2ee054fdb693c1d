"""A long-format CSV (``step, split, name, value``) and ``hparams.yaml`` under ``<output_dir>/csv``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

from omnitune.config import RunConfig
from omnitune.loggers.base import RunLogger

HEADER = ("step", "split", "name", "value")


class CSVLogger(RunLogger):
    """One row per number; appended to, so a resumed run continues the same file."""

    name = "csv"

    def __init__(self, run: RunConfig, output_dir: Path) -> None:
        super().__init__(run, output_dir)
        self.directory = output_dir / "csv"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "metrics.csv"

    def start(self, hyperparameters: dict[str, Any]) -> None:
        text = yaml.safe_dump(self.run.model_dump(mode="json"), sort_keys=False)
        (self.directory / "hparams.yaml").write_text(text, encoding="utf-8")

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        rows = [(step, *name.split("/", 1), value) for name, value in values.items()]
        self._append(rows)

    def log_summary(self, metrics: dict[str, float]) -> None:
        step = int(metrics.get("steps", 0))
        self._append([(step, "final", name, value) for name, value in metrics.items()])

    def _append(self, rows: list[tuple[Any, ...]]) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(HEADER)
            writer.writerows(rows)
