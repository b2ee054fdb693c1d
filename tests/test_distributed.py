"""torchrun with 2 gloo processes on CPU: same result as 1 process with the same global batch,
replicated (DDP) or sharded (FSDP); SIGTERM on one rank stops all of them with a checkpoint;
resume reaches the same weights; distillation (the teacher each step, or its cached logits)
matches one process too."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

import omnitune

from conftest import sentiment_rows, tiny_run, write_csv

RUNNER = textwrap.dedent('''
    import json, logging, os, signal, sys
    import omnitune

    logging.basicConfig(level=logging.INFO, format="%(message)s")
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
    return torchrun(processes, ["--no-python", sys.executable, "-c", RUNNER, json.dumps(config), str(stop_at),
                                "resume" if resume else "fresh"])


def torchrun(processes: int, arguments: list[str]) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=N arguments...``; on a timeout every worker is killed."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               *arguments]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the workers too, not only torchrun
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def failure(launched: subprocess.CompletedProcess) -> str:
    """What a failed launch printed that says why: every rank's error lines (a C++ abort prints
    before torchrun's summary, which fills the end of stderr), then the end of stderr."""
    errors = [line for line in launched.stderr.splitlines()
              if re.search(r"Error|error|terminate|Abort|what\(\)|gloo|Signal", line)]
    return "\n".join(errors[:40]) + "\n...\n" + launched.stderr[-1500:]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "artifact" / "model.safetensors")


@pytest.fixture
def config(tiny_bert_without_dropout: Path, tmp_path: Path):
    # 418 rows split into 344 / 49 / 25: with an odd validation split the 2 processes' shards
    # take 4 and 3 batches of 8, which FSDP's evaluation must keep in step.
    reviews = write_csv(tmp_path / "reviews.csv", sentiment_rows(418))

    def make(output_dir: Path, batch_size: int, distributed: str = "ddp") -> dict:
        run = tiny_run(tiny_bert_without_dropout, reviews, output_dir, epochs=2,
                       batch_size=batch_size, eval_every=10, checkpoint_every=5, distributed=distributed)
        run["head"]["dropout"] = 0.0
        return run

    return make


def assert_same_run(run_dir: Path, expected_dir: Path) -> None:
    """Same final weights (to float tolerance), steps and test metrics as ``expected_dir``."""
    actual, expected = weights(run_dir), weights(expected_dir)
    assert actual.keys() == expected.keys()
    for name in expected:
        # A key bias has an exactly zero gradient (softmax ignores a constant shift), so Adam
        # turns rounding noise into ~1e-5 updates there; every other tensor agrees to ~1e-6.
        atol = 1e-4 if name.endswith("attention.self.key.bias") else 1e-5
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=atol, msg=name)
    metrics = json.loads((run_dir / "artifact" / "metrics.json").read_text())
    reference = json.loads((expected_dir / "artifact" / "metrics.json").read_text())
    assert metrics["steps"] == reference["steps"]
    assert metrics["test_accuracy"] == pytest.approx(reference["test_accuracy"])
    assert metrics["test_loss"] == pytest.approx(reference["test_loss"], rel=1e-4)
    # only rank 0 writes: one metrics line per log event, not two
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert sum('"final": true' in line for line in lines) == 1


@pytest.fixture
def one_process_run(config, tmp_path: Path) -> Path:
    """The reference: 1 process with batch 16 (the global batch of 2 processes with batch 8)."""
    output_dir = tmp_path / "one"
    single = launch(config(output_dir, batch_size=16), processes=1)
    assert single.returncode == 0, failure(single)
    return output_dir


def test_two_processes_match_one_with_the_same_global_batch(config, one_process_run, tmp_path) -> None:
    double = launch(config(tmp_path / "two", batch_size=8), processes=2)
    assert double.returncode == 0, failure(double)
    assert_same_run(tmp_path / "two", one_process_run)


