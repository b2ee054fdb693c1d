"""``omnitune new-plugin NAME``: write a plugin package whose own tests pass as generated.

The package registers a small working regression task, an MLP backbone, a synthetic dataset and
a metric, and tests them with the conformance kit; authors replace the parts one by one.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from string import Template

from omnitune.errors import ConfigError
from omnitune.plugins import API_VERSION

NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"


def create_plugin(name: str, parent: Path) -> Path:
    """Write ``parent/omnitune-NAME`` (import name ``omnitune_NAME``) and return its path."""
    if not re.match(NAME_PATTERN, name):
        raise ConfigError(f"new-plugin: name {name!r} must be lower case letters and digits, "
                          "words joined by '-' (e.g. 'tabular' or 'time-series')")
    module = "omnitune_" + name.replace("-", "_")
    if importlib.util.find_spec(module) is not None:
        raise ConfigError(f"new-plugin: a module {module!r} is already importable here; choose another name")
    folder = parent / f"omnitune-{name}"
    if folder.exists():
        raise ConfigError(f"new-plugin: {folder} already exists")
    values = {"name": name, "module": module, "api_version": API_VERSION}
    for relative, template in FILES.items():
        path = folder / Template(relative).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values).lstrip(), encoding="utf-8")
    return folder


PYPROJECT = '''
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "omnitune-${name}"
version = "0.1.0"
description = "An omnitune plugin."
requires-python = ">=3.11"
dependencies = ["omnitune"]

[project.entry-points.omnitune]
${name} = "${module}.hooks"

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

HOOKS = '''
"""Hook implementations and option models. Keep this module light: factories are given as
"module:attribute" strings, so listing plugins never imports torch."""

from __future__ import annotations

from pydantic import Field

import omnitune
from omnitune.options import Options
from omnitune.registry import RegisterCallback

OMNITUNE_API_VERSION = ${api_version}


class RegressionConfig(Options):
    pass


class MLPConfig(Options):
    in_features: int = Field(4, ge=1, description="Width of the input vectors.")
    hidden: int = Field(32, ge=1, description="Width of the hidden layer.")


class SyntheticConfig(Options):
    rows: int = Field(256, ge=8, description="How many examples to generate.")
    features: int = Field(4, ge=1, description="Width of each input vector.")
    noise: float = Field(0.01, ge=0, description="Standard deviation of the target noise.")
    seed: int = Field(0, ge=0, description="Seed of the generated data.")


@omnitune.hookimpl
def register_tasks(register: RegisterCallback) -> None:
    register("${name}-regression", "${module}.task:Regression", config=RegressionConfig,
             description="Predict one number from a vector.")


@omnitune.hookimpl
def register_backbones(register: RegisterCallback) -> None:
    register("${name}-mlp", "${module}.task:mlp", config=MLPConfig,
             description="A one-hidden-layer MLP, trained from scratch.")


@omnitune.hookimpl
def register_datasets(register: RegisterCallback) -> None:
    register("${name}-synthetic", "${module}.data:synthetic", config=SyntheticConfig,
             description="Vectors and a noisy linear target, generated.")


@omnitune.hookimpl
def register_metrics(register: RegisterCallback) -> None:
    register("${name}-mae", "${module}.task:mean_absolute_error", description="Mean absolute error.")
'''

DATA = '''
"""The ${name}-synthetic dataset: random vectors and a noisy linear target."""

from __future__ import annotations

import random

from omnitune import Splits

from ${module}.hooks import SyntheticConfig


def synthetic(config: SyntheticConfig) -> Splits:
    rng = random.Random(config.seed)
    weights = [rng.uniform(-1, 1) for _ in range(config.features)]
    rows = []
    for _ in range(config.rows):
        x = [rng.gauss(0, 1) for _ in range(config.features)]
        rows.append((x, sum(w * v for w, v in zip(weights, x)) + rng.gauss(0, config.noise)))
    cut = int(config.rows * 0.8), int(config.rows * 0.9)
    return Splits(rows[:cut[0]], rows[cut[0]:cut[1]], rows[cut[1]:], info={"features": config.features})
'''

TASK = '''
"""The ${name}-regression task, its MLP backbone and its metric. The loop does everything else:
devices, precision, optimizer, checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnitune import ConfigError, StepOutput, Task

