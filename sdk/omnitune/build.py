"""Assemble a task from registry contributions: backbone + head + task, and its metrics."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from omnitune.config import ComponentSpec, RunConfig
from omnitune.data import Splits, warn_small_splits
from omnitune.errors import PluginError
from omnitune.metrics import Metric
from omnitune.registry import Kind, Registry
from omnitune.task import Task


@dataclass(frozen=True)
class BuildContext:
    """What a factory may ask of the run it builds for: other components, through the run's own
    registry, and the dataset's info. A factory receives it by declaring a ``context`` parameter."""

    registry: Registry
    data_info: dict[str, Any] = field(default_factory=dict)

    def builder(self, kind: Kind, spec: ComponentSpec, *, where: str) -> Callable[..., Any]:
        """Validate ``spec``'s options now (errors name ``where``); build when called, with
        the factory's other arguments (``export_dir=...`` for a backbone)."""
        contribution = self.registry.get(kind, spec.name)
        options = contribution.validate_options(spec.options, where=where)
        return functools.partial(contribution.build, options, context=self)

    def build(self, kind: Kind, spec: ComponentSpec, *, where: str, **kwargs: Any) -> Any:
        """Build the ``kind`` named by ``spec``, as a run config's component would be."""
        return self.builder(kind, spec, where=where)(**kwargs)


def build_dataset(config: RunConfig, options: dict[Kind, BaseModel], registry: Registry) -> Splits:
    """Load the dataset's splits through its registered factory."""
    splits = registry.get("dataset", config.dataset.name).build(options["dataset"],
                                                                context=BuildContext(registry))
    if not isinstance(splits, Splits):
        raise PluginError(f"dataset {config.dataset.name!r} returned {type(splits).__name__}, "
                          "expected omnitune.data.Splits")
    if not splits.train:
        raise PluginError(f"dataset {config.dataset.name!r} has an empty training split")
    warn_small_splits(splits, config.dataset.name)
    count_training_labels(splits)
    return splits


def count_training_labels(splits: Splits) -> None:
    """Record how often each label occurs in training (``train_label_counts``, ``train_size``) in
    a classification dataset's info, for class weights and the default monitor."""
    if "labels" not in splits.info or "train_label_counts" in splits.info:
        return
    from omnitune.classification import training_label_counts

    counts = training_label_counts(splits.train, splits.info["labels"])
    if counts is not None:
        splits.info |= {"train_label_counts": counts, "train_size": len(splits.train)}


def build_task(
    config: RunConfig,
    options: dict[Kind, BaseModel],
    registry: Registry,
    data_info: dict[str, Any],
    export_dir: Path | None = None,
) -> Task:
    """Build backbone, head and task. With ``export_dir`` the backbone is rebuilt from an
    artifact's exported files instead of its pretrained source."""
    context = BuildContext(registry, data_info)
    backbone = registry.get("backbone", config.backbone.name).build(
        options["backbone"], export_dir=export_dir, context=context
    )
    head = functools.partial(registry.get("head", config.head.name).build, options["head"], context=context)
    task = registry.get("task", config.task.name).build(
        options["task"], backbone=backbone, head=head, data_info=data_info, context=context
    )
    if not isinstance(task, Task):
        raise PluginError(f"task {config.task.name!r} returned {type(task).__name__}, "
                          "expected an omnitune.task.Task")
    return task


def build_initial_task(config: RunConfig, options: dict[Kind, BaseModel], registry: Registry,
                       data_info: dict[str, Any]) -> Task:
    """``build_task`` for training: from the pretrained backbone, or with ``train.init_from``
    from that artifact's architecture and weights."""
    if config.train.init_from is None:
        return build_task(config, options, registry, data_info)
    from omnitune.checkpoint import WEIGHTS, load_weights

    artifact = Path(config.train.init_from)
    exported = artifact / "backbone"
    task = build_task(config, options, registry, data_info,
                      export_dir=exported if exported.is_dir() else None)
    load_weights(task.model, artifact / WEIGHTS)
    return task


def build_metrics(task: Task, registry: Registry) -> dict[str, Metric]:
    """The metric functions a task asks for, by registered name."""
    return {name: registry.get("metric", name).build(None) for name in task.metrics}
