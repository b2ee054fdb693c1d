"""The checks every export runs: parity of the ONNX graph and of the torch-free bundle with the
PyTorch model on held-out inputs, and the int8 model's score change on the test split."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnitune.errors import ConfigError, OmnituneError
from omnitune.export import ExportSpec, Tolerances
from omnitune.serving.bundle import Bundle

log = logging.getLogger("omnitune")
CALIBRATION_SAMPLES = 128


@dataclass
class HeldOut:
    """Raw inputs the checks run on, where they came from, and training inputs for calibration."""

    raw: list[Any]
    examples: list[Any] | None
    """The dataset examples behind ``raw`` (for the score); None for inputs the user gave."""
    calibration: list[Any]
    source: str
    onnx_predictions: list[dict[str, Any]] | None = None


def held_out(predictor: Any, spec: ExportSpec, inputs: list[Any] | None, samples: int) -> HeldOut:
    """The first ``samples`` examples of the artifact's test split (and some training ones), or
    ``inputs`` when given or when the dataset does not resolve."""
    try:
        splits = dataset_splits(predictor)
    except (OmnituneError, OSError) as error:
        if inputs is None:
            raise ConfigError(f"the artifact's dataset did not resolve ({error}); give held-out inputs "
                              "for the parity check (--inputs FILE)") from error
        splits = None
    calibration = [spec.raw_input(e) for e in splits.train[:CALIBRATION_SAMPLES]] if splits else []
    if inputs is not None:
        return HeldOut(list(inputs)[:samples], None, calibration, f"{min(len(inputs), samples)} inputs given")
    examples = list(splits.test or splits.validation or [])[:samples]
    if not examples:
        raise ConfigError("the artifact's dataset has no test or validation split; give held-out "
                          "inputs for the parity check (--inputs FILE)")
    which = "test" if splits.test else "validation"
    return HeldOut([spec.raw_input(e) for e in examples], examples, calibration,
                   f"{len(examples)} examples of the {which} split of {predictor.config.dataset.name!r}")


def dataset_splits(predictor: Any) -> Any:
    """The artifact's dataset splits (train, validation, test), as its training run built them."""
    from omnitune.build import build_dataset
    from omnitune.config import validate_components

    options = validate_components(predictor.config, predictor.plugins.registry)
    return build_dataset(predictor.config, options, predictor.plugins.registry)


def parity_report(folder: Path, predictor: Any, spec: ExportSpec, data: HeldOut,
                  tolerances: Tolerances) -> dict[str, Any]:
    """Graph parity (same encoded tensors) and end-to-end parity (same raw inputs)."""
    bundle = Bundle(folder)
    graph_diff = _graph_diff(bundle, spec, data.raw)
    expected = predictor.predict(data.raw)
    got = bundle.predict(data.raw)
    data.onnx_predictions = got
    identical = agreement(expected, got)
    report: dict[str, Any] = {
        "inputs": data.source, "max_abs_diff": graph_diff, "identical_predictions": identical,
        "max_abs_diff_predictions": _prediction_diff(expected, got),
        "tolerances": {"max_abs_diff": tolerances.max_abs_diff, "min_identical": tolerances.min_identical},
    }
    if data.examples is not None and spec.score is not None:
        report[spec.score_name] = {"pytorch": spec.score(expected, data.examples),
                                   "onnx_fp32": spec.score(got, data.examples)}
    report["failures"] = _parity_failures(report, tolerances)
    log.info("parity on %s: max |diff| %.3g, identical predictions %.4f", data.source, graph_diff, identical)
    return report


def _parity_failures(report: dict[str, Any], tolerances: Tolerances) -> list[str]:
    failures = []
    if not report["max_abs_diff"] <= tolerances.max_abs_diff:
        failures.append(f"max |ONNX - PyTorch| of the outputs is {report['max_abs_diff']:.3g}, "
                        f"above the tolerance {tolerances.max_abs_diff:g} (--atol)")
    if report["identical_predictions"] < tolerances.min_identical:
        failures.append(f"only {report['identical_predictions']:.2%} of the bundle's predictions equal "
                        f"the PyTorch Predictor's; at least {tolerances.min_identical:.2%} needed "
                        "(--min-identical)")
    return failures


def int8_report(folder: Path, data: HeldOut, tolerances: Tolerances, spec: ExportSpec) -> dict[str, Any]:
    """The int8 model against the fp32 one on the same inputs: agreement and score change."""
    int8 = Bundle(folder, variant="int8").predict(data.raw)
    fp32 = data.onnx_predictions or Bundle(folder).predict(data.raw)
    report: dict[str, Any] = {
        "inputs": data.source, "method": spec.quantization,
        "identical_to_fp32": agreement(fp32, int8),
        "max_int8_drop": tolerances.max_int8_drop, "failures": [],
    }
    if data.examples is not None and spec.score is not None:
        before, after = spec.score(fp32, data.examples), spec.score(int8, data.examples)
        report[spec.score_name] = {"onnx_fp32": before, "onnx_int8": after, "change": after - before}
        if before - after > tolerances.max_int8_drop:
            report["failures"].append(f"int8 {spec.score_name} {after:.4f} is {before - after:.4f} below "
                                      f"fp32's {before:.4f}, more than --max-int8-drop "
                                      f"{tolerances.max_int8_drop:g}")
    return report


def _graph_diff(bundle: Bundle, spec: ExportSpec, raw: list[Any], batch_size: int = 32) -> float:
    """Largest absolute difference between the PyTorch module's and the graph's outputs."""
    import torch

    worst = 0.0
    for start in range(0, len(raw), batch_size):
        tensors = spec.encode(raw[start:start + batch_size])
        with torch.no_grad():
            expected = spec.module(*tensors.values())
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = bundle.run({name: value.numpy() for name, value in tensors.items()})
        for name, tensor in zip(spec.outputs, expected, strict=True):
            diff = np.abs(tensor.double().numpy() - got[name].astype(np.float64))
            worst = max(worst, float(np.nan_to_num(diff, nan=math.inf).max(initial=0.0)))
    return worst


def agreement(expected: list[Any], got: list[Any]) -> float:
    """The share of predictions that decide the same (scores aside)."""
    same = [decision(a) == decision(b) for a, b in zip(expected, got, strict=True)]
    return sum(same) / max(len(same), 1)


def decision(prediction: Any) -> Any:
    """A prediction without its scores: what the model decided (label, text, item ids)."""
    if isinstance(prediction, dict):
        return {k: decision(v) for k, v in prediction.items() if not isinstance(v, float)
                and k not in ("probabilities", "score")}
    if isinstance(prediction, list):
        return [decision(v) for v in prediction]
    return prediction


def _prediction_diff(expected: list[Any], got: list[Any]) -> float:
    """Largest difference between the numbers of two predictions with the same shape."""
    def numbers(value: Any) -> list[float]:
        if isinstance(value, float):
            return [value]
        if isinstance(value, dict):
            return [n for key in sorted(value) for n in numbers(value[key])]
        if isinstance(value, list):
            return [n for item in value for n in numbers(item)]
        return []

    pairs = [(numbers(a), numbers(b)) for a, b in zip(expected, got, strict=True)]
    return max((abs(x - y) for a, b in pairs if len(a) == len(b) for x, y in zip(a, b, strict=True)),
               default=0.0)