from ${module}.hooks import MLPConfig, RegressionConfig


class MLP(nn.Module):
    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.in_features, self.num_features = config.in_features, config.hidden
        self.layers = nn.Sequential(nn.Linear(config.in_features, config.hidden), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def mlp(config: MLPConfig, export_dir: Path | None = None) -> MLP:
    """No pretrained weights to fetch, so an artifact's ``export_dir`` needs nothing restored."""
    return MLP(config)


class Model(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)).squeeze(-1)


class Regression(Task):
    metrics = ("${name}-mae",)
    monitor, monitor_mode = "${name}-mae", "min"

    def __init__(self, config: RegressionConfig, *, backbone: nn.Module,
                 head: Callable[[int, int], nn.Module], data_info: dict[str, Any]) -> None:
        if getattr(backbone, "in_features", None) != data_info["features"]:
            raise ConfigError(f"backbone.in_features must equal the dataset's {data_info['features']} "
                              f"features, got {getattr(backbone, 'in_features', None)}")
        self.model = Model(backbone, head(backbone.num_features, 1))

    def collate(self, examples: list[tuple[list[float], float]]) -> dict[str, torch.Tensor]:
        return {"x": torch.tensor([x for x, _ in examples]), "y": torch.tensor([y for _, y in examples])}

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        predictions = model(batch["x"]).float()
        return StepOutput(nn.functional.mse_loss(predictions, batch["y"]),
                          {"predictions": predictions, "targets": batch["y"]})

    def encode_inputs(self, inputs: list[list[float]]) -> dict[str, torch.Tensor]:
        return {"x": torch.tensor(inputs, dtype=torch.float32)}

    def predict_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
        return [{"value": value} for value in model(batch["x"]).float().tolist()]


def mean_absolute_error(_config: object) -> Callable[[dict[str, torch.Tensor]], float]:
    def compute(outputs: dict[str, torch.Tensor]) -> float:
        return (outputs["predictions"] - outputs["targets"]).abs().mean().item()

    return compute
'''

TEST = '''
"""omnitune's conformance kit over this plugin: contributions, fit, artifact, resume, bad config."""

import pytest

from omnitune.testing import CHECKS, ConformanceCase

CASE = ConformanceCase(
    "${name}-regression",
    config={"task": "${name}-regression", "backbone": "${name}-mlp",
            "dataset": {"name": "${name}-synthetic", "rows": 64}, "train": {"batch_size": 8, "lr": 0.01}},
    inputs=[[0.1, -0.2, 0.3, 0.0], [1.0, 1.0, 1.0, 1.0]],
    invalid=["dataset.rows=0", "backbone.hidden=-1"],
)


@pytest.mark.parametrize("check", CHECKS)
def test_conformance(check, tmp_path):
    CHECKS[check](CASE, tmp_path)
'''

README = '''
# omnitune-${name}

An omnitune plugin. Install it beside omnitune and it is found through its entry point:

    pip install -e .
    omnitune plugins doctor        # lists ${name} with its hooks and registrations
    pytest                         # omnitune's conformance kit over the plugin

Start from `src/${module}/hooks.py`; the plugin author guide of omnitune (docs/plugins.md)
describes every hook and the Task contract.
'''

FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "src/${module}/__init__.py": '"""omnitune-${name}: an omnitune plugin."""\n',
    "src/${module}/hooks.py": HOOKS,
    "src/${module}/data.py": DATA,
    "src/${module}/task.py": TASK,
    "tests/test_conformance.py": TEST,
}
