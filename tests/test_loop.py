"""The loop on a two-parameter regression task registered by a test plugin: accumulation,
optimizer groups, freezing, early stopping and loop hooks."""

from __future__ import annotations

import itertools
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import omnitune
from omnitune.config import TrainConfig
from omnitune.data import Splits
from omnitune.loop import build_optimizer, fit
from omnitune.runtime import Runtime
from omnitune.task import StepOutput, Task


class Regression(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(1, 4), nn.LayerNorm(4))
        self.head = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)).squeeze(-1)


class RegressionTask(Task):
    """y = 2x + 3 with noise; the loss is the mean over samples."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = Regression()

    def collate(self, examples: list[tuple[float, float]]) -> dict[str, torch.Tensor]:
        x, y = zip(*examples, strict=True)
        return {"x": torch.tensor(x).unsqueeze(-1), "y": torch.tensor(y)}

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        return StepOutput(nn.functional.mse_loss(model(batch["x"]), batch["y"]))

    def encode_inputs(self, inputs: list[float]) -> dict[str, torch.Tensor]:
        return {"x": torch.tensor(inputs).unsqueeze(-1)}

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        return [{"value": v} for v in model(batch["x"]).tolist()]


def regression_data(count: int = 40) -> Splits:
    generator = torch.Generator().manual_seed(1)
    xs = torch.rand(count, generator=generator).tolist()
    rows = [(x, 2 * x + 3 + 0.01 * i % 3) for i, x in enumerate(xs)]
    return Splits(train=rows[:30], validation=rows[30:], test=rows[30:])


def train_config(**changes: Any) -> TrainConfig:
    base = {"lr": 0.05, "warmup_ratio": 0.0, "progress": False, "max_grad_norm": None, "seed": 0}
    return TrainConfig(**(base | changes))


def weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_accumulation_gives_the_same_update_as_one_large_batch(tmp_path: Path) -> None:
    # 10 samples: one batch of 10, or micro-batches of 4 + 4 + 2 (unequal sizes) accumulated.
    data = Splits(train=regression_data().train[:10])
    large, accumulated = RegressionTask(), RegressionTask()
    fit(large, data, train_config(batch_size=10, max_steps=1), tmp_path / "a", {})
    fit(accumulated, data, train_config(batch_size=4, grad_accum=3, max_steps=1), tmp_path / "b", {})
    for name, value in weights(large.model).items():
        torch.testing.assert_close(weights(accumulated.model)[name], value, rtol=1e-5, atol=1e-6)


def test_optimizer_groups_split_backbone_head_and_decay() -> None:
    model = Regression()
    optimizer = build_optimizer(model, train_config(lr=1e-4, head_lr=1e-2, weight_decay=0.1))
    by_id = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    assert by_id[id(model.backbone[0].weight)]["lr"] == 1e-4
    assert by_id[id(model.backbone[0].weight)]["weight_decay"] == 0.1
    assert by_id[id(model.backbone[0].bias)]["weight_decay"] == 0.0
    assert by_id[id(model.backbone[1].weight)]["weight_decay"] == 0.0  # a norm
    assert by_id[id(model.head.weight)]["lr"] == 1e-2


def test_freeze_backbone_trains_only_the_head(tmp_path: Path) -> None:
    task = RegressionTask()
    before = weights(task.model)
    fit(task, regression_data(), train_config(strategy="freeze-backbone", epochs=2), tmp_path, {})
    after = weights(task.model)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_freeze_then_unfreeze(tmp_path: Path) -> None:
    task = RegressionTask()
    seen: list[tuple[int, bool]] = []

    class Watch:
        @omnitune.hookimpl
        def on_step_end(self, state: Any) -> None:
            seen.append((state.epoch, task.model.backbone[0].weight.requires_grad))

    plugins = omnitune.load_plugins([Watch()], autoload=False)
    fit(task, regression_data(), train_config(strategy="freeze-then-unfreeze", unfreeze_epoch=1,
                                              epochs=2, batch_size=10), tmp_path, {}, plugins=plugins)
    assert seen == [(0, False)] * 3 + [(1, True)] * 3


def test_early_stopping_and_hooks_may_stop(tmp_path: Path) -> None:
    task = RegressionTask()
    result = fit(task, regression_data(), train_config(lr=1e-9, epochs=20, early_stopping_patience=2),
                 tmp_path / "early", {})
    assert result.state.should_stop
    assert result.metrics["epochs"] < 20

    class StopAtThree:
        @omnitune.hookimpl
        def on_step_end(self, state: Any) -> None:
            if state.step == 3:
                state.should_stop = True

    plugins = omnitune.load_plugins([StopAtThree()], autoload=False)
    stopped = fit(RegressionTask(), regression_data(), train_config(epochs=5), tmp_path / "hook", {},
                  plugins=plugins)
    assert stopped.metrics["steps"] == 3


def test_a_failing_loop_hook_is_reported_and_training_goes_on(tmp_path: Path) -> None:
    class Broken:
        @omnitune.hookimpl
        def on_step_end(self, state: Any) -> None:
            raise RuntimeError("logger down")

    plugins = omnitune.load_plugins([Broken()], autoload=False)
    result = fit(RegressionTask(), regression_data(), train_config(epochs=1, batch_size=8), tmp_path, {},
                 plugins=plugins)
    assert result.metrics["steps"] == 4
    assert [f.hook for f in plugins.failures] == ["on_step_end"]
    assert "logger down" in plugins.failures[0].error


def test_schedule_warms_up_then_decays(tmp_path: Path) -> None:
    task = RegressionTask()
    lrs: list[float] = []

    class Record:
        @omnitune.hookimpl
        def on_step_end(self, logs: dict[str, float]) -> None:
            lrs.append(logs["lr"])

    fit(task, regression_data(), train_config(lr=1.0, warmup_ratio=0.25, schedule="linear", max_steps=8,
                                              batch_size=4), tmp_path, {},
        callbacks=[Record()])
    assert lrs[:3] == pytest.approx([0.5, 1.0, 5 / 6])
    assert lrs[-1] == pytest.approx(0.0)


def test_fp16_on_cpu_is_refused() -> None:
    with pytest.raises(omnitune.ConfigError, match="fp16 needs a GPU"):
        Runtime.create("cpu", "fp16")


class OverflowingTask(RegressionTask):
    """The first step's loss is so large that its fp16 gradients overflow; records the weights
    each step starts from."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[dict[str, torch.Tensor]] = []

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        self.starts.append(weights(self.model))
        out = super().training_step(model, batch)
        return StepOutput(out.loss * (1e6 if len(self.starts) == 1 else 1.0))


