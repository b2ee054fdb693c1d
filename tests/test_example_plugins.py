"""The out-of-tree example plugins, pip-installed into a throwaway venv and driven through the
real command line: discovery, train, save, predict, and a CSV logger made of loop events only."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import yaml

from conftest import PluginEnv, tabular_rows, tabular_run, write_csv


def omnitune(env: PluginEnv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(env.python), "-m", "omnitune.cli", *args],
                          capture_output=True, text=True, check=False)


def test_example_plugins_are_discovered_with_their_versions(example_env: PluginEnv) -> None:
    listed = omnitune(example_env, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert plugins["acme-tabular"]["version"] == "0.1.0"
    assert plugins["acme-tabular"]["source"] == "entry point acme_tabular.hooks"
    assert set(plugins["acme-tabular"]["registered"]) == {
        "task:tabular-classification", "backbone:tabular-mlp", "dataset:csv-table"}
    assert plugins["acme-csv-logger"]["hooks"] == [
        "on_checkpoint_saved", "on_evaluate_end", "on_fit_end", "on_fit_start", "on_step_end"]
    assert "text" in plugins  # the built-in plugin keeps working beside them


def test_train_save_predict_and_csv_log(example_env: PluginEnv, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "customers.csv", tabular_rows(200))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tabular_run(data, tmp_path / "run", epochs=3)))

    trained = omnitune(example_env, "train", str(config), "--json")
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.splitlines()[-1])
    assert summary["metrics"]["test_accuracy"] > 0.85, summary["metrics"]

    predicted = omnitune(example_env, "predict", summary["artifact"], '{"income": 95000, "age": 75, '
                         '"noise": 0}', "15000,20,0.3", "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert [json.loads(line)["label"] for line in predicted.stdout.splitlines()] == ["yes", "no"]

    with open(tmp_path / "run" / "training_log.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    steps = int(summary["metrics"]["steps"])
    losses = [row for row in rows if row["event"] == "step" and row["name"] == "loss"]
    assert [int(row["step"]) for row in losses] == list(range(1, steps + 1))
    assert rows[0] == {"event": "fit_start", "step": "0", "epoch": "0", "name": "total_steps",
                       "value": str(steps)}
    evaluations = [r for r in rows if r["event"] == "evaluate:eval" and r["name"] == "eval_accuracy"]
    assert [int(r["epoch"]) for r in evaluations] == list(range(1, 4))  # one per epoch
    checkpoints = [r for r in rows if r["event"] == "checkpoint"]
    assert all(Path(r["value"]).name == f"step-{int(r['step']):08d}" for r in checkpoints)
    final = {r["name"]: float(r["value"]) for r in rows if r["event"] == "fit_end"}
    assert final["test_accuracy"] == summary["metrics"]["test_accuracy"]
