"""``train.batch_size: auto``: 32 examples a micro-batch unless a small training split would
leave the epochs under 50 optimizer steps, then 16 or 8; the number chosen is what the run
records."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from test_loop import RegressionTask, regression_data, train_config

import omnitune
from omnitune.api import compose_config
from omnitune.batch_size import auto_batch_size, optimizer_steps, resolve_batch_size
from omnitune.config import TrainConfig
from omnitune.errors import ConfigError
from omnitune.loop import fit

from conftest import tiny_run


@pytest.mark.parametrize(("train_size", "epochs", "grad_accum", "world_size", "expected"), [
    (4000, 2, 1, 1, 32),  # 250 steps at 32
    (800, 1, 1, 1, 16),   # 25 steps at 32, 50 at 16
    (94, 4, 1, 1, 8),     # 12 at 32, 24 at 16, 48 at 8: none reaches 50, so the smallest
    (1600, 1, 1, 1, 32),  # exactly 50 at 32
    (1600, 1, 2, 1, 16),  # accumulation halves the steps
    (1600, 1, 1, 2, 16),  # so does a second process
])
def test_auto_is_the_largest_batch_giving_fifty_optimizer_steps(
        train_size: int, epochs: int, grad_accum: int, world_size: int, expected: int) -> None:
    train = TrainConfig(epochs=epochs, grad_accum=grad_accum)
    assert auto_batch_size(train, train_size, world_size) == expected


def test_optimizer_steps_count_partial_batches_and_accumulation_like_the_loop() -> None:
    assert optimizer_steps(94, 1, 32, 1, 4) == 12   # 3 batches an epoch, the last of 30
    assert optimizer_steps(94, 2, 8, 1, 1) == 6     # 47 examples a process
    assert optimizer_steps(100, 1, 8, 3, 2) == 10   # 13 batches, 5 steps an epoch


def test_explicit_sizes_are_kept_and_max_steps_makes_auto_32() -> None:
    assert resolve_batch_size(TrainConfig(batch_size=4), 10, 1).batch_size == 4
    assert resolve_batch_size(TrainConfig(epochs=1, max_steps=5), 10, 1).batch_size == 32
    assert TrainConfig().batch_size == "auto"


def test_loop_fit_resolves_auto_and_counts_the_examples_of_a_step(tmp_path: Path) -> None:
    result = fit(RegressionTask(), regression_data(), train_config(epochs=2), tmp_path, {})
    assert result.state.examples_per_step == 8  # 30 examples, 2 epochs: 4 steps at 32, 8 at 16
    assert result.state.total_steps == result.state.step == 8


def test_a_finetune_records_the_chosen_size_and_logs_why(
        tiny_bert: Path, sentiment_csv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", epochs=1, batch_size="auto", max_steps=3)
    with caplog.at_level(logging.INFO, logger="omnitune"):
        result = omnitune.finetune(run, plugins=omnitune.load_plugins())
    assert "train.batch_size auto: 32" in caplog.text and "train.max_steps fixes the steps" in caplog.text
    assert result.config.train.batch_size == 32
    saved = json.loads((result.artifact / "config.json").read_text(encoding="utf-8"))
    assert saved["train"]["batch_size"] == 32  # what evaluate and the model card read


def test_a_size_that_is_neither_a_positive_number_nor_auto_is_refused() -> None:
    with pytest.raises(ConfigError, match="train.batch_size"):
        compose_config(overrides=["train.batch_size=big"])
    with pytest.raises(ConfigError, match="train.batch_size"):
        compose_config(overrides=["train.batch_size=0"])


def test_the_error_for_a_union_names_the_field_once_with_both_alternatives() -> None:
    with pytest.raises(ConfigError) as caught:
        compose_config(overrides=["train.batch_size=big"])
    message = str(caught.value)
    assert "train.batch_size: Input should be a valid integer" in message
    assert "; or: Input should be 'auto' (got 'big')" in message
    assert "literal" not in message and "constrained" not in message and message.count("got") == 1
