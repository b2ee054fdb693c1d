"""What every classification task shares for imbalanced and small data: class weights in the
loss, the imbalance-aware monitor, the small-validation warning, and select_by."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_loop import RegressionTask, regression_data, train_config

import omnitune
from omnitune.classification import (
    LabelSet,
    TrainingLabels,
    binary_cross_entropy_step,
    cross_entropy_step,
    soft_cross_entropy,
    training_label_counts,
)
from omnitune.data import Splits
from omnitune.errors import ConfigError
from omnitune.loop import fit
from omnitune.selection import few_steps_warning, small_validation_warning

from conftest import sentiment_rows, tiny_run, write_csv

LABELS = LabelSet(["a", "b", "c"])


def test_balanced_weights_are_n_over_k_times_count_and_weigh_cross_entropy_by_hand() -> None:
    training = TrainingLabels({"a": 6, "b": 3, "c": 1}, size=10)
    weights = training.loss_weights("balanced", LABELS)
    assert weights.tolist() == pytest.approx([10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)])
    torch.manual_seed(0)
    logits, targets = torch.randn(7, 3), torch.tensor([0, 0, 1, 2, 2, 0, 1])
    nll = -logits.log_softmax(-1)[torch.arange(7), targets]
    by_hand = (weights[targets] * nll).sum() / weights[targets].sum()
    assert cross_entropy_step(logits, targets, weight=weights).loss.item() == pytest.approx(by_hand.item())
    assert cross_entropy_step(logits, targets).loss.item() == pytest.approx(nll.mean().item())


def test_multi_label_balanced_is_pos_weight_negatives_over_positives_by_hand() -> None:
    training = TrainingLabels({"a": 2, "b": 5, "c": 8}, size=10)
    pos_weight = training.loss_weights("balanced", LABELS, multi_label=True)
    assert pos_weight.tolist() == pytest.approx([8 / 2, 5 / 5, 2 / 8])
    torch.manual_seed(1)
    logits, targets = torch.randn(4, 3), torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 0]]).float()
    by_hand = -(pos_weight * targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits)).mean()
    step = binary_cross_entropy_step(logits, targets, pos_weight=pos_weight)
    assert step.loss.item() == pytest.approx(by_hand.item())


def test_explicit_weights_default_to_one_and_unknown_labels_are_named() -> None:
    training = TrainingLabels(None, None)
    assert training.loss_weights({"c": 4.0}, LABELS).tolist() == [1.0, 1.0, 4.0]
    assert training.loss_weights(None, LABELS) is None
    with pytest.raises(ConfigError, match=r"\['z'\] are not in the dataset"):
        training.loss_weights({"z": 2.0}, LABELS)


def test_monitor_is_macro_f1_beyond_one_and_a_half_times_else_accuracy() -> None:
    assert TrainingLabels({"a": 16, "b": 10}, 26).monitor()[0] == "macro_f1"  # 1.6x
    assert TrainingLabels({"a": 15, "b": 10}, 25).monitor()[0] == "accuracy"  # 1.5x exactly
    metric, why = TrainingLabels({"a": 123, "b": 66}, 189).monitor()
    assert metric == "macro_f1" and "1.86x" in why and "a 123, b 66" in why
    assert TrainingLabels({"a": 3, "b": 0}, 3).monitor()[0] == "macro_f1"
    assert TrainingLabels(None, None).monitor()[0] == "accuracy"


def test_training_label_counts_count_each_label_of_multi_label_rows() -> None:
    class Row:
        def __init__(self, label: object) -> None:
            self.label = label

    rows = [Row("a"), Row(("a", "c")), Row(("c",)), Row("x")]
    assert training_label_counts(rows, ["a", "b", "c"]) == {"a": 2, "b": 0, "c": 2}
    assert training_label_counts([object()], ["a"]) is None


def test_balanced_weights_raise_minority_recall_on_an_imbalanced_task() -> None:
    """Logistic regression on two overlapping 2-D Gaussians, 9:1: unweighted, half the minority
    class is predicted as the majority; balanced weights recover most of it."""
    generator = torch.Generator().manual_seed(0)
    features = torch.cat([torch.randn(900, 2, generator=generator),
                          torch.randn(100, 2, generator=generator) + 1.5])
    targets = torch.cat([torch.zeros(900, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    labels = LabelSet(["major", "minor"])
    counts = {"major": 900, "minor": 100}

    def minority_recall(setting: object) -> float:
        weight = TrainingLabels(counts, len(targets)).loss_weights(setting, labels)
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 2)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(300):
            optimizer.zero_grad()
            cross_entropy_step(model(features), targets, weight=weight).loss.backward()
            optimizer.step()
        predicted = model(features).argmax(-1)
        return (predicted[targets == 1] == 1).float().mean().item()

    unweighted, balanced = minority_recall(None), minority_recall("balanced")
    assert unweighted < 0.6 and balanced > unweighted + 0.25, (unweighted, balanced)  # 0.52, 0.85


def test_small_validation_warning_names_the_numbers_and_the_ways_out() -> None:
    message = small_validation_warning(29, "macro_f1")
    assert "29 examples" in message and f"{0.5 / math.sqrt(29):.1%}" in message and "3.4%" in message
    assert "train.select_by=last" in message and "train.select_by=train_loss" in message
    assert small_validation_warning(100, "accuracy") is None
    assert small_validation_warning(20, "loss") is None


def test_few_steps_warning_names_the_numbers_and_the_ways_out() -> None:
    message = few_steps_warning(12, 94, 32)
    assert "only 12 optimizer steps (94 training examples, 32 per step)" in message
    assert "train.batch_size" in message and "train.epochs" in message and "docs/small-data.md" in message
    assert few_steps_warning(50, 1600, 32) is None


@pytest.fixture(scope="module")
def imbalanced_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated reviews, two negatives dropped of every three: pos 2x neg."""
    rows = [row for index, row in enumerate(sentiment_rows(240)) if row["label"] == "pos" or index % 3 == 1]
    return write_csv(tmp_path_factory.mktemp("imbalanced") / "reviews.csv", rows)


