"""Artifact -> ONNX bundle (+ int8), with parity against the PyTorch model proven on held-out inputs.

A task exports through the ``export_spec`` hook: its plugin says which module goes into the graph,
with which named inputs and dynamic axes, and which torch-free processor (``module:Class``) does
the preprocessing that stays outside the graph. ``export`` then

1. exports the graph with ``torch.onnx.export`` (the dynamo exporter, or TorchScript where dynamo
   fails or is asked for), with dynamic batch (and sequence) axes;
2. runs the ONNX graph and the PyTorch module on the same encoded held-out inputs (max absolute
   difference of the outputs), and the torch-free bundle and the PyTorch ``Predictor`` on the same
   raw inputs (share of identical predictions); beyond the tolerances the export fails;
3. with ``quantize="int8"``, quantizes with onnxruntime (dynamic, or static calibrated on the
   training split) and reports the change of the task's score on the test split.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from omnitune.errors import ConfigError, OmnituneError, PluginError
from omnitune.plugins import Plugins

log = logging.getLogger("omnitune")

Exporter = Literal["auto", "dynamo", "torchscript"]
WEIGHTED_OPS = ("MatMul", "Gemm", "Conv", "LSTM", "GRU")  # what int8 would have quantized


class ParityError(OmnituneError):
    """The exported model's outputs differ from the PyTorch model's beyond the tolerance."""

    exit_code = 9


@dataclass
class ExportSpec:
    """How one task exports; returned by a plugin's ``export_spec`` hook."""

    module: Any
    """An ``nn.Module`` taking the tensors of ``inputs`` (in order) and returning ``outputs``."""
    inputs: dict[str, Any]
    """Example input tensors by graph input name, in ``forward`` order (a batch of 2 or more)."""
    dynamic_axes: dict[str, dict[int, str]]
    """Per input, the axes that vary: ``{"input_ids": {0: "batch", 1: "sequence"}}``."""
    outputs: list[str]
    processor: str
    """``module:Class`` of the torch-free processor (``omnitune.serving.processor.Processor``)."""
    preprocessing: dict[str, Any]
    """JSON settings the processor is built with (labels, tokenizer padding, image mean/std...)."""
    encode: Callable[[list[Any]], dict[str, Any]]
    """Raw inputs -> the graph's input tensors, as the PyTorch task encodes them."""
    raw_input: Callable[[Any], Any]
    """A dataset example -> the raw input a user would give (text, image, path, user id)."""
    score: Callable[[list[dict[str, Any]], list[Any]], float] | None = None
    """Predictions and their dataset examples -> the task's score (higher is better)."""
    score_name: str = "accuracy"
    quantization: Literal["dynamic", "static"] = "dynamic"
    """int8 method: dynamic for transformer-style graphs, static (calibrated) for convolutions."""
    int8_float_nodes: Callable[[Any], list[str]] = field(default=lambda graph: [])
    """The ONNX graph (``onnx.GraphProto``) -> names of nodes int8 leaves in float, where values
    span more range than int8 holds."""
    write_files: Callable[[Path], None] = field(default=lambda folder: None)
    """Writes the processor's files (a tokenizer, an item table) into the bundle folder."""


@dataclass(frozen=True)
class Tolerances:
    """When an export fails: outputs further apart than ``max_abs_diff``, fewer identical
    predictions than ``min_identical``, or an int8 score lower by more than ``max_int8_drop``."""

    max_abs_diff: float = 1e-4
    min_identical: float = 0.99
    max_int8_drop: float = 0.01


class ClassificationScores(nn.Module):
    """A classifier with probabilities out: softmax, or sigmoid when multi-label."""

    def __init__(self, model: nn.Module, multi_label: bool = False) -> None:
        super().__init__()
        self.model = model
        self.multi_label = multi_label

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        logits = self.model(*inputs).float()
        return torch.sigmoid(logits) if self.multi_label else logits.softmax(dim=-1)


def label_accuracy(label_of: Callable[[Any], Any]) -> Callable[[list[dict[str, Any]], list[Any]], float]:
    """A score for ``ExportSpec.score``: the share of predictions whose label (or set of labels)
    is the example's, ``label_of(example)``."""
    def accuracy(predictions: list[dict[str, Any]], examples: list[Any]) -> float:
        hits = [set(p["labels"]) == set(label_of(e)) if "labels" in p else p["label"] == label_of(e)
                for p, e in zip(predictions, examples, strict=True)]
        return sum(hits) / max(len(hits), 1)

    return accuracy


