"""The built-in run logger: a tqdm progress bar and ``metrics.jsonl``, fed by loop events.

It is an ordinary loop-event plugin object, registered for each run by ``fit``; other loggers
(TensorBoard, CSV, MLflow) implement the same hooks and are passed as ``callbacks``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from omnitune import checkpoint as ckpt
from omnitune.hookspecs import hookimpl

METRICS_LOG = "metrics.jsonl"


class ProgressLogger:
    """Shows progress and appends one JSON line per logged step, evaluation and run end."""

    def __init__(self, *, log_every: int, progress: bool) -> None:
        self.log_every, self.progress = log_every, progress
        self.bar: tqdm | None = None
        self.path: Path | None = None

    @hookimpl
    def on_fit_start(self, state: Any) -> None:
        self.path = Path(state.output_dir) / METRICS_LOG
        if state.step:  # resumed: drop what was logged after the checkpoint
            _truncate(self.path, state.step)
        self.bar = tqdm(total=state.total_steps, initial=state.step, unit="step",
                        disable=not self.progress, dynamic_ncols=True)

    @hookimpl
    def on_step_end(self, state: Any, logs: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", samples_s=f"{logs['samples_per_s']:.1f}")
        if state.step % self.log_every == 0:
            self._write({"step": state.step, "epoch": state.epoch, **logs})

    @hookimpl
    def on_evaluate_end(self, state: Any, split: str, metrics: dict[str, float]) -> None:
        self._write({"step": state.step, "epoch": state.epoch, **metrics})
        tqdm.write(f"step {state.step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

    @hookimpl
    def on_fit_end(self, state: Any, metrics: dict[str, float]) -> None:
        self._write({"step": state.step, "final": True, **metrics})
        if self.bar is not None:
            self.bar.close()

    def _write(self, record: dict[str, Any]) -> None:
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


def _truncate(path: Path, step: int) -> None:
    if not path.is_file():
        return
    kept = ckpt.log_lines_up_to(path, step)
    ckpt.atomic_write_text(path, "".join(line + "\n" for line in kept))
