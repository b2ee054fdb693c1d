"""The model card: ``README.md`` in every artifact, in the Hugging Face model-card format (YAML
metadata, then prose): intended use, data and split, metrics with bootstrap 95% intervals,
training settings, hardware and time, known limitations."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from omnitune.checkpoint import WEIGHTS, atomic_write_text, savable_weights
from omnitune.data import Splits
from omnitune.errors import CheckpointError
from omnitune.plugins import Plugins
from omnitune.task import Task

log = logging.getLogger("omnitune")
Interval = tuple[float, float]

PIPELINE_TAGS = {"text-classification": "text-classification",
                 "image-classification": "image-classification",
                 "audio-classification": "audio-classification",
                 "speech-recognition": "automatic-speech-recognition"}
TRAIN_SETTINGS = ("epochs", "max_steps", "batch_size", "grad_accum", "lr", "head_lr", "weight_decay",
                  "warmup_ratio", "schedule", "strategy", "max_grad_norm", "seed")


def write_model_card(artifact: Path, splits: Splits, plugins: Plugins, *, base_model: str | None = None,
                     weights_license: str | None = None, task: Task | None = None) -> Path:
    """Compute bootstrap intervals of every metric on the validation and test splits, and write
    ``artifact/README.md``. The model scored is ``task`` (the trained one, whose weights the
    artifact holds: checked by name and shape, without a second copy of the model in memory),
    else ``artifact`` reloaded (which also proves it loads)."""
    from omnitune.build import build_metrics
    from omnitune.outputs import bootstrap_intervals, collect_outputs
    from omnitune.predict import Predictor

    if task is None:
        predictor = Predictor.load(artifact, plugins=plugins)
        task, device = predictor.task, predictor.runtime.device
    else:
        check_saved_weights(artifact / WEIGHTS, task.model)
        device = next(task.model.parameters()).device
    metric_fns = build_metrics(task, plugins.registry)
    config = _read(artifact, "config")
    batch_size = config["train"]["eval_batch_size"] or config["train"]["batch_size"]
    intervals = {}
    for prefix, examples in (("eval", splits.validation), ("test", splits.test)):
        if not examples:
            continue
        try:
            outputs = collect_outputs(task, examples, device, batch_size)
            intervals[prefix] = bootstrap_intervals(outputs, metric_fns, seed=config["train"]["seed"])
        except Exception as error:  # the trained artifact stands; its card just lacks intervals
            log.warning("model card: no confidence intervals on %s (%s: %s)", prefix,
                        type(error).__name__, error)
    sizes = {name: len(getattr(splits, name) or []) for name in ("train", "validation", "test")}
    if base_model:
        config["backbone"]["model"] = base_model
    text = model_card(config, _read(artifact, "metrics"), intervals, _read(artifact, "reproducibility"),
                      sizes, _read(artifact, "data_info"), weights_license)
    atomic_write_text(artifact / "README.md", text)
    return artifact / "README.md"


def check_saved_weights(path: Path, model: nn.Module) -> None:
    """Raise unless the safetensors file at ``path`` holds ``model``'s weights' names and shapes."""
    from safetensors import safe_open

    expected = {name: list(t.shape) for name, t in savable_weights(model, model.state_dict()).items()}
    with safe_open(str(path), framework="pt") as saved:
        found = {name: saved.get_slice(name).get_shape() for name in saved.keys()}  # noqa: SIM118
    differing = sorted(set(found) ^ set(expected) | {n for n in found.keys() & expected.keys()
                                                     if found[n] != expected[n]})
    if differing:
        raise CheckpointError(f"{path} does not hold the trained model's weights: {len(differing)} "
                              f"name(s) or shape(s) differ, e.g. {differing[:3]}")


def _read(artifact: Path, name: str) -> dict[str, Any]:
    path = artifact / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def model_card(
    config: dict[str, Any],
    metrics: dict[str, float],
    intervals: dict[str, dict[str, Interval]],
    provenance: dict[str, Any],
    split_sizes: dict[str, int],
    data_info: dict[str, Any],
    weights_license: str | None = None,
) -> str:
    """The card's text. ``config`` is the artifact's resolved config, ``intervals`` maps a split
    (``eval``, ``test``) to each metric's interval, ``provenance`` is ``reproducibility.json``."""
    sections = [
        "---\n" + yaml.safe_dump(_metadata(config, metrics, weights_license), sort_keys=False) + "---",
        f"# {config['task']['name']}: {_base_model(config)} fine-tuned on {config['dataset']['name']}",
        "This model was fine-tuned with [omnitune](https://github.com/omnitune/omnitune). Load it with "
        "`omnitune.Predictor.load(folder)` or `omnitune predict FOLDER INPUT...`.",
        _intended_use(config, data_info),
        _data(config, split_sizes),
        _results(metrics, intervals),
        _training(config, metrics, provenance),
        _limitations(data_info, intervals),
    ]
    return "\n\n".join(sections) + "\n"