def test_an_imbalanced_run_monitors_macro_f1_warns_on_small_validation_and_keeps_the_last(
        tiny_bert: Path, imbalanced_csv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = tiny_run(tiny_bert, imbalanced_csv, tmp_path / "run", epochs=2, select_by="last")
    with caplog.at_level(logging.INFO, logger="omnitune"):
        result = omnitune.finetune(run, plugins=omnitune.load_plugins())
    assert result.task.monitor == "macro_f1"
    assert result.task.loss_weights is not None and result.task.loss_weights[0] > result.task.loss_weights[1]
    assert result.metrics["best_step"] == result.metrics["steps"]
    text = caplog.text
    assert "keeping the last weights" in text


def test_a_small_validation_split_is_warned_about_and_the_monitor_logged(
        tiny_bert: Path, imbalanced_csv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = tiny_run(tiny_bert, imbalanced_csv, tmp_path / "run", epochs=1)
    with caplog.at_level(logging.INFO, logger="omnitune"):
        omnitune.finetune(run, plugins=omnitune.load_plugins())
    assert "monitoring macro_f1 (max) on validation: the largest training class has" in caplog.text
    assert "validation has only" in caplog.text and "train.select_by=last" in caplog.text
    assert "optimizer steps" in caplog.text  # one epoch of a small split


def test_a_run_of_explicit_max_steps_is_not_warned_about_its_step_count(
        tiny_bert: Path, imbalanced_csv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = tiny_run(tiny_bert, imbalanced_csv, tmp_path / "run", epochs=1)
    run["train"] |= {"max_steps": 2}
    with caplog.at_level(logging.INFO, logger="omnitune"):
        omnitune.finetune(run, plugins=omnitune.load_plugins())
    assert "validation has only" in caplog.text and "optimizer steps" not in caplog.text


def test_soft_cross_entropy_with_one_hot_targets_is_the_weighted_cross_entropy() -> None:
    torch.manual_seed(2)
    logits, targets = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    weight = torch.tensor([0.5, 1.0, 3.0])
    soft = F.one_hot(targets, 3).float()
    expected = cross_entropy_step(logits, targets, weight=weight).loss
    assert soft_cross_entropy(logits, soft, weight).item() == pytest.approx(expected.item())


class LossRecorder:
    """Records the training loss of every step and the step of every evaluation."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}

    @omnitune.hookimpl
    def on_step_end(self, state: object, logs: dict[str, float]) -> None:
        self.losses[state.step] = logs["loss"]


def test_select_by_train_loss_keeps_the_interval_of_lowest_mean_training_loss(tmp_path: Path) -> None:
    """Without a validation split: the kept weights are those of the evaluation whose steps since
    the previous one had the lowest mean training loss; select_by=last keeps the final ones."""
    data = Splits(train=regression_data().train)
    recorder = LossRecorder()
    result = fit(RegressionTask(), data, train_config(epochs=6, batch_size=10, select_by="train_loss"),
                 tmp_path / "loss", {}, callbacks=[recorder])
    steps = sorted(recorder.losses)  # three steps an epoch, 30 items each
    means = {steps[end - 1]: sum(recorder.losses[s] for s in steps[end - 3:end]) / 3
             for end in range(3, 19, 3)}
    best = min(means, key=means.get)
    assert result.metrics["best_step"] == best
    assert result.metrics["selected_train_loss"] == pytest.approx(means[best], rel=1e-5)
    last = fit(RegressionTask(), data, train_config(epochs=2, batch_size=10, select_by="last"),
               tmp_path / "last", {})
    assert last.metrics["best_step"] == last.metrics["steps"] == 6


@pytest.mark.parametrize("kind", ["text", "image"])
def test_an_artifact_from_before_class_weights_loads_to_predict_without_a_warning(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Class weights are computed where training starts: building the task to predict reads no
    label counts, so an artifact whose data_info predates them neither needs them nor warns."""
    old = shutil.copytree(request.getfixturevalue(f"{kind}_artifact"), tmp_path / "old")
    info = json.loads((old / "data_info.json").read_text())
    assert info.pop("train_label_counts") and info.pop("train_size")
    (old / "data_info.json").write_text(json.dumps(info))
    with caplog.at_level(logging.INFO, logger="omnitune"):
        predictor = omnitune.Predictor.load(old)
    assert predictor.task.loss_weights is None
    assert "class_weights" not in caplog.text, caplog.text