def test_fsdp_shards_the_model_matches_one_process_and_resumes(config, one_process_run, tmp_path) -> None:
    sharded = launch(config(tmp_path / "fsdp", batch_size=8, distributed="fsdp"), processes=2)
    assert sharded.returncode == 0, failure(sharded)
    # the two BERT layers are units of their own; each process holds half of every tensor
    held = re.search(r"fsdp: 2 blocks and the root sharded over 2 processes; rank 0 holds (\d+) of (\d+)",
                     sharded.stderr)
    assert held is not None, failure(sharded)
    assert int(held[1]) < 0.55 * int(held[2])
    assert_same_run(tmp_path / "fsdp", one_process_run)

    run = config(tmp_path / "stopped", batch_size=8, distributed="fsdp")
    stopped = launch(run, processes=2, stop_at=7)
    assert "stopped by SIGTERM at step 7" in stopped.stderr
    assert (tmp_path / "stopped" / "checkpoints" / "step-00000007" / "complete.json").is_file()
    resumed = launch(run, processes=2, resume=True)
    assert resumed.returncode == 0, failure(resumed)
    expected, actual = weights(tmp_path / "fsdp"), weights(tmp_path / "stopped")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)

    replicated = config(tmp_path / "stopped", batch_size=8)
    refused = launch(replicated, processes=2, resume=True)
    assert refused.returncode != 0
    assert "was written by an FSDP run; resume it under torchrun with train.distributed: fsdp" \
        in refused.stderr


def test_sigterm_stops_every_rank_with_a_checkpoint_and_resume_matches(config, tmp_path: Path) -> None:
    straight = launch(config(tmp_path / "straight", batch_size=8), processes=2)
    assert straight.returncode == 0, failure(straight)

    stopped = launch(config(tmp_path / "stopped", batch_size=8), processes=2, stop_at=7)
    assert stopped.returncode != 0
    assert "stopped by SIGTERM at step 7" in stopped.stderr
    assert (tmp_path / "stopped" / "checkpoints" / "step-00000007" / "complete.json").is_file()
    assert not (tmp_path / "stopped" / "artifact").exists()

    resumed = launch(config(tmp_path / "stopped", batch_size=8), processes=2, resume=True)
    assert resumed.returncode == 0, failure(resumed)
    expected, actual = weights(tmp_path / "straight"), weights(tmp_path / "stopped")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("settings", [{"strategy": "lora"}, {"strategy": "freeze-then-unfreeze"},
                                      {"gradient_checkpointing": True}],
                         ids=["lora", "unfreeze", "checkpointing"])
def test_fsdp_strategies_match_one_process(config, settings: dict, tmp_path: Path) -> None:
    # LoRA shards frozen base weights beside trainable adapters; freeze-then-unfreeze switches
    # requires_grad on parameters FSDP has already sharded; checkpointing re-runs sharded blocks.
    runs = {}
    for name, processes, batch_size, distributed in (("one", 1, 16, "ddp"), ("fsdp", 2, 8, "fsdp")):
        run = config(tmp_path / name, batch_size=batch_size, distributed=distributed)
        run["train"] |= {**settings, "eval_every": None, "checkpoint_every": None}
        runs[name] = launch(run, processes=processes)
        assert runs[name].returncode == 0, failure(runs[name])
    assert_same_run(tmp_path / "fsdp", tmp_path / "one")


def test_ddp_wraps_once_and_freeze_then_unfreeze_matches_one_process(config, tmp_path: Path) -> None:
    # DDP wraps the model once, before the backbone is frozen: frozen parameters get no
    # gradient (find_unused_parameters), unfrozen ones are averaged again from epoch 1.
    for name, processes, batch_size in (("one", 1, 16), ("ddp", 2, 8)):
        run = config(tmp_path / name, batch_size=batch_size)
        run["train"] |= {"strategy": "freeze-then-unfreeze", "unfreeze_epoch": 1, "eval_every": None,
                         "checkpoint_every": None}
        launched = launch(run, processes=processes)
        assert launched.returncode == 0, failure(launched)
    assert_same_run(tmp_path / "ddp", tmp_path / "one")


def test_the_documented_cli_command_reports_once(config, tmp_path: Path) -> None:
    run = config(tmp_path / "cli", batch_size=8)
    run["train"]["epochs"] = 1
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(run))
    done = torchrun(2, ["-m", "omnitune.cli", "train", str(run_file), "--set", "train.distributed=fsdp",
                        "--json"])
    assert done.returncode == 0, failure(done)
    summaries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1  # rank 0 alone prints the result
    assert Path(summaries[0]["artifact"], "model.safetensors").is_file()


