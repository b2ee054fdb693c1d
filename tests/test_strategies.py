"""One API for every task: LoRA through peft, gradient checkpointing, torch.compile, token-weighted
accumulation."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from test_loop import RegressionTask, regression_data, train_config
from torch import nn

import omnitune
from omnitune.data import Splits
from omnitune.loop import fit
from omnitune.task import StepOutput, Task

from conftest import tiny_run


def test_lora_trains_adapters_and_head_only(tiny_bert: Path, sentiment_csv: Path, tmp_path: Path,
                                             plugins: omnitune.Plugins) -> None:
    run = tiny_run(tiny_bert, sentiment_csv, tmp_path / "lora", epochs=6, strategy="lora", lr=2e-2,
                   lora={"rank": 4, "alpha": 8})
    result = omnitune.finetune(run, plugins=plugins)
    trained = load_file(result.artifact / "model.safetensors")
    base = load_file(tiny_bert / "model.safetensors")
    adapters = [k for k in trained if "lora_" in k]
    assert adapters and all(".query." in k or ".value." in k for k in adapters)
    unwrapped = {k.replace(".base_layer.", "."): v for k, v in trained.items()}
    for key, value in base.items():  # every pretrained weight is untouched
        torch.testing.assert_close(unwrapped[f"backbone.encoder.{key}"], value, rtol=0, atol=0)
    assert result.metrics["test_loss"] < 0.6 < 0.69  # learned: chance is ln 2 = 0.69

    texts = ["the film was wonderful", "really dull and tedious plot", "lovely story"]
    direct = omnitune.Predictor.load(result.artifact, plugins=plugins).predict(texts)
    merged = omnitune.Predictor.load(result.artifact, plugins=plugins, merge_lora=True).predict(texts)
    for a, b in zip(direct, merged, strict=True):
        assert a["label"] == b["label"]
        assert a["probabilities"]["pos"] == pytest.approx(b["probabilities"]["pos"], abs=1e-5)


def test_lora_run_resumes_after_sigint(tiny_bert_without_dropout: Path, sentiment_csv: Path,
                                       tmp_path: Path) -> None:
    def config(name: str) -> dict:
        return tiny_run(tiny_bert_without_dropout, sentiment_csv, tmp_path / name, max_steps=12,
                        strategy="lora", lr=1e-2, checkpoint_every=4)

    straight = omnitune.finetune(config("straight"))

    class InterruptAtFive:
        @omnitune.hookimpl
        def on_step_end(self, state: Any) -> None:
            if state.step == 5:
                os.kill(os.getpid(), signal.SIGINT)  # the real signal, caught by the loop

    with pytest.raises(omnitune.OmnituneError, match="stopped by SIGINT at step 5") as stopped:
        omnitune.finetune(config("stopped"), plugins=omnitune.load_plugins([InterruptAtFive()]))
    assert stopped.value.exit_code == 130
    assert (tmp_path / "stopped" / "checkpoints" / "step-00000005" / "complete.json").is_file()

    resumed = omnitune.finetune(config("stopped"), resume=True)
    expected = load_file(straight.artifact / "model.safetensors")
    actual = load_file(resumed.artifact / "model.safetensors")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)


def test_gradient_checkpointing_gives_the_same_training(tiny_bert_without_dropout: Path,
                                                         sentiment_csv: Path, tmp_path: Path) -> None:
    plain = omnitune.finetune(tiny_run(tiny_bert_without_dropout, sentiment_csv, tmp_path / "a",
                                       max_steps=3))
    saved = omnitune.finetune(tiny_run(tiny_bert_without_dropout, sentiment_csv, tmp_path / "b",
                                       max_steps=3, gradient_checkpointing=True))
    assert saved.metrics["test_loss"] == pytest.approx(plain.metrics["test_loss"], rel=1e-5)
    with pytest.raises(omnitune.ConfigError, match="does not support it"):
        fit(RegressionTask(), regression_data(), train_config(gradient_checkpointing=True),
            tmp_path / "c", {})


def test_compile_runs_and_falls_back_with_a_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    compiled = fit(RegressionTask(), regression_data(), train_config(epochs=2, compile="eager"),
                   tmp_path / "eager", {})
    reference = fit(RegressionTask(), regression_data(), train_config(epochs=2), tmp_path / "ref", {})
    assert compiled.metrics["eval_loss"] == pytest.approx(reference.metrics["eval_loss"], rel=1e-5)

    fallback = fit(RegressionTask(), regression_data(), train_config(epochs=2, compile="no-such-backend"),
                   tmp_path / "bad", {})
    assert "torch.compile(backend='no-such-backend') failed, training eagerly instead" in caplog.text
    assert fallback.metrics["eval_loss"] == pytest.approx(reference.metrics["eval_loss"], rel=1e-5)


class TokenTask(Task):
    """A per-token regression whose loss is the mean over tokens: sequences differ in length."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential()
        self.model.backbone = nn.Linear(1, 3)
        self.model.head = nn.Linear(3, 1)

    def collate(self, examples: list[list[float]]) -> dict[str, torch.Tensor]:
        values = torch.tensor([v for sequence in examples for v in sequence]).unsqueeze(-1)
        return {"x": values, "tokens": torch.tensor(len(values))}

    def num_items(self, batch: dict[str, torch.Tensor]) -> int:
        return int(batch["tokens"])

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        prediction = model.head(torch.tanh(model.backbone(batch["x"]))).squeeze(-1)
        return StepOutput(((prediction - 3 * batch["x"].squeeze(-1)) ** 2).mean())

    def encode_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        raise NotImplementedError

    def predict_step(self, model: nn.Module, batch: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError


def test_accumulation_weights_micro_batches_by_their_token_counts(tmp_path: Path) -> None:
    sequences = [[0.1 * i] * length for i, length in enumerate([1, 7, 2, 9, 3, 1, 5, 4], start=1)]
    data = Splits(train=sequences)
    large, accumulated = TokenTask(), TokenTask()
    fit(large, data, train_config(batch_size=8, max_steps=1), tmp_path / "large", {})
    fit(accumulated, data, train_config(batch_size=2, grad_accum=4, max_steps=1), tmp_path / "acc", {})
    for (name, a), b in zip(large.model.state_dict().items(), accumulated.model.state_dict().values(),
                            strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
