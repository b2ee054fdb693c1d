"""Predictor: a saved artifact folder -> predictions on raw inputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from omnitune.build import build_task
from omnitune.checkpoint import WEIGHTS, load_weights
from omnitune.config import COMPONENTS, RunConfig, load_config, validate_components
from omnitune.errors import CheckpointError
from omnitune.inputs import check_device, check_inputs
from omnitune.lora import apply_lora
from omnitune.lora import merge_lora as merge_lora_into
from omnitune.plugins import Plugins, load_plugins
from omnitune.runtime import Runtime
from omnitune.task import Task


class Predictor:
    """Rebuilds a fine-tuned model through the registry and predicts on raw inputs."""

    def __init__(self, task: Task, config: RunConfig, runtime: Runtime, plugins: Plugins,
                 data_info: dict[str, Any] | None = None) -> None:
        self.task, self.config, self.runtime, self.plugins = task, config, runtime, plugins
        self.data_info: dict[str, Any] = data_info or {}
        task.model.to(runtime.device).eval()

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto", merge_lora: bool = False,
             plugins: Plugins | None = None, trust_remote_code: bool = False,
             overrides: Sequence[str] = ()) -> Predictor:
        """Load an artifact folder written by ``finetune``; no pretrained weights are fetched.
        For a LoRA run, ``merge_lora`` folds the adapters into the base weights. An artifact
        that asks to run code from its own files is refused unless ``trust_remote_code``.
        ``overrides`` (``"task.max_new_tokens=32"``) change settings that do not change the weights."""
        check_device(device)
        folder = Path(folder)
        if not (folder / WEIGHTS).is_file():
            raise CheckpointError(f"{folder} is not an omnitune artifact: {WEIGHTS} is missing")
        config = load_config(_read_json(folder / "config.json"), list(overrides))
        if not trust_remote_code:
            refuse_remote_code(config, folder)
        plugins = plugins or load_plugins()
        options = validate_components(config, plugins.registry)
        data_info = _read_json(folder / "data_info.json")
        task = build_task(config, options, plugins.registry, data_info, export_dir=folder / "backbone")
        if config.train.strategy == "lora":
            apply_lora(task.model, config.train.lora)
        load_weights(task.model, folder / WEIGHTS)
        if merge_lora:
            merge_lora_into(task.model)
        return cls(task, config, Runtime.create(device, "fp32"), plugins, data_info)

    @torch.no_grad()
    def predict(self, inputs: Any | Sequence[Any], batch_size: int = 32) -> list[dict[str, Any]]:
        """One prediction dict per input (label and probabilities for classification). Inputs no
        model can use are refused (``check_inputs``); a task whose ``input_kind`` is ``"text"``
        takes strings only."""
        items = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        check_inputs(items, text=getattr(self.task, "input_kind", None) == "text")
        results: list[dict[str, Any]] = []
        for start in range(0, len(items), batch_size):
            batch = self.task.encode_inputs(items[start:start + batch_size])
            results.extend(self.task.predict_step(self.task.model, self.runtime.to_device(batch)))
        return results


def refuse_remote_code(config: RunConfig, folder: Path) -> None:
    """An artifact never turns on ``trust_remote_code`` by itself: only the person loading it can."""
    asking = [f"{kind}.trust_remote_code" for kind in COMPONENTS  # anything but false asks
              if getattr(config, kind).options.get("trust_remote_code", False) is not False]
    if asking:
        raise CheckpointError(
            f"artifact {folder} asks to run Python code shipped in its own files ({', '.join(asking)} "
            "is set); loading an artifact never does that on the artifact's word. If you trust "
            "whoever made it, pass --trust-remote-code (Predictor.load(..., trust_remote_code=True))"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CheckpointError(f"artifact file missing: {path}") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(f"artifact file {path} is not valid JSON: {error}") from error