def test_fp16_grad_scaler_skips_an_overflowing_step_and_trains_on(tmp_path: Path) -> None:
    # fp16 autocast runs on CPU too, so the GradScaler path is exercised here (users get fp16
    # only on GPUs; Runtime.create refuses it on CPU).
    task = OverflowingTask()
    config = train_config(batch_size=30, max_steps=30, precision="fp16", max_grad_norm=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped update must not step the LR schedule either
        fit(task, Splits(train=regression_data().train), config, tmp_path, {},
            runtime=Runtime(torch.device("cpu"), "fp16"))
    changed = [any(not torch.equal(after[n], before[n]) for n in before)
               for before, after in itertools.pairwise(task.starts)]
    assert changed[0] is False  # the overflowing first step left the weights alone
    assert sum(changed) >= 20  # the scaler backed off and training went on
    assert all(torch.isfinite(value).all() for value in weights(task.model).values())


def test_bf16_autocast_on_cpu_trains(tmp_path: Path) -> None:
    runtime = Runtime.create("cpu", "bf16")
    result = fit(RegressionTask(), regression_data(), train_config(epochs=2, precision="bf16"), tmp_path, {},
                 runtime=runtime)
    assert result.metrics["eval_loss"] < 20


def test_layer_decay_scales_backbone_lrs_by_depth(tiny_bert: Path) -> None:
    from omnitune_text.backbone import transformers_backbone
    from omnitune_text.plugin import TransformersBackboneConfig

    backbone = transformers_backbone(TransformersBackboneConfig(model=str(tiny_bert)))
    model = nn.Module()
    model.backbone, model.head = backbone, nn.Linear(32, 2)
    optimizer = build_optimizer(model, train_config(lr=1.0, head_lr=2.0, layer_decay=0.5))
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["backbone.encoder.embeddings.word_embeddings.weight"])] == 0.5 ** 3
    assert lr_of[id(named["backbone.encoder.encoder.layer.0.attention.self.query.weight"])] == 0.5 ** 2
    assert lr_of[id(named["backbone.encoder.encoder.layer.1.output.dense.weight"])] == 0.5
    assert lr_of[id(named["head.weight"])] == 2.0
    with pytest.raises(omnitune.ConfigError, match="layer_decay needs a backbone"):
        build_optimizer(Regression(), train_config(layer_decay=0.5))