def export(
    artifact: str | Path,
    output: str | Path,
    *,
    quantize: Literal["int8"] | None = None,
    opset: int = 18,
    exporter: Exporter = "auto",
    tolerances: Tolerances = Tolerances(),
    inputs: Sequence[Any] | None = None,
    samples: int = 1000,
    plugins: Plugins | None = None,
) -> dict[str, Any]:
    """Export ``artifact`` to the bundle folder ``output``; returns its manifest. Parity is
    checked on up to ``samples`` inputs of the artifact's test split, or on ``inputs``."""
    from omnitune.export_checks import held_out, int8_report, parity_report
    from omnitune.predict import Predictor

    predictor = Predictor.load(artifact, device="cpu", merge_lora=True, plugins=plugins)
    spec = export_spec(predictor)
    data = held_out(predictor, spec, inputs, samples)
    output = Path(output)
    staging = _fresh(output.with_name(output.name + ".partial"))
    manifest = _write_bundle(staging, Path(artifact), predictor, spec, opset, exporter)
    manifest["parity"] = parity_report(staging, predictor, spec, data, tolerances)
    if quantize == "int8":
        manifest["models"]["int8"] = quantize_int8(staging, spec, data.calibration)
        _write_json(staging / "manifest.json", manifest)
        manifest["quantization"] = int8_report(staging, data, tolerances, spec)
    _write_json(staging / "manifest.json", manifest)
    failures = manifest["parity"]["failures"] + manifest.get("quantization", {}).get("failures", [])
    if failures:
        rejected = _fresh(output.with_name(output.name + ".rejected"))
        staging.rename(rejected)
        raise ParityError("export failed its checks: " + "; ".join(failures)
                          + f". The rejected bundle is in {rejected} for inspection")
    _replace(staging, output)
    return manifest


def export_spec(predictor: Any) -> ExportSpec:
    """The task's export description, from the first plugin whose ``export_spec`` hook answers."""
    name = predictor.config.task.name
    spec = predictor.plugins.manager.hook.export_spec(task=predictor.task, config=predictor.config)
    if spec is None:
        raise PluginError(f"task {name!r} cannot be exported: no plugin's export_spec hook answered "
                          "for it (its plugin has to implement export_spec; see docs/deploy.md)")
    if not isinstance(spec, ExportSpec):
        raise PluginError(f"export_spec for task {name!r} returned {type(spec).__name__}, "
                          "expected omnitune.export.ExportSpec")
    return spec


