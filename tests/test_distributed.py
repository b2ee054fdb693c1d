"""torchrun with 2 gloo processes on CPU: same result as 1 process with the same global batch;
SIGTERM on one rank stops all of them with a checkpoint; resume reaches the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_run

RUNNER = textwrap.dedent('''
    import json, os, signal, sys
    import omnitune

    config, stop_at, resume = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "resume"

    class TerminateRankZero:
        @omnitune.hookimpl
        def on_step_end(self, state):
            if state.step == stop_at:
                os.kill(os.getpid(), signal.SIGTERM)

    try:
        omnitune.finetune(config, resume=resume, plugins=omnitune.load_plugins([TerminateRankZero()]))
    except omnitune.OmnituneError as error:
        print(error, file=sys.stderr)
        sys.exit(error.exit_code)
''')


def launch(
    config: dict, processes: int, stop_at: int = 0, resume: bool = False
) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=N`` on the runner script."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "--no-python", sys.executable, "-c", RUNNER,
               json.dumps(config), str(stop_at), "resume" if resume else "fresh"]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "artifact" / "model.safetensors")


@pytest.fixture
def config(tiny_bert_without_dropout: Path, sentiment_csv: Path):
    def make(output_dir: Path, batch_size: int) -> dict:
        run = tiny_run(tiny_bert_without_dropout, sentiment_csv, output_dir, epochs=2,
                       batch_size=batch_size, eval_every=10, checkpoint_every=5)
        run["head"]["dropout"] = 0.0
        return run

    return make


def test_two_processes_match_one_with_the_same_global_batch(config, tmp_path: Path) -> None:
    single = launch(config(tmp_path / "one", batch_size=16), processes=1)
    assert single.returncode == 0, single.stderr[-2000:]
    double = launch(config(tmp_path / "two", batch_size=8), processes=2)
    assert double.returncode == 0, double.stderr[-2000:]

    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    for name in one:
        # A key bias has an exactly zero gradient (softmax ignores a constant shift), so Adam
        # turns rounding noise into ~1e-5 updates there; every other tensor agrees to ~1e-6.
        atol = 1e-4 if name.endswith("attention.self.key.bias") else 1e-5
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=atol, msg=name)
    metrics_one = json.loads((tmp_path / "one" / "artifact" / "metrics.json").read_text())
    metrics_two = json.loads((tmp_path / "two" / "artifact" / "metrics.json").read_text())
    assert metrics_two["steps"] == metrics_one["steps"]
    assert metrics_two["test_accuracy"] == pytest.approx(metrics_one["test_accuracy"])
    assert metrics_two["test_loss"] == pytest.approx(metrics_one["test_loss"], rel=1e-4)
    # only rank 0 writes: one metrics line per log event, not two
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert sum('"final": true' in line for line in lines) == 1


def test_sigterm_stops_every_rank_with_a_checkpoint_and_resume_matches(config, tmp_path: Path) -> None:
    straight = launch(config(tmp_path / "straight", batch_size=8), processes=2)
    assert straight.returncode == 0, straight.stderr[-2000:]

    stopped = launch(config(tmp_path / "stopped", batch_size=8), processes=2, stop_at=7)
    assert stopped.returncode != 0
    assert "stopped by SIGTERM at step 7" in stopped.stderr
    assert (tmp_path / "stopped" / "checkpoints" / "step-00000007" / "complete.json").is_file()
    assert not (tmp_path / "stopped" / "artifact").exists()

    resumed = launch(config(tmp_path / "stopped", batch_size=8), processes=2, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, actual = weights(tmp_path / "straight"), weights(tmp_path / "stopped")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