@pytest.mark.parametrize("schedule", ["linear", "one-cycle"])
def test_resume_with_a_larger_step_budget_trains_to_the_new_budget(schedule: str, tmp_path: Path) -> None:
    def run(max_steps: int, resume: bool) -> int:
        result = fit(RegressionTask(), regression_data(),
                     train_config(batch_size=10, max_steps=max_steps, checkpoint_every=2, schedule=schedule,
                                  warmup_ratio=0.3),
                     tmp_path, {}, resume=resume)
        return result.state.step

    assert run(max_steps=4, resume=False) == 4
    assert run(max_steps=7, resume=True) == 7  # not stopped at the checkpoint's 4


def test_one_cycle_follows_torch_one_cycle_lr_and_cycles_adam_beta1(tmp_path: Path) -> None:
    lrs: list[float] = []
    betas: list[float] = []

    class Record:
        @omnitune.hookimpl
        def on_step_end(self, state: Any, logs: dict[str, float]) -> None:
            lrs.append(logs["lr"])

    task = RegressionTask()
    original_step = torch.optim.AdamW.step

    def recording_step(self: torch.optim.AdamW, *args: Any, **kwargs: Any) -> Any:
        betas.append(self.param_groups[0]["betas"][0])
        return original_step(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.AdamW, "step", recording_step)
        settings = train_config(lr=1.0, warmup_ratio=0.3, schedule="one-cycle", max_steps=10, batch_size=4)
        fit(task, regression_data(), settings, tmp_path, {}, callbacks=[Record()])
    reference = torch.optim.lr_scheduler.OneCycleLR(torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0),
                                                    max_lr=1.0, total_steps=10, pct_start=0.3)
    expected = []
    for _ in range(10):
        reference.optimizer.step()
        reference.step()
        expected.append(reference.get_last_lr()[0])
    assert lrs == pytest.approx(expected)
    assert max(lrs) == pytest.approx(1.0) and lrs[-2] < 1e-3  # the last is logged after the last step
    assert betas[0] == pytest.approx(0.95) and min(betas) == pytest.approx(0.85, abs=0.01)


def test_a_one_cycle_run_resumed_from_a_checkpoint_ends_with_identical_weights(tmp_path: Path) -> None:
    steps: list[int] = []

    class Count:
        @omnitune.hookimpl
        def on_step_end(self, state: Any, logs: dict[str, float]) -> None:
            steps.append(state.step)

    def run(folder: str, resume: bool = False) -> dict[str, torch.Tensor]:
        task = RegressionTask()
        fit(task, regression_data(), train_config(schedule="one-cycle", warmup_ratio=0.3, max_steps=8,
                                                  batch_size=4, checkpoint_every=2, keep_checkpoints=4),
            tmp_path / folder, {}, resume=resume, callbacks=[Count()])
        return weights(task.model)

    straight = run("straight")
    resumed_dir = tmp_path / "resumed" / "checkpoints"
    shutil.copytree(tmp_path / "straight" / "checkpoints" / "step-00000004", resumed_dir / "step-00000004")
    (resumed_dir / "latest").write_text("step-00000004\n")  # as if killed after step 4's checkpoint
    steps.clear()
    resumed = run("resumed", resume=True)
    assert steps == [5, 6, 7, 8]
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
