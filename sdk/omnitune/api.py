"""The Python API: ``finetune``, ``evaluate`` and the ``list_*`` look-ups."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omnitune.config import COMPONENTS, RunConfig, load_config, validate_components
from omnitune.errors import ConfigError
from omnitune.lock import lock_output_dir, releases_output_locks
from omnitune.plugins import Plugins, load_plugins
from omnitune.registry import Kind

log = logging.getLogger("omnitune")


@dataclass(frozen=True)
class RunResult:
    """What ``finetune`` returns."""

    metrics: dict[str, float]
    artifact: Path
    output_dir: Path
    config: RunConfig
    task: Any = field(default=None, repr=False, compare=False)
    """The trained ``Task``; its ``model`` holds the weights saved in ``artifact``."""
    is_main: bool = True
    """False on the processes of a ``torchrun`` launch other than rank 0 (which reports)."""


def compose_config(
    config: str | Path | dict[str, Any] | RunConfig | None = None,
    *,
    overrides: tuple[str, ...] | list[str] = (),
    **fields: Any,
) -> RunConfig:
    """A RunConfig from a file, dict or RunConfig, with top-level fields replaced by ``fields``
    (``task``, ``backbone``, ``head``, ``dataset``, ``output_dir``, ``train``) and any other keyword
    taken as a ``train`` setting (``lr=3e-5``)."""
    if isinstance(config, RunConfig):
        data = config.model_dump()
    elif config is None and not {"task", "backbone", "dataset"} & fields.keys():
        data = load_config().model_dump()
    elif config is None:
        data = {}
    else:
        data = load_config(config).model_dump() if not isinstance(config, dict) else dict(config)
    sections = set(RunConfig.model_fields)
    train = dict(data.get("train") or {})
    for key, value in fields.items():
        if key in sections and key != "train":
            data[key] = value
        elif key == "train":
            train |= dict(value)
        else:
            train[key] = value
    data["train"] = train
    return load_config(data, overrides)


@releases_output_locks
def finetune(
    config: str | Path | dict[str, Any] | RunConfig | None = None,
    *,
    resume: bool = False,
    plugins: Plugins | None = None,
    callbacks: Sequence[object] = (),
    overrides: tuple[str, ...] | list[str] = (),
    evaluate_test: bool = True,
    **fields: Any,
) -> RunResult:
    """Fine-tune and save an artifact; returns the final metrics and the artifact's path.

    ``finetune(task="text-classification", backbone="minilm-l6", dataset="rotten-tomatoes",
    epochs=1)``; with no arguments, the built-in default run. ``callbacks`` are plugin objects
    for this run only (a logger, a pruning callback; see ``omnitune.hookspecs``).
    ``evaluate_test=False`` skips the test split at the end (a search's trials, say).
    """
    from omnitune import loop
    from omnitune.batch_size import resolve_batch_size
    from omnitune.build import build_dataset, build_initial_task, build_metrics
    from omnitune.card import write_model_card
    from omnitune.distill import Distiller
    from omnitune.loggers import attached, create_loggers
    from omnitune.provenance import reproducibility
    from omnitune.runtime import Runtime, seed_everything

    run = compose_config(config, overrides=overrides, **fields)
    plugins = plugins or load_plugins()
    options = validate_components(run, plugins.registry)
    output_dir = Path(run.output_dir)
    runtime = Runtime.create(run.train.device, run.train.precision, run.train.distributed)
    if runtime.is_main:
        prepare_output_dir(output_dir, resume=resume, overwrite=run.overwrite)
    runtime.barrier()
    seed_everything(run.train.seed)
    splits = build_dataset(run, options, plugins.registry)
    splits = splits if evaluate_test else replace(splits, test=None)
    train = resolve_batch_size(run.train, len(splits.train), runtime.world_size)  # auto: by the split
    run = run.model_copy(update={"train": train})
    task = build_initial_task(run, options, plugins.registry, splits.info)
    if runtime.is_main:
        check_free_space(output_dir, task.model, run.train.keep_checkpoints)
    distiller = Distiller.create(run.train.distill, task, run.task.name, splits.info, runtime,
                                 plugins) if run.train.distill else None
    loggers = create_loggers(run, output_dir) if runtime.is_main else []
    with attached(plugins, loggers):
        result = loop.fit(task, splits, run.train, output_dir, build_metrics(task, plugins.registry),
                          runtime=runtime, resume=resume, plugins=plugins, callbacks=callbacks,
                          distiller=distiller)
    artifact = output_dir / "artifact"
    if runtime.is_main:
        save_run_artifact(artifact, run, options, task, result.weights, splits.info, result.metrics, plugins,
                          reproducibility(runtime, run.train.seed))
        backbone = getattr(task.model, "backbone", None)
        write_model_card(artifact, splits, plugins, base_model=getattr(backbone, "base_model", None),
                         weights_license=getattr(backbone, "weights_license", None),
                         task=None if runtime.sharded else task)  # scored in place, not reloaded
    runtime.barrier()
    return RunResult(result.metrics, artifact, output_dir, run, task, runtime.is_main)


def evaluate(
    artifact: str | Path,
    *,
    split: str = "test",
    overrides: tuple[str, ...] | list[str] = (),
    plugins: Plugins | None = None,
    trust_remote_code: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Evaluate a saved artifact on a split of its dataset (or another, via ``dataset.*`` overrides);
    ``trust_remote_code`` as for ``Predictor.load``."""
    from omnitune.build import build_metrics
    from omnitune.loop import evaluate as evaluate_examples
    from omnitune.predict import Predictor

    predictor = Predictor.load(artifact, plugins=plugins, trust_remote_code=trust_remote_code)
    warn_on_version_changes(Path(artifact))
    run = load_config(predictor.config.model_dump(), overrides)
    examples = dataset_split(predictor, split, overrides)
    predictor.task.setup_training(predictor.data_info)  # the loss weighed as in training
    return evaluate_examples(predictor.task, predictor.task.model, examples, predictor.runtime,
                             build_metrics(predictor.task, predictor.plugins.registry),
                             batch_size=run.train.eval_batch_size or run.train.batch_size,
                             prefix=split, progress=progress)


def dataset_split(predictor: Any, split: str, overrides: tuple[str, ...] | list[str] = ()) -> Any:
    """The examples of ``split`` of the dataset an artifact's ``Predictor`` was trained on
    (or another, via ``dataset.*`` overrides)."""
    from omnitune.build import build_dataset

    run = load_config(predictor.config.model_dump(), overrides)
    options = validate_components(run, predictor.plugins.registry)
    splits = build_dataset(run, options, predictor.plugins.registry)
    examples = getattr(splits, split, None) if split in ("train", "validation", "test") else None
    if not examples:
        raise ConfigError(f"--split: dataset {run.dataset.name!r} has no {split!r} split")
    return examples


def warn_on_version_changes(artifact: Path) -> list[str]:
    """Log a warning for each library whose version differs from the one that trained ``artifact``."""
    from omnitune.provenance import version_differences

    record = artifact / "reproducibility.json"
    if not record.is_file():
        return []
    differences = version_differences(json.loads(record.read_text(encoding="utf-8")))
    for difference in differences:
        log.warning("%s: %s; results may differ from the recorded ones", artifact, difference)
    return differences


def prepare_output_dir(output_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Lock the folder against another run, refuse to mix two runs in it, and check it is
    writable, before training."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        lock_output_dir(output_dir)
    except OSError as error:
        raise ConfigError(f"output_dir {output_dir} is not writable: {error}") from error
    started = (output_dir / "checkpoints").exists()
    if started and not resume and not overwrite:
        raise ConfigError(
            f"output_dir {output_dir} already holds a run; pass --resume to continue it, "
            "--overwrite to start afresh, or choose another output_dir"
        )
    if overwrite and not resume:
        for name in ("checkpoints", "best", "artifact", "metrics.jsonl"):
            path = output_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    try:
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as error:
        raise ConfigError(f"output_dir {output_dir} is not writable: {error}") from error


def check_free_space(output_dir: Path, model: Any, keep_checkpoints: int) -> None:
    """Refuse to start when ``output_dir`` cannot hold the checkpoints the run will write:
    each holds the weights and two AdamW moments; best weights and the artifact add two more."""
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    needed = weight_bytes * (3 * (keep_checkpoints + 1) + 2)
    free = shutil.disk_usage(output_dir).free
    if free < needed:
        raise ConfigError(
            f"output_dir {output_dir} has {free / 2**20:.0f} MiB free; this run needs about "
            f"{needed / 2**20:.0f} MiB ({keep_checkpoints} checkpoints of a {weight_bytes / 2**20:.0f} MiB "
            "model with optimizer state, best weights and the artifact). Free space, lower "
            "train.keep_checkpoints, or choose another output_dir"
        )


def save_run_artifact(
    directory: Path,
    run: RunConfig,
    options: dict[Kind, Any],
    task: Any,
    weights: dict[str, Any],
    data_info: dict[str, Any],
    metrics: dict[str, float],
    plugins: Plugins,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Save ``weights`` (``FitResult.weights``), resolved config, data info, preprocessing,
    metrics and what produced them (``provenance.reproducibility``) as one folder."""
    from omnitune.checkpoint import save_artifact

    resolved = run.model_dump(mode="json")
    for kind in COMPONENTS:
        resolved[kind] = {"name": getattr(run, kind).name, **options[kind].model_dump(mode="json")}
    used = {plugins.registry.get(kind, getattr(run, kind).name).plugin for kind in COMPONENTS}
    versions = {info.name: info.version for info in plugins.loaded if info.name in used}
    files = {
        "config": resolved,
        "data_info": data_info,
        "preprocessing": task.preprocessing(),
        "metrics": metrics,
        "omnitune": {"version": importlib.metadata.version("omnitune"), "plugins": versions,
                     "created": datetime.now(UTC).isoformat(timespec="seconds")},
    }
    if provenance is not None:
        files["reproducibility"] = provenance
    backbone = getattr(task.model, "backbone", None)
    export = getattr(backbone, "export", None)
    return save_artifact(directory, weights, files, export)


def list_names(kind: Kind, pattern: str = "*", plugins: Plugins | None = None) -> list[str]:
    """Registered names of ``kind`` matching ``pattern`` (shell-style, e.g. ``"text-*"``)."""
    plugins = plugins or load_plugins()
    return [c.name for c in plugins.registry.list(kind, pattern)]


def list_tasks(pattern: str = "*") -> list[str]:
    """Registered task names matching ``pattern``."""
    return list_names("task", pattern)


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered backbone names matching ``pattern``."""
    return list_names("backbone", pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered dataset names matching ``pattern``."""
    return list_names("dataset", pattern)
