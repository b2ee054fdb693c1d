"""What every logger shares: the five loop events turned into scalars, hyperparameters and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnitune.config import RunConfig
from omnitune.hookspecs import hookimpl


class RunLogger:
    """A loop-event plugin that records one run. Subclasses write to one backend through
    ``start``, ``log_scalars``, ``log_summary`` and ``close``; they never see the loop itself."""

    name = "logger"

    def __init__(self, run: RunConfig, output_dir: Path) -> None:
        self.run, self.output_dir = run, output_dir
        self.run_name = run.train.tracking.run_name or output_dir.resolve().name
        self.closed = False

    # -- what a backend writes ------------------------------------------------------------

    def start(self, hyperparameters: dict[str, Any]) -> None:
        """Called once before the first step, with the resolved run config flattened."""

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def log_summary(self, metrics: dict[str, float]) -> None:
        """The final metrics (best validation, test, runtime)."""

    def close(self) -> None:
        """Flush and release the backend; called once, also when training fails."""

    # -- loop events ----------------------------------------------------------------------

    @hookimpl
    def on_fit_start(self, state: Any) -> None:
        self.start(flatten(self.run.model_dump(mode="json")))

    @hookimpl
    def on_step_end(self, state: Any, logs: dict[str, float]) -> None:
        if state.step % self.run.train.log_every == 0:
            self.log_scalars({f"train/{name}": value for name, value in logs.items()}, state.step)

    @hookimpl
    def on_evaluate_end(self, state: Any, split: str, metrics: dict[str, float]) -> None:
        values = {f"{split}/{name.removeprefix(split + '_')}": value for name, value in metrics.items()}
        self.log_scalars(values, state.step)

    @hookimpl
    def on_fit_end(self, state: Any, metrics: dict[str, float]) -> None:
        self.log_summary({name: float(value) for name, value in metrics.items() if _is_number(value)})
        self.finish()

    def finish(self) -> None:
        """Close once, however often it is called."""
        if not self.closed:
            self.closed = True
            self.close()


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}``; lists become their string form."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value if isinstance(value, bool | int | float | str) else str(value)
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
