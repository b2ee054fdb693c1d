"""An exported bundle folder: ``manifest.json``, the ONNX model(s) and the task's preprocessing
files, predicted on with onnxruntime through the task's torch-free processor."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnitune.errors import CheckpointError, PluginError
from omnitune.serving.processor import Feeds, Processor

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def is_bundle(folder: str | Path) -> bool:
    """Whether ``folder`` holds an exported bundle (rather than a PyTorch artifact)."""
    return (Path(folder) / MANIFEST).is_file()


class Bundle:
    """A bundle loaded for prediction: ``Bundle(folder).predict(["a review"])``."""

    def __init__(self, folder: str | Path, *, variant: str = "fp32", threads: int | None = None) -> None:
        import onnxruntime

        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        models = self.manifest["models"]
        if variant not in models:
            raise CheckpointError(f"{self.folder}: no {variant!r} model in this bundle; it has "
                                  f"{sorted(models)} (export with --quantize int8 for int8)")
        self.variant = variant
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(self.folder / models[variant]["file"]), options,
                                                    providers=["CPUExecutionProvider"])
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.processor = load_processor(self.manifest["processor"], self.folder,
                                        self.manifest["preprocessing"])

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    def run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """Run the graph on named input arrays; returns its named outputs."""
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds), strict=True))

    def predict(self, inputs: Any | Sequence[Any], batch_size: int = 32) -> list[dict[str, Any]]:
        """One prediction dict per raw input, as ``omnitune.Predictor.predict`` returns."""
        items = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        results: list[dict[str, Any]] = []
        for start in range(0, len(items), batch_size):
            results.extend(self.processor.predict(self.run, items[start:start + batch_size]))
        return results

    def metadata(self) -> dict[str, Any]:
        """Task, labels, metrics, parity and versions, as served at ``GET /metadata``."""
        keys = ("task", "labels", "metrics", "parity", "quantization", "versions", "created")
        return {"format": "onnx", "variant": self.variant,
                **{key: self.manifest.get(key) for key in keys}}


def read_manifest(folder: Path) -> dict[str, Any]:
    """The bundle's manifest, checked for the fields every bundle has."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CheckpointError(f"{folder} is not an omnitune bundle: {MANIFEST} is missing "
                              "(make one with `omnitune export ARTIFACT --output DIR`)") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from error
    missing = [key for key in ("format_version", "task", "processor", "models", "preprocessing")
               if key not in manifest]
    if missing:
        raise CheckpointError(f"{path}: missing {', '.join(missing)}; not a bundle omnitune wrote")
    if manifest["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path}: bundle format {manifest['format_version']} is newer than this "
                              f"omnitune reads ({FORMAT_VERSION}); upgrade omnitune")
    return manifest


def load_processor(reference: str, folder: Path, preprocessing: dict[str, Any]) -> Processor:
    """Import the processor class named ``module:Class`` in the manifest and build it. The module
    comes from the installed packages (the task's plugin), never from the bundle folder."""
    module_name, _, attribute = reference.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise PluginError(f"bundle processor {reference!r} cannot be imported ({error}); install the "
                          "plugin that exported this bundle") from error
    return factory(folder, preprocessing)

