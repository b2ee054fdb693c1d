"""Smaller students from a fine-tuned artifact: drop layers, remove attention heads, then
optionally fine-tune the student (with distillation from the artifact). The result is an
ordinary artifact: Predictor, eval, export and serving see no difference."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnitune.config import RunConfig, apply_override, load_config, validate_components
from omnitune.errors import ConfigError
from omnitune.plugins import Plugins, load_plugins

SHRINK_OPTIONS = ("layers", "prune_heads")


def compress(
    teacher: str | Path,
    output_dir: str | Path,
    *,
    layers: list[int] | None = None,
    prune_heads: dict[int, list[int]] | None = None,
    fine_tune: bool = False,
    distill: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    plugins: Plugins | None = None,
    callbacks: Sequence[object] = (),
) -> Path:
    """Write a student made from ``teacher``'s own weights (``layers`` kept, ``prune_heads``
    removed) to ``output_dir/artifact``. With ``fine_tune`` (or ``distill``, which also learns
    from the teacher), the student is first saved to ``output_dir/initial`` and trained from
    there with the teacher's run settings plus ``overrides`` (``train.epochs=1``); ``callbacks``
    observe that training (loop-event plugin objects, as in ``finetune``)."""
    from omnitune.api import finetune, save_run_artifact
    from omnitune.checkpoint import savable_weights
    from omnitune.predict import Predictor

    teacher, output_dir = Path(teacher), Path(output_dir)
    plugins = plugins or load_plugins()
    predictor = Predictor.load(teacher, device="cpu", plugins=plugins)
    changes = _changes(predictor.config, layers, prune_heads)
    student = student_config(predictor.config, changes, output_dir, teacher if distill else None,
                             overrides)
    options = validate_components(student, plugins.registry)
    _shrink(predictor.task.model, changes)
    fine_tune = fine_tune or distill
    initial = output_dir / ("initial" if fine_tune else "artifact")
    weights = savable_weights(predictor.task.model, predictor.task.model.state_dict())
    save_run_artifact(initial, student, options, predictor.task, weights,
                      predictor.data_info, {}, plugins)
    if not fine_tune:
        return initial
    trained = student.model_copy(update={"train": student.train.model_copy(
        update={"init_from": str(initial)})})
    return finetune(trained, plugins=plugins, callbacks=callbacks).artifact


def student_config(teacher: RunConfig, changes: dict[str, Any], output_dir: Path,
                   distill_from: Path | None, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """The teacher's run config with the student's backbone options, output folder, the teacher
    as ``train.distill.teacher`` when distilling, then ``overrides``."""
    data = teacher.model_dump(mode="json")
    data["backbone"] = {**data["backbone"], **changes}
    data["output_dir"] = str(output_dir)
    data["train"]["init_from"] = None
    data["train"]["distill"] = {"teacher": str(distill_from)} if distill_from else None
    for override in overrides:
        apply_override(data, override)
    return load_config(data)


def _changes(teacher: RunConfig, layers: list[int] | None,
             prune_heads: dict[int, list[int]] | None) -> dict[str, Any]:
    if layers is None and not prune_heads:
        raise ConfigError("compress: give the layers to keep or the heads to prune (or both)")
    done = [name for name in SHRINK_OPTIONS if teacher.backbone.options.get(name)]
    if done:
        raise ConfigError(f"compress: the teacher's backbone already has {', '.join(done)} set; "
                          "compress a teacher built on its full source model")
    changes: dict[str, Any] = {"layers": list(layers)} if layers is not None else {}
    return changes | ({"prune_heads": dict(prune_heads)} if prune_heads else {})


def _shrink(model: Any, changes: dict[str, Any]) -> None:
    """Apply ``changes`` to the loaded teacher's backbone through its ``shrink`` method."""
    backbone = getattr(model, "backbone", None)
    shrink = getattr(backbone, "shrink", None)
    if shrink is None:
        raise ConfigError(f"compress: the backbone {type(backbone).__name__} cannot drop layers or "
                          "prune heads (it has no shrink method)")
    unsupported = sorted(set(changes) - set(inspect.signature(shrink).parameters))
    if unsupported:
        raise ConfigError(f"compress: the backbone {type(backbone).__name__} does not support "
                          f"{', '.join(unsupported)}")
    shrink(**changes)