def _write_bundle(folder: Path, artifact_folder: Path, predictor: Any, spec: ExportSpec, opset: int,
                  exporter: Exporter) -> dict[str, Any]:
    """The fp32 graph, the processor's files and a manifest without the checks yet."""
    started = time.perf_counter()
    used = to_onnx(spec, folder / "model.onnx", opset, exporter)
    spec.write_files(folder)
    artifact = {name: json.loads((artifact_folder / f"{name}.json").read_text(encoding="utf-8"))
                for name in ("metrics", "config", "omnitune") if (artifact_folder / f"{name}.json").is_file()}
    manifest = {
        "format_version": 1,
        "task": predictor.config.task.name,
        "processor": spec.processor,
        "preprocessing": spec.preprocessing,
        "labels": spec.preprocessing.get("labels"),
        "inputs": {name: {"dynamic_axes": spec.dynamic_axes.get(name, {})} for name in spec.inputs},
        "outputs": spec.outputs,
        "models": {"fp32": {"file": "model.onnx", "bytes": (folder / "model.onnx").stat().st_size}},
        "exporter": {"name": used, "opset": opset, "seconds": round(time.perf_counter() - started, 1)},
        "metrics": artifact.get("metrics", {}),
        "config": artifact.get("config", {}),
        "versions": _versions(artifact),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_json(folder / "manifest.json", manifest)
    return manifest


def to_onnx(spec: ExportSpec, path: Path, opset: int, exporter: Exporter) -> str:
    """Export ``spec.module`` to ``path``; returns the exporter used. ``auto`` tries the dynamo
    exporter and falls back to TorchScript, saying why."""
    spec.module.eval()
    args = tuple(spec.inputs.values())
    common = {"input_names": list(spec.inputs), "output_names": spec.outputs, "opset_version": opset}
    if exporter in ("auto", "dynamo"):
        try:
            with torch.no_grad():
                torch.onnx.export(spec.module, args, str(path), dynamo=True, external_data=False,
                                  dynamic_shapes=_dynamic_shapes(spec), verbose=False, **common)
            return "dynamo"
        except Exception as error:  # noqa: BLE001 - any exporter failure: fall back or report
            if exporter == "dynamo":
                raise PluginError(f"the dynamo ONNX exporter failed: {error}") from error
            log.warning("dynamo ONNX export failed (%s: %s); using the TorchScript exporter",
                        type(error).__name__, str(error).splitlines()[0] if str(error) else "")
    with torch.no_grad():
        torch.onnx.export(spec.module, args, str(path), dynamo=False, dynamic_axes=spec.dynamic_axes,
                          **common)
    return "torchscript"


def _dynamic_shapes(spec: ExportSpec) -> tuple[Any, ...]:
    """``dynamic_axes`` as ``torch.export.Dim``s (one per axis name, shared across inputs), in
    the order of the inputs; nested once for a ``forward(*inputs)``."""
    from torch.export import Dim

    dims: dict[str, Any] = {}
    shapes = tuple({axis: dims.setdefault(label, Dim(label))
                    for axis, label in spec.dynamic_axes.get(name, {}).items()} for name in spec.inputs)
    parameters = inspect.signature(spec.module.forward).parameters.values()
    return (shapes,) if any(p.kind is p.VAR_POSITIONAL for p in parameters) else shapes


def quantize_int8(folder: Path, spec: ExportSpec, calibration: list[Any]) -> dict[str, Any]:
    """``model.int8.onnx`` from ``model.onnx``: dynamic int8 weights, or static QDQ int8 with
    activation ranges calibrated on ``calibration`` (raw training inputs) through the processor;
    weights get one scale per output channel either way."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, prepared, target = folder / "model.onnx", folder / "model.prep.onnx", folder / "model.int8.onnx"
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(str(prepared)).graph
    kept_float = spec.int8_float_nodes(graph)
    weighted = [node.name for node in graph.node if node.name in kept_float and node.op_type in WEIGHTED_OPS]
    if spec.quantization == "dynamic":  # per-channel weight scales: chosen on validation, see docs/deploy.md
        quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=kept_float)
    else:
        if not calibration:
            raise ConfigError("static int8 quantization needs calibration inputs: the artifact's "
                              "training split did not resolve")
        reader = _calibration_reader(folder, calibration)
        quantize_static(str(prepared), str(target), reader, per_channel=True, nodes_to_exclude=kept_float,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    prepared.unlink()
    return {"file": target.name, "bytes": target.stat().st_size, "method": spec.quantization,
            "per_channel": True, "kept_float": weighted}


def _calibration_reader(folder: Path, raw: list[Any], batch_size: int = 16) -> Any:
    """An onnxruntime ``CalibrationDataReader`` over ``raw`` inputs encoded by the bundle's processor."""
    from onnxruntime.quantization import CalibrationDataReader

    from omnitune.serving.bundle import load_processor, read_manifest

    manifest = read_manifest(folder)
    processor = load_processor(manifest["processor"], folder, manifest["preprocessing"])
    batches = iter([processor.encode(raw[i:i + batch_size]) for i in range(0, len(raw), batch_size)])

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, Any] | None:
            return next(batches, None)

    return Reader()


def _versions(artifact: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime

    return {"omnitune": importlib.metadata.version("omnitune"), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "trained_with": artifact.get("omnitune", {})}


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _replace(staging: Path, output: Path) -> None:
    """Move the checked bundle into place, replacing an older one at ``output``."""
    if output.exists():
        if not (output / "manifest.json").is_file() and any(output.iterdir()):
            raise ConfigError(f"--output {output} exists and is not an omnitune bundle; "
                              "choose an empty or new folder")
        shutil.rmtree(output)
    staging.rename(output)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
