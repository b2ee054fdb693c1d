"""Loggers are loop-event plugins chosen by ``train.loggers``: each backend, read back with its own
reader, holds the same numbers as metrics.jsonl, the resolved config and the final metrics."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

import omnitune
from omnitune.errors import ConfigError

from conftest import sentiment_rows, tiny_run, write_csv

TRACKERS = [name for name in ("mlflow", "wandb") if importlib.util.find_spec(name) is not None]


@pytest.fixture(scope="module")
def logged_run(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run with every logger that is installed; MLflow on a local file store, W&B offline."""
    root = tmp_path_factory.mktemp("logged")
    data = write_csv(root / "reviews.csv", sentiment_rows(160))
    output_dir = root / "run"
    tracking = {"experiment": "omnitune-tests", "wandb_mode": "offline",
                "mlflow_tracking_uri": (root / "mlruns").as_uri()}
    run = tiny_run(tiny_bert, data, output_dir, max_steps=6, eval_every=3, log_every=1,
                   loggers=["jsonl", "tensorboard", "csv", *TRACKERS], tracking=tracking)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            patch.setenv(variable, str(root / "wandb-home"))
        patch.setenv("WANDB_SILENT", "true")
        omnitune.finetune(run, plugins=omnitune.load_plugins())
    return output_dir


def jsonl_records(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def train_losses(output_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in jsonl_records(output_dir) if "loss" in r}


def test_tensorboard_holds_the_curves_config_and_final_metrics(logged_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logged_run / "tensorboard")).Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "train/samples_per_s", "eval/accuracy", "eval/loss",
            "test/accuracy"} <= set(scalars)
    logged = {e.step: e.value for e in events.Scalars("train/loss")}
    assert logged == pytest.approx(train_losses(logged_run), rel=1e-6)
    lrs = [e.value for e in events.Scalars("train/lr")]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]  # linear decay after warmup
    assert [e.step for e in events.Scalars("eval/accuracy")] == [3, 6]
    assert "lr: 0.003" in events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    final = json.loads((logged_run / "artifact" / "metrics.json").read_text())
    assert events.Scalars("final/test_accuracy")[0].value == pytest.approx(final["test_accuracy"])


def test_csv_rows_match_metrics_jsonl(logged_run: Path) -> None:
    with open(logged_run / "csv" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    losses = {int(r["step"]): float(r["value"]) for r in rows if (r["split"], r["name"]) == ("train", "loss")}
    assert losses == pytest.approx(train_losses(logged_run))
    evals = [r for r in rows if r["split"] == "eval" and r["name"] == "accuracy"]
    assert [int(r["step"]) for r in evals] == [3, 6]
    assert {r["name"] for r in rows if r["split"] == "final"} >= {"test_accuracy", "eval_accuracy", "steps"}
    assert "lr: 0.003" in (logged_run / "csv" / "hparams.yaml").read_text()


@pytest.mark.skipif("mlflow" not in TRACKERS, reason="mlflow is not installed (extra 'mlflow')")
def test_mlflow_file_store_holds_params_metrics_and_status(logged_run: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(logged_run.parent / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("omnitune-tests")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == "run" and found.info.status == "FINISHED"
    assert found.data.params["train.lr"] == "0.003"
    assert found.data.params["backbone.name"] == "transformers"
    history = {m.step: m.value for m in client.get_metric_history(found.info.run_id, "train/loss")}
    assert history == pytest.approx(train_losses(logged_run))
    final = json.loads((logged_run / "artifact" / "metrics.json").read_text())
    assert found.data.metrics["final/test_accuracy"] == pytest.approx(final["test_accuracy"])


@pytest.mark.skipif("wandb" not in TRACKERS, reason="wandb is not installed (extra 'wandb')")
def test_wandb_offline_run_records_metrics_and_config(logged_run: Path) -> None:
    (run_file,) = (logged_run / "wandb").glob("offline-run-*/run-*.wandb")
    records = run_file.read_bytes()  # W&B's transaction log; its strings are stored as written
    for step, loss in train_losses(logged_run).items():
        assert json.dumps(loss).encode() in records, f"step {step} loss missing"
    for key in (b"train/loss", b"eval/accuracy", b"test/accuracy", b"train.lr"):
        assert key in records


def test_a_missing_tracker_package_is_a_config_error(tiny_bert: Path, sentiment_csv: Path,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      plugins: omnitune.Plugins) -> None:
    from omnitune import loggers

    monkeypatch.setitem(loggers.LOGGERS, "mlflow", ("omnitune.loggers.mlflow_client:MLflowLogger",
                                                    "no_such_tracker_package", "mlflow"))
    run = tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", max_steps=1, loggers=["mlflow"])
    with pytest.raises(ConfigError, match=r"'mlflow' needs the 'no_such_tracker_package' package.*"
                                          r"omnitune\[mlflow\]"):
        omnitune.finetune(run, plugins=plugins)


def test_an_unknown_logger_name_is_a_config_error(tiny_bert: Path, sentiment_csv: Path,
                                                  tmp_path: Path) -> None:
    run = tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", loggers=["jsonl", "neptune"])
    with pytest.raises(ConfigError, match=r"train\.loggers\.1.*'tensorboard'"):
        omnitune.load_config(run)