def _base_model(config: dict[str, Any]) -> str:
    backbone = config["backbone"]
    return str(backbone.get("model") or backbone["name"])


def _metadata(config: dict[str, Any], metrics: dict[str, float], weights_license: str | None) -> dict:
    task = config["task"]["name"]
    names = sorted({k.split("_", 1)[1] for k in metrics if k.startswith(("eval_", "test_"))} - {"loss"})
    results = [{"task": {"type": PIPELINE_TAGS.get(task, task)},
                "dataset": {"name": config["dataset"]["name"], "type": config["dataset"]["name"],
                            "split": split},
                "metrics": [{"type": name, "value": round(metrics[f"{prefix}_{name}"], 4),
                             "name": f"{split} {name}"} for name in names if f"{prefix}_{name}" in metrics]}
               for prefix, split in (("eval", "validation"), ("test", "test"))]
    metadata: dict[str, Any] = {
        "library_name": "omnitune",
        "license": weights_license or "other",
        "base_model": _base_model(config),
        "datasets": [config["dataset"]["name"]],
        "metrics": names,
        "tags": ["omnitune", task],
    }
    if task in PIPELINE_TAGS:
        metadata["pipeline_tag"] = PIPELINE_TAGS[task]
    metadata["model-index"] = [{"name": f"{task}-{config['dataset']['name']}",
                                "results": [r for r in results if r["metrics"]]}]
    return metadata


def _intended_use(config: dict[str, Any], data_info: dict[str, Any]) -> str:
    labels = data_info.get("labels")
    what = f" into {len(labels)} classes ({', '.join(map(str, labels[:20]))})" if labels else ""
    return ("## Intended use\n\n"
            f"`{config['task']['name']}`{what}, on inputs like those of `{config['dataset']['name']}`. "
            "It has been evaluated only on the held-out splits below; check it on your own data "
            "before relying on it.")


def _data(config: dict[str, Any], split_sizes: dict[str, int]) -> str:
    options = {k: v for k, v in config["dataset"].items() if k != "name" and v is not None}
    sizes = ", ".join(f"{name} {count:,}" for name, count in split_sizes.items())
    listed = "\n".join(f"- `{k}`: `{v}`" for k, v in options.items())
    return (f"## Training data and split\n\nDataset `{config['dataset']['name']}`; examples per "
            f"split: {sizes}.\nDataset options (how it was read and split):\n\n{listed or '- (defaults)'}")


def _results(metrics: dict[str, float], intervals: dict[str, dict[str, Interval]]) -> str:
    rows = ["| split | metric | value | 95% CI (bootstrap) |", "|---|---|---|---|"]
    for prefix, split in (("eval", "validation"), ("test", "test")):
        for key in sorted(k for k in metrics if k.startswith(prefix + "_")):
            name = key.removeprefix(prefix + "_")
            low_high = intervals.get(prefix, {}).get(name)
            interval = f"[{low_high[0]:.4f}, {low_high[1]:.4f}]" if low_high else ""
            rows.append(f"| {split} | {name} | {metrics[key]:.4f} | {interval} |")
    return ("## Results\n\nValidation metrics are those of the best checkpoint (the one saved); "
            "intervals resample the examples of each split 1,000 times.\n\n" + "\n".join(rows))


def _training(config: dict[str, Any], metrics: dict[str, float], provenance: dict[str, Any]) -> str:
    train = config["train"]
    settings = "\n".join(f"- `{k}`: `{train[k]}`" for k in TRAIN_SETTINGS if train.get(k) is not None)
    versions = ", ".join(f"{k} {v}" for k, v in provenance.get("versions", {}).items() if v)
    seconds = metrics.get("train_runtime_s")
    git = provenance.get("git") or {}
    return (f"## Training\n\n{settings}\n\n"
            f"Hardware: {provenance.get('world_size', 1)} x `{provenance.get('device')}` "
            f"({provenance.get('device_name')}), precision `{provenance.get('precision')}`. "
            f"Training time: {f'{seconds:.0f} s' if seconds else 'not recorded'} "
            f"for {int(metrics.get('steps', 0))} steps.\n\nSoftware: {versions}. "
            f"Command: `{provenance.get('command')}`"
            + (f"; git commit `{git['commit']}`{' (with uncommitted changes)' if git.get('dirty') else ''}"
               if git.get("commit") else "") + ". Details: `reproducibility.json`.")


def _limitations(data_info: dict[str, Any], intervals: dict[str, dict[str, Interval]]) -> str:
    notes = [str(note) for note in data_info.get("limitations", [])]
    notes.append("The metrics hold for data drawn like the test split; inputs from another source, "
                 "language, domain or recording setup can score much lower.")
    notes.append("The confidence intervals cover the sampling of test examples only, not the "
                 "variation between training runs (seeds).")
    if not any(intervals.values()):
        notes.append("No confidence intervals: this task's outputs are not one row per example.")
    return "## Known limitations\n\n" + "\n".join(f"- {note}" for note in notes)
