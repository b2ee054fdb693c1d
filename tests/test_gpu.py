"""The CUDA paths of the loop: bf16 autocast, fp16 with a GradScaler, the fused AdamW, pinned
memory, and NCCL across two processes. Marked ``gpu``: skipped where CUDA is absent."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from test_loop import OverflowingTask, RegressionTask, regression_data, train_config, weights

from omnitune.data import Splits
from omnitune.loop import build_optimizer, fit
from omnitune.runtime import Runtime

pytestmark = pytest.mark.gpu


def test_bf16_autocast_trains_with_the_fused_adamw_and_pinned_batches(tmp_path: Path) -> None:
    runtime = Runtime.create("cuda", "bf16")
    assert runtime.pin_memory and runtime.autocast_dtype == torch.bfloat16
    task = RegressionTask()
    assert build_optimizer(task.model, train_config(), fused=True).defaults["fused"] is True
    result = fit(task, regression_data(), train_config(epochs=3, precision="bf16", device="cuda"),
                 tmp_path, {}, runtime=runtime)
    reference = fit(RegressionTask(), regression_data(), train_config(epochs=3), tmp_path / "cpu", {},
                    runtime=Runtime(torch.device("cpu"), "fp32"))
    assert next(task.model.parameters()).device.type == "cuda"
    assert result.metrics["eval_loss"] == pytest.approx(reference.metrics["eval_loss"], rel=0.05)


def test_fp16_grad_scaler_skips_an_overflowing_step_on_cuda(tmp_path: Path) -> None:
    task = OverflowingTask()
    fit(task, Splits(train=regression_data().train), train_config(batch_size=30, max_steps=30,
                                                                  precision="fp16", max_grad_norm=1.0),
        tmp_path, {}, runtime=Runtime.create("cuda", "fp16"))
    changed = [any(not torch.equal(after[n], before[n]) for n in before)
               for before, after in itertools.pairwise(task.starts)]
    assert changed[0] is False
    assert sum(changed) >= 20
    assert all(torch.isfinite(value).all() for value in weights(task.model).values())


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_nccl_two_processes_match_one(tiny_bert_without_dropout: Path, tmp_path: Path) -> None:
    from test_distributed import assert_same_run, launch

    from conftest import sentiment_rows, tiny_run, write_csv

    reviews = write_csv(tmp_path / "reviews.csv", sentiment_rows(418))

    def run(output_dir: Path, batch_size: int) -> dict:
        settings = tiny_run(tiny_bert_without_dropout, reviews, output_dir, epochs=2, batch_size=batch_size,
                            eval_every=10, checkpoint_every=5, device="cuda", precision="fp32")
        settings["head"]["dropout"] = 0.0
        return settings

    for output_dir, batch_size, processes in ((tmp_path / "one", 16, 1), (tmp_path / "two", 8, 2)):
        launched = launch(run(output_dir, batch_size), processes=processes)
        assert launched.returncode == 0, launched.stderr[-2000:]
    assert_same_run(tmp_path / "two", tmp_path / "one")
