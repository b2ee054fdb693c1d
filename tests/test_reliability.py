"""Crash safety: non-finite losses, interrupted runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from test_loop import RegressionTask, regression_data, train_config

import omnitune
from omnitune.loop import fit
from omnitune.task import StepOutput


class ExplodesAtStep(RegressionTask):
    """Returns a NaN loss on one training call."""

    def __init__(self, bad_call: int) -> None:
        super().__init__()
        self.calls, self.bad_call = 0, bad_call

    def training_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> StepOutput:
        out = super().training_step(model, batch)
        self.calls += 1
        return StepOutput(out.loss * float("nan")) if self.calls == self.bad_call else out


def test_nonfinite_loss_stops_with_a_clear_message(tmp_path: Path) -> None:
    task = ExplodesAtStep(bad_call=3)
    config = train_config(epochs=3, batch_size=10, checkpoint_every=1)
    with pytest.raises(omnitune.OmnituneError, match="loss became nan at step 3.*step-00000002") as raised:
        fit(task, regression_data(), config, tmp_path, {})
    assert raised.value.exit_code == 7
    assert all(torch.isfinite(p).all() for p in task.model.parameters())


def test_nonfinite_loss_can_skip_the_step(tmp_path: Path) -> None:
    task = ExplodesAtStep(bad_call=3)
    result = fit(task, regression_data(), train_config(epochs=3, batch_size=10, on_nonfinite_loss="skip"),
                 tmp_path, {})
    assert result.metrics["skipped_steps"] == 1
    assert result.metrics["steps"] == 9  # every planned update made; the skipped window is not one
    assert all(torch.isfinite(p).all() for p in task.model.parameters())
