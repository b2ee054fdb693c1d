"""SIGKILL at several points, one of them in the middle of a checkpoint write: the run resumes
from the last complete checkpoint to the same final weights; nothing is ever half-published."""

from __future__ import annotations

import json
import signal
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
    import omnitune.checkpoint as checkpoint

    config, point, resume = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] == "resume"

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class KillBetweenCheckpoints:
        @omnitune.hookimpl
        def on_step_end(self, state):
            if point == "between-checkpoints" and state.step == 7:
                die()

    original_torch_save, original_write_json = checkpoint.torch.save, checkpoint.write_json

    def torch_save_then_die(obj, path):
        if point == "mid-checkpoint" and "step-00000010" in str(path):
            with open(path, "wb") as handle:  # half the training state, then the kill
                handle.write(b"partial")
            die()
        original_torch_save(obj, path)

    def write_json_then_die(path, data):
        original_write_json(path, data)
        if point == "mid-artifact" and path.name == "config.json":
            die()

    checkpoint.torch.save, checkpoint.write_json = torch_save_then_die, write_json_then_die
    plugins = omnitune.load_plugins([KillBetweenCheckpoints()])
    omnitune.finetune(config, resume=resume, plugins=plugins)
''')


def run(config: dict, point: str = "none", resume: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUNNER, json.dumps(config), point,
                           "resume" if resume else "fresh"], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def straight(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    from conftest import sentiment_rows, write_csv

    folder = tmp_path_factory.mktemp("straight")
    data = write_csv(folder / "reviews.csv", sentiment_rows(400))
    assert run(config_for(tiny_bert, data, folder / "run")).returncode == 0
    return {"data": data, "weights": load_file(folder / "run" / "artifact" / "model.safetensors")}


def config_for(tiny_bert: Path, data: Path, output_dir: Path) -> dict:
    return tiny_run(tiny_bert, data, output_dir, max_steps=14, checkpoint_every=5, eval_every=100)


@pytest.mark.parametrize("point", ["between-checkpoints", "mid-checkpoint", "mid-artifact"])
def test_sigkill_then_resume_reaches_the_same_weights(point: str, straight: dict, tiny_bert: Path,
                                                      tmp_path: Path) -> None:
    config = config_for(tiny_bert, straight["data"], tmp_path / "run")
    killed = run(config, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-1000:]
    checkpoints = tmp_path / "run" / "checkpoints"
    published = sorted(p.name for p in checkpoints.glob("step-*"))
    expected_latest = {"between-checkpoints": "step-00000005", "mid-checkpoint": "step-00000005",
                       "mid-artifact": "step-00000014"}[point]
    assert published[-1] == expected_latest
    for folder in checkpoints.glob("step-*"):  # every published checkpoint is complete
        assert (folder / "complete.json").is_file()
        json.loads((folder / "complete.json").read_text())
    assert not (tmp_path / "run" / "artifact").exists()  # the artifact is all or nothing

    resumed = run(config, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    actual = load_file(tmp_path / "run" / "artifact" / "model.safetensors")
    for name, value in straight["weights"].items():
        torch.testing.assert_close(actual[name], value, rtol=0, atol=0, msg=name)
    assert not list((tmp_path / "run").rglob(".*.tmp-*"))  # what the kill left half-written is gone
