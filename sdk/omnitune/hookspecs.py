"""Every hook omnitune calls, in one place.

A plugin is a module (or object) with functions marked ``@omnitune.hookimpl`` whose names
match the specs below. Built-in plugins and third-party ones are found the same way:
through entry points in the group ``omnitune``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from omnitune.registry import RegisterCallback

hookspec = pluggy.HookspecMarker("omnitune")
hookimpl = pluggy.HookimplMarker("omnitune")

# ---------------------------------------------------------------------------
# Registration: called once per plugin while the registry is built.
# Each receives ``register(name, factory, *, config=..., description=...)`` and returns
# nothing; plugins never touch the registry itself.
# ---------------------------------------------------------------------------


@hookspec
def register_tasks(register: RegisterCallback) -> None:
    """Register tasks. ``factory(config, *, backbone, head, data_info)`` returns a ``Task``."""


@hookspec
def register_backbones(register: RegisterCallback) -> None:
    """Register backbones. ``factory(config, export_dir=None)`` returns an ``nn.Module``
    with ``num_features`` and ``export(directory)``; with ``export_dir`` it rebuilds the
    architecture from an artifact without fetching pretrained weights."""


@hookspec
def register_heads(register: RegisterCallback) -> None:
    """Register heads. ``factory(config, in_features, out_features)`` returns an ``nn.Module``."""


@hookspec
def register_datasets(register: RegisterCallback) -> None:
    """Register datasets. ``factory(config)`` returns ``omnitune.data.Splits``."""


@hookspec
def register_metrics(register: RegisterCallback) -> None:
    """Register metrics. ``factory(config)`` returns ``fn(outputs) -> float`` over the
    concatenated evaluation outputs of a task (for example ``logits`` and ``targets``)."""


# ---------------------------------------------------------------------------
# Deployment: called by ``omnitune export`` on a loaded artifact.
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def export_spec(task: Any, config: Any) -> Any:
    """How ``task`` (built from the run ``config``) exports to ONNX: an ``omnitune.export.ExportSpec``
    naming the module that goes into the graph, its inputs and dynamic axes, and the torch-free
    processor that does the preprocessing kept outside the graph. Return None for a task that is
    not yours; the first answer is used."""


# ---------------------------------------------------------------------------
# Loop events: called by the fine-tuning loop on every plugin. They observe; the one
# thing they may change is ``state.should_stop``. Only rank 0 receives them.
# ---------------------------------------------------------------------------


@hookspec
def on_fit_start(state: Any) -> None:
    """After the model, optimizer and data are ready, before the first step."""


@hookspec
def on_step_end(state: Any, logs: dict[str, float]) -> None:
    """After each optimizer step, with the step's loss and learning rate."""


@hookspec
def on_evaluate_end(state: Any, split: str, metrics: dict[str, float]) -> None:
    """After an evaluation pass over ``split``."""


@hookspec
def on_checkpoint_saved(state: Any, path: str) -> None:
    """After a checkpoint has been written completely and made current."""


@hookspec
def on_fit_end(state: Any, metrics: dict[str, float]) -> None:
    """After training, with the final metrics (test metrics included when there is a test split)."""