def test_fsdp_units_are_the_repeated_blocks(tiny_bert: Path) -> None:
    import timm

    from omnitune.strategies import repeated_blocks
    from omnitune_text.backbone import transformers_backbone
    from omnitune_text.plugin import TransformersBackboneConfig

    text = nn.Module()
    text.backbone = transformers_backbone(TransformersBackboneConfig(model=str(tiny_bert)))
    text.head = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))  # torch.nn's own: not units
    assert [type(b).__name__ for b in repeated_blocks(text)] == ["BertLayer", "BertLayer"]
    resnet = timm.create_model("resnet18", pretrained=False)  # 4 stages of 2 blocks each
    assert [type(b).__name__ for b in repeated_blocks(resnet)] == ["BasicBlock"] * 8


def test_fsdp_trains_an_image_model_with_batch_norm(tmp_path: Path) -> None:
    # BatchNorm buffers are not sharded; the artifact must still be a complete, loadable model.
    from test_conformance import image_classification

    import omnitune

    run = image_classification(tmp_path)
    run["train"] |= {"distributed": "fsdp", "epochs": 1}
    trained = launch(run, processes=2)
    assert trained.returncode == 0, failure(trained)
    predictor = omnitune.Predictor.load(tmp_path / "run" / "artifact", device="cpu")
    images = sorted((tmp_path / "images").rglob("*.png"))[:2]
    assert len(predictor.predict([str(path) for path in images])) == 2


def test_only_rank_zero_logs(config, tmp_path: Path) -> None:
    """TensorBoard, CSV and JSONL under 2 processes: one events file, each number once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = config(tmp_path / "logged", batch_size=8)
    run["train"].update(max_steps=8, eval_every=4, log_every=1, loggers=["jsonl", "tensorboard", "csv"])
    launched = launch(run, processes=2)
    assert launched.returncode == 0, failure(launched)
    output = tmp_path / "logged"
    writers = {path.name.split(".")[-2] for path in (output / "tensorboard").rglob("events.out.tfevents.*")}
    assert len(writers) == 1  # event files are named <time>.<host>.<pid>.<n>: one process wrote them all
    assert sorted(p.name for p in (output / "csv").iterdir()) == ["hparams.yaml", "metrics.csv"]
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r and not r.get("final")]
    assert [step for step, _ in losses] == list(range(1, 9))  # once each, though 2 processes ran them
    events = EventAccumulator(str(output / "tensorboard")).Reload()
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in events.Scalars("train/loss")] == losses
    rows = (output / "csv" / "metrics.csv").read_text().splitlines()[1:]
    keys = [tuple(row.split(",")[:3]) for row in rows]
    assert len(keys) == len(set(keys)) and ("final" in {key[1] for key in keys})
    assert sum(1 for r in records if r.get("final")) == 1


def test_ddp_distillation_matches_one_process(config, tmp_path: Path) -> None:
    # the teacher runs on each process's shard of the batch, or each process holds the whole
    # cache and picks its examples' logits: either way the update is that of the global batch
    teacher = config(tmp_path / "teacher", batch_size=16)
    teacher["train"] |= {"eval_every": None, "checkpoint_every": None, "epochs": 1}
    artifact = omnitune.finetune(teacher, plugins=omnitune.load_plugins()).artifact
    for name, processes, batch_size, cache_logits in (("one", 1, 16, False), ("ddp", 2, 8, False),
                                                      ("ddp-cached", 2, 8, True)):
        run = config(tmp_path / name, batch_size=batch_size)
        run["train"] |= {"eval_every": None, "checkpoint_every": None,
                         "distill": {"teacher": str(artifact), "temperature": 2.0, "alpha": 0.7,
                                     "cache_logits": cache_logits}}
        launched = launch(run, processes=processes)
        assert launched.returncode == 0, failure(launched)
    assert_same_run(tmp_path / "ddp", tmp_path / "one")
    assert_same_run(tmp_path / "ddp-cached", tmp_path / "one")
