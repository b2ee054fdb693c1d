"""A run killed with SIGKILL mid-training resumes to the same weights as an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import tiny_run

RUNNER = textwrap.dedent('''
    import json, logging, os, signal, sys
    import omnitune

    logging.basicConfig(level=logging.INFO)

    config, kill_at, resume = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "resume"

    class KillAfterCheckpoint:
        @omnitune.hookimpl
        def on_checkpoint_saved(self, state, path):
            if state.step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    omnitune.finetune(config, resume=resume, plugins=omnitune.load_plugins([KillAfterCheckpoint()]))
''')


def run(config: dict, kill_at: int = 0, resume: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUNNER, json.dumps(config), str(kill_at),
                           "resume" if resume else "fresh"], capture_output=True, text=True, check=False)


def test_killed_run_resumes_to_identical_weights(
    tiny_bert: Path, sentiment_csv: Path, tmp_path: Path
) -> None:
    settings = {"epochs": 3, "checkpoint_every": 5, "eval_every": 10, "keep_checkpoints": 2}
    straight = tiny_run(tiny_bert, sentiment_csv, tmp_path / "straight", **settings)
    interrupted = tiny_run(tiny_bert, sentiment_csv, tmp_path / "interrupted", **settings)

    assert run(straight).returncode == 0
    killed = run(interrupted, kill_at=15)  # mid-epoch 2 (20 steps an epoch), after a checkpoint
    assert killed.returncode == -signal.SIGKILL
    checkpoints = tmp_path / "interrupted" / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("step-*")) == ["step-00000010", "step-00000015"]
    assert not (tmp_path / "interrupted" / "artifact").exists()

    resumed = run(interrupted, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr

    expected = load_file(tmp_path / "straight" / "artifact" / "model.safetensors")
    actual = load_file(tmp_path / "interrupted" / "artifact" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    straight_metrics = json.loads((tmp_path / "straight" / "artifact" / "metrics.json").read_text())
    resumed_metrics = json.loads((tmp_path / "interrupted" / "artifact" / "metrics.json").read_text())
    assert resumed_metrics["test_loss"] == straight_metrics["test_loss"]
    assert resumed_metrics["best_step"] == straight_metrics["best_step"]


def test_half_written_checkpoint_is_ignored(tiny_bert: Path, sentiment_csv: Path, tmp_path: Path) -> None:
    import omnitune

    config = tiny_run(tiny_bert, sentiment_csv, tmp_path / "run", max_steps=4, checkpoint_every=2)
    omnitune.finetune(config)
    checkpoints = tmp_path / "run" / "checkpoints"
    torn = checkpoints / ".step-00000006.tmp-crash"  # what a crash during a write leaves
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"\0" * 10)
    (checkpoints / "latest").write_text("step-00000006\n")  # a stale pointer, too

    from omnitune.checkpoint import latest_checkpoint

    assert latest_checkpoint(checkpoints).name == "step-00000004"
    result = omnitune.finetune(config, resume=True)
    assert result.metrics["steps"] == 4
