"""Per-run plugin objects (callbacks), the built-in progress logger, and the loss hook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_loop import RegressionTask, regression_data, train_config

import omnitune
from omnitune.data import Splits
from omnitune.loop import fit
from omnitune.task import StepOutput


class Losses:
    """A run logger as the TensorBoard/MLflow ones are written: loop-event hookimpls."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.evaluations: list[str] = []
        self.final: dict[str, float] = {}

    @omnitune.hookimpl
    def on_step_end(self, logs: dict[str, float]) -> None:
        self.losses.append(logs["loss"])

    @omnitune.hookimpl
    def on_evaluate_end(self, split: str) -> None:
        self.evaluations.append(split)

    @omnitune.hookimpl
    def on_fit_end(self, metrics: dict[str, float]) -> None:
        self.final = metrics


def test_callbacks_get_the_events_of_their_run_only(tmp_path: Path) -> None:
    plugins = omnitune.load_plugins(autoload=False)
    first, second = Losses(), Losses()
    result = fit(RegressionTask(), regression_data(), train_config(epochs=2, batch_size=10), tmp_path / "a",
                 {}, plugins=plugins, callbacks=[first])
    fit(RegressionTask(), regression_data(), train_config(max_steps=1, batch_size=10), tmp_path / "b",
        {}, plugins=plugins, callbacks=[second])
    assert len(first.losses) == 6 and len(second.losses) == 1
    assert first.evaluations == ["eval", "eval", "test"]
    assert first.final == result.metrics
    assert plugins.manager.get_plugins() == {plugins.manager.get_plugin("omnitune")}  # unregistered


def test_a_failing_callback_is_isolated_like_a_plugin(tmp_path: Path) -> None:
    class Broken:
        @omnitune.hookimpl
        def on_evaluate_end(self) -> None:
            raise RuntimeError("tracking server down")

    plugins, survivor = omnitune.load_plugins(autoload=False), Losses()
    result = fit(RegressionTask(), regression_data(), train_config(epochs=1, batch_size=10), tmp_path, {},
                 plugins=plugins, callbacks=[Broken(), survivor])
    assert result.metrics["steps"] == 3 and len(survivor.losses) == 3
    assert [f.hook for f in plugins.failures] == ["on_evaluate_end"]
    assert "tracking server down" in plugins.failures[0].error
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3  # the built-in logger went on


def test_a_callback_with_an_unknown_hook_is_refused(tmp_path: Path) -> None:
    class Typo:
        @omnitune.hookimpl
        def on_step_ended(self) -> None: ...

    with pytest.raises(omnitune.PluginError, match="callback Typo implements unknown hook"):
        fit(RegressionTask(), regression_data(), train_config(max_steps=1), tmp_path, {}, callbacks=[Typo()])


def test_the_progress_logger_writes_steps_evaluations_and_the_final_record(tmp_path: Path) -> None:
    fit(RegressionTask(), regression_data(), train_config(epochs=2, batch_size=10, log_every=2), tmp_path, {})
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], sorted(r)) for r in records] == [
        (2, ["epoch", "loss", "lr", "samples_per_s", "step"]),
        (3, ["epoch", "eval_loss", "step"]),
        (4, ["epoch", "loss", "lr", "samples_per_s", "step"]),
        (6, ["epoch", "loss", "lr", "samples_per_s", "step"]),
        (6, ["epoch", "eval_loss", "step"]),
        (6, ["epoch", "step", "test_loss"]),
        (6, ["best_step", "epochs", "eval_loss", "final", "step", "steps", "test_loss",
             "train_runtime_s", "train_samples_per_s"]),
    ]


class ConstantTerm:
    """Adds 5 to every micro-batch's loss: no gradient, so training is unchanged."""

    @omnitune.hookimpl
    def loss_terms(self, output: StepOutput) -> dict[str, torch.Tensor]:
        return {"constant": torch.tensor(5.0)}


class ShrinkHead:
    """An L2 penalty on the head's weight, strong enough to shrink it visibly."""

    def __init__(self, task: RegressionTask) -> None:
        self.task = task

    @omnitune.hookimpl
    def loss_terms(self, model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        assert batch["x"].shape[-1] == 1  # the same micro-batch the task saw
        return {"l2": 1000.0 * self.task.model.head.weight.square().sum()}


def test_extra_loss_terms_join_the_task_loss(tmp_path: Path) -> None:
    plain, shifted, penalised = Losses(), Losses(), Losses()
    reference = RegressionTask()
    fit(reference, regression_data(), train_config(epochs=2, batch_size=10, grad_accum=2), tmp_path / "a",
        {}, callbacks=[plain])
    constant = RegressionTask()
    fit(constant, regression_data(), train_config(epochs=2, batch_size=10, grad_accum=2), tmp_path / "b",
        {}, callbacks=[shifted, ConstantTerm()])
    assert shifted.losses == pytest.approx([loss + 5 for loss in plain.losses])
    torch.testing.assert_close(constant.model.head.weight, reference.model.head.weight)

    train_only = Splits(train=regression_data().train)
    unpenalised, shrunk = RegressionTask(), RegressionTask()
    fit(unpenalised, train_only, train_config(max_steps=6, batch_size=10), tmp_path / "c", {})
    fit(shrunk, train_only, train_config(max_steps=6, batch_size=10), tmp_path / "d", {},
        callbacks=[penalised, ShrinkHead(shrunk)])
    assert shrunk.model.head.weight.norm() < 0.5 * unpenalised.model.head.weight.norm()
