"""Hyperparameter search (omnitune.tune) on Optuna, on a hand-made task that trains in a blink:
fitting y = 2x + 3 with one linear layer in 20 AdamW steps, which needs a learning rate between
about 0.2 and 1 (below, the line is not reached; above, the steps overshoot)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field
from test_loop import RegressionTask
from torch import nn

import omnitune
from omnitune.cli import main as cli
from omnitune.data import Splits

LR_SPACE = {"train.lr": {"type": "float", "low": 1.0e-4, "high": 10.0, "log": True}}
TESTS = Path(__file__).parent


class LineOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(64, ge=8, description="Points on the line.")


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(1, 1)
        nn.init.zeros_(self.backbone.weight)
        nn.init.zeros_(self.backbone.bias)
        self.head = nn.Identity()
        self.num_features = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)).squeeze(-1)

    def export(self, directory: Path) -> None:
        """Nothing to export: the weights are all in the artifact."""


class LineTask(RegressionTask):
    """Regression of y = 2x + 3; the loss (mean squared error) is the monitored metric."""

    def __init__(self, backbone: LineModel) -> None:
        self.model = backbone


def line_data(options: LineOptions) -> Splits:
    xs = torch.linspace(-1, 1, options.samples).tolist()
    rows = [(x, 2 * x + 3) for x in xs]
    return Splits(train=rows[0::2], validation=rows[1::2])


class LinePlugin:
    """Registers the hand-made task, its model and its data."""

    @omnitune.hookimpl
    def register_tasks(self, register: Any) -> None:
        register("line", lambda _c, *, backbone, head, data_info: LineTask(backbone), config=NoOptions)

    @omnitune.hookimpl
    def register_backbones(self, register: Any) -> None:
        register("line-model", lambda _c, export_dir=None: LineModel(), config=NoOptions)

    @omnitune.hookimpl
    def register_datasets(self, register: Any) -> None:
        register("line-points", line_data, config=LineOptions)


class KillInTrial:
    """Kills its own process (SIGKILL, no clean-up) at the first step of the given trial."""

    def __init__(self, trial: int) -> None:
        self.folder = f"trial-{trial:04d}"

    @omnitune.hookimpl
    def on_step_end(self, state: Any) -> None:
        if Path(state.output_dir).name == self.folder:
            os.kill(os.getpid(), signal.SIGKILL)


class InterruptInTrial:
    """Sends SIGINT to its own process (as Ctrl-C does) at the first step of the given trial."""

    def __init__(self, trial: int) -> None:
        self.folder = f"trial-{trial:04d}"

    @omnitune.hookimpl
    def on_step_end(self, state: Any) -> None:
        if Path(state.output_dir).name == self.folder:
            os.kill(os.getpid(), signal.SIGINT)


class LogTrialStart:
    """Appends each trial's folder name to a file shared by several processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @omnitune.hookimpl
    def on_fit_start(self, state: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{Path(state.output_dir).name} {os.getpid()}\n")


def line_run(**train: Any) -> dict[str, Any]:
    settings = {"epochs": 5, "batch_size": 8, "lr": 0.01, "warmup_ratio": 0.0, "schedule": "constant",
                "max_grad_norm": None, "weight_decay": 0.0, "progress": False, "seed": 0, **train}
    return {"task": "line", "backbone": "line-model", "dataset": "line-points", "train": settings,
            "output_dir": "unused"}


def search(folder: Path, *extra: object, **options: Any) -> omnitune.TuneResult:
    settings = {"trials": 4, "metric": "eval_loss", "pruner": "none", "seed": 0,
                "output_dir": folder} | options
    plugins = omnitune.load_plugins([LinePlugin(), *extra], autoload=False)
    return omnitune.tune(line_run(), LR_SPACE, plugins=plugins, **settings)


def in_subprocess(code: str) -> subprocess.Popen[str]:
    """Run ``code`` in a fresh interpreter that can import this test module."""
    prelude = f"import sys; sys.path.insert(0, {str(TESTS)!r}); from test_tune import *\n"
    return subprocess.Popen([sys.executable, "-c", prelude + code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def trials_of(folder: Path, study: str = "omnitune") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{folder / 'study.db'}").trials


def test_a_search_finds_the_learning_rate_the_task_needs(tmp_path: Path) -> None:
    result = search(tmp_path, trials=8)
    assert 0.1 < result.best_params["train.lr"] < 2.0, result.best_params
    assert result.best_value < 0.25  # close to the line; at lr 0.01 the loss stays above 5
    untuned = omnitune.finetune(line_run(), output_dir=str(tmp_path / "untuned"),
                                plugins=omnitune.load_plugins([LinePlugin()], autoload=False))
    assert untuned.metrics["eval_loss"] > 5
    best_config = yaml.safe_load(result.files["best_config"].read_text())
    assert best_config["train"]["lr"] == result.best_params["train.lr"]
    assert best_config["task"]["name"] == "line"
    # only the best trial's folder is left, with its artifact and without checkpoints
    assert [p.name for p in (tmp_path / "trials").iterdir()] == [result.best_artifact.parent.name]
    assert (result.best_artifact / "model.safetensors").is_file()
    assert not (result.best_artifact.parent / "checkpoints").exists()
    rows = json.loads(result.files["trials"].read_text())
    assert rows[0]["value"] == result.best_value and len(rows) == 8
    assert all(row["metrics"]["eval_loss"] == row["value"] for row in rows if row["state"] == "complete")
    assert {"history", "importances"} <= result.files.keys()
    assert result.files["history"].stat().st_size > 1000


@pytest.mark.parametrize(("prune_after", "reported"), [(0, [32]), (64, [32, 64])])
def test_the_pruner_stops_a_hopeless_trial_at_its_first_evaluation_after_prune_after(
        tmp_path: Path, prune_after: int, reported: list[int]) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="omnitune", direction="minimize")
    for lr in (0.3, 0.5, 1e-4):  # two good trials, then a hopeless one
        study.enqueue_trial({"train.lr": lr})
    search(tmp_path, trials=3, pruner="median", startup_trials=2, prune_after=prune_after,
           resume=True, storage=storage)
    trials = trials_of(tmp_path)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    # 32 examples (4 steps) an epoch, evaluated each epoch: the good ones reported 5 times, the
    # bad one until the first evaluation at which pruning is allowed
    assert sorted(trials[0].intermediate_values) == [32, 64, 96, 128, 160]
    assert sorted(trials[2].intermediate_values) == reported
    assert not (tmp_path / "trials" / "trial-0002").exists()


def test_the_pruner_compares_batch_sizes_at_equal_examples_seen(tmp_path: Path) -> None:
    """A batch-64 trial reaches an epoch in half the steps of a batch-32 one: its evaluations are
    reported at examples seen, so the median pruner judges it against the batch-32 trials' values
    after the same 128 examples (at step 2, not after 256 examples at step 4)."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="omnitune", direction="minimize")
    for lr, batch_size in ((0.3, 32), (0.5, 32), (1e-4, 64)):  # two good trials, then a hopeless one
        study.enqueue_trial({"train.lr": lr, "train.batch_size": batch_size})
    space = LR_SPACE | {"train.batch_size": {"type": "categorical", "choices": [32, 64]}}
    run = line_run() | {"dataset": {"name": "line-points", "samples": 256}}  # 128 training points
    omnitune.tune(run, space, trials=3, metric="eval_loss", pruner="median", startup_trials=2,
                  output_dir=tmp_path, storage=storage, resume=True,
                  plugins=omnitune.load_plugins([LinePlugin()], autoload=False))
    good, other, hopeless = trials_of(tmp_path)
    assert [t.state.name for t in (good, other, hopeless)] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert sorted(good.intermediate_values) == [128, 256, 384, 512, 640]  # 4 steps an epoch
    assert sorted(hopeless.intermediate_values) == [128]  # 2 steps an epoch: pruned at its first
    assert hopeless.intermediate_values[128] > max(t.intermediate_values[128] for t in (good, other))


def test_a_killed_search_resumes_from_sqlite_without_repeating_finished_trials(tmp_path: Path) -> None:
    killed = in_subprocess(f"search(Path({str(tmp_path)!r}), KillInTrial(2))")
    killed.communicate(timeout=900)
    assert killed.returncode == -signal.SIGKILL
    before = trials_of(tmp_path)
    assert [t.state.name for t in before] == ["COMPLETE", "COMPLETE", "RUNNING"]

    search(tmp_path, resume=True)
    after = trials_of(tmp_path)
    states = [t.state.name for t in after]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    for old, new in zip(before[:2], after[:2], strict=True):  # finished trials untouched
        assert (new.params, new.value, new.user_attrs["pid"]) == (old.params, old.value, killed.pid)
    assert after[3].params == before[2].params  # the killed trial ran again, in this process
    assert after[3].user_attrs["retry_of"] == 2
    assert {t.user_attrs["pid"] for t in after[3:]} == {os.getpid()}
    assert not (tmp_path / "trials" / "trial-0002").exists()


def test_a_search_stopped_by_ctrl_c_runs_the_stopped_trial_again_on_resume(tmp_path: Path) -> None:
    with pytest.raises(omnitune.errors.TrainingInterrupted):
        search(tmp_path, InterruptInTrial(1), trials=3)
    search(tmp_path, trials=3, resume=True)
    trials = trials_of(tmp_path)
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].user_attrs["interrupted"] and trials[2].user_attrs["retry_of"] == 1
    assert trials[2].params == trials[1].params


def test_a_finished_study_is_not_extended_without_resume(tmp_path: Path) -> None:
    search(tmp_path, trials=1)
    with pytest.raises(omnitune.ConfigError, match="--resume"):
        search(tmp_path, trials=2)
    search(tmp_path, trials=1, resume=True)  # already holds one finished trial: nothing to run
    assert len(trials_of(tmp_path)) == 1


def test_two_processes_share_one_study_without_running_a_trial_twice(tmp_path: Path) -> None:
    log = tmp_path / "started.txt"
    workers = [in_subprocess(f"search(Path({str(tmp_path)!r}), LogTrialStart(Path({str(log)!r})), "
                             f"trials=6, resume=True, seed={seed})") for seed in (1, 2)]
    for worker in workers:
        _, err = worker.communicate(timeout=900)
        assert worker.returncode == 0, err[-3000:]
    started = [line.split() for line in log.read_text().splitlines()]
    folders = [folder for folder, _ in started]
    assert len(folders) == len(set(folders)), "a trial ran twice"
    assert {int(pid) for _, pid in started} == {w.pid for w in workers}, "one process did all the work"
    trials = trials_of(tmp_path)
    assert 6 <= len(trials) <= 7  # the second process may start one while the first finishes the 6th
    assert sorted(folders) == [f"trial-{t.number:04d}" for t in trials]
    assert all(t.state.name == "COMPLETE" for t in trials)


@pytest.mark.parametrize(("space", "named"), [
    ({"train.lrr": {"type": "float", "low": 0.1, "high": 1.0}}, "train.lrr: Extra inputs"),
    ({"train.warmup_ratio": {"type": "float", "low": 0.0, "high": 1.0}}, "train.warmup_ratio"),
    ({"train.batch_size": {"type": "categorical", "choices": [8, 0]}}, "train.batch_size"),
    ({"dataset.samples": {"type": "int", "low": 2, "high": 64}}, "dataset.samples"),
    ({"dataset.points": {"type": "int", "low": 8, "high": 64}}, "dataset.points"),
    ({"train.lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "train.lr"),
    ({"train.lr": {"type": "float", "low": 1.0, "high": 0.1}}, "train.lr"),
    ({"output_dir": {"type": "categorical", "choices": ["a"]}}, "output_dir"),
])
def test_an_invalid_space_is_refused_naming_the_key_before_any_trial(
        tmp_path: Path, space: dict[str, Any], named: str) -> None:
    plugins = omnitune.load_plugins([LinePlugin()], autoload=False)
    with pytest.raises(omnitune.ConfigError, match=named.replace(".", r"\.")):
        omnitune.tune(line_run(), space, output_dir=tmp_path / "tune", plugins=plugins)
    assert not (tmp_path / "tune").exists()


def test_the_command_line_refuses_a_bad_space_with_exit_code_2(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n"
                     "backbone.pooling: {type: categorical, choices: [mean, max]}\n")
    assert cli(["tune", "--space", str(space), "--output-dir", str(tmp_path / "t")]) == 2
    assert "backbone.pooling = 'max'" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_the_command_line_runs_a_search_on_a_real_text_model(
        tiny_bert: Path, sentiment_csv: Path, tmp_path: Path) -> None:
    from conftest import tiny_run

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", epochs=1)))
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
                     "backbone.pooling: {type: categorical, choices: [mean, cls]}\n")
    out = tmp_path / "tune"
    assert cli(["tune", str(config), "--space", str(space), "--trials", "2", "--seed", "0",
                "--output-dir", str(out), "--set", "dataset.max_train_samples=96"]) == 0
    best = omnitune.load_config(out / "best_config.yaml")
    assert best.dataset.options["max_train_samples"] == 96 and best.train.epochs == 1
    artifacts = list(out.glob("trials/*/artifact"))
    assert len(artifacts) == 1
    predictor = omnitune.Predictor.load(artifacts[0])
    assert predictor.config.train.lr == best.train.lr
    assert predictor.predict(["a wonderful film"])[0]["label"] in ("pos", "neg")
    # trials never pay for the test split: only the chosen artifact is tested, once, afterwards
    metrics = json.loads((artifacts[0] / "metrics.json").read_text())
    assert "eval_accuracy" in metrics and not [key for key in metrics if key.startswith("test_")]
    assert {"test_loss", "test_accuracy"} <= omnitune.evaluate(artifacts[0], split="test").keys()


def test_a_list_valued_field_is_searched_over_list_choices(tmp_path: Path) -> None:
    """The vision task's crop range ``task.scale`` is a pair: each choice is a list, checked by the
    task's own validator before any trial, and handed to the trial as the list it was."""
    from omnitune.tuning_space import check_space, load_space

    base = {"task": {"name": "image-classification"}, "backbone": {"name": "efficientnet-lite0"},
            "dataset": {"name": "fashion-mnist"}, "output_dir": str(tmp_path)}
    registry = omnitune.load_plugins().registry
    good = load_space({"task.scale": {"type": "categorical", "choices": [[0.35, 1.0], [1.0, 1.0]]}})
    check_space(good, omnitune.load_config(base).model_dump(mode="json"), registry)
    bad = load_space({"task.scale": {"type": "categorical", "choices": [[1.0, 1.0], [0.5, 0.2]]}})
    with pytest.raises(omnitune.ConfigError, match=r"task\.scale = \[0\.5, 0\.2\]"):
        check_space(bad, omnitune.load_config(base).model_dump(mode="json"), registry)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    study.enqueue_trial({"task.scale": [1.0, 1.0]})
    assert good["task.scale"].suggest(study.ask(), "task.scale") == [1.0, 1.0]


def test_the_plots_leave_a_list_valued_choice_out_of_the_importances(tmp_path: Path) -> None:
    """Optuna cannot hash a distribution with list choices, so its importance ranking of such a
    parameter fails: the importances plot ranks the other parameters."""
    from omnitune.tuning_report import _plots
    from omnitune.tuning_space import load_space

    space = load_space({"train.lr": {"type": "float", "low": 0.1, "high": 1.0},
                        "train.epochs": {"type": "int", "low": 1, "high": 3},
                        "task.scale": {"type": "categorical", "choices": [[0.35, 1.0], [1.0, 1.0]]}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for value in range(4):
        trial = study.ask()
        params = {key: param.suggest(trial, key) for key, param in space.items()}
        study.tell(trial, float(value) + params["train.lr"])
    written = _plots(study, tmp_path)
    assert written.keys() == {"history", "importances"}
    assert written["importances"].stat().st_size > 1000
