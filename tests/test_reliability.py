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


def test_unwritable_output_dir_fails_before_training(tiny_bert: Path, sentiment_csv: Path,
                                                     tmp_path: Path) -> None:
    from conftest import tiny_run

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(omnitune.ConfigError, match="a-file/run is not writable"):
        omnitune.finetune(tiny_run(tiny_bert, sentiment_csv, blocker / "run"))


def test_full_disk_fails_before_training(tiny_bert: Path, sentiment_csv: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    from conftest import tiny_run

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10_000, 10_000))
    with pytest.raises(omnitune.ConfigError, match=r"has 0 MiB free; this run needs about"):
        omnitune.finetune(tiny_run(tiny_bert, sentiment_csv, tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()
