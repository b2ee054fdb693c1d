"""Log every number a run reports to ``<output_dir>/training_log.csv``, through loop events only.

One row per number: ``event, step, epoch, name, value``. The file is appended to, so a resumed
run continues the same log (rows after the checkpoint it resumed from appear twice).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import omnitune

OMNITUNE_API_VERSION = 1
LOG_NAME = "training_log.csv"
HEADER = ("event", "step", "epoch", "name", "value")


def write_rows(state: Any, event: str, values: Mapping[str, Any]) -> None:
    """Append one row per entry of ``values`` to the run's log, writing the header first if new."""
    path = Path(state.output_dir) / LOG_NAME
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(HEADER)
        writer.writerows((event, state.step, state.epoch, name, value) for name, value in values.items())


@omnitune.hookimpl
def on_fit_start(state: Any) -> None:
    write_rows(state, "fit_start", {"total_steps": state.total_steps})


@omnitune.hookimpl
def on_step_end(state: Any, logs: dict[str, float]) -> None:
    write_rows(state, "step", logs)


@omnitune.hookimpl
def on_evaluate_end(state: Any, split: str, metrics: dict[str, float]) -> None:
    write_rows(state, f"evaluate:{split}", metrics)


@omnitune.hookimpl
def on_checkpoint_saved(state: Any, path: str) -> None:
    write_rows(state, "checkpoint", {"path": path})


@omnitune.hookimpl
def on_fit_end(state: Any, metrics: dict[str, float]) -> None:
    write_rows(state, "fit_end", metrics)
