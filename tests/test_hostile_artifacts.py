"""Artifacts and checkpoints that were tampered with, cut short, or written under a umask:
omnitune refuses or recovers with a named error and a documented exit code (issue 16, cases 1, 6, 7)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hardening_fixtures import tiny_artifact  # noqa: F401  (a fixture)

import omnitune
from omnitune.checkpoint import complete_checkpoints, load_checkpoint
from omnitune.errors import CheckpointError, PluginError
from omnitune.predict import Predictor

from conftest import sentiment_rows, tiny_run, write_csv

PAYLOAD = '''
from pathlib import Path
Path(MARKER).write_text("the artifact ran code")
from transformers import BertConfig

class EvilConfig(BertConfig):
    model_type = "evil-bert"
'''


def tamper(artifact: Path, into: Path) -> Path:
    """A copy of ``artifact`` whose config asks for remote code and whose backbone/config.json
    maps AutoConfig to a module placed in its own backbone/ folder."""
    copy = Path(shutil.copytree(artifact, into))
    config = json.loads((copy / "config.json").read_text())
    config["backbone"]["trust_remote_code"] = True
    (copy / "config.json").write_text(json.dumps(config))
    backbone_config = json.loads((copy / "backbone" / "config.json").read_text())
    backbone_config["auto_map"] = {"AutoConfig": "evil.EvilConfig"}
    (copy / "backbone" / "config.json").write_text(json.dumps(backbone_config))
    (copy / "backbone" / "evil.py").write_text(PAYLOAD.replace("MARKER", repr(str(into.parent / "PWNED"))))
    return copy


def test_tampered_artifact_cannot_turn_on_remote_code(tiny_artifact: Path, tmp_path: Path) -> None:  # noqa: F811
    evil = tamper(tiny_artifact, tmp_path / "evil")
    with pytest.raises(CheckpointError, match="--trust-remote-code"):
        Predictor.load(evil)
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "predict", str(evil), "a fine film"],
                          capture_output=True, text=True)
    assert done.returncode == CheckpointError.exit_code, done.stderr
    assert "backbone.trust_remote_code" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "PWNED").exists(), "the artifact's module ran"


def test_remote_code_runs_only_when_the_loader_allows_it(tiny_artifact: Path, tmp_path: Path) -> None:  # noqa: F811
    evil = tamper(tiny_artifact, tmp_path / "evil")
    with pytest.raises(PluginError):  # the module is not a model omnitune can use, but it ran:
        Predictor.load(evil, trust_remote_code=True)
    assert (tmp_path / "PWNED").exists()  # the explicit opt-in is obeyed


def test_untampered_artifact_still_loads(tiny_artifact: Path) -> None:  # noqa: F811
    assert Predictor.load(tiny_artifact).predict("a fine film")[0]["label"] in ("pos", "neg")


@pytest.fixture(scope="module")
def finished_run(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """A 3-step run with a checkpoint at every step (two kept), written under umask 022."""
    folder = tmp_path_factory.mktemp("finished-run")
    data = write_csv(folder / "reviews.csv", sentiment_rows(120))
    config = tiny_run(tiny_bert, data, folder / "run", epochs=1, max_steps=3, checkpoint_every=1)
    previous = os.umask(0o022)
    try:
        omnitune.finetune(config)
    finally:
        os.umask(previous)
    return config, folder / "run"


def copy_run(finished_run: tuple[dict, Path], into: Path) -> dict:
    """A copy of the finished run's folder, and its config pointing at the copy."""
    config, folder = finished_run
    shutil.copytree(folder, into)
    return {**config, "output_dir": str(into)}


def test_a_corrupt_latest_checkpoint_falls_back_to_the_newest_intact_one(
        finished_run: tuple[dict, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = copy_run(finished_run, tmp_path / "run")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [p.name for p in complete_checkpoints(checkpoints)] == ["step-00000002", "step-00000003"]
    (checkpoints / "step-00000003" / "model.safetensors").write_bytes(b"\x00" * 100)
    with caplog.at_level("WARNING", logger="omnitune"):
        result = omnitune.finetune(config, resume=True)
    assert "resuming from" in caplog.text and "step-00000002, the newest checkpoint that loads" in caplog.text
    assert result.metrics["steps"] == 3  # step 3 was trained again from step 2
    load_checkpoint(checkpoints / "step-00000003")  # and saved again, intact


def test_no_loadable_checkpoint_names_each_one_and_exits_6(
        finished_run: tuple[dict, Path], tmp_path: Path) -> None:
    config = copy_run(finished_run, tmp_path / "run")
    evil = pickle.dumps(Evil())  # a pickle that would call print() if it were ever unpickled
    for checkpoint in complete_checkpoints(tmp_path / "run" / "checkpoints"):
        (checkpoint / "training_state.pt").write_bytes(evil)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "omnitune.cli", "train", str(path), "--resume"],
                          capture_output=True, text=True)
    assert done.returncode == CheckpointError.exit_code, done.stderr
    assert "step-00000002 could not be loaded" in done.stderr and "step-00000003" in done.stderr
    assert "Traceback" not in done.stderr and "PWNED-BY-PICKLE" not in done.stdout + done.stderr


def test_a_half_written_metrics_line_is_dropped_on_resume(
        finished_run: tuple[dict, Path], tmp_path: Path) -> None:
    config = copy_run(finished_run, tmp_path / "run")
    log = tmp_path / "run" / "metrics.jsonl"
    with open(log, "a", encoding="utf-8") as handle:
        handle.write('{"step": 4, "loss": 0.69')  # a kill in the middle of an append
    omnitune.finetune(config, resume=True)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and records[-1]["step"] <= 3


def modes(*trees: Path) -> dict[Path, int]:
    return {path: stat.S_IMODE(path.stat().st_mode)
            for tree in trees for path in [tree, *tree.rglob("*")]}


def test_artifact_and_checkpoints_are_readable_by_others_under_umask_022(
        finished_run: tuple[dict, Path]) -> None:
    _, folder = finished_run
    found = modes(folder / "artifact", folder / "checkpoints")
    assert len(found) > 10
    unreadable = {str(path): oct(mode) for path, mode in found.items() if mode & 0o044 != 0o044}
    assert not unreadable  # another user can serve the model
    assert all(mode & 0o011 == 0o011 for path, mode in found.items() if path.is_dir())


def test_a_strict_umask_is_respected_too(finished_run: tuple[dict, Path], tmp_path: Path) -> None:
    config = copy_run(finished_run, tmp_path / "run")
    previous = os.umask(0o077)
    try:
        omnitune.finetune(config, resume=True)  # rewrites the artifact
    finally:
        os.umask(previous)
    found = modes(tmp_path / "run" / "artifact")
    assert found and all(mode & 0o077 == 0 for mode in found.values())


class Evil:
    def __reduce__(self) -> tuple:
        return (print, ("PWNED-BY-PICKLE",))
