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
#
# Entry-point plugins receive them in every run. An object that serves one run only (a
# logger writing to that run's folder, an Optuna pruning callback) is passed to
# ``finetune(..., callbacks=[obj])`` or ``loop.fit(..., callbacks=[obj])``: it is registered
# on the run's plugin manager for the run's duration, then unregistered, and is isolated like
# any plugin (one that raises is reported in ``plugins.failures`` and gets no further events).
# The built-in ``omnitune.progress.ProgressLogger`` (tqdm and metrics.jsonl) is such an object.
# ---------------------------------------------------------------------------


@hookspec
def on_fit_start(state: Any) -> None:
    """After the model, optimizer and data are ready, before the first step."""


@hookspec
def on_step_end(state: Any, logs: dict[str, float]) -> None:
    """After each optimizer step; ``logs`` holds ``loss`` (the mean over the step's items,
    extra loss terms included), ``lr`` (the backbone's) and ``samples_per_s`` (since the start)."""


@hookspec
def on_evaluate_end(state: Any, split: str, metrics: dict[str, float]) -> None:
    """After an evaluation pass over ``split``."""


@hookspec
def on_checkpoint_saved(state: Any, path: str) -> None:
    """After a checkpoint has been written completely and made current."""


@hookspec
def on_fit_end(state: Any, metrics: dict[str, float]) -> None:
    """After training, with the final metrics (test metrics included when there is a test split)."""


# ---------------------------------------------------------------------------
# The loss: one place where a training micro-batch's loss is formed,
#     loss = task.training_step(model, batch).loss + sum of every term below.
# A distillation plugin adds a KD term from a teacher's logits on the same batch; a new
# objective (causal LM) is a task's ``training_step``. Neither subclasses the loop. Unlike
# loop events this runs on every process, inside autocast, and an error stops training.
# ---------------------------------------------------------------------------


@hookspec
def loss_terms(model: Any, batch: dict[str, Any], output: Any) -> dict[str, Any] | None:
    """Extra terms for one training micro-batch, as ``{name: scalar tensor}`` (or None for
    none). ``model`` is the module being trained (possibly DDP-wrapped or compiled), ``batch``
    is on the device, ``output`` is the task's ``StepOutput`` (its ``outputs`` may hold the
    logits). Each term's gradient flows like the task loss'."""
