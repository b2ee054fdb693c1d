"""Predictor: a saved artifact folder -> predictions on raw inputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from omnitune.build import build_task
from omnitune.checkpoint import WEIGHTS, load_weights
from omnitune.config import RunConfig, load_config, validate_components
from omnitune.errors import CheckpointError
from omnitune.lora import apply_lora
from omnitune.lora import merge_lora as merge_lora_into
from omnitune.plugins import Plugins, load_plugins
from omnitune.runtime import Runtime
from omnitune.task import Task


class Predictor:
    """Rebuilds a fine-tuned model through the registry and predicts on raw inputs."""

    def __init__(self, task: Task, config: RunConfig, runtime: Runtime, plugins: Plugins) -> None:
        self.task, self.config, self.runtime, self.plugins = task, config, runtime, plugins
        task.model.to(runtime.device).eval()

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto", merge_lora: bool = False,
             plugins: Plugins | None = None, overrides: Sequence[str] = ()) -> Predictor:
        """Load an artifact folder written by ``finetune``; no pretrained weights are fetched.
        For a LoRA run, ``merge_lora`` folds the adapters into the base weights. ``overrides``
        (``"task.max_new_tokens=32"``) change settings that do not change the weights."""
        folder = Path(folder)
        if not (folder / WEIGHTS).is_file():
            raise CheckpointError(f"{folder} is not an omnitune artifact: {WEIGHTS} is missing")
        config = load_config(_read_json(folder / "config.json"), list(overrides))
        plugins = plugins or load_plugins()
        options = validate_components(config, plugins.registry)
        task = build_task(config, options, plugins.registry, _read_json(folder / "data_info.json"),
                          export_dir=folder / "backbone")
        if config.train.strategy == "lora":
            apply_lora(task.model, config.train.lora)
        load_weights(task.model, folder / WEIGHTS)
        if merge_lora:
            merge_lora_into(task.model)
        return cls(task, config, Runtime.create(device, "fp32"), plugins)

    @torch.no_grad()
    def predict(self, inputs: Any | Sequence[Any], batch_size: int = 32) -> list[dict[str, Any]]:
        """One prediction dict per input (label and probabilities for classification)."""
        items = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        results: list[dict[str, Any]] = []
        for start in range(0, len(items), batch_size):
            batch = self.task.encode_inputs(items[start:start + batch_size])
            results.extend(self.task.predict_step(self.task.model, self.runtime.to_device(batch)))
        return results


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CheckpointError(f"artifact file missing: {path}") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(f"artifact file {path} is not valid JSON: {error}") from error
